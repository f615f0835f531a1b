"""Throughput of logwatch's parse stage on the loghub samples.

Usage: python bench/parse_speed.py [DIR] [--repeat 5]

DIR holds ``<Sys>/<Sys>_2k.log`` files (default ``../shared/data/loghub``). Prints lines/s of
``parse_line`` per system (best of ``--repeat`` runs) and of ``group_events`` over all systems.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from logwatch.parser import group_events, parse_line  # noqa: E402
from logwatch.records import RawLine  # noqa: E402

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "loghub"


def best_rate(lines: Sequence[str], repeat: int) -> float:
    """Lines per second of parse_line over ``lines``, best of ``repeat`` runs."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for line in lines:
            parse_line(line, default_year=2026)
        best = min(best, time.perf_counter() - start)
    return len(lines) / best


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", nargs="?", type=Path, default=DEFAULT_DIR)
    ap.add_argument("--repeat", type=int, default=5, help="timing runs; the best counts")
    args = ap.parse_args(argv)
    files = sorted(args.dir.glob("*/*_2k.log"))
    if not files:
        print(f"no loghub samples (<Sys>/<Sys>_2k.log) in {args.dir}", file=sys.stderr)
        return 1
    print("| system | lines | parse_line lines/s |")
    print("|---|---:|---:|")
    everything: list[str] = []
    for path in files:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        everything.extend(lines)
        print(f"| {path.parent.name} | {len(lines)} | {best_rate(lines, args.repeat):,.0f} |")
    print(f"| **all** | {len(everything)} | **{best_rate(everything, args.repeat):,.0f}** |")
    raw, offset = [], 0
    for i, text in enumerate(everything, 1):
        raw.append(RawLine(offset, i, text))
        offset += len(text.encode()) + 1
    best = float("inf")
    for _ in range(args.repeat):
        start = time.perf_counter()
        group_events(raw, final=True)
        best = min(best, time.perf_counter() - start)
    print(f"\ngroup_events (parse + multiline), all systems: {len(raw) / best:,.0f} lines/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
