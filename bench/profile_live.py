"""Where a busy live poll spends its time: CPU per line of daemon polls over many appended files.

Usage: python bench/profile_live.py [--files 100] [--warmup-lines 300] [--rounds 20]
       [--per-file 100] [--systems all] [--seed 1] [--dir DIR] [--top 25] [--no-profile]

The daemon's poll runs in this process (``Pipeline.poll``, as ``run`` calls it) against a fresh
SQLite database: ``--files`` files get ``--warmup-lines`` generated lines each (so every stream
trains its model) and are polled until read; then, ``--rounds`` times, ``--per-file`` new lines
are appended to every file and one poll reads them. The figure is CPU time per line read in those
busy polls (``time.process_time``; steady on a shared machine) and the lines/s one core sustains
at that cost: ``bench/live.py`` measures the same daemon end to end, with latency, as a child
process. A second, profiled run of the same rounds lists the top functions by own time.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import shutil
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import _common as c
from generate import LineSource, layout, load_system, parse_systems

from logwatch.config import Config
from logwatch.pipeline import Pipeline
from logwatch.storage import Store


def busy_polls(
    logs: Path,
    db: Path,
    sources: list[tuple[Path, LineSource]],
    args: argparse.Namespace,
    *,
    profiled: bool,
) -> tuple[float, int, int, cProfile.Profile | None]:
    """(CPU seconds, lines, anomalies, the profile when ``profiled``) of ``--rounds`` busy polls
    after the warm-up."""
    db.unlink(missing_ok=True)
    for path, src in sources:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(src.line() + "\n" for _ in range(args.warmup_lines)))
    store = Store(f"sqlite:///{db}")
    store.upgrade()
    profile = None
    try:
        config = Config(log_dir=logs, db_url=store.url, poll_interval=1.0)
        pipeline = Pipeline(config, store)
        pipeline.leader = True
        pipeline.poll(datetime.now(UTC))  # the warm-up: every stream trains its model
        gc.freeze()  # as run_daemon does after its first poll
        # Each round's lines are made before the clock starts.
        blocks = [
            ["".join(src.line() + "\n" for _ in range(args.per_file)) for _, src in sources]
            for _ in range(args.rounds)
        ]
        cpu = lines = anomalies = 0
        if profiled:
            profile = cProfile.Profile()
        for block in blocks:
            for (path, _), text in zip(sources, block, strict=True):
                with path.open("a") as out:
                    out.write(text)
            start = time.process_time()
            if profile is not None:
                profile.enable()
            summary = pipeline.poll(datetime.now(UTC))
            if profile is not None:
                profile.disable()
            cpu += time.process_time() - start
            lines += summary.lines
            anomalies += summary.anomalies
        pipeline.close()
        return cpu, lines, anomalies, profile
    finally:
        store.close()


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=100)
    ap.add_argument("--warmup-lines", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--per-file", type=int, default=100, help="lines appended per file per round")
    ap.add_argument("--systems", default="all")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dir", type=Path, help="scratch directory (default: a temporary one)")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--no-profile", action="store_true", help="skip the profiled run")
    args = ap.parse_args(argv)
    print(c.machine_line())
    scratch = c.scratch_dir("lw-plive-", args.dir)
    systems = parse_systems(args.systems)
    loaded = {s: load_system(s) for s in systems}
    try:
        results = []
        for profiled in [False] if args.no_profile else [False, True]:
            logs = scratch / ("logs-profiled" if profiled else "logs")
            targets = layout(logs, systems, args.files)
            sources = [
                (path, LineSource(loaded[s], args.seed * 1_000_003 + i))
                for i, (path, s) in enumerate(targets)
            ]
            results.append(busy_polls(logs, scratch / "live.db", sources, args, profiled=profiled))
        cpu, lines, anomalies, _ = results[0]
        per_line_us = cpu / max(lines, 1) * 1e6
        c.table(
            ["measure", "value"],
            [
                ("busy polls", args.rounds),
                ("lines read in them", lines),
                ("anomalies stored", anomalies),
                ("CPU s", cpu),
                ("CPU us per line", per_line_us),
                ("lines/s one core sustains", 1e6 / per_line_us),
                ("ms per busy poll", cpu / args.rounds * 1e3),
            ],
        )
        profile = results[-1][3]
        if profile is not None:
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(args.top)
            print(out.getvalue())
        c.emit(
            "profile_live",
            {
                "files": args.files,
                "rounds": args.rounds,
                "per_file": args.per_file,
                "lines": lines,
                "anomalies": anomalies,
                "cpu_s": round(cpu, 3),
                "cpu_us_per_line": round(per_line_us, 1),
            },
        )
    finally:
        if args.dir is None:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
