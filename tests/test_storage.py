"""Store: the exactly-once batch commit, round-trips, reports and error translation.

Every test that touches a database runs on SQLite and PostgreSQL through the ``store`` / ``db_url``
fixtures (tests/conftest.py).
"""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from logwatch.config import Config
from logwatch.errors import StorageError
from logwatch.records import Anomaly, TemplateRow
from logwatch.storage import (
    FileUpdate,
    StaleOffsetError,
    Store,
    StoredModel,
    StoredStream,
    StreamUpdate,
    TrackedFile,
    json_text,
    make_engine,
    redact,
)

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


# ---------------------------------------------------------------- helpers


def new_file(store: Store, stream: str = "app.log", path: str | None = None) -> TrackedFile:
    sid = store.stream_id(stream)
    return store.add_file(
        path=path or f"/logs/{stream}", stream_id=sid, dev=1, ino=2, fp_len=10, fp_hash="f" * 64
    )


def anomaly(
    offset: int,
    *,
    line: int | None = None,
    text: str = "ERROR disk full",
    severity: int = 80,
    detected_at: datetime = T0,
    **kw: Any,
) -> Anomaly:
    values: dict[str, Any] = {
        "stream": "",
        "path": "",
        "line": offset // 10 + 1 if line is None else line,
        "offset": offset,
        "timestamp": "2024-05-01T11:59:59",
        "detected_at": detected_at.isoformat(),
        "severity": severity,
        "score": 0.75,
        "reasons": ("new template", "level ERROR in a stream that is 99% INFO"),
        "template": "ERROR disk <*>",
        "text": text,
        "count": 1,
        "level": "ERROR",
    }
    values.update(kw)
    return Anomaly(**values)


def file_update(
    f: TrackedFile, expected: int, offset: int, *, line_no: int, lines: int, size: int | None = None
) -> FileUpdate:
    return FileUpdate(
        file_id=f.id,
        expected_offset=expected,
        offset=offset,
        line_no=line_no,
        size=offset if size is None else size,
        mtime_ns=1_700_000_000_000_000_000,
        ctime_ns=1_700_000_000_000_000_001,
        attr_hash="a" * 64,
        lines_read=lines,
        events_read=lines,
    )


def stream_update(f: TrackedFile, events_total: int, **kw: Any) -> StreamUpdate:
    return StreamUpdate(
        stream_id=f.stream_id,
        events_total=events_total,
        level_counts=kw.pop("level_counts", {"INFO": events_total}),
        field_stats=kw.pop("field_stats", {}),
        trouble_events=kw.pop("trouble_events", 0),
        **kw,
    )


def file_row(store: Store, path: str) -> dict[str, Any]:
    (row,) = [r for r in store.files_report() if r["path"] == path]
    return row


def stored(a: Anomaly, found: Anomaly, stream: str, path: str) -> None:
    """``found`` is ``a`` as written, with the Store's id, stream and path filled in."""
    assert found.id is not None
    expected = Anomaly(**{**_fields(a), "stream": stream, "path": path, "id": found.id})
    assert found == expected


def _fields(a: Anomaly) -> dict[str, Any]:
    return {f.name: getattr(a, f.name) for f in dataclasses.fields(a)}


# ---------------------------------------------------------------- streams and files


def test_stream_id_is_stable_and_load_stream_starts_empty(store: Store) -> None:
    a = store.stream_id("app.log")
    assert store.stream_id("app.log") == a
    b = store.stream_id("sys/messages")
    assert b != a
    s = store.load_stream(a)
    assert (s.id, s.name, s.events_total, s.level_counts, s.field_stats) == (
        a,
        "app.log",
        0,
        {},
        {},
    )
    assert s.templates == () and s.slot_values == {} and s.model is None
    assert s.trouble_events == 0


def test_a_stream_created_now_is_what_loading_it_would_give(store: Store) -> None:
    """The pipeline starts a stream it has just created empty instead of loading it: that is
    only right while StoredStream.empty is exactly what load_stream returns for it."""
    sid, created = store.stream_id_created("new.log")
    assert created
    assert store.stream_id_created("new.log") == (sid, False)
    assert store.stream_id("new.log") == sid
    assert StoredStream.empty(sid, "new.log") == store.load_stream(sid)


def test_add_file_returns_the_row_as_stored(store: Store) -> None:
    """add_file's row comes from RETURNING; it must be the row a later read gives."""
    sid = store.stream_id("app.log")
    f = store.add_file(
        path="/logs/app.log", stream_id=sid, dev=3, ino=7, fp_len=5, fp_hash="h" * 64, size=99
    )
    assert store.active_files()["/logs/app.log"] == f


def test_add_file_is_active_at_offset_zero(store: Store) -> None:
    f = new_file(store)
    assert (f.offset, f.line_no, f.status, f.fp_len, f.fp_hash) == (0, 0, "active", 10, "f" * 64)
    assert store.active_files() == {"/logs/app.log": f}


def test_retire_file_keeps_the_row_with_its_status(store: Store) -> None:
    f = new_file(store)
    store.commit_batch(
        file_update(f, 0, 40, line_no=4, lines=4), stream_update(f, 4), [anomaly(10)]
    )
    store.retire_file(f.id, "truncated", truncated=True, gap_bytes=25, error="file shrank")
    assert store.active_files() == {}
    row = file_row(store, f.path)
    assert row["status"] == "truncated"
    assert (row["truncations"], row["gap_bytes"], row["last_error"]) == (1, 25, "file shrank")
    assert (row["offset"], row["lines_read"]) == (40, 4)
    assert [a.offset for a in store.anomalies()] == [10]  # its anomalies are kept too
    # A new file at the same path is a new row; the retired one stays.
    g = new_file(store)
    assert g.id != f.id
    assert sorted(r["status"] for r in store.files_report()) == ["active", "truncated"]
    assert store.status_report()["files_active"] == 1


# ---------------------------------------------------------------- the exactly-once commit


def test_commit_batch_inserts_anomalies_and_advances_offset(store: Store) -> None:
    f = new_file(store)
    batch = [anomaly(0, line=1), anomaly(120, line=13, text="FATAL kernel panic")]
    inserted = store.commit_batch(
        file_update(f, 0, 400, line_no=40, lines=40, size=1000),
        stream_update(f, 40, level_counts={"INFO": 38, "ERROR": 1, "FATAL": 1}),
        batch,
    )
    assert inserted == 2
    tracked = store.active_files()[f.path]
    assert (tracked.offset, tracked.line_no, tracked.size) == (400, 40, 1000)
    assert tracked.last_progress_at is not None
    row = file_row(store, f.path)
    assert (row["lines_read"], row["events_read"], row["lag_bytes"]) == (40, 40, 600)
    s = store.load_stream(f.stream_id)
    assert (s.events_total, s.level_counts) == (40, {"INFO": 38, "ERROR": 1, "FATAL": 1})
    found = store.anomalies()
    assert len(found) == 2
    for a, got in zip(batch, found, strict=True):
        stored(a, got, "app.log", f.path)

    # The next batch starts where this one ended; lines_read accumulates, offset is replaced.
    assert (
        store.commit_batch(
            file_update(f, 400, 700, line_no=70, lines=30, size=1000), stream_update(f, 70), []
        )
        == 0
    )
    row = file_row(store, f.path)
    assert (row["offset"], row["lines_read"], row["events_read"], row["lag_bytes"]) == (
        700,
        70,
        70,
        300,
    )


def test_replayed_batch_raises_stale_offset_and_changes_nothing(store: Store) -> None:
    f = new_file(store)
    fu = file_update(f, 0, 400, line_no=40, lines=40)
    tpl = (
        TemplateRow(1, ("ERROR", "disk", "<*>"), ("ERROR", "disk", "full"), 1),
        "ERROR disk <*>",
        {},
        "ERROR disk full",
    )
    assert store.commit_batch(fu, stream_update(f, 40, templates=[tpl]), [anomaly(0)]) == 1
    before = (store.files_report(), store.load_stream(f.stream_id), store.anomalies())

    # Same batch again (a restart that re-read the same bytes, or a second daemon).
    replay_stream = stream_update(
        f,
        80,
        templates=[(TemplateRow(2, ("x",), ("x",), 9), "x", {}, None)],
        model=StoredModel("stream", {}, ("a",), [[1.0]]),
    )
    with pytest.raises(StaleOffsetError, match="stored offset is no longer 0"):
        store.commit_batch(fu, replay_stream, [anomaly(0), anomaly(200)])

    assert (store.files_report(), store.load_stream(f.stream_id), store.anomalies()) == before
    assert file_row(store, f.path)["lines_read"] == 40  # not doubled
    assert store.status_report()["anomalies"] == 1


def test_stale_offset_is_a_storage_error() -> None:
    assert issubclass(StaleOffsetError, StorageError)


def test_commit_batch_for_unknown_file_is_stale(store: Store) -> None:
    f = new_file(store)
    ghost = FileUpdate(f.id + 999, 0, 10, 1, 10, 0, 0, "", 1, 1)
    with pytest.raises(StaleOffsetError):
        store.commit_batch(ghost, stream_update(f, 1), [anomaly(0)])
    assert store.anomalies() == []


def test_anomaly_already_stored_is_ignored_and_not_counted(store: Store) -> None:
    f = new_file(store)
    first = anomaly(100, text="original")
    assert (
        store.commit_batch(
            file_update(f, 0, 200, line_no=20, lines=20), stream_update(f, 20), [first]
        )
        == 1
    )
    # A later batch carries the same (file, offset) again plus two new ones.
    again = [anomaly(100, text="duplicate"), anomaly(250), anomaly(300)]
    inserted = store.commit_batch(
        file_update(f, 200, 400, line_no=40, lines=20), stream_update(f, 40), again
    )
    assert inserted == 2
    found = store.anomalies()
    assert [(a.offset, a.text) for a in found] == [
        (100, "original"),
        (250, "ERROR disk full"),
        (300, "ERROR disk full"),
    ]
    assert file_row(store, f.path)["offset"] == 400  # the batch itself still committed


def test_same_offset_in_another_file_is_a_different_anomaly(store: Store) -> None:
    f = new_file(store, "a.log")
    g = new_file(store, "b.log")
    for t in (f, g):
        assert (
            store.commit_batch(
                file_update(t, 0, 100, line_no=10, lines=10), stream_update(t, 10), [anomaly(0)]
            )
            == 1
        )
    assert sorted((a.stream, a.offset) for a in store.anomalies()) == [("a.log", 0), ("b.log", 0)]


def test_constraint_violation_mid_batch_rolls_everything_back(store: Store) -> None:
    f = new_file(store)
    store.commit_batch(file_update(f, 0, 100, line_no=10, lines=10), stream_update(f, 10), [])
    before = (store.files_report(), store.load_stream(f.stream_id))
    bad = anomaly(150, text=None)  # NOT NULL column: fails after the offset update ran
    with pytest.raises((IntegrityError, StorageError)):
        store.commit_batch(
            file_update(f, 100, 300, line_no=30, lines=20),
            stream_update(f, 30, level_counts={"INFO": 29, "ERROR": 1}),
            [anomaly(120), bad],
        )
    assert (store.files_report(), store.load_stream(f.stream_id)) == before
    assert store.anomalies() == []
    # The batch can be retried from the same offset.
    assert (
        store.commit_batch(
            file_update(f, 100, 300, line_no=30, lines=20), stream_update(f, 30), [anomaly(120)]
        )
        == 1
    )


def test_failing_template_upsert_rolls_everything_back(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = new_file(store)
    store.commit_batch(file_update(f, 0, 100, line_no=10, lines=10), stream_update(f, 10), [])
    before = (store.files_report(), store.load_stream(f.stream_id))

    def boom(*_args: Any, **_kw: Any) -> None:
        raise RuntimeError("simulated crash inside the transaction")

    monkeypatch.setattr(Store, "_upsert_templates", boom)
    tpl = (TemplateRow(1, ("a",), ("a",), 1), "a", {}, "a")
    with pytest.raises(RuntimeError, match="simulated crash"):
        store.commit_batch(
            file_update(f, 100, 300, line_no=30, lines=20),
            stream_update(f, 30, templates=[tpl], model=StoredModel("stream", {}, ("x",), [[1]])),
            [anomaly(120)],
        )
    assert (store.files_report(), store.load_stream(f.stream_id)) == before
    assert store.anomalies() == []
    assert store.status_report()["templates"] == 0


# ---------------------------------------------------------------- templates and models


def test_templates_upsert_updates_size_text_and_slots(store: Store) -> None:
    f = new_file(store)
    slots1 = {"2": {"full": 3, "ok": 1}}
    row1 = TemplateRow(7, ("disk", "<*>"), ("disk", "full"), 4)
    other = TemplateRow(3, ("user", "<NUM>", "logged", "in"), ("user", "1", "logged", "in"), 9)
    store.commit_batch(
        file_update(f, 0, 100, line_no=10, lines=10),
        stream_update(
            f,
            13,
            templates=[
                (row1, "disk <*>", slots1, None),
                (other, "user <NUM> logged in", {}, None),
            ],
        ),
        [],
    )
    first_seen = {t["template_id"]: t["first_seen"] for t in store.templates_report()}

    slots2 = {
        "2": {"full": 5, "ok": 1, "gelöscht ✓": 2},
        "3": {"nested": [1, 2.5, None, True], "k": {"deep": "x\ny"}},
    }
    row2 = TemplateRow(7, ("disk", "<*>", "<*>"), ("disk", "full"), 8)
    store.commit_batch(
        file_update(f, 100, 200, line_no=20, lines=10),
        stream_update(f, 21, templates=[(row2, "disk <*> <*>", slots2, None)]),
        [],
    )
    s = store.load_stream(f.stream_id)
    assert s.templates == (other, row2)  # ordered by template_id; creation tokens kept
    assert s.slot_values == {3: {}, 7: slots2}
    report = store.templates_report()
    assert [(t["template_id"], t["count"], t["template"]) for t in report] == [
        (3, 9, "user <NUM> logged in"),
        (7, 8, "disk <*> <*>"),
    ]
    t7 = next(t for t in report if t["template_id"] == 7)
    assert t7["first_seen"] == first_seen[7]
    assert t7["last_seen"] >= t7["first_seen"]
    assert store.templates_report(stream="nope") == []
    assert store.status_report()["templates"] == 2


def test_templates_are_per_stream(store: Store) -> None:
    f = new_file(store, "a.log")
    g = new_file(store, "b.log")
    for t, size in ((f, 1), (g, 2)):
        row = TemplateRow(1, ("x",), ("x",), size)
        store.commit_batch(
            file_update(t, 0, 10, line_no=1, lines=1),
            stream_update(t, size, templates=[(row, "x", {}, None)]),
            [],
        )
    assert [t.size for t in store.load_stream(f.stream_id).templates] == [1]
    assert [t.size for t in store.load_stream(g.stream_id).templates] == [2]
    assert [t["stream"] for t in store.templates_report(stream="b.log")] == ["b.log"]


_JSON_LEAF = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)


def _same_json(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@given(
    st.recursive(
        _JSON_LEAF,
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(st.text(max_size=6) | st.integers(-5, 5), inner, max_size=4)
        ),
        max_leaves=20,
    )
)
@settings(max_examples=300, deadline=None)
def test_json_columns_read_back_what_json_dumps_would_have_written(value: Any) -> None:
    """The fast JSON writer's text decodes to exactly the values ``json.dumps``'s text decodes
    to: big integers, NaN and infinities, integer keys and non-ASCII text included."""
    assert _same_json(json.loads(json_text(value)), json.loads(json.dumps(value)))


def test_json_columns_take_numpy_numbers_as_json_dumps_does() -> None:
    value = {"score": np.float64(0.1) + np.float64(0.2), "rows": [np.float64(1e-300), 2.5]}
    assert json.loads(json_text(value)) == json.loads(json.dumps(value))
    assert json.loads(json_text(value))["score"] == 0.1 + 0.2  # every bit of the float kept


def test_model_round_trip_and_replace(store: Store) -> None:
    f = new_file(store)
    model = StoredModel(
        kind="stream",
        params={"n_estimators": 100, "contamination": "auto", "random_state": 42, "x": None},
        feature_names=("len", "level=ERROR", "template_rarity", "ünïcode"),
        training=[[0.1, 1e-300, -2.5, 3.0], [1.0 / 3.0, 0.0, 12345678.9, -0.0]],
    )
    store.commit_batch(
        file_update(f, 0, 10, line_no=1, lines=1), stream_update(f, 1, model=model), []
    )
    assert store.load_stream(f.stream_id).model == model

    newer = StoredModel("stream", {"n_estimators": 50}, ("len",), [[2.0]] * 3)
    store.commit_batch(
        file_update(f, 10, 20, line_no=2, lines=1), stream_update(f, 2, model=newer), []
    )
    assert store.load_stream(f.stream_id).model == newer
    assert store.status_report()["models"] == 1


def test_load_stream_returns_what_was_committed(store: Store) -> None:
    f = new_file(store)
    field_stats = {"user": {"alice": 3, "bob": 1}, "status": {"200": 10}, "latency": [1.5, 2]}
    level_counts = {"INFO": 10, "ERROR": 2, "WARN": 1}
    store.commit_batch(
        file_update(f, 0, 10, line_no=13, lines=13),
        stream_update(f, 13, level_counts=level_counts, field_stats=field_stats, trouble_events=3),
        [],
    )
    s = store.load_stream(f.stream_id)
    assert (s.events_total, s.level_counts, s.field_stats, s.trouble_events) == (
        13,
        level_counts,
        field_stats,
        3,
    )


# ---------------------------------------------------------------- anomaly round-trip

# The reader replaces NUL with U+FFFD (PostgreSQL text cannot hold NUL), so the Store only ever
# gets NUL-free text; test_pipeline_hands_the_store_nul_free_text checks that guarantee end to end.
nul_free = st.text().filter(lambda s: "\x00" not in s)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    text=nul_free,
    template=nul_free,
    reasons=st.lists(nul_free, max_size=4),
    timestamp=st.none() | st.text(max_size=40).filter(lambda s: "\x00" not in s),
    level=st.none() | st.sampled_from(["TRACE", "INFO", "WARN", "ERROR", "CRITICAL", "FATAL"]),
    severity=st.integers(0, 100),
    score=st.floats(allow_nan=False, allow_infinity=False),
    count=st.integers(1, 2**31 - 1),
    line=st.integers(1, 2**62),
    micros=st.integers(0, 999_999),
)
def test_anomaly_round_trip_is_lossless(store: Store, **kw: Any) -> None:
    micros = kw.pop("micros")
    if not hasattr(store, "_rt_file"):
        store._rt_file = new_file(store)  # type: ignore[attr-defined]
    f: TrackedFile = store._rt_file  # type: ignore[attr-defined]
    start = store.active_files()[f.path].offset
    a = anomaly(
        start,
        detected_at=T0 + timedelta(microseconds=micros),
        reasons=tuple(kw.pop("reasons")),
        **kw,
    )
    assert (
        store.commit_batch(
            file_update(f, start, start + 10, line_no=1, lines=1), stream_update(f, 1), [a]
        )
        == 1
    )
    got = store.anomalies()[-1]
    stored(a, got, "app.log", f.path)


def test_anomaly_round_trip_of_awkward_text(store: Store) -> None:
    f = new_file(store, "ünïcode/日志.log")
    texts = [
        'Traceback (most recent call last):\n  File "x.py", line 1\r\nValueError: ☃',
        "x" * 300_000,  # very long (decide caps text; the Store must not)
        "emoji 🚀 and RTL שלום and combining é and \ufffd replacement",
        "tab\tand bell \x07 and escape \x1b[31m and DEL \x7f",
        "",
        "'; DROP TABLE anomalies; --",
    ]
    batch = [
        anomaly(i * 10, text=t, template=t[:50], reasons=(t[:20], "\n", ""))
        for i, t in enumerate(texts)
    ]
    assert store.commit_batch(
        file_update(f, 0, 100, line_no=10, lines=10), stream_update(f, 10), batch
    ) == len(texts)
    found = store.anomalies()
    for a, got in zip(batch, found, strict=True):
        stored(a, got, "ünïcode/日志.log", f.path)


def _nul_free(store: Store) -> None:
    # Walk the stored strings themselves: a JSON dump cannot tell a real NUL from the six characters
    # "\u0000" that the raw text of a JSON log line legitimately contains.
    strings = [value for a in store.anomalies() for value in (a.text, a.template, *a.reasons)] + [
        str(row["template"]) for row in store.templates_report()
    ]
    assert strings and not [v for v in strings if "\x00" in v]


def _run_once(store: Store, log_dir: Path) -> Any:
    from logwatch.pipeline import Pipeline

    config = Config(log_dir=log_dir, db_url=store.url, once=True, min_severity=0)
    return Pipeline(config, store).run_once(datetime(2024, 5, 1, tzinfo=UTC))


def _quiet_lines(n: int) -> list[bytes]:
    return [f"2024-05-01 12:00:{i % 60:02d} INFO user {i} logged in".encode() for i in range(n)]


def test_pipeline_hands_the_store_nul_free_text(store: Store, tmp_path: Path) -> None:
    logs = tmp_path / "nul"
    logs.mkdir()
    lines = _quiet_lines(60) + [b"2024-05-01 12:01:00 FATAL kernel \x00\x00 panic in\x00driver"]
    (logs / "app.log").write_bytes(b"\n".join(lines) + b"\n")
    summary = _run_once(store, logs)
    assert summary.errors == []
    assert any("panic" in a.text for a in store.anomalies())
    _nul_free(store)
    assert any("\ufffd" in a.text for a in store.anomalies())


def test_pipeline_hands_the_store_nul_free_text_from_json_escapes(
    store: Store, tmp_path: Path
) -> None:
    logs = tmp_path / "nuljson"
    logs.mkdir()
    lines = [json.dumps({"level": "info", "msg": f"user {i} logged in"}) for i in range(60)]
    lines.append(json.dumps({"level": "fatal", "msg": "kernel \u0000 panic", "user": "a\u0000b"}))
    (logs / "app.log").write_text("\n".join(lines) + "\n")
    summary = _run_once(store, logs)
    assert summary.errors == []
    _nul_free(store)


# ---------------------------------------------------------------- queries and reports


def test_anomalies_filters(store: Store) -> None:
    f = new_file(store, "a.log")
    g = new_file(store, "b.log")
    day = timedelta(days=1)
    store.commit_batch(
        file_update(f, 0, 100, line_no=10, lines=10),
        stream_update(f, 10),
        [
            anomaly(0, severity=10, detected_at=T0),
            anomaly(10, severity=50, detected_at=T0 + day),
            anomaly(20, severity=90, detected_at=T0 + 2 * day),
        ],
    )
    store.commit_batch(
        file_update(g, 0, 100, line_no=10, lines=10),
        stream_update(g, 10),
        [anomaly(0, severity=60, detected_at=T0), anomaly(10, severity=100, detected_at=T0 + day)],
    )

    def q(**kw: Any) -> list[tuple[str, int]]:
        return [(a.stream, a.severity) for a in store.anomalies(**kw)]

    everything = [("a.log", 10), ("a.log", 50), ("a.log", 90), ("b.log", 60), ("b.log", 100)]
    assert q() == everything
    assert q(min_severity=60) == [("a.log", 90), ("b.log", 60), ("b.log", 100)]
    assert q(min_severity=100) == [("b.log", 100)]
    assert q(stream="b.log") == [("b.log", 60), ("b.log", 100)]
    assert q(stream="missing.log") == []
    assert q(since=T0 + day) == [("a.log", 50), ("a.log", 90), ("b.log", 100)]
    assert q(since=T0 + day + timedelta(microseconds=1)) == [("a.log", 90)]
    assert q(since=(T0 + day).astimezone(UTC)) == q(since=T0 + day)
    assert q(limit=2) == everything[:2]
    assert q(limit=0) == []
    assert q(stream="a.log", min_severity=50, since=T0 + day, limit=1) == [("a.log", 50)]
    got = store.anomalies(stream="b.log")[0]
    assert got.path == g.path and got.detected_at == T0.isoformat()


def test_files_report_lag(store: Store) -> None:
    f = new_file(store, "a.log")
    g = new_file(store, "b.log")
    store.commit_batch(
        file_update(f, 0, 400, line_no=4, lines=4, size=1000), stream_update(f, 4), []
    )
    store.commit_batch(file_update(g, 0, 50, line_no=1, lines=1, size=50), stream_update(g, 1), [])
    report = {r["path"]: r for r in store.files_report()}
    assert report[f.path] == {
        "path": f.path,
        "stream": "a.log",
        "status": "active",
        "offset": 400,
        "size": 1000,
        "lag_bytes": 600,
        "lines_read": 4,
        "events_read": 4,
        "rotations": 0,
        "truncations": 0,
        "gap_bytes": 0,
        "lines_truncated": 0,
        "last_error": None,
    }
    assert report[g.path]["lag_bytes"] == 0
    assert store.status_report()["lag_bytes"] == 600
    store.retire_file(f.id, "deleted")  # retired files are not lagging
    assert store.status_report()["lag_bytes"] == 0


def test_status_report_counts(store: Store) -> None:
    empty = store.status_report()
    assert {k: v for k, v in empty.items() if k != "database"} == {
        "daemons": [],
        "streams": 0,
        "files_active": 0,
        "lag_bytes": 0,
        "templates": 0,
        "models": 0,
        "anomalies": 0,
    }
    f = new_file(store, "a.log")
    new_file(store, "b.log")
    store.commit_batch(
        file_update(f, 0, 100, line_no=10, lines=10, size=150),
        stream_update(
            f,
            10,
            templates=[(TemplateRow(i, ("t",), ("t",), 1), "t", {}, None) for i in range(3)],
            model=StoredModel("stream", {}, ("a",), [[1.0]]),
        ),
        [anomaly(0), anomaly(10)],
    )
    started = T0
    store.record_daemon("host-a", state="running", started_at=started)
    store.record_daemon("host-a", state="running", started_at=started, last_poll_ms=12.5)
    report = store.status_report()
    assert (
        report["streams"],
        report["files_active"],
        report["lag_bytes"],
        report["templates"],
        report["models"],
        report["anomalies"],
    ) == (2, 2, 50, 3, 1, 2)
    (d,) = report["daemons"]
    assert (d["node"], d["state"], d["last_poll_ms"], d["started_at"]) == (
        "host-a",
        "running",
        12.5,
        started.isoformat(),
    )
    assert d["last_poll_at"] is not None
    store.record_daemon("host-a", state="stopped", started_at=started, error="SIGTERM")
    (d,) = store.status_report()["daemons"]
    assert (d["state"], d["last_error"], d["last_poll_ms"]) == ("stopped", "SIGTERM", 12.5)


def test_redact_hides_the_password() -> None:
    shown = redact("postgresql://u:secret@h/db")
    assert "secret" not in shown
    assert shown.startswith("postgresql://u:") and shown.endswith("@h/db")
    assert redact("sqlite:////var/lib/logwatch.db") == "sqlite:////var/lib/logwatch.db"
    assert "secret" not in redact("postgresql://u:secret@h:notaport/db")


def test_status_report_database_hides_the_password(db_url: str) -> None:
    url = make_url(db_url)
    if url.get_backend_name() == "postgresql" and url.password is None:
        # A trust-auth test server ignores the password, so the URL still connects.
        db_url = url.set(password="secret").render_as_string(hide_password=False)
    s = Store(db_url)
    try:
        s.upgrade()
        shown = s.status_report()["database"]
    finally:
        s.close()
    assert "secret" not in shown
    assert shown == redact(db_url)


# ---------------------------------------------------------------- engine and connection errors


@pytest.mark.parametrize("url", ["mysql://u@h/db", "mysql+pymysql://u:secret@h/db", "oracle://h/x"])
def test_make_engine_rejects_unsupported_backends(url: str) -> None:
    with pytest.raises(StorageError) as info:
        make_engine(url)
    message = str(info.value)
    backend = url.split(":")[0].split("+")[0]
    assert message == f"database backend {backend!r} is not supported; valid: sqlite, postgresql"
    assert "secret" not in message


@pytest.mark.parametrize("url", ["garbage", "", "://nothing", "postgresql://u:secret@h:port/db"])
def test_make_engine_rejects_garbage_urls(url: str) -> None:
    with pytest.raises(StorageError) as info:
        make_engine(url)
    message = str(info.value)
    assert "sqlite:///" in message and "postgresql" in message
    assert "secret" not in message


def test_unreachable_postgresql_is_a_clean_storage_error() -> None:
    s = Store("postgresql+psycopg2://postgres:hunter2@127.0.0.1:1/x")
    try:
        with pytest.raises(StorageError) as info:
            s.upgrade()
    finally:
        s.close()
    message = str(info.value)
    assert type(info.value) is StorageError
    assert message.startswith("cannot reach the database: ")
    assert "\n" not in message
    assert "hunter2" not in message
    assert "127.0.0.1" in message or "connection" in message.lower()


def test_unreachable_postgresql_during_queries_is_a_storage_error() -> None:
    s = Store("postgresql+psycopg2://postgres:hunter2@127.0.0.1:1/x")
    try:
        with pytest.raises(StorageError) as info:
            s.active_files()
    finally:
        s.close()
    assert "hunter2" not in str(info.value) and "\n" not in str(info.value)


def test_anomalies_since_in_another_time_zone(store: Store) -> None:
    f = new_file(store)
    store.commit_batch(
        file_update(f, 0, 100, line_no=10, lines=10), stream_update(f, 10), [anomaly(0)]
    )
    plus2 = timezone(timedelta(hours=2))
    minus5 = timezone(timedelta(hours=-5))
    assert len(store.anomalies(since=T0.astimezone(plus2))) == 1
    assert len(store.anomalies(since=(T0 + timedelta(seconds=1)).astimezone(minus5))) == 0


def test_sqlite_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello, not a database\n" * 200)
    s = Store(f"sqlite:///{path}")
    try:
        with pytest.raises(StorageError) as info:
            s.upgrade()
    finally:
        s.close()
    assert str(info.value) == (
        "cannot upgrade the database schema: file is not a database (is --db-url a logwatch "
        "database? restore it from a backup, or use a new one)"
    )


def test_sqlite_directory_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "plain-file"
    blocker.write_text("")
    with pytest.raises(StorageError, match="plain-file"):
        Store(f"sqlite:///{blocker / 'sub' / 'logwatch.db'}")


def test_template_example_is_kept_when_a_later_batch_has_none(store: Store) -> None:
    """The closest normal line of a template survives a batch whose events were all flagged."""
    f = new_file(store)
    row = TemplateRow(1, ("disk", "<*>"), ("disk", "ok"), 1)
    store.commit_batch(
        file_update(f, 0, 100, line_no=10, lines=10),
        stream_update(f, 10, templates=[(row, "disk <*>", {}, "disk ok")]),
        [],
    )
    assert store.load_stream(f.stream_id).examples == {1: "disk ok"}
    store.commit_batch(
        file_update(f, 100, 200, line_no=20, lines=10),
        stream_update(f, 20, templates=[(row, "disk <*>", {}, None)]),
        [],
    )
    assert store.load_stream(f.stream_id).examples == {1: "disk ok"}
    store.commit_batch(
        file_update(f, 200, 300, line_no=30, lines=10),
        stream_update(f, 30, templates=[(row, "disk <*>", {}, "disk fine")]),
        [],
    )
    assert store.load_stream(f.stream_id).examples == {1: "disk fine"}
