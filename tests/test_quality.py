"""Detection quality on logs nobody here wrote: the twelve loghub samples are ordinary production
logs, so logwatch must stay quiet on them (issue target: at most 3% of lines reported each)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import SHARED_DATA

from logwatch.config import Config
from logwatch.pipeline import Pipeline
from logwatch.storage import Store

LOGHUB = SHARED_DATA / "loghub"
SYSTEMS = sorted(p.name for p in LOGHUB.iterdir()) if LOGHUB.is_dir() else []


@pytest.mark.skipif(not SYSTEMS, reason=f"loghub samples not found at {LOGHUB}")
@pytest.mark.parametrize("system", [s for s in SYSTEMS if (LOGHUB / s / f"{s}_2k.log").exists()])
def test_ordinary_production_logs_are_quiet(system: str, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    shutil.copy(LOGHUB / system / f"{system}_2k.log", logs / f"{system}.log")
    store = Store(f"sqlite:///{tmp_path / 'lw.db'}")
    store.upgrade()
    try:
        summary = Pipeline(Config(log_dir=logs, db_url=store.url, once=True), store).run_once(
            datetime.now(UTC)
        )
        reported = len(store.anomalies())
    finally:
        store.close()
    assert summary.lines == 2000
    assert reported / summary.lines <= 0.03, f"{system}: {reported} of 2000 lines reported"
