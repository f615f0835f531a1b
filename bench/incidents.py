"""Precision and recall of incidents, anomalous sessions and flagged windows (issue 5).

Usage: python bench/incidents.py [--seeds 0,1,2,3] [--minutes 1440] [--blocks 600] [--broken 10]
       [--degraded 2] [--errors 3]

For each seed, generates a multi-stream folder with known ground truth (``tests/overview_logs.py``:
HDFS block lifecycles of which some break only at session level, three services that degrade
together only a little at some minutes, rare ERRORs and one outage minute), runs the Pipeline
``--once`` on it into a fresh SQLite database in a temporary directory (removed afterwards), and
scores what was stored:

- incidents: precision = incidents covering at least one true anomaly / incidents; recall = true
  anomalies (broken sessions, degraded minutes, injected ERROR lines) covered by some incident /
  true anomalies. An incident covers a session when the key is among its sessions, a minute when
  its time span overlaps it, a line when the line is among its lines or inside its time span.
- sessions: anomalous sessions found against the broken blocks.
- windows: windows the master model flagged; precision counts a flagged window as right when it is
  a degraded minute or holds an injected ERROR (the outage minute is abnormal across streams too);
  recall is over the degraded minutes.

Prints a table per seed and the totals; writes nothing else.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import _common as c

sys.path.insert(0, str(c.ROOT / "tests"))

from overview_logs import Judgement, generate, judge  # noqa: E402

from logwatch import incident_store  # noqa: E402
from logwatch.config import Config  # noqa: E402
from logwatch.overview import OverviewResult  # noqa: E402
from logwatch.pipeline import Pipeline  # noqa: E402
from logwatch.storage import Store  # noqa: E402

NOW = datetime(2026, 3, 5, tzinfo=UTC)


def one(seed: int, args: argparse.Namespace) -> tuple[Judgement, int, float]:
    with tempfile.TemporaryDirectory(prefix="lw-incidents-") as tmp:
        truth = generate(
            Path(tmp) / "logs",
            seed,
            minutes=args.minutes,
            blocks=args.blocks,
            broken=args.broken,
            degraded=args.degraded,
            errors=args.errors,
        )
        store = Store(f"sqlite:///{Path(tmp) / 'lw.db'}")
        store.upgrade()
        try:
            pipeline = Pipeline(Config(log_dir=truth.root, db_url=store.url, once=True), store)
            kept: list[OverviewResult] = []
            finish = pipeline.overview.finish_once

            def keep(now: datetime) -> OverviewResult:
                kept.append(finish(now))
                return kept[-1]

            setattr(pipeline.overview, "finish_once", keep)  # noqa: B010
            started = time.perf_counter()
            summary = pipeline.run_once(NOW)
            seconds = time.perf_counter() - started
            j = judge(
                truth,
                incident_store.incidents(store),
                {(f.stream, f.key) for f in incident_store.sessions(store)},
                [w.start for w in kept[0].windows],
            )
            return j, summary.lines, seconds
        finally:
            store.close()


def _ratio(num: int, den: int) -> str:
    return f"{num / den:.2f} ({num}/{den})" if den else "-"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2,3")
    ap.add_argument("--minutes", type=int, default=1440)
    ap.add_argument("--blocks", type=int, default=600)
    ap.add_argument("--broken", type=int, default=10)
    ap.add_argument("--degraded", type=int, default=2)
    ap.add_argument("--errors", type=int, default=3)
    args = ap.parse_args(argv)
    print(c.machine_line())
    total = Judgement()
    rows: list[list[object]] = []
    notes: list[str] = []
    for seed in (int(s) for s in args.seeds.split(",")):
        j, lines, seconds = one(seed, args)
        total.add(j)
        rows.append(_row(f"seed {seed}", j) + [lines, seconds])
        notes += [f"seed {seed}: missed {m}" for m in j.missed]
        notes += [f"seed {seed}: covers nothing true: {t}" for t in j.false]
    rows.append(_row("total", total) + ["", ""])
    c.table(
        [
            "run",
            "incidents",
            "inc. precision",
            "inc. recall",
            "session precision",
            "session recall",
            "window precision",
            "window recall",
            "lines",
            "seconds",
        ],
        rows,
    )
    for note in notes:
        print(note)
    return 0


def _row(name: str, j: Judgement) -> list[object]:
    return [
        name,
        j.incidents,
        _ratio(j.incidents_true, j.incidents),
        _ratio(j.truths_covered, j.truths),
        _ratio(j.sessions_true, j.sessions_found),
        _ratio(j.sessions_true, j.sessions_truth),
        _ratio(j.windows_true, j.windows_found),
        _ratio(j.windows_hit, j.windows_truth),
    ]


if __name__ == "__main__":
    raise SystemExit(main())
