"""Growth: ``run --once`` time for 1M and 5M lines (cost must grow linearly).

Usage: python bench/growth.py [--lines 1000000] [--factor 5] [--systems all] [--seed 1]
       [--dir SCRATCH]

Generates ``--lines`` and ``--factor`` x ``--lines`` lines (bench/generate.py, one file per
system, the same seed so the small set's files are a prefix-like sample of the same streams) and
times ``main.py run --once`` on each into a fresh SQLite database. Issue 7 target: the large run
takes at most 5.5x the small one (for factor 5). Wall and CPU time are both reported; start-up
(``--once`` on an empty folder) is subtracted in the "net" columns.
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Sequence
from pathlib import Path

import _common as c
from generate import generate, parse_systems


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--factor", type=int, default=5)
    ap.add_argument("--systems", default="all")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dir", type=Path, help="scratch directory (default: a temporary one)")
    args = ap.parse_args(argv)
    print(c.machine_line())
    scratch = c.scratch_dir("lw-growth-", args.dir)
    systems = parse_systems(args.systems)
    try:
        start_wall, start_cpu = c.startup_seconds(scratch)
        results = []
        for n in (args.lines, args.lines * args.factor):
            logs = scratch / f"logs{n}"
            generate(logs, n, systems, None, args.seed)
            r = c.run_once(logs, scratch / f"g{n}.db")
            shutil.rmtree(logs, ignore_errors=True)
            results.append((n, r))
        rows = [
            (
                n,
                r.seconds,
                r.cpu_seconds,
                r.cpu_seconds - start_cpu,
                n / r.cpu_seconds,
                r.peak_rss_mb,
                r.peak_tree_pss_mb,
            )
            for n, r in results
        ]
        c.table(
            [
                "lines",
                "wall s",
                "CPU s",
                "net CPU s",
                "lines/s (CPU)",
                "peak RSS MB",
                "with children MB",
            ],
            rows,
        )
        (n1, r1), (n2, r2) = results
        ratio_wall = r2.seconds / r1.seconds
        ratio_cpu = r2.cpu_seconds / r1.cpu_seconds
        ratio_net = (r2.cpu_seconds - start_cpu) / max(r1.cpu_seconds - start_cpu, 1e-9)
        limit = 5.5 * args.factor / 5
        print(
            f"time ratio {n2:,} / {n1:,} lines: {ratio_wall:.2f}x wall, {ratio_cpu:.2f}x CPU, "
            f"{ratio_net:.2f}x CPU net of start-up (target <= {limit:.1f}x; linear = "
            f"{args.factor}x)"
        )
        c.emit(
            "growth",
            {
                "lines_small": n1,
                "lines_large": n2,
                "wall_s": [round(r1.seconds, 3), round(r2.seconds, 3)],
                "cpu_s": [round(r1.cpu_seconds, 3), round(r2.cpu_seconds, 3)],
                "startup_cpu_s": round(start_cpu, 3),
                "ratio_wall": round(ratio_wall, 3),
                "ratio_cpu": round(ratio_cpu, 3),
                "ratio_cpu_net": round(ratio_net, 3),
                "target_ratio": limit,
            },
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
