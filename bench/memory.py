"""Memory: peak RSS through one large file, and with 1,000 streams each with a trained model.

Usage: python bench/memory.py [--size-mb 1000] [--system Hadoop] [--streams 1000]
       [--stream-lines 300] [--skip-file] [--skip-streams] [--seed 1] [--dir SCRATCH]

1. One file of ``--size-mb`` MB of one system (bench/generate.py lines), ``main.py run --once``
   on it; the child's RSS (/proc/PID/status VmRSS) is sampled every 0.25 s and VmHWM read until it
   exits. Flat means the RSS late in the run is about what it was early on: the table shows it at
   each quarter of the run.
2. ``--streams`` files (each its own stream, systems round-robin) of ``--stream-lines`` lines, more
   than train_min_events (200), so every stream trains a model; the daemon
   (``main.py run --poll-interval 1``) reads them all, and once every stream has a model its RSS
   and VmHWM are read before it is stopped.
Issue 7 targets: RSS flat through a 1 GB file; under 400 MB with 1,000 trained streams.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import _common as c
from generate import LineSource, generate, load_system, parse_systems


def write_big(path: Path, size: int, system: str, seed: int) -> int:
    src = LineSource(load_system(system), seed)
    written = lines = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb", buffering=1 << 20) as f:
        while written < size:
            chunk = ("\n".join(src.line() for _ in range(4096)) + "\n").encode()
            f.write(chunk)
            written += len(chunk)
            lines += 4096
    return lines


def big_file(scratch: Path, args: argparse.Namespace) -> dict[str, Any]:
    logs = scratch / "big"
    lines = write_big(logs / "app.log", int(args.size_mb * 1e6), args.system, args.seed)
    r = c.run_once(logs, scratch / "big.db")
    shutil.rmtree(logs, ignore_errors=True)
    tl = r.rss_timeline_mb
    quarters = []
    for q in (0.25, 0.5, 0.75, 1.0):
        before = [rss for t, rss in tl if t <= q * r.seconds]
        quarters.append(before[-1] if before else 0.0)
    print(
        f"1. one {args.system} file, {args.size_mb:,.0f} MB, {lines:,} lines: --once in "
        f"{r.seconds:.1f} s"
    )
    c.table(
        ["measure", "MB"],
        [
            *[
                (f"RSS at {int(q * 100)}% of the run", v)
                for q, v in zip((0.25, 0.5, 0.75, 1.0), quarters, strict=True)
            ],
            ("peak RSS (VmHWM)", r.peak_rss_mb),
        ],
    )
    return {
        "file_mb": args.size_mb,
        "file_lines": lines,
        "file_seconds": round(r.seconds, 2),
        "file_rss_quarters_mb": [round(v, 1) for v in quarters],
        "file_peak_rss_mb": round(r.peak_rss_mb, 1),
    }


def many_streams(scratch: Path, args: argparse.Namespace) -> dict[str, Any]:
    logs, db = scratch / "streams", scratch / "streams.db"
    total = args.streams * args.stream_lines
    generate(logs, total, parse_systems("all"), args.streams, args.seed)
    cmd = c.daemon_cmd(logs, db, 1)
    start = time.time()
    proc = subprocess.Popen(cmd, cwd=c.ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    hwm = 0
    models = read = 0
    try:
        while time.time() - start < args.timeout:
            time.sleep(1.0)
            st = c.proc_status(proc.pid)
            hwm = max(hwm, st.get("VmHWM", 0))
            try:
                read = c.db_query(db, "SELECT COALESCE(SUM(lines_read), 0) FROM files")[0][0]
                models = c.db_query(db, "SELECT COUNT(DISTINCT stream_id) FROM models")[0][0]
            except Exception:  # noqa: BLE001 - schema not there yet
                continue
            if read >= total and models >= args.streams:
                break
        time.sleep(2.0)  # a couple of idle polls with every model in place
        st = c.proc_status(proc.pid)
        hwm = max(hwm, st.get("VmHWM", 0))
        rss = st.get("VmRSS", 0)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    elapsed = time.time() - start
    print(
        f"2. {args.streams:,} streams x {args.stream_lines} lines: {read:,} lines read, "
        f"{models:,} streams with a model, after {elapsed:.0f} s"
    )
    c.table(
        ["measure", "MB", "target"],
        [("RSS, every stream trained", rss / 1024, "< 400"), ("peak RSS (VmHWM)", hwm / 1024, "")],
    )
    return {
        "streams": args.streams,
        "stream_lines": args.stream_lines,
        "streams_with_model": models,
        "streams_rss_mb": round(rss / 1024, 1),
        "streams_peak_rss_mb": round(hwm / 1024, 1),
        "streams_seconds": round(elapsed, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=float, default=1000.0)
    ap.add_argument("--system", default="Hadoop")
    ap.add_argument("--streams", type=int, default=1000)
    ap.add_argument("--stream-lines", type=int, default=300)
    ap.add_argument("--skip-file", action="store_true")
    ap.add_argument("--skip-streams", action="store_true")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds to wait for the daemon")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dir", type=Path, help="scratch directory (default: a temporary one)")
    args = ap.parse_args(argv)
    print(c.machine_line())
    scratch = c.scratch_dir("lw-mem-", args.dir)
    result: dict[str, Any] = {"target_mb": 400}
    try:
        if not args.skip_file:
            result.update(big_file(scratch, args))
        if not args.skip_streams:
            result.update(many_streams(scratch, args))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    c.emit("memory", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
