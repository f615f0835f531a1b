"""How noisy is logwatch on ordinary production logs? Share of lines reported, per loghub sample.

    python bench/loghub_noise.py [DIR]     # DIR defaults to ../shared/data/loghub

Each `<System>/<System>_2k.log` is copied alone into a temporary folder and processed with
`--once` at default settings on a fresh SQLite database. The samples carry no anomaly labels; they
are ordinary logs, so a low share is the goal (issue target: at most 3% per system).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from logwatch.config import Config
from logwatch.pipeline import Pipeline
from logwatch.storage import Store


def main() -> int:
    root = (
        Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parents[2] / "shared/data/loghub"
    )
    if not root.is_dir():
        print(f"no loghub folder at {root}", file=sys.stderr)
        return 1
    print("| system | lines | reported | share |")
    print("|---|---:|---:|---:|")
    worst = 0.0
    for log in sorted(root.glob("*/*_2k.log")):
        with tempfile.TemporaryDirectory() as tmp:
            logs = Path(tmp) / "logs"
            logs.mkdir()
            shutil.copy(log, logs / log.name)
            store = Store(f"sqlite:///{tmp}/lw.db")
            store.upgrade()
            config = Config(log_dir=logs, db_url=store.url, once=True)
            t0 = time.perf_counter()
            summary = Pipeline(config, store).run_once(datetime.now(UTC))
            elapsed = time.perf_counter() - t0
            reported = len(store.anomalies())
            store.close()
        share = reported / max(summary.lines, 1)
        worst = max(worst, share)
        print(
            f"| {log.parent.name} | {summary.lines:,} | {reported} | {share:.2%} |"
            f" <!-- {elapsed:.1f}s -->"
        )
    print(f"\nworst share: {worst:.2%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
