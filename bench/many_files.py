"""Many small files: ``--once`` over a folder of N files of a few lines each, each its own stream,
then again over the same, unchanged folder.

Usage: python bench/many_files.py [--files 5000] [--lines 3] [--dir SCRATCH]

The layout is the one of tests/test_faults.py's row-28 test (RELIABILITY.md #28): 25 x 8
directories, ``f0000.log`` .. , lines like ``INFO worker 17 step 2 done in 5 ms``. Each run is
``main.py run --once`` as a child on a SQLite database (the second run on the database the first
one wrote). Reported: wall and CPU seconds of each run, ms per file of the first run net of the
start-up (``run --once`` on an empty folder), lines read. Here the per-file costs dominate: a
stream row, a file row, a learning pass and one batch commit per file; the second run must read
nothing and load no stream.
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Sequence
from pathlib import Path

import _common as c


def write_files(root: Path, n: int, lines: int) -> None:
    for i in range(n):
        d = root / f"d{i % 25:02d}" / f"e{(i // 25) % 8}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:04d}.log").write_text(
            "".join(f"INFO worker {i} step {j} done in {j + i % 7} ms\n" for j in range(lines))
        )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=5000)
    ap.add_argument("--lines", type=int, default=3, help="lines per file")
    ap.add_argument("--dir", type=Path, help="scratch directory (default: a temporary one)")
    args = ap.parse_args(argv)
    print(c.machine_line())
    scratch = c.scratch_dir("lw-many-", args.dir)
    try:
        logs, db = scratch / "logs", scratch / "many.db"
        write_files(logs, args.files, args.lines)
        startup_wall, startup_cpu = c.startup_seconds(scratch)
        first = c.run_once(logs, db)
        again = c.run_once(logs, db, fresh=False)
        read = int(c.db_query(db, "SELECT COALESCE(SUM(lines_read), 0) FROM files")[0][0])
        per_file_ms = (first.cpu_seconds - startup_cpu) / args.files * 1e3
        c.table(
            ["run", "wall s", "CPU s", "peak RSS MB"],
            [
                ("start-up (empty folder)", startup_wall, startup_cpu, ""),
                (f"first, {args.files:,} new files", first.seconds, first.cpu_seconds,
                 first.peak_rss_mb),
                ("again, nothing new", again.seconds, again.cpu_seconds, again.peak_rss_mb),
            ],
        )  # fmt: skip
        print(
            f"{read:,} lines read of {args.files * args.lines:,}; first run {per_file_ms:.2f} ms "
            f"CPU per file net of start-up"
        )
        c.emit(
            "many_files",
            {
                "files": args.files,
                "lines_per_file": args.lines,
                "lines_read": read,
                "startup_cpu_s": round(startup_cpu, 2),
                "first_wall_s": round(first.seconds, 2),
                "first_cpu_s": round(first.cpu_seconds, 2),
                "again_wall_s": round(again.seconds, 2),
                "again_cpu_s": round(again.cpu_seconds, 2),
                "first_ms_per_file": round(per_file_ms, 2),
                "peak_rss_mb": round(max(first.peak_rss_mb, again.peak_rss_mb), 1),
            },
        )
    finally:
        if args.dir is None:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
