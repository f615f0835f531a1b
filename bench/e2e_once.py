"""End-to-end ``run --once`` throughput against Drain3-with-masks alone, same lines, same run.

Usage: python bench/e2e_once.py [--lines 1000000] [--systems all] [--files K] [--seed 1]
       [--dir SCRATCH] [--keep]

Generates ``--lines`` lines with bench/generate.py (default: all twelve loghub systems, one file,
i.e. one stream, per system), runs ``main.py run --once`` on them into a fresh SQLite database as a
child process, then feeds the same files to drain3's TemplateMiner with drain3's example masks
(one miner per file). The figure is the ratio of throughputs (issue 7 target: >= 2x). Wall and CPU
time are both reported; on a shared machine the CPU-time ratio is the steadier one. logwatch's
figure includes interpreter start-up and imports; start-up alone (``--once`` on an empty folder)
is measured too and shown subtracted.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import _common as c
from generate import generate, parse_systems


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--systems", default="all")
    ap.add_argument("--files", type=int)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dir", type=Path, help="scratch directory (default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = ap.parse_args(argv)
    print(c.machine_line())
    scratch = c.scratch_dir("lw-e2e-", args.dir)
    logs = scratch / "logs"
    paths = generate(logs, args.lines, parse_systems(args.systems), args.files, args.seed)
    mb = sum(p.stat().st_size for p in paths) / 1e6
    start_wall, start_cpu = c.startup_seconds(scratch)
    lw = c.run_once(logs, scratch / "e2e.db")
    d_wall, d_cpu, d_lines = c.drain3_seconds(paths)
    assert d_lines == args.lines, (d_lines, args.lines)
    n = args.lines
    rows = [
        ("logwatch run --once", lw.seconds, n / lw.seconds, lw.cpu_seconds, n / lw.cpu_seconds),
        (
            "  minus start-up",
            lw.seconds - start_wall,
            n / max(lw.seconds - start_wall, 1e-9),
            lw.cpu_seconds - start_cpu,
            n / max(lw.cpu_seconds - start_cpu, 1e-9),
        ),
        ("drain3 + masks", d_wall, n / d_wall, d_cpu, n / d_cpu),
    ]
    print(f"{n:,} lines, {len(paths)} files, {mb:,.1f} MB; start-up {start_wall:.2f} s")
    c.table(["what", "wall s", "lines/s (wall)", "CPU s", "lines/s (CPU)"], rows)
    ratio_wall = d_wall / lw.seconds
    ratio_cpu = d_cpu / lw.cpu_seconds
    ratio_net = d_cpu / max(lw.cpu_seconds - start_cpu, 1e-9)
    print(
        f"ratio logwatch / drain3: {ratio_wall:.2f}x wall, {ratio_cpu:.2f}x CPU, {ratio_net:.2f}x "
        "CPU net of start-up (target >= 2x)"
    )
    print(
        f"peak RSS {lw.peak_rss_mb:,.0f} MB; with its learning children (PSS, sampled) "
        f"{lw.peak_tree_pss_mb:,.0f} MB"
    )
    print(f"logwatch's summary: {lw.stdout.strip().splitlines()[-1] if lw.stdout.strip() else '-'}")
    c.emit(
        "e2e_once",
        {
            "lines": n,
            "files": len(paths),
            "mb": round(mb, 1),
            "logwatch_wall_s": round(lw.seconds, 3),
            "logwatch_cpu_s": round(lw.cpu_seconds, 3),
            "startup_wall_s": round(start_wall, 3),
            "drain3_wall_s": round(d_wall, 3),
            "drain3_cpu_s": round(d_cpu, 3),
            "ratio_wall": round(ratio_wall, 3),
            "ratio_cpu": round(ratio_cpu, 3),
            "ratio_cpu_net": round(ratio_net, 3),
            "peak_rss_mb": round(lw.peak_rss_mb, 1),
            "peak_pss_with_learning_children_mb": round(lw.peak_tree_pss_mb, 1),
            "target_ratio": 2.0,
        },
    )
    if not args.keep:
        import shutil

        shutil.rmtree(scratch, ignore_errors=True)
    else:
        print(f"kept {scratch}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
