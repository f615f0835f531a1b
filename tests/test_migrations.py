"""Alembic owns the schema: the migrations produce exactly ``logwatch.storage.metadata``."""

from __future__ import annotations

import argparse

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from logwatch.storage import MIGRATIONS_DIR, Store, metadata

TABLES = {
    "acks",
    "alembic_version",
    "anomalies",
    "daemon",
    "files",
    "incidents",
    "model_state",
    "models",
    "normal_marks",
    "session_anomalies",
    "streams",
    "suppressions",
    "templates",
    "window_stats",
}


def alembic_cfg(db_url: str | None = None) -> AlembicConfig:
    """What ``alembic -x url=DB_URL upgrade head`` builds (no alembic.ini: we have none)."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if db_url is not None:
        cfg.cmd_opts = argparse.Namespace(x=[f"url={db_url}"])
    return cfg


def schema_diff(db_url: str) -> list[object]:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(ctx, metadata))
    finally:
        engine.dispose()


def current_revision(db_url: str) -> str | None:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def table_names(db_url: str) -> set[str]:
    engine = create_engine(db_url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def head() -> str:
    (only,) = ScriptDirectory.from_config(alembic_cfg()).get_heads()
    return only


def test_migrations_have_exactly_one_head() -> None:
    script = ScriptDirectory.from_config(alembic_cfg())
    assert len(script.get_heads()) == 1, script.get_heads()
    assert len(script.get_bases()) == 1, script.get_bases()
    # Every revision is reachable from the head (no orphaned branch).
    revisions = list(script.walk_revisions())
    assert revisions[0].revision == head()
    assert revisions[-1].down_revision is None


def test_alembic_upgrade_head_matches_metadata(db_url: str) -> None:
    assert table_names(db_url) == set()
    command.upgrade(alembic_cfg(db_url), "head")
    assert table_names(db_url) == TABLES
    assert schema_diff(db_url) == []
    assert current_revision(db_url) == head()


def test_store_upgrade_matches_metadata_and_is_idempotent(db_url: str) -> None:
    store = Store(db_url)
    try:
        store.upgrade()
        store.upgrade()  # a restart upgrades again: nothing to do, no error
    finally:
        store.close()
    command.upgrade(alembic_cfg(db_url), "head")  # and the command line agrees it is current
    assert schema_diff(db_url) == []
    assert current_revision(db_url) == head()


def test_upgrade_keeps_data(db_url: str) -> None:
    store = Store(db_url)
    try:
        store.upgrade()
        sid = store.stream_id("app.log")
        store.upgrade()
        assert store.stream_id("app.log") == sid
        assert store.load_stream(sid).name == "app.log"
    finally:
        store.close()


def test_downgrade_to_base_and_back(db_url: str) -> None:
    cfg = alembic_cfg(db_url)
    command.upgrade(cfg, "head")
    command.downgrade(cfg, "base")
    assert table_names(db_url) == {"alembic_version"}
    assert current_revision(db_url) is None
    command.upgrade(cfg, "head")
    assert schema_diff(db_url) == []
