"""Where ``--once`` spends its time: lines/s of ``run --once`` and of Drain3-with-masks alone on
the same generated lines (CPU time, in this process), then the top functions by own time.

Usage: python bench/profile_once.py [--lines 200000] [--systems all] [--seed 1] [--dir DIR]
       [--top 15] [--no-profile] [--plain] [--sort tottime|cumulative]

The input is made by bench/generate.py (kept in ``--dir`` and reused when it is already there).
logwatch runs in this process (no interpreter start-up or subprocess in the figure) into a fresh
SQLite database; CPU time (``time.process_time``) is what is compared, since it is steady on a busy
machine. The profiled run is a second, separate run, so the profiler's overhead does not touch
the throughput figures. ``--plain`` turns the templating caches off (the A/B of
``tests/test_equivalence.py``).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import shutil
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import _common as c
from generate import generate, parse_systems

from logwatch import templates
from logwatch.config import Config
from logwatch.pipeline import Pipeline
from logwatch.storage import Store


def run_once(logs: Path, db: Path) -> tuple[float, int, int]:
    """(CPU seconds, lines, anomalies) of one ``--once`` run into a fresh SQLite file."""
    db.unlink(missing_ok=True)
    store = Store(f"sqlite:///{db}")
    store.upgrade()
    try:
        config = Config(log_dir=logs, db_url=store.url, once=True)
        pipeline = Pipeline(config, store)
        cpu = time.process_time()
        summary = pipeline.run_once(datetime.now(UTC))
        return time.process_time() - cpu, summary.lines, summary.anomalies
    finally:
        store.close()


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--systems", default="all")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dir", type=Path, help="where the input is kept (default: a temporary one)")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--no-profile", action="store_true", help="skip the profiled run")
    ap.add_argument(
        "--sort", default="tottime", choices=("tottime", "cumulative"), help="profile order"
    )
    ap.add_argument("--plain", action="store_true", help="templating caches off")
    args = ap.parse_args(argv)
    if args.plain:
        templates.FAST_PATHS = False
    print(c.machine_line())
    scratch = Path(tempfile.mkdtemp(prefix="lw-prof-"))
    try:
        logs = args.dir or scratch / "logs"
        paths = sorted(logs.rglob("*.log")) if logs.is_dir() else []
        if not paths:
            paths = generate(logs, args.lines, parse_systems(args.systems), None, args.seed)
        n = c.count_lines(paths)
        lw_cpu, lines, anomalies = run_once(logs, scratch / "once.db")
        _, d_cpu, d_lines = c.drain3_seconds(paths)
        c.table(
            ["what", "lines", "CPU s", "lines/s (CPU)"],
            [
                ("logwatch run --once", lines, lw_cpu, lines / lw_cpu),
                ("drain3 + masks", d_lines, d_cpu, d_lines / d_cpu),
            ],
        )
        print(
            f"{n:,} lines in {len(paths)} files, {anomalies:,} anomalies; "
            f"ratio logwatch / drain3 (CPU): {d_cpu / lw_cpu:.2f}x (target >= 2x)"
        )
        if not args.no_profile:
            profiler = cProfile.Profile()
            profiler.enable()
            run_once(logs, scratch / "profiled.db")
            profiler.disable()
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            stats.sort_stats(args.sort).print_stats(args.top)
            print(out.getvalue())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
