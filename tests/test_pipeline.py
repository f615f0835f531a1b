"""End-to-end through the Pipeline (no subprocess): quality, exactly-once counters, live polls
with an injected clock, and state that survives a restart. Every test runs on SQLite and
PostgreSQL."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLES
from sqlalchemy import event

from logwatch.config import Config
from logwatch.evaluate import evaluate, read_labels
from logwatch.features import as_matrix
from logwatch.pipeline import Pipeline
from logwatch.storage import Store

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


def make(store: Store, log_dir: Path, **overrides: object) -> Pipeline:
    config = Config(log_dir=log_dir, db_url=store.url, **overrides)  # type: ignore[arg-type]
    return Pipeline(config, store)


def line_count(path: Path) -> int:
    return path.read_bytes().count(b"\n")


def test_once_finds_labelled_anomalies_with_precision(store: Store, log_dir: Path) -> None:
    """Issue 2 asks >= 80% recall and >= 50% precision; the detection issue raises it to 95%/80%."""
    make(store, log_dir, once=True).run_once(NOW)
    result = evaluate(store.anomalies(), read_labels(SAMPLES / "labels.csv"), log_dir)
    assert result.labelled == 70
    assert result.recall >= 0.95, [(m.path, m.line, m.kind) for m in result.missed]
    assert result.precision >= 0.80
    # Every injected kind is found at least once.
    assert {k for k, (found, _) in result.kinds_found.items() if found == 0} == set()


def test_once_counts_every_line_exactly_once_and_rerun_is_a_no_op(
    store: Store, log_dir: Path
) -> None:
    first = make(store, log_dir, once=True).run_once(NOW)
    files = {Path(f["path"]).name: f for f in store.files_report()}
    for name, row in files.items():
        size = (log_dir / name).stat().st_size
        assert (row["offset"], row["lines_read"]) == (size, line_count(log_dir / name)), name
    assert first.lines == sum(line_count(p) for p in log_dir.iterdir())
    before = store.anomalies()
    again = make(store, log_dir, once=True).run_once(NOW + timedelta(hours=1))
    assert (again.lines, again.anomalies) == (0, 0)
    assert store.anomalies() == before


def _queries(store: Store, *tables: str) -> list[str]:
    """Every statement run on ``store`` from now on that reads one of ``tables``."""
    seen: list[str] = []

    def note(conn: object, cursor: object, statement: str, *rest: object) -> None:
        if any(f"FROM {t}" in statement for t in tables):
            seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", note)
    return seen


def test_streams_are_loaded_only_when_they_have_stored_state_and_new_lines(
    store: Store, log_dir: Path
) -> None:
    """A first run creates its streams and starts them empty, without reading them back; a
    second run over the unchanged folder loads, learns and reads nothing."""
    loads = _queries(store, "templates", "models")
    first = make(store, log_dir, once=True).run_once(NOW)
    assert loads == []
    assert first.lines > 0 and len(store.template_texts("app.log")) > 0  # stored, not read back
    loads.clear()
    again = make(store, log_dir, once=True).run_once(NOW + timedelta(hours=1))
    assert (again.lines, again.files_read) == (0, 0)
    assert loads == []
    # A stream with something new is loaded: its templates and model are read back.
    with (log_dir / "app.log").open("a") as out:
        out.write("2024-05-01 12:00:00 INFO one more line\n")
    third = make(store, log_dir, once=True).run_once(NOW + timedelta(hours=2))
    assert third.lines == 1
    assert any("FROM templates" in q for q in loads) and any("FROM models" in q for q in loads)


def test_anomaly_line_and_offset_point_at_the_event(store: Store, log_dir: Path) -> None:
    make(store, log_dir, once=True).run_once(NOW)
    found = store.anomalies()
    assert found
    for a in found:
        data = Path(a.path).read_bytes()
        lines = data.split(b"\n")
        first_line = a.text.split("\n")[0]
        assert lines[a.line - 1].decode("utf-8", "replace") == first_line
        assert data[a.offset :].split(b"\n", 1)[0].decode("utf-8", "replace") == first_line


def test_live_polls_hold_partial_lines_and_multiline_tails(store: Store, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    app = logs / "app.log"
    normal = "".join(
        f"2026-03-03 10:{i // 60:02d}:{i % 60:02d},000 INFO  [main] com.x.Svc - handled {i}\n"
        for i in range(300)
    )
    app.write_text(normal + "2026-03-03 11:00:00,000 INFO  [main] com.x.Svc - half a li")
    pipeline = make(store, logs, train_min_events=50)
    t = NOW
    summary = pipeline.poll(t)
    # The partial last line is not read; the last complete event is held back (it could still get
    # continuation lines) until the file has been quiet for multiline_flush_seconds.
    assert summary.lines == 299
    with app.open("a") as fh:
        fh.write(
            "ne\n2026-03-03 11:00:01,000 ERROR [main] com.x.Svc - request failed\n"
            "java.lang.IllegalStateException: boom\n\tat com.x.Svc.run(Svc.java:42)\n"
        )
    summary = pipeline.poll(t + timedelta(seconds=1))
    assert summary.lines == 2  # line 300 and the completed "half a line"; the trace is held
    rows = {Path(f["path"]).name: f for f in store.files_report()}
    assert rows["app.log"]["lines_read"] == 301
    # Quiet long enough (the file's mtime is real wall time, so jump well past it).
    late = datetime.now(UTC) + timedelta(minutes=5)
    summary = pipeline.poll(late)
    assert summary.lines == 3 and summary.events == 1
    rows = {Path(f["path"]).name: f for f in store.files_report()}
    assert rows["app.log"]["lines_read"] == line_count(app) == 304
    assert rows["app.log"]["offset"] == app.stat().st_size
    error = [a for a in store.anomalies() if a.line == 302]
    assert error and error[0].text.count("\n") == 2  # the whole event, trace included
    assert pipeline.poll(late + timedelta(seconds=1)).lines == 0  # unchanged file: nothing read


def test_model_and_templates_survive_a_restart(store: Store, log_dir: Path) -> None:
    first = make(store, log_dir, once=True)
    first.run_once(NOW)
    runtime = first._streams["auth.log"]
    assert runtime.detector is not None
    second = make(store, log_dir)
    reloaded = second._stream("auth.log")
    assert reloaded.detector is not None
    # Refitting the stored training sample with the stored seed gives bit-identical scores.
    stored = store.load_stream(runtime.id).model
    assert stored is not None
    probe = stored.training[:50]
    assert np.array_equal(runtime.detector.score(probe), reloaded.detector.score(probe))
    assert [r.template_tokens for r in runtime.templates.rows()] == [
        r.template_tokens for r in reloaded.templates.rows()
    ]
    message = "Accepted publickey for deploy from 10.0.0.9 port 40000 ssh2: RSA SHA256:abc"
    assert runtime.templates.add(message).template_id == reloaded.templates.add(message).template_id
    assert reloaded.stats.events_total == runtime.stats.events_total


def test_missing_log_dir_is_a_source_error(store: Store, tmp_path: Path) -> None:
    from logwatch.errors import SourceError

    pipeline = make(store, tmp_path / "nope")
    with pytest.raises(SourceError, match="does not exist"):
        pipeline.poll(NOW)


def test_feature_columns_are_fixed_by_name() -> None:
    # A row that lacks a feature (features may emerge later) gets 0 in that column.
    from logwatch.records import Features

    f = Features({"novelty": 0.5}, 1, 1, None, 1.0, None, 1.0, None, None, 0.5)
    assert as_matrix([f], ("template_rarity", "novelty")) == [[0.0, 0.5]]


def test_unchanged_files_are_not_opened(
    store: Store, log_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = make(store, log_dir)
    late = datetime.now(UTC) + timedelta(minutes=5)  # every file quiet: nothing held back
    pipeline.poll(late)
    opened: list[str] = []
    import logwatch.reader as reader_module
    import logwatch.watcher as watcher_module

    real_read = reader_module.read_lines
    real_fingerprint = watcher_module.fingerprint

    def spy_read(path: str, *args: object, **kwargs: object) -> object:
        opened.append(path)
        return real_read(path, *args, **kwargs)  # type: ignore[arg-type]

    def spy_fingerprint(path: str, *args: object, **kwargs: object) -> object:
        opened.append(path)
        return real_fingerprint(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(reader_module, "read_lines", spy_read)
    monkeypatch.setattr(watcher_module, "fingerprint", spy_fingerprint)
    assert pipeline.poll(late + timedelta(seconds=2)).lines == 0
    assert opened == []
    with (log_dir / "auth.log").open("a") as fh:
        fh.write(
            "Mar  3 23:59:59 web01 CRON[1]: pam_unix(cron:session): session closed for user x\n"
        )
    assert pipeline.poll(late + timedelta(seconds=4)).lines == 1
    assert set(opened) == {str(log_dir / "auth.log")}  # validated, then read; nothing else


def test_rotated_siblings_share_one_stream(store: Store, tmp_path: Path) -> None:
    import gzip

    logs = tmp_path / "logs"
    logs.mkdir()

    def lines(start: int) -> bytes:
        return "".join(
            f"2026-03-0{start} 10:00:{i % 60:02d},000 INFO  [main] com.x.Svc - handled {i}\n"
            for i in range(100)
        ).encode()

    (logs / "app.log.2.gz").write_bytes(gzip.compress(lines(1)))
    (logs / "app.log.1").write_bytes(lines(2))
    (logs / "app.log").write_bytes(lines(3))
    make(store, logs, once=True).run_once(NOW)
    files = store.files_report()
    assert {f["stream"] for f in files} == {"app.log"}
    assert sorted(f["lines_read"] for f in files) == [100, 100, 100]
    templates = store.templates_report()
    assert {t["stream"] for t in templates} == {"app.log"}
    assert sum(t["count"] for t in templates) == 300


def test_partial_line_and_multiline_event_across_a_restart(store: Store, tmp_path: Path) -> None:
    """Matrix rows 15 and 20: an event cut by a restart is processed once, whole."""
    logs = tmp_path / "logs"
    logs.mkdir()
    app = logs / "app.log"
    head = "".join(
        f"2026-03-03 10:00:{i % 60:02d},000 INFO  [main] com.x.Svc - handled {i}\n"
        for i in range(200)
    )
    app.write_text(
        head + "2026-03-03 10:05:00,000 ERROR [main] com.x.Svc - request failed\n"
        "java.lang.IllegalStateException: boom\n\tat com.x.Svc.run(Svc"
    )
    soon = datetime.now(UTC)  # the file is not quiet yet: the last event is held back
    make(store, logs).poll(soon)
    (row,) = store.files_report()
    assert row["lines_read"] == 200  # neither the ERROR event nor its partial trace line
    with app.open("a") as fh:
        fh.write(".java:42)\n\tat com.x.Main.main(Main.java:7)\n")
    restarted = make(store, logs)  # a new process: nothing in memory
    late = datetime.now(UTC) + timedelta(minutes=5)
    summary = restarted.poll(late)
    assert (summary.lines, summary.events) == (4, 1)
    (row,) = store.files_report()
    assert (row["lines_read"], row["offset"]) == (204, app.stat().st_size)
    errors = [a for a in store.anomalies() if a.line == 201]
    assert len(errors) == 1
    assert errors[0].text.endswith(
        "\tat com.x.Svc.run(Svc.java:42)\n\tat com.x.Main.main(Main.java:7)"
    )


def test_every_skipped_entry_is_listed_with_its_reason(store: Store, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    (logs / "dir.log").mkdir(parents=True)
    os.mkfifo(logs / "pipe.log")
    (logs / "zero.log").symlink_to("/dev/zero")
    (logs / "real.log").write_text("2026-03-03 10:00:00,000 INFO  [main] c.X - ok\n")
    (logs / "alias.log").hardlink_to(logs / "real.log")
    late = datetime.now(UTC) + timedelta(minutes=5)  # quiet: nothing held back
    for _ in range(2):  # a second poll must not list them twice
        make(store, logs).poll(late)
    rows = {Path(f["path"]).name: f for f in store.files_report()}
    # Two names for one file: one is read, the other listed as the same file.
    read, alias = sorted(("alias.log", "real.log"), key=lambda n: rows[n]["status"])
    assert (rows[read]["status"], rows[read]["lines_read"]) == ("active", 1)
    assert {n: (r["status"], r["last_error"]) for n, r in rows.items() if n != read} == {
        alias: ("skipped", f"same file as {logs / read}"),
        "dir.log": ("skipped", "is a directory"),
        "pipe.log": ("skipped", "FIFO"),
        "zero.log": ("skipped", "symlink to a character device"),
    }


def test_lines_cut_at_max_line_bytes_are_counted(store: Store, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    line = "2026-03-03 10:00:00,000 INFO  [main] c.X - ok\n"
    (logs / "a.log").write_text(line * 10 + "x" * 5000 + "\n" + line * 10)
    make(store, logs, max_line_bytes=1024).poll(datetime.now(UTC) + timedelta(minutes=5))
    (row,) = store.files_report()
    assert (row["lines_read"], row["lines_truncated"]) == (21, 1)


def test_deleted_file_is_drained_through_its_open_descriptor(store: Store, tmp_path: Path) -> None:
    """Bytes appended just before a file is deleted are still read (no gap) in daemon mode."""
    logs = tmp_path / "logs"
    logs.mkdir()
    app = logs / "app.log"
    line = "2026-03-03 10:00:{:02d},000 INFO  [main] com.x.Svc - handled {}\n"
    app.write_text("".join(line.format(i % 60, i) for i in range(100)))
    pipeline = make(store, logs)
    late = datetime.now(UTC) + timedelta(minutes=5)
    assert pipeline.poll(late).lines == 100
    with app.open("a") as fh:
        fh.write("".join(line.format(i % 60, i) for i in range(100, 110)))
        fh.write("2026-03-03 10:01:00,000 INFO  [main] com.x.Svc - last words, no newline")
    app.unlink()
    summary = pipeline.poll(late + timedelta(seconds=2))
    assert summary.lines == 11  # ten lines and the final partial one: the file is gone for good
    (row,) = store.files_report()
    assert (row["status"], row["lines_read"], row["gap_bytes"]) == ("deleted", 111, 0)
    assert pipeline._handles == {}  # the descriptor was released after the drain
    pipeline.close()


def test_descriptors_are_bounded_and_closed_when_idle(store: Store, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    for i in range(12):
        (logs / f"f{i}.log").write_text("2026-03-03 10:00:00,000 INFO  [main] c.X - ok\n")
    pipeline = make(store, logs, max_open_files=5, close_inactive=60.0)
    late = datetime.now(UTC) + timedelta(minutes=5)
    pipeline.poll(late)
    assert len(pipeline._handles) == 5
    pipeline.poll(late + timedelta(seconds=61))
    assert pipeline._handles == {}
    pipeline.close()


def test_streams_dropped_from_memory_are_reloaded_with_the_same_results(
    store: Store, log_dir: Path, tmp_path: Path
) -> None:
    """With room for one stream in memory, every other stream is dropped and reloaded from the
    database as the daemon goes round the files (three polls, a third of each file each time):
    what is found is the same as with room for all."""
    roomy_store = Store(f"sqlite:///{tmp_path / 'roomy.db'}")
    roomy_store.upgrade()
    sources = sorted(p for p in log_dir.iterdir() if not p.name.endswith(".1"))
    found = []
    for target, room in ((store, 1), (roomy_store, 200)):
        root = tmp_path / f"live-{room}"
        root.mkdir()
        pipeline = make(target, root, max_live_streams=room)
        for part in range(3):
            for source in sources:
                lines = source.read_bytes().splitlines(keepends=True)
                third = lines[part * len(lines) // 3 : (part + 1) * len(lines) // 3]
                with (root / source.name).open("ab") as fh:
                    fh.writelines(third)
            pipeline.poll(NOW)
        assert len(pipeline._streams) <= room
        found.append([(Path(a.path).name, a.line, a.severity) for a in target.anomalies()])
    roomy_store.close()
    assert found[0] and found[0] == found[1]
