"""File identity and rotation through the Pipeline (no subprocess), on SQLite and PostgreSQL.

Specifies RELIABILITY.md §0.3-0.5 and §4 ("Identity decision per poll"): rename+create rotation,
copytruncate, truncate-and-rewrite past the old offset (live and while logwatch is down), plain
appends, deletion with unread bytes, compression of an already-read file, files sharing their first
KiB, atomic replace at the same path, and inode reuse.

The oracle is exactly-once: for every stream, the sum of ``lines_read`` (and ``events_read``) over
ALL its file rows, whatever their status, equals the number of lines written to that stream, as do
the template counts; and no anomaly's text is recorded more often than that line was written.
Every line carries a header (one line = one event) and a unique id, so counting is exact.
"""

from __future__ import annotations

import gzip
import os
import pprint
import random
import shutil
import uuid
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from logwatch.config import Config
from logwatch.pipeline import Pipeline, PollSummary
from logwatch.storage import Store

BASE_TS = datetime(2026, 3, 3, 10, 0, 0)


# ---------------------------------------------------------------------------------------- helpers


class Logs:
    """Writes unique, parseable lines into a log directory and remembers what was written."""

    def __init__(self, root: Path, seed: int = 7) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._rng = random.Random(seed)
        self._n = 0
        self.written: Counter[str] = Counter()  # stream -> lines written (each counted once)
        self.texts: Counter[str] = Counter()  # line text -> times written

    def lines(self, count: int) -> list[str]:
        out = []
        for _ in range(count):
            self._n += 1
            n = self._n
            ts = (BASE_TS + timedelta(seconds=n)).strftime("%Y-%m-%d %H:%M:%S")
            uid = uuid.UUID(int=self._rng.getrandbits(128))
            if n % 40 == 0:  # a sprinkle of errors so that anomalies are recorded too
                line = f"{ts},000 ERROR [main] com.x.Svc - payment failed code=503 n={n} id={uid}"
            else:
                line = f"{ts},000 INFO  [main] com.x.Svc - handled request {n} id={uid}"
            out.append(line)
        return out

    def put(self, name: str, lines: Iterable[str], *, stream: str | None = None) -> bytes:
        """Append ``lines`` to ``name`` (creating it); count them for ``stream`` (default: name)."""
        lines = list(lines)
        data = "".join(f"{line}\n" for line in lines).encode()
        with (self.root / name).open("ab") as fh:
            fh.write(data)
        self.count(lines, stream or name)
        return data

    def append(self, name: str, count: int, *, stream: str | None = None) -> bytes:
        return self.put(name, self.lines(count), stream=stream)

    def count(self, lines: Iterable[str], stream: str) -> None:
        for line in lines:
            self.written[stream] += 1
            self.texts[line] += 1

    def forget(self, lines: int, stream: str) -> None:
        """Lines that were written but can never be read (reported as a gap instead)."""
        self.written[stream] -= lines


class Clock:
    """Injected ``now``: far enough ahead that every file is quiet; a few seconds more per poll."""

    def __init__(self) -> None:
        self.t = datetime.now(UTC) + timedelta(minutes=10)

    def __call__(self) -> datetime:
        self.t += timedelta(seconds=3)
        return self.t


def make(store: Store, root: Path, **overrides: object) -> Pipeline:
    config = Config(log_dir=root, db_url=store.url, **overrides)  # type: ignore[arg-type]
    return Pipeline(config, store)


def report(store: Store) -> str:
    rows = [
        {k: (Path(v).name if k == "path" else v) for k, v in row.items()}
        for row in store.files_report()
    ]
    return "files_report:\n" + pprint.pformat(rows, width=120, sort_dicts=False)


def rows_named(store: Store, name: str) -> list[dict[str, Any]]:
    return [r for r in store.files_report() if Path(r["path"]).name == name]


def active(store: Store, name: str) -> dict[str, Any]:
    rows = [r for r in rows_named(store, name) if r["status"] == "active"]
    assert len(rows) == 1, f"expected one active row for {name}, got {len(rows)}\n{report(store)}"
    return rows[0]


def assert_exactly_once(store: Store, logs: Logs) -> None:
    """Every written line counted once, in lines, events and templates; no anomaly twice."""
    rows = store.files_report()
    lines: Counter[str] = Counter()
    events: Counter[str] = Counter()
    for r in rows:
        lines[r["stream"]] += r["lines_read"]
        events[r["stream"]] += r["events_read"]
    templates: Counter[str] = Counter()
    for t in store.templates_report():
        templates[t["stream"]] += t["count"]
    expected = {s: n for s, n in logs.written.items() if n}
    got_lines = {s: n for s, n in lines.items() if n}
    assert got_lines == expected, (
        f"lines_read per stream {got_lines} != lines written {expected}\n{report(store)}"
    )
    got_events = {s: n for s, n in events.items() if n}
    assert got_events == expected, (
        f"events_read per stream {got_events} != events written {expected}\n{report(store)}"
    )
    got_templates = {s: n for s, n in templates.items() if n}
    assert got_templates == expected, (
        f"template counts per stream {got_templates} != events written {expected}\n{report(store)}"
    )
    seen = Counter(a.text for a in store.anomalies())
    twice = {text: n for text, n in seen.items() if n > logs.texts[text]}
    assert not twice, f"anomalies recorded more often than written: {twice}\n{report(store)}"


def poll(pipeline: Pipeline, clock: Clock) -> PollSummary:
    summary = pipeline.poll(clock())
    assert not summary.errors, f"poll errors: {summary.errors}"
    return summary


def file_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n")


# ------------------------------------------------------------------------------------------ tests


def test_rename_and_create_rotation(store: Store, tmp_path: Path) -> None:
    """logrotate `create`: app.log -> app.log.1 (same inode, 20 unread lines), new app.log."""
    logs, clock = Logs(tmp_path / "logs"), Clock()
    root = logs.root
    pipeline = make(store, root)
    logs.append("app.log", 200)
    poll(pipeline, clock)
    assert active(store, "app.log")["lines_read"] == 200, report(store)
    logs.append("app.log", 20)  # unread when the rotation happens
    os.rename(root / "app.log", root / "app.log.1")
    logs.append("app.log", 50)
    poll(pipeline, clock)

    assert_exactly_once(store, logs)
    rotated = rows_named(store, "app.log.1")
    assert len(rotated) == 1, f"the app.log row should have moved to app.log.1\n{report(store)}"
    old = rotated[0]
    assert old["rotations"] >= 1, f"rotation not counted\n{report(store)}"
    assert old["offset"] == (root / "app.log.1").stat().st_size, (
        f"app.log.1 not drained\n{report(store)}"
    )
    assert old["lines_read"] == 220, f"the renamed row keeps its 200 + 20 lines\n{report(store)}"
    new = active(store, "app.log")
    assert new["lines_read"] == 50, f"new app.log must be read from 0\n{report(store)}"
    assert new["offset"] == (root / "app.log").stat().st_size, report(store)
    assert {r["stream"] for r in store.files_report()} == {"app.log"}, report(store)
    # Nothing more to read.
    assert poll(pipeline, clock).lines == 0
    assert_exactly_once(store, logs)


@pytest.mark.parametrize("unread", [0, 20], ids=["drained", "unread_before_copy"])
def test_copytruncate(store: Store, tmp_path: Path, unread: int) -> None:
    """logrotate `copytruncate`: the copy's already-read lines are not read again; lines that were
    still unread when the copy was made are read once (from the copy, at the old offset)."""
    logs, clock = Logs(tmp_path / "logs"), Clock()
    root = logs.root
    pipeline = make(store, root)
    logs.append("app.log", 200)
    poll(pipeline, clock)
    if unread:
        logs.append("app.log", unread)
    ino = (root / "app.log").stat().st_ino
    shutil.copyfile(root / "app.log", root / "app.log.1")
    with (root / "app.log").open("r+b") as fh:
        fh.truncate(0)
    assert (root / "app.log").stat().st_ino == ino
    logs.append("app.log", 30)
    poll(pipeline, clock)

    assert_exactly_once(store, logs)
    truncations = sum(r["truncations"] for r in rows_named(store, "app.log"))
    assert truncations >= 1, f"truncation of app.log not counted\n{report(store)}"
    new = active(store, "app.log")
    assert new["offset"] == (root / "app.log").stat().st_size, report(store)
    assert poll(pipeline, clock).lines == 0
    assert_exactly_once(store, logs)


def _truncate_and_rewrite(logs: Logs, variant: str) -> None:
    """app.log (100 lines, read) is truncated in place and refilled with 150 lines: longer than the
    old offset, same inode. ``same_head``: the first 20 lines (> 1 KiB) are the old ones again, so
    only the offset marker can tell (Vector #23619)."""
    path = logs.root / "app.log"
    old = path.read_text().splitlines()
    ino = path.stat().st_ino
    fresh = (old[:20] + logs.lines(130)) if variant == "same_head" else logs.lines(150)
    with path.open("r+b") as fh:
        fh.truncate(0)
    logs.put("app.log", fresh)
    assert path.stat().st_ino == ino
    assert len(fresh) == 150


@pytest.mark.parametrize("variant", ["different", "same_head"])
def test_truncate_and_rewrite_past_old_offset_live(
    store: Store, tmp_path: Path, variant: str
) -> None:
    logs, clock = Logs(tmp_path / "logs"), Clock()
    pipeline = make(store, logs.root)
    logs.append("app.log", 100)
    poll(pipeline, clock)
    old_offset = active(store, "app.log")["offset"]
    _truncate_and_rewrite(logs, variant)
    assert (logs.root / "app.log").stat().st_size > old_offset
    poll(pipeline, clock)

    assert_exactly_once(store, logs)
    truncations = sum(r["truncations"] for r in rows_named(store, "app.log"))
    assert truncations >= 1, f"truncation not counted\n{report(store)}"
    new = active(store, "app.log")
    assert new["lines_read"] == 150, f"the 150 lines must be read from byte 0\n{report(store)}"
    assert new["offset"] == (logs.root / "app.log").stat().st_size, report(store)


@pytest.mark.parametrize("variant", ["different", "same_head"])
def test_truncate_and_rewrite_past_old_offset_while_down(
    store: Store, tmp_path: Path, variant: str
) -> None:
    logs, clock = Logs(tmp_path / "logs"), Clock()
    first = make(store, logs.root)
    logs.append("app.log", 100)
    poll(first, clock)
    old_offset = active(store, "app.log")["offset"]
    del first  # logwatch is down while the file is truncated and refilled
    _truncate_and_rewrite(logs, variant)
    assert (logs.root / "app.log").stat().st_size > old_offset
    poll(make(store, logs.root), clock)  # a restart: a brand-new Pipeline on the same store

    assert_exactly_once(store, logs)
    truncations = sum(r["truncations"] for r in rows_named(store, "app.log"))
    assert truncations >= 1, f"truncation not counted across the restart\n{report(store)}"
    new = active(store, "app.log")
    assert new["lines_read"] == 150, f"the 150 lines must be read from byte 0\n{report(store)}"
    assert new["offset"] == (logs.root / "app.log").stat().st_size, report(store)


@pytest.mark.parametrize("restart", [False, True], ids=["same_instance", "restart_each_poll"])
def test_appends_are_read_exactly_once(store: Store, tmp_path: Path, restart: bool) -> None:
    logs, clock = Logs(tmp_path / "logs"), Clock()
    pipeline = make(store, logs.root)
    for i in range(5):
        if restart:
            pipeline = make(store, logs.root)
        logs.append("app.log", 10 * (i + 1))
        summary = poll(pipeline, clock)
        assert summary.lines == 10 * (i + 1), f"poll {i}: {summary}\n{report(store)}"
        assert_exactly_once(store, logs)
        row = active(store, "app.log")
        assert row["offset"] == (logs.root / "app.log").stat().st_size, report(store)
    assert len(store.files_report()) == 1, f"appends must not create rows\n{report(store)}"
    before = active(store, "app.log")
    if restart:
        pipeline = make(store, logs.root)
    assert poll(pipeline, clock).lines == 0, "an unchanged file was re-read"
    after = active(store, "app.log")
    assert (after["lines_read"], after["offset"]) == (before["lines_read"], before["offset"])
    assert after["rotations"] == after["truncations"] == after["gap_bytes"] == 0, report(store)
    assert_exactly_once(store, logs)


def _assert_deleted(store: Store, name: str) -> dict[str, Any]:
    rows = rows_named(store, name)
    assert len(rows) == 1, report(store)
    row = rows[0]
    # §4 calls a file that vanished with unread bytes and no handle "gap"; "deleted" is accepted.
    assert row["status"] in ("deleted", "gap"), (
        f"a deleted file's row is still {row['status']}\n{report(store)}"
    )
    return row


def _then_a_new_file_is_read_from_zero(
    store: Store, logs: Logs, pipeline: Pipeline, clock: Clock
) -> None:
    assert poll(pipeline, clock).lines == 0  # nothing crashes on a second look either
    logs.append("app.log", 20)  # a new app.log later (it may even get the old inode back)
    poll(pipeline, clock)
    new = active(store, "app.log")
    assert new["lines_read"] == 20, f"new app.log must be read from 0\n{report(store)}"
    assert len(rows_named(store, "app.log")) == 2, report(store)
    assert_exactly_once(store, logs)


def test_deleted_with_seen_unread_lines_reports_a_gap(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """logwatch saw the file's size but stopped after one batch; the file is deleted while no
    descriptor is held on it (here: across a restart): the loss is the unread byte count,
    recorded, never silent (§0.7, §4)."""
    logs, clock = Logs(tmp_path / "logs"), Clock()
    pipeline = make(store, logs.root, chunk_bytes=4096)
    logs.append("app.log", 100)
    poll(pipeline, clock)
    data = logs.append("app.log", 100)
    real_commit = store.commit_batch

    def commit_then_stop(*args: Any, **kwargs: Any) -> Any:
        result = real_commit(*args, **kwargs)
        pipeline.stop.set()  # finish this batch, then stop: the rest stays unread
        return result

    monkeypatch.setattr(store, "commit_batch", commit_then_stop)
    poll(pipeline, clock)
    monkeypatch.undo()
    pipeline.stop.clear()
    row = active(store, "app.log")
    size = (logs.root / "app.log").stat().st_size
    assert 100 < row["lines_read"] < 200 and row["size"] == size, (
        f"setup: one batch of the second 100 lines should have been read\n{report(store)}"
    )
    unread_bytes = size - row["offset"]
    unread_lines = data[len(data) - unread_bytes :].count(b"\n")
    (logs.root / "app.log").unlink()
    # A restart: the new process holds no descriptor on the deleted file, so its unread bytes are
    # a gap. (A running daemon drains them through its descriptor: test_pipeline covers that.)
    pipeline = make(store, logs.root)
    poll(pipeline, clock)

    row = _assert_deleted(store, "app.log")
    assert row["gap_bytes"] == unread_bytes, (
        f"gap_bytes should be the {unread_bytes} unread bytes\n{report(store)}"
    )
    logs.forget(unread_lines, "app.log")
    assert_exactly_once(store, logs)
    _then_a_new_file_is_read_from_zero(store, logs, pipeline, clock)


def test_deleted_with_a_partial_last_line_reports_a_gap(store: Store, tmp_path: Path) -> None:
    """A last line without its newline is never read (§0.5); if the file is deleted before it is
    completed, those bytes are the gap."""
    logs, clock = Logs(tmp_path / "logs"), Clock()
    pipeline = make(store, logs.root)
    logs.append("app.log", 100)
    partial = logs.lines(1)[0][:50].encode()
    with (logs.root / "app.log").open("ab") as fh:
        fh.write(partial)
    poll(pipeline, clock)
    assert active(store, "app.log")["lines_read"] == 100, report(store)
    (logs.root / "app.log").unlink()
    pipeline = make(store, logs.root)  # a restart: no descriptor held, the partial line is lost
    poll(pipeline, clock)

    row = _assert_deleted(store, "app.log")
    assert row["gap_bytes"] == len(partial), (
        f"gap_bytes should be the {len(partial)} bytes of the partial line\n{report(store)}"
    )
    assert_exactly_once(store, logs)
    _then_a_new_file_is_read_from_zero(store, logs, pipeline, clock)


def test_deleted_after_unseen_appends(store: Store, tmp_path: Path) -> None:
    """Appended and deleted between two polls: logwatch never saw the new size. With a handle
    still open it can read the 10 lines; without one it cannot know them (gap 0 or their size).
    Either way: the row is retired, nothing crashes, a new app.log is read from 0."""
    logs, clock = Logs(tmp_path / "logs"), Clock()
    pipeline = make(store, logs.root)
    logs.append("app.log", 100)
    poll(pipeline, clock)
    lost = logs.append("app.log", 10)
    (logs.root / "app.log").unlink()
    poll(pipeline, clock)

    row = _assert_deleted(store, "app.log")
    if row["lines_read"] == 100:
        assert row["gap_bytes"] in (0, len(lost)), report(store)
        logs.forget(10, "app.log")
    else:
        assert (row["lines_read"], row["gap_bytes"]) == (110, 0), report(store)
    assert_exactly_once(store, logs)
    _then_a_new_file_is_read_from_zero(store, logs, pipeline, clock)


def test_compressed_copy_of_an_already_read_file_is_not_read_again(
    store: Store, tmp_path: Path
) -> None:
    """delaycompress: app.log.1 (read) becomes app.log.1.gz, recognised by the fingerprint of its
    decompressed first KiB."""
    logs, clock = Logs(tmp_path / "logs"), Clock()
    root = logs.root
    pipeline = make(store, root)
    logs.append("app.log.1", 100, stream="app.log")
    logs.append("app.log", 10)
    poll(pipeline, clock)
    assert_exactly_once(store, logs)
    data = (root / "app.log.1").read_bytes()
    (root / "app.log.1.gz").write_bytes(gzip.compress(data, mtime=0))
    (root / "app.log.1").unlink()
    poll(pipeline, clock)

    assert_exactly_once(store, logs)
    assert poll(pipeline, clock).lines == 0
    assert_exactly_once(store, logs)


@pytest.mark.parametrize("when", ["together", "b_later"])
def test_files_with_the_same_first_kib_are_both_read(
    store: Store, tmp_path: Path, when: str
) -> None:
    """Vector #643 / OTel #46496: a shared header longer than the fingerprint is not identity."""
    logs, clock = Logs(tmp_path / "logs"), Clock()
    root = logs.root
    pipeline = make(store, root)
    header = logs.lines(30)
    logs.put("a.log", header)
    logs.append("a.log", 20)
    if when == "b_later":
        poll(pipeline, clock)
    logs.put("b.log", header)
    logs.append("b.log", 20)
    a, b = (root / "a.log").read_bytes(), (root / "b.log").read_bytes()
    assert a[:2048] == b[:2048] and a != b
    poll(pipeline, clock)

    assert_exactly_once(store, logs)
    for name in ("a.log", "b.log"):
        row = active(store, name)
        assert row["lines_read"] == 50 == file_lines(root / name), (
            f"{name} not read completely\n{report(store)}"
        )
        assert row["offset"] == (root / name).stat().st_size, report(store)


@pytest.mark.parametrize("variant", ["different", "same_head"])
def test_replaced_at_the_same_path(store: Store, tmp_path: Path, variant: str) -> None:
    """Atomic replace (new inode). ``same_head``: the new file starts with the old file's first
    20 lines (same fingerprint) and is longer than the old offset; the old inode vanished, but the
    marker differs, so it is not a continuation and is read from 0."""
    logs, clock = Logs(tmp_path / "logs"), Clock()
    root = logs.root
    pipeline = make(store, root)
    logs.append("app.log", 100)
    poll(pipeline, clock)
    old_ino = (root / "app.log").stat().st_ino
    if variant == "same_head":
        fresh = (root / "app.log").read_text().splitlines()[:20] + logs.lines(100)
    else:
        fresh = logs.lines(40)
    logs.put("app.log.tmp", fresh, stream="app.log")
    os.replace(root / "app.log.tmp", root / "app.log")
    assert (root / "app.log").stat().st_ino != old_ino
    poll(pipeline, clock)

    assert_exactly_once(store, logs)
    rows = rows_named(store, "app.log")
    retired = [r for r in rows if r["status"] != "active"]
    assert len(rows) == 2 and len(retired) == 1, f"old row must be retired\n{report(store)}"
    assert retired[0]["lines_read"] == 100, report(store)
    new = active(store, "app.log")
    assert new["lines_read"] == len(fresh), f"replacement must be read from 0\n{report(store)}"
    assert new["offset"] == (root / "app.log").stat().st_size, report(store)


@pytest.mark.parametrize("target", ["app.log", "other.log"])
def test_inode_reuse_is_a_new_file(store: Store, tmp_path: Path, target: str) -> None:
    """A deleted file's inode number handed to a new file (at the same path or another) must not
    make the new file continue at the old offset (Fluent Bit #4895, Filebeat #1341)."""
    logs, clock = Logs(tmp_path / "logs"), Clock()
    root = logs.root
    pipeline = make(store, root)
    logs.append("app.log", 100)
    poll(pipeline, clock)
    old = (root / "app.log").stat()
    # A restart: a running daemon's descriptor would keep the deleted inode from being reused.
    pipeline.close()
    pipeline = make(store, root)
    (root / "app.log").unlink()
    probes = []
    reused: Path | None = None
    for i in range(200):
        probe = root / f"probe-{i}.tmp"  # not matched by the include patterns
        probe.touch()
        st = probe.stat()
        if (st.st_dev, st.st_ino) == (old.st_dev, old.st_ino):
            reused = probe
            break
        probes.append(probe)  # kept until the end, so each try gets a different inode
    for probe in probes:
        probe.unlink()
    if reused is None:
        pytest.skip("the filesystem did not reuse the deleted file's inode within 200 tries")
    os.rename(reused, root / target)
    fresh = logs.lines(150)  # longer than the old offset, different content
    logs.put(target, fresh)
    assert (root / target).stat().st_ino == old.st_ino
    assert (root / target).stat().st_size > old.st_size
    poll(pipeline, clock)

    assert_exactly_once(store, logs)
    new = active(store, target)
    assert new["lines_read"] == 150, f"reused inode must be read from 0\n{report(store)}"
    assert new["offset"] == (root / target).stat().st_size, report(store)
