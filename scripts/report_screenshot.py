"""Regenerate docs/images/compare-report.png: a real tiny ``mcv compare`` (centroid and local), its HTML report,
and a headless Chromium screenshot of it.

Usage: ``.venv/bin/python scripts/report_screenshot.py [OUT.png]`` (needs plotly and ``chromium`` on PATH or
``$CHROMIUM``). Everything runs in a temporary folder with its own MCV_HOME; about 10 s.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("report_screenshot")


def chromium() -> str:
    """The Chromium binary: ``$CHROMIUM``, else ``chromium`` or ``chromium-browser`` on PATH; exits 1 when none."""
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return str(shutil.which(name))
    log.error("no chromium found: install it (apt-get install chromium) or set CHROMIUM")
    raise SystemExit(1)


def make_report(folder: Path) -> Path:
    """Run a tiny real comparison (centroid and local, 1 epoch) in ``folder`` and write its HTML report there."""
    os.environ["MCV_HOME"] = str(folder / "mcv-home")
    os.environ["XDG_CONFIG_HOME"] = str(folder / "xdg-config")
    from multicloud_cv.compare import compare, report_html
    from multicloud_cv.testing import make_tiny_dataset

    dataset = make_tiny_dataset(folder / "shapes", classes=3, train_per_class=10, test_per_class=4)
    comparison = compare(dataset, ["local", "centroid"], epochs=1, hyperparameters={"local": {"seed": "0"}})
    page = folder / "compare-report.html"
    page.write_text(report_html(comparison), encoding="utf-8")
    return page


def main() -> None:
    """Write the screenshot to ``sys.argv[1]`` (default docs/images/compare-report.png)."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    log.setLevel(logging.INFO)
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "images" / "compare-report.png"
    browser = chromium()
    with tempfile.TemporaryDirectory(prefix="mcv-report-shot-") as tmp:
        page = make_report(Path(tmp))
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--virtual-time-budget=5000",
                f"--screenshot={out.resolve()}",
                "--window-size=1280,2400",
                page.resolve().as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
    log.info("wrote %s (%d bytes)", out, out.stat().st_size)


if __name__ == "__main__":
    main()
