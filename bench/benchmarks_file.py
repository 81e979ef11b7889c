"""docs/benchmarks.md: where every benchmark prints its figures and appends them."""

from __future__ import annotations

from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def append_figures(text: str) -> None:
    print(text)
    DOCS.parent.mkdir(exist_ok=True)
    if not DOCS.exists():
        DOCS.write_text("# Benchmarks\n\nFigures printed and appended by the scripts in bench/.\n")
    with DOCS.open("a", encoding="utf-8") as handle:
        handle.write(text)
