"""Benchmarks: `make bench` (python -m bench.run) writes docs/benchmarks.md."""
from __future__ import annotations

from pathlib import Path


def emit(text: str, out: str | None) -> int:
    """Print a bench's markdown report, and write it to `out` when given; the exit status 0."""
    print(text)
    if out:
        Path(out).write_text(text, encoding="utf-8")
    return 0
