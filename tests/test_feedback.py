"""Operator feedback (acks, suppressions, normal marks) on SQLite and PostgreSQL: the library, the
rules the pipeline applies, the schema, and the commands through CliRunner."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from click.testing import CliRunner, Result
from sqlalchemy import MetaData, Table, create_engine, insert, inspect, select

from logwatch import feedback
from logwatch.cli import cli
from logwatch.feedback import FeedbackError, FeedbackRules
from logwatch.records import Anomaly
from logwatch.storage import (
    MIGRATIONS_DIR,
    AnomalyRow,
    FileRow,
    Store,
    StreamRow,
    TemplateDbRow,
    metadata,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@dataclass
class Seeded:
    store: Store
    url: str
    log: Path
    ids: dict[str, int]  # anomaly name -> id
    state: Path

    def cli(self, *args: str) -> Result:
        env: dict[str, str | None] = {"XDG_STATE_HOME": str(self.state), "LOGWATCH_DB_URL": None}
        return CliRunner(env=env).invoke(cli, [*args, "--db-url", self.url], catch_exceptions=False)

    def anomalies(self, *args: str) -> list[dict[str, object]]:
        result = self.cli("anomalies", "--format", "jsonl", *args)
        assert result.exit_code == 0, result.output
        return [json.loads(line) for line in result.stdout.splitlines()]


def _template(stream_id: int, template_id: int, text: str, size: int) -> dict[str, object]:
    tokens = text.split()
    return {
        "stream_id": stream_id,
        "template_id": template_id,
        "template": text,
        "template_tokens": tokens,
        "creation_tokens": tokens,
        "size": size,
    }


def _anomaly(
    file_id: int, stream_id: int, line: int, template_id: int | None, template: str, severity: int
) -> dict[str, object]:
    return {
        "file_id": file_id,
        "offset": (line - 1) * 8,
        "line": line,
        "stream_id": stream_id,
        "template": template,
        "text": f"line {line}",
        "detected_at": NOW - timedelta(hours=1),
        "severity": severity,
        "score": 0.5,
        "reasons": ["because"],
        "template_id": template_id,
    }


@pytest.fixture
def seeded(store: Store, db_url: str, tmp_path: Path) -> Seeded:
    """Two streams, three templates, three anomalies; app.log's file exists for --context."""
    log = tmp_path / "app.log"
    log.write_text("".join(f"line {i}\n" for i in range(1, 21)))
    app, auth = store.stream_id("app.log"), store.stream_id("auth.log")
    with store.engine.begin() as conn:
        conn.execute(
            insert(TemplateDbRow),
            [
                _template(app, 1, "disk <*> full", 3),
                _template(app, 2, "user <*> logged in", 100),
                _template(auth, 1, "disk <*> full", 2),
            ],
        )
        files = {}
        for stream_id, path in ((app, str(log)), (auth, str(tmp_path / "auth.log"))):
            files[stream_id] = conn.execute(
                insert(FileRow)
                .values(path=path, stream_id=stream_id, dev=1, ino=stream_id)
                .returning(FileRow.id)
            ).scalar_one()
        ids = {}
        for name, values in {
            "disk": _anomaly(files[app], app, 5, 1, "disk <*> full", 50),
            "login": _anomaly(files[app], app, 10, 2, "user <*> logged in", 70),
            "auth_disk": _anomaly(files[auth], auth, 1, 1, "disk <*> full", 50),
        }.items():
            ids[name] = conn.execute(
                insert(AnomalyRow).values(**values).returning(AnomalyRow.id)
            ).scalar_one()
    return Seeded(store, db_url, log, ids, tmp_path / "state")


def recurrence(stream: str, template_id: int | None, template: str, severity: int) -> Anomaly:
    return Anomaly(
        stream=stream,
        path="/logs/x.log",
        line=99,
        offset=990,
        timestamp=None,
        detected_at=NOW.isoformat(),
        severity=severity,
        score=0.4,
        reasons=("new",),
        template=template,
        text="disk sdb full",
        template_id=template_id,
    )


DISK = recurrence("app.log", 1, "disk <*> full", 50)


# --- schema ----------------------------------------------------------------------------------


def test_migration_creates_the_feedback_tables_as_declared(seeded: Seeded) -> None:
    engine = create_engine(seeded.url)
    try:
        assert {"acks", "suppressions", "normal_marks"} <= set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(ctx, metadata) == []
    finally:
        engine.dispose()


def test_upgrade_from_0003_keeps_what_is_stored(db_url: str) -> None:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    engine = create_engine(db_url)
    cfg.attributes["engine"] = engine
    try:
        command.upgrade(cfg, "0003")
        # The streams table as revision 0003 had it (the model has grown columns since).
        streams = Table("streams", MetaData(), autoload_with=engine)
        defaults = {
            c.name: c.default.arg
            for c in StreamRow.__table__.columns
            if c.name in streams.c and c.default is not None and not c.default.is_callable
        }
        with engine.begin() as conn:
            conn.execute(
                streams.insert().values(
                    name="kept.log", created_at=NOW, level_counts={}, field_stats={}, **defaults
                )
            )
        command.upgrade(cfg, "head")
        with engine.connect() as conn:
            assert list(conn.scalars(select(StreamRow.name))) == ["kept.log"]
        command.downgrade(cfg, "0003")  # and back: only the feedback tables go
        assert "acks" not in inspect(engine).get_table_names()
        with engine.connect() as conn:
            assert list(conn.scalars(select(StreamRow.name))) == ["kept.log"]
    finally:
        engine.dispose()


# --- ack ---------------------------------------------------------------------------------------


def test_ack_is_kept_and_acking_again_keeps_the_first_time(seeded: Seeded) -> None:
    store, disk = seeded.store, seeded.ids["disk"]
    first = feedback.ack(store, disk, "replaced the disk", now=NOW)
    assert (first.anomaly_id, first.note, first.already) == (disk, "replaced the disk", False)
    assert datetime.fromisoformat(first.acked_at) == NOW

    again = feedback.ack(store, disk, now=NOW + timedelta(hours=1))
    assert again.already and again.note == "replaced the disk"
    assert datetime.fromisoformat(again.acked_at) == NOW
    renoted = feedback.ack(store, disk, "ticket 12", now=NOW + timedelta(hours=2))
    assert renoted.note == "ticket 12" and datetime.fromisoformat(renoted.acked_at) == NOW

    assert set(feedback.acks(store)) == {disk}


def test_ack_of_an_unknown_anomaly_names_the_valid_ids(seeded: Seeded) -> None:
    low, high = min(seeded.ids.values()), max(seeded.ids.values())
    with pytest.raises(FeedbackError) as err:
        feedback.ack(seeded.store, high + 100)
    assert str(err.value) == (
        f"anomaly {high + 100} does not exist; ids run from {low} to {high} "
        "(see `logwatch anomalies`)"
    )


# --- suppress ----------------------------------------------------------------------------------


@pytest.mark.parametrize("template", ["1", "disk <*> full"])
def test_suppression_by_id_or_text_mutes_that_template_of_that_stream(
    seeded: Seeded, template: str
) -> None:
    made = feedback.suppress(
        seeded.store, "app.log", template, NOW + timedelta(days=7), "known bug", now=NOW
    )
    assert (made.stream, made.template_id, made.template) == ("app.log", 1, "disk <*> full")
    assert made.state == "active" and made.removed_at is None
    assert datetime.fromisoformat(made.expires_at or "") == NOW + timedelta(days=7)

    rules = FeedbackRules.load(seeded.store, NOW + timedelta(days=1))
    assert rules.verdict(DISK) == "suppressed"
    assert rules.verdict(replace(DISK, severity=99)) == "suppressed"  # a mute is a mute
    # Drain3 generalised the text since: the id still matches.
    assert rules.verdict(replace(DISK, template="disk <*> <*>")) == "suppressed"
    # An anomaly stored without a template id is matched by text.
    assert rules.verdict(replace(DISK, template_id=None)) == "suppressed"
    assert rules.verdict(replace(DISK, stream="auth.log")) is None
    assert rules.verdict(replace(DISK, template_id=2, template="user <*> logged in")) is None


def test_an_expired_suppression_does_not_mute(seeded: Seeded) -> None:
    store = seeded.store
    feedback.suppress(store, "app.log", "1", NOW + timedelta(hours=1), "for an hour", now=NOW)
    later = NOW + timedelta(hours=2)
    assert FeedbackRules.load(store, NOW + timedelta(minutes=59)).verdict(DISK) == "suppressed"
    assert FeedbackRules.load(store, later).verdict(DISK) is None
    assert feedback.list_suppressions(store, now=later) == []
    (expired,) = feedback.list_suppressions(store, include_expired=True, now=later)
    assert expired.state == "expired"


def test_a_suppression_without_end_lasts_until_removed(seeded: Seeded) -> None:
    store = seeded.store
    made = feedback.suppress(store, "app.log", "2", None, "chatty", now=NOW)
    assert made.expires_at is None
    assert FeedbackRules.load(store, NOW + timedelta(days=3650)).verdict(
        replace(DISK, template_id=2, template="user <*> logged in")
    ) == ("suppressed")

    removed = feedback.remove_suppression(store, made.id, now=NOW + timedelta(days=1))
    assert removed.state == "removed"
    assert datetime.fromisoformat(removed.removed_at or "") == NOW + timedelta(days=1)
    assert (
        FeedbackRules.load(store, NOW + timedelta(days=2)).verdict(
            replace(DISK, template_id=2, template="user <*> logged in")
        )
        is None
    )
    # Removing twice is harmless and keeps the first removal time; the row is kept.
    again = feedback.remove_suppression(store, made.id, now=NOW + timedelta(days=5))
    assert again.removed_at == removed.removed_at
    assert [s.state for s in feedback.list_suppressions(store, True)] == ["removed"]


def test_suppress_errors_name_the_value_and_what_is_valid(seeded: Seeded) -> None:
    store = seeded.store
    cases = {
        ("auth.lg", "1"): "stream 'auth.lg' is not known; did you mean 'auth.log'? "
        "streams: app.log, auth.log",
        ("app.log", "7"): "template 7 is not a template of stream 'app.log'; its template ids "
        "run from 1 to 2 (see `logwatch templates --stream app.log`)",
        ("app.log", "disk full"): "template 'disk full' is not a template of stream 'app.log'; "
        "closest: 1 'disk <*> full'; give its id or exact text "
        "(see `logwatch templates --stream app.log`)",
    }
    for (stream, template), message in cases.items():
        with pytest.raises(FeedbackError) as err:
            feedback.suppress(store, stream, template, None, "x", now=NOW)
        assert str(err.value) == message
    with pytest.raises(FeedbackError, match="is not in the future"):
        feedback.suppress(store, "app.log", "1", NOW - timedelta(seconds=1), "x", now=NOW)
    with pytest.raises(FeedbackError, match="needs a reason"):
        feedback.suppress(store, "app.log", "1", None, "  ", now=NOW)
    with pytest.raises(FeedbackError, match="suppression 42 does not exist; active suppressions: "):
        feedback.remove_suppression(store, 42)
    assert feedback.list_suppressions(store, True) == []


# --- mark normal -------------------------------------------------------------------------------


def test_mark_normal_then_same_severity_is_normal_and_clearly_worse_is_not(
    seeded: Seeded,
) -> None:
    store = seeded.store
    mark = feedback.mark_normal(store, seeded.ids["disk"], now=NOW)
    assert (mark.stream, mark.template_id, mark.severity) == ("app.log", 1, 50)

    rules = FeedbackRules.load(store, NOW)
    assert rules.verdict(DISK) == "normal"
    assert rules.verdict(replace(DISK, severity=30)) == "normal"
    assert rules.verdict(replace(DISK, severity=64)) == "normal"
    assert rules.verdict(replace(DISK, severity=65)) is None  # marked + NORMAL_MARGIN
    assert rules.verdict(replace(DISK, severity=70)) is None  # +20: reported again
    assert rules.verdict(replace(DISK, stream="auth.log")) is None  # only for its stream
    assert rules.verdict(replace(DISK, template_id=None)) == "normal"
    # Marking it normal also acks it: someone looked at it.
    assert set(feedback.acks(store)) == {seeded.ids["disk"]}


def test_marking_again_at_a_higher_severity_raises_the_bar(seeded: Seeded) -> None:
    store = seeded.store
    feedback.mark_normal(store, seeded.ids["disk"], now=NOW)
    assert FeedbackRules.load(store, NOW).verdict(replace(DISK, severity=70)) is None
    with store.engine.begin() as conn:
        worse = conn.execute(
            insert(AnomalyRow)
            .values(
                **{
                    **_anomaly(1, 1, 7, 1, "disk <*> full", 70),
                    "file_id": conn.scalar(
                        select(FileRow.id).where(FileRow.path == str(seeded.log))
                    ),
                    "stream_id": store.stream_id("app.log"),
                }
            )
            .returning(AnomalyRow.id)
        ).scalar_one()
    feedback.mark_normal(store, worse, now=NOW)
    assert FeedbackRules.load(store, NOW).verdict(replace(DISK, severity=70)) == "normal"


def test_normal_wins_over_suppressed_and_a_worse_recurrence_stays_muted(seeded: Seeded) -> None:
    store = seeded.store
    feedback.mark_normal(store, seeded.ids["disk"], now=NOW)
    feedback.suppress(store, "app.log", "1", None, "known", now=NOW)
    rules = FeedbackRules.load(store, NOW)
    assert rules.verdict(DISK) == "normal"
    assert rules.verdict(replace(DISK, severity=90)) == "suppressed"
    assert rules.mutes(DISK) and rules.mutes(replace(DISK, severity=90))
    assert not rules.mutes(replace(DISK, stream="auth.log"))


def test_no_feedback_means_no_verdict(seeded: Seeded) -> None:
    rules = FeedbackRules.load(seeded.store, NOW)
    assert not rules
    assert rules.verdict(DISK) is None


# --- streams report ------------------------------------------------------------------------------


def test_streams_report_counts(seeded: Seeded) -> None:
    feedback.ack(seeded.store, seeded.ids["login"], now=NOW)
    rows = {r["stream"]: r for r in feedback.streams_report(seeded.store)}
    assert set(rows) == {"app.log", "auth.log"}
    app = rows["app.log"]
    assert (app["files"], app["templates"], app["anomalies"], app["unacked"]) == (1, 2, 2, 1)
    assert app["model_trained"] is False and app["model_trained_at"] is None
    assert datetime.fromisoformat(str(app["last_anomaly"])) == NOW - timedelta(hours=1)
    assert app["last_read"] is None  # nothing committed through the pipeline
    assert (rows["auth.log"]["anomalies"], rows["auth.log"]["unacked"]) == (1, 1)


# --- the commands ------------------------------------------------------------------------------


def test_cli_ack_shows_in_anomalies_and_unacked_filters(seeded: Seeded) -> None:
    disk, login = seeded.ids["disk"], seeded.ids["login"]
    result = seeded.cli("ack", str(disk), "--note", "new disk")
    assert result.exit_code == 0 and result.output == f"acked anomaly {disk}\n"

    by_id = {a["id"]: a for a in seeded.anomalies()}
    assert by_id[disk]["acked"] is True and by_id[disk]["ack_note"] == "new disk"
    assert by_id[login]["acked"] is False and by_id[login]["acked_at"] is None
    assert [a["id"] for a in seeded.anomalies("--unacked")] == sorted(
        set(seeded.ids.values()) - {disk}
    )
    # --limit counts unacked anomalies, not all of them.
    assert [a["id"] for a in seeded.anomalies("--unacked", "--limit", "1")] == [login]

    table = seeded.cli("anomalies")
    header, *body = table.stdout.splitlines()
    assert header.split()[:3] == ["ID", "SEVERITY", "ACKED"]
    acked_col = {int(line.split()[0]): line.split()[2] for line in body}
    assert acked_col[disk] == "yes" and acked_col[login] == "no"


def test_cli_context_lines(seeded: Seeded) -> None:
    disk = seeded.ids["disk"]
    (found,) = [a for a in seeded.anomalies("--context", "2") if a["id"] == disk]
    assert found["context"] == [{"line": n, "text": f"line {n}"} for n in range(3, 8)]

    table = seeded.cli("anomalies", "--stream", "app.log", "--context", "1").stdout.splitlines()
    assert table[0].startswith("ID")
    assert table[1].split()[0] == str(disk)
    assert table[2:5] == ["      4  line 4", "    > 5  line 5", "      6  line 6"]
    assert table[5].split()[0] == str(seeded.ids["login"])
    # The auth.log file does not exist: said so, not an error.
    auth = seeded.cli("anomalies", "--stream", "auth.log", "--context", "1")
    assert auth.exit_code == 0
    assert auth.stdout.splitlines()[2].strip() == (
        "(lines not available: the file is gone or unreadable)"
    )
    (no_ctx,) = seeded.anomalies("--stream", "auth.log")
    assert "context" not in no_ctx


def test_cli_suppress_list_and_remove(seeded: Seeded) -> None:
    made = seeded.cli(
        "suppress", "--stream", "app.log", "--template", "1", "--for", "7d", "--reason", "bug 88"
    )
    assert made.exit_code == 0, made.output
    assert made.output.startswith("suppression 1: template 1 'disk <*> full' of stream 'app.log'")

    listed = json.loads(seeded.cli("suppressions", "--format", "json").stdout)
    assert [(s["id"], s["stream"], s["template_id"], s["reason"], s["state"]) for s in listed] == [
        (1, "app.log", 1, "bug 88", "active")
    ]
    expires = datetime.fromisoformat(listed[0]["expires_at"])
    assert timedelta(days=6, hours=23) < expires - datetime.now(UTC) <= timedelta(days=7)
    for fmt in ("jsonl", "csv", "table"):
        out = seeded.cli("suppressions", "--format", fmt)
        assert out.exit_code == 0 and "bug 88" in out.stdout

    removed = seeded.cli("suppressions", "--remove", "1")
    assert removed.exit_code == 0 and removed.output.startswith("removed suppression 1 (at ")
    assert seeded.cli("suppressions").stdout == "(none)\n"
    everything = json.loads(seeded.cli("suppressions", "--all", "--format", "json").stdout)
    assert [s["state"] for s in everything] == ["removed"]


def test_cli_mark_normal(seeded: Seeded) -> None:
    result = seeded.cli("mark-normal", str(seeded.ids["disk"]))
    assert result.exit_code == 0, result.output
    assert result.output == (
        "template 1 'disk <*> full' is normal for stream 'app.log'; a recurrence at severity 65 "
        "or more is still reported\n"
    )
    assert FeedbackRules.load(seeded.store, datetime.now(UTC)).verdict(DISK) == "normal"


def test_cli_streams_and_templates(seeded: Seeded) -> None:
    rows = json.loads(seeded.cli("streams", "--format", "json").stdout)
    assert [(r["stream"], r["anomalies"], r["templates"]) for r in rows] == [
        ("app.log", 2, 2),
        ("auth.log", 1, 1),
    ]
    templates = json.loads(
        seeded.cli("templates", "--stream", "app.log", "--format", "json").stdout
    )
    assert [(t["template_id"], t["count"]) for t in templates] == [(2, 100), (1, 3)]
    assert all(t["first_seen"] and t["last_seen"] for t in templates)
    header = seeded.cli("templates").stdout.splitlines()[0].split()
    assert header == ["STREAM", "TEMPLATE_ID", "COUNT", "FIRST_SEEN", "LAST_SEEN", "TEMPLATE"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["ack", "999"],
            "Error: anomaly 999 does not exist; ids run from {low} to {high} "
            "(see `logwatch anomalies`)",
        ),
        (
            ["mark-normal", "999"],
            "Error: anomaly 999 does not exist; ids run from {low} to {high} "
            "(see `logwatch anomalies`)",
        ),
        (
            ["suppressions", "--remove", "5"],
            "Error: suppression 5 does not exist; active suppressions: none",
        ),
        (
            ["suppress", "--stream", "syslog", "--template", "1", "--reason", "x"],
            "Error: stream 'syslog' is not known; streams: app.log, auth.log",
        ),
        (
            ["suppress", "--stream", "app.log", "--template", "9", "--reason", "x"],
            "Error: template 9 is not a template of stream 'app.log'; its template ids run from 1 "
            "to 2 (see `logwatch templates --stream app.log`)",
        ),
    ],
)
def test_cli_errors_are_one_line_and_exit_1(seeded: Seeded, args: list[str], message: str) -> None:
    low, high = min(seeded.ids.values()), max(seeded.ids.values())
    result = seeded.cli(*args)
    assert result.exit_code == 1
    assert result.output == message.format(low=low, high=high) + "\n"


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (
            ["suppress", "--stream", "app.log", "--template", "1", "--reason", "x", "--for", "7x"],
            "'7x' is not a positive duration",
        ),
        (
            ["suppress", "--stream", "app.log", "--template", "1", "--reason", "x", "--for", "0d"],
            "'0d' is not a positive duration",
        ),
        (["ack", "seven"], "'seven' is not a valid integer"),
        (["suppress", "--stream", "app.log", "--template", "1"], "--reason"),
        (["anomalies", "--context", "-1"], "-1"),
    ],
)
def test_cli_usage_mistakes_exit_2(seeded: Seeded, args: list[str], named: str) -> None:
    result = seeded.cli(*args)
    assert result.exit_code == 2
    assert named in result.output and "Traceback" not in result.output
    assert feedback.list_suppressions(seeded.store, True) == []
