"""Idle poll cost: 10,000 unchanged files, milliseconds per poll and files opened per poll.

Usage: python bench/idle_poll.py [--files 10000] [--polls 10] [--dir SCRATCH]

Builds ``--files`` small log files (100 folders, each ``app.log`` plus rotated siblings
``app.log.1`` ...), builds logwatch's Pipeline in-process on a SQLite database (as
tests/test_pipeline.py does), runs one poll that reads everything, then times ``--polls`` polls of
the unchanged tree. During the idle polls ``os.open``, ``builtins.open`` and ``io.open`` are
wrapped to count every file opened (directories listed by the scan are not counted: listing is
how new files are found), and /proc/self/io ``syscr`` (read syscalls) is compared before and after.
Issue 7 target: < 150 ms per idle poll of 10,000 files, and no file opened.
"""

from __future__ import annotations

import argparse
import builtins
import io
import os
import shutil
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import _common as c

from logwatch.config import Config
from logwatch.pipeline import Pipeline
from logwatch.storage import Store


def lines(i: int) -> str:
    """Three lines, different in every file (identical files would be taken for copies)."""
    return "".join(
        f"2026-03-01 10:00:{s:02d},000 INFO  [main] com.x.Svc - handled request {i}-{s}\n"
        for s in range(3)
    )


def make_tree(root: Path, n_files: int) -> None:
    per_dir = max(1, n_files // 100)
    for i in range(n_files):
        d = root / f"svc{i // per_dir:03d}"
        d.mkdir(parents=True, exist_ok=True)
        k = i % per_dir
        (d / ("app.log" if k == 0 else f"app.log.{k}")).write_text(lines(i))


def syscr() -> int:
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("syscr:"):
                return int(line.split()[1])
    except OSError:
        pass
    return -1


@contextmanager
def count_opens(root: str) -> Iterator[list[str]]:
    """Every path under ``root`` opened as a file while the block runs."""
    opened: list[str] = []
    saved = (os.open, builtins.open, io.open)

    def note(path: Any) -> None:
        if isinstance(path, (str, bytes, os.PathLike)):
            p = os.fsdecode(path)
            if p.startswith(root) and not os.path.isdir(p):
                opened.append(p)

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(file: Any, *a: Any, **kw: Any) -> Any:
            note(file)
            return fn(file, *a, **kw)

        return wrapper

    os.open = wrap(saved[0])  # type: ignore[assignment]
    builtins.open = wrap(saved[1])
    io.open = wrap(saved[2])
    try:
        yield opened
    finally:
        os.open, builtins.open, io.open = saved  # type: ignore[assignment]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--polls", type=int, default=10)
    ap.add_argument("--dir", type=Path, help="scratch directory (default: a temporary one)")
    ap.add_argument("--profile", action="store_true", help="cProfile the idle polls (top 15)")
    args = ap.parse_args(argv)
    print(c.machine_line())
    scratch = c.scratch_dir("lw-idle-", args.dir)
    try:
        root = scratch / "logs"
        make_tree(root, args.files)
        store = Store(f"sqlite:///{scratch / 'idle.db'}")
        store.upgrade()
        pipeline = Pipeline(Config(log_dir=root, db_url=store.url), store)
        now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
        t0 = time.perf_counter()
        first = pipeline.poll(now)
        first_s = time.perf_counter() - t0
        print(f"first poll: {first.files_seen:,} files, {first.lines:,} lines in {first_s:.1f} s")
        times: list[float] = []
        reads_before = syscr()
        with count_opens(str(root)) as opened:
            for k in range(1, args.polls + 1):
                t = time.perf_counter()
                s = pipeline.poll(now + timedelta(seconds=k))
                times.append(time.perf_counter() - t)
                assert s.lines == 0, s
        reads = syscr() - reads_before
        if args.profile:
            import cProfile
            import pstats

            prof = cProfile.Profile()
            prof.runcall(pipeline.poll, now + timedelta(hours=1))
            pstats.Stats(prof).sort_stats("cumulative").print_stats(15)
        pipeline.close()
        store.close()
        per_poll_opens = len(opened) / args.polls
        c.table(
            ["measure", "value", "target"],
            [
                ("files", first.files_seen, ""),
                ("ms per idle poll (median)", statistics.median(times) * 1e3, "< 150"),
                ("ms per idle poll (best)", min(times) * 1e3, ""),
                ("ms per idle poll (worst)", max(times) * 1e3, ""),
                ("files opened per idle poll", per_poll_opens, "0"),
                ("read syscalls per idle poll", reads / args.polls, ""),
            ],
        )
        if opened:
            print("opened, e.g.:", ", ".join(sorted(set(opened))[:5]))
        c.emit(
            "idle_poll",
            {
                "files": first.files_seen,
                "polls": args.polls,
                "ms_median": round(statistics.median(times) * 1e3, 2),
                "ms_best": round(min(times) * 1e3, 2),
                "ms_worst": round(max(times) * 1e3, 2),
                "files_opened_per_poll": per_poll_opens,
                "read_syscalls_per_poll": reads / args.polls,
                "target_ms": 150,
            },
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
