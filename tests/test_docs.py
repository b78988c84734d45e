"""The docs cannot lie: the support matrix is generated from the providers' declared capabilities."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_support_matrix_in_architecture_doc_is_current() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "gen_support_matrix.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.returncode == 0, f"{out.stdout}{out.stderr}\nregenerate: python examples/gen_support_matrix.py --write"


def test_readme_has_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "bash scripts/setup.sh && .venv/bin/mcv demo" in readme
    assert "bash scripts/setup.sh && bash scripts/test.sh" in readme
