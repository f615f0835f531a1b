"""Shared fixtures: a database per test on SQLite and PostgreSQL, and a private copy of the logs.

PostgreSQL comes from LOGWATCH_TEST_PG_URL (default: the local server). Each test gets its own
schema, dropped afterwards. When CI=true an unreachable PostgreSQL fails the run; elsewhere the
PostgreSQL variants skip with a message saying why.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text

from logwatch.storage import Store

# The process-test fixtures (hang_guard, seed, lw_dir) live beside the harness they serve.
pytest_plugins = ["daemon_harness"]

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_input_logs"
SHARED_DATA = ROOT.parent / "shared" / "data"
PG_URL = os.environ.get(
    "LOGWATCH_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() == "true"

_pg_problem: str | None = None
_pg_checked = False


def pg_problem() -> str | None:
    """Why PostgreSQL cannot be used, or None when it can (checked once per session)."""
    global _pg_checked, _pg_problem
    if not _pg_checked:
        _pg_checked = True
        try:
            engine = create_engine(PG_URL, connect_args={"connect_timeout": 5})
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            engine.dispose()
        except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
            _pg_problem = f"PostgreSQL at LOGWATCH_TEST_PG_URL is not reachable: {exc!s:.200}"
    return _pg_problem


def _require_pg() -> None:
    problem = pg_problem()
    if problem is None:
        return
    if IN_CI:
        pytest.fail(f"{problem} (CI=true: PostgreSQL tests may not be skipped)")
    pytest.skip(problem)


@contextmanager
def private_pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a new schema of its own, dropped afterwards."""
    _require_pg()
    schema = f"lw_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL: an SQLite file, or a private PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'logwatch.db'}"
        return
    with private_pg_url() as url:
        yield url


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    s.upgrade()
    yield s
    s.close()


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    """A private copy of sample_input_logs (tests never write into the repository)."""
    target = tmp_path / "logs"
    shutil.copytree(SAMPLES, target)
    (target / "labels.csv").unlink()  # not a log; tests read labels from SAMPLES
    return target
