"""Where a busy live poll spends its time: CPU per line of daemon polls over many appended files.

Usage: python bench/profile_live.py [--files 100] [--warmup-lines 300] [--rounds 20]
       [--per-file 100] [--systems all] [--seed 1] [--dir DIR] [--top 25] [--no-profile | --stages]
       [--sort tottime|cumulative]

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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path

import _common as c
from generate import LineSource, layout, load_system, parse_systems

from logwatch import daemon, detectors, overview, parser, pipeline, reader, storage, templates
from logwatch.config import Config
from logwatch.pipeline import Pipeline
from logwatch.storage import Store

# What --stages times: (label, owner, attribute). Indented stages run inside the one above them,
# so their time is in it too; each wrapped call adds ~0.2 us (two clock reads).
STAGES: tuple[tuple[str, object, str], ...] = (
    ("read", reader, "read_lines"),
    ("parse + multi-line", parser, "group_events"),
    ("analyse", pipeline.Pipeline, "_analyse"),
    ("  templates + statistics", pipeline.Pipeline, "_observe"),
    ("    templating", templates.StreamTemplates, "add"),
    ("  features", pipeline.Pipeline, "_features"),
    ("  scoring calls", detectors.StreamDetector, "score"),
    ("  decide", pipeline, "decide"),
    ("  nearest normal line", pipeline.Pipeline, "_closest"),
    ("bird's-eye feed", overview.Overview, "observe"),
    ("commit", storage.Store, "commit_batch"),
    ("poll end: sessions, windows, incidents", overview.Overview, "poll_end"),
)


def _timed(
    fn: Callable[..., object], label: str, totals: dict[str, float]
) -> Callable[..., object]:
    clock = time.perf_counter

    def timed(*args: object, **kwargs: object) -> object:
        start = clock()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[label] = totals.get(label, 0.0) + clock() - start

    return timed


@contextmanager
def timed_stages(totals: dict[str, float]) -> Iterator[None]:
    """Every function of ``STAGES`` adds its wall time (one busy thread: its CPU) to ``totals``."""
    saved = []
    for label, owner, name in STAGES:
        original = getattr(owner, name)
        saved.append((owner, name, original))
        setattr(owner, name, _timed(original, label, totals))
    try:
        yield
    finally:
        for owner, name, original in reversed(saved):
            setattr(owner, name, original)


def busy_polls(
    logs: Path,
    db: Path,
    sources: list[tuple[Path, LineSource]],
    args: argparse.Namespace,
    *,
    profiled: bool,
    stages: dict[str, float] | None = None,
) -> tuple[float, int, int, cProfile.Profile | None]:
    """(CPU seconds, lines, anomalies, the profile when ``profiled``) of ``--rounds`` busy polls
    after the warm-up; with ``stages``, the busy polls' time by stage goes there."""
    db.unlink(missing_ok=True)
    for path, src in sources:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(src.line() + "\n" for _ in range(args.warmup_lines)))
    store = Store(f"sqlite:///{db}")
    store.upgrade()
    profile = None
    try:
        config = Config(log_dir=logs, db_url=store.url, poll_interval=1.0)
        poller = Pipeline(config, store)
        poller.leader = True
        poller.poll(datetime.now(UTC))  # the warm-up: every stream trains its model
        gc.freeze()  # as run_daemon does after its first poll
        daemon.tune_collector()  # and as it does from its start
        # Each round's lines are made before the clock starts.
        blocks = [
            ["".join(src.line() + "\n" for _ in range(args.per_file)) for _, src in sources]
            for _ in range(args.rounds)
        ]
        cpu = lines = anomalies = 0
        if profiled:
            profile = cProfile.Profile()
        with timed_stages(stages) if stages is not None else nullcontext():
            for block in blocks:
                for (path, _), text in zip(sources, block, strict=True):
                    with path.open("a") as out:
                        out.write(text)
                start = time.process_time()
                if profile is not None:
                    profile.enable()
                summary = poller.poll(datetime.now(UTC))
                if profile is not None:
                    profile.disable()
                cpu += time.process_time() - start
                lines += summary.lines
                anomalies += summary.anomalies
        poller.close()
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
    second_run = ap.add_mutually_exclusive_group()
    second_run.add_argument("--no-profile", action="store_true", help="skip the profiled run")
    second_run.add_argument(
        "--stages",
        action="store_true",
        help="time the stages instead of profiling (no profiler overhead per function)",
    )
    ap.add_argument(
        "--sort", default="tottime", choices=("tottime", "cumulative"), help="profile order"
    )
    args = ap.parse_args(argv)
    print(c.machine_line())
    scratch = c.scratch_dir("lw-plive-", args.dir)
    systems = parse_systems(args.systems)
    loaded = {s: load_system(s) for s in systems}
    try:
        results = []
        stage_time: dict[str, float] = {}
        for profiled in [False] if args.no_profile else [False, True]:
            logs = scratch / ("logs-profiled" if profiled else "logs")
            targets = layout(logs, systems, args.files)
            sources = [
                (path, LineSource(loaded[s], args.seed * 1_000_003 + i))
                for i, (path, s) in enumerate(targets)
            ]
            results.append(
                busy_polls(
                    logs,
                    scratch / "live.db",
                    sources,
                    args,
                    profiled=profiled and not args.stages,
                    stages=stage_time if profiled and args.stages else None,
                )
            )
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
        if stage_time:
            timed_cpu, timed_lines = results[-1][0], max(results[-1][1], 1)
            print(f"by stage, a second run ({timed_cpu / timed_lines * 1e6:.1f} us per line):")
            by_stage = []
            for label, _, _ in STAGES:
                seconds = stage_time.get(label, 0.0)
                by_stage.append((label, seconds / timed_lines * 1e6, f"{seconds / timed_cpu:.0%}"))
            c.table(["stage", "us per line", "share"], by_stage)
        profile = results[-1][3]
        if profile is not None:
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats(args.sort).print_stats(args.top)
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
