"""Build the docs' support matrix from the installed providers' declared capabilities.

Usage (from the repository root)::

    python examples/gen_support_matrix.py            # print the Markdown table
    python examples/gen_support_matrix.py --write    # put it into docs/architecture.md between the markers
    python examples/gen_support_matrix.py --check    # exit 1 when the table in docs/architecture.md is stale

Rows are the features of :data:`multicloud_cv.capabilities.ALL_FEATURES`, columns the
providers installed here (sorted by name), cells ``yes`` or ``no: <reason>``. The table is
made from the same :class:`~multicloud_cv.capabilities.Capabilities` values the core checks
before every request, so the docs cannot promise what a provider refuses (libcloud builds
its provider feature matrix the same way).

Exit codes: 0 done (or, with ``--check``, the table is current); 1 the table is stale;
2 the document or its markers are missing.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

from multicloud_cv.capabilities import ALL_FEATURES
from multicloud_cv.registry import Registry, registry

START = "<!-- support-matrix:start -->"
END = "<!-- support-matrix:end -->"
DEFAULT_DOC = Path(__file__).resolve().parent.parent / "docs" / "architecture.md"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def support_matrix(reg: Registry | None = None) -> str:
    """The Markdown table: one row per feature, one column per installed provider."""
    reg = reg or registry()
    names = reg.names
    lines = [
        "| feature | " + " | ".join(f"`{name}`" for name in names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for feature in ALL_FEATURES:
        cells = []
        for name in names:
            capabilities = reg.entry(name).primary.capabilities
            cells.append("yes" if capabilities.supports(feature) else f"no: {capabilities.unsupported[feature]}")
        lines.append(f"| `{feature}` | " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def embed(document: str, table: str) -> str:
    """``document`` with the text between the markers replaced by ``table``; ``ValueError`` without markers."""
    start = document.find(START)
    end = document.find(END)
    if start < 0 or end < start:
        raise ValueError(f"markers {START} ... {END} not found")
    return document[: start + len(START)] + "\n" + table + document[end:]


def main(argv: list[str] | None = None) -> int:
    """Command line; returns the exit code."""
    parser = argparse.ArgumentParser(description="Markdown support matrix from the installed providers' capabilities")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="exit 1 when the document's table differs")
    mode.add_argument("--write", action="store_true", help="replace the document's table")
    parser.add_argument("--doc", type=Path, default=DEFAULT_DOC, help="the document (default: docs/architecture.md)")
    args = parser.parse_args(argv)

    reg = registry()
    for failure in reg.failures:
        sys.stderr.write(f"note: plugin {failure.name} failed to load and is not in the table: {failure.reason}\n")
    table = support_matrix(reg)
    if not (args.check or args.write):
        sys.stdout.write(table)
        return 0
    try:
        current = args.doc.read_text(encoding="utf-8")
        wanted = embed(current, table)
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"error: {args.doc}: {exc}\n")
        return 2
    if args.write:
        if wanted != current:
            args.doc.write_text(wanted, encoding="utf-8")
        return 0
    if wanted == current:
        return 0
    diff = difflib.unified_diff(current.splitlines(True), wanted.splitlines(True), str(args.doc), "generated")
    sys.stderr.writelines(diff)
    sys.stderr.write(
        f"error: the support matrix in {args.doc} differs from the installed providers' capabilities; "
        "regenerate it with: python examples/gen_support_matrix.py --write\n"
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
