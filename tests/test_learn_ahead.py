"""``--once`` learns the next stream in a forked child while the current one is scored. The
results are those of learning every stream in turn in one process, and a child that fails, is
killed or is not waited for (stop) costs only the overlap, never a result."""

from __future__ import annotations

import importlib
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import private_pg_url
from sqlalchemy import create_engine, text

from logwatch import ahead, pipeline
from logwatch.config import Config
from logwatch.pipeline import Pipeline
from logwatch.storage import Store

ROOT = Path(__file__).resolve().parents[1]
LOGHUB = ROOT.parent / "shared" / "data" / "loghub"
SYSTEMS = ["HealthApp", "OpenSSH", "Proxifier", "Zookeeper"]
NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
needs_loghub = pytest.mark.skipif(
    not all((LOGHUB / s / f"{s}_2k.log").is_file() for s in SYSTEMS),
    reason=f"loghub samples not found at {LOGHUB}",
)
pytestmark = [
    needs_loghub,
    pytest.mark.skipif(not ahead.can_fork(), reason="no fork() on this platform"),
]


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four streams of generated lines (bench/generate.py), ~2,500 lines each."""
    root = tmp_path_factory.mktemp("ahead") / "logs"
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        generate = importlib.import_module("generate")
    finally:
        sys.path.remove(str(ROOT / "bench"))
    generate.generate(root, 10_000, SYSTEMS, None, 11, LOGHUB)
    return root


@pytest.fixture(autouse=True)
def _every_stream_ahead(monkeypatch: pytest.MonkeyPatch) -> None:
    # The test streams are small: learn each ahead however little it has.
    monkeypatch.setattr(pipeline, "LEARN_AHEAD_MIN_BYTES", 0)


@pytest.fixture
def delivered(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Labels of the streams whose learning a child delivered."""
    got: list[str] = []
    original = ahead.Ahead.result

    def counting(self: ahead.Ahead, stop: threading.Event | None = None) -> Any:
        value = original(self, stop)
        got.append(self.label)
        return value

    monkeypatch.setattr(ahead.Ahead, "result", counting)
    return got


def _outcome(url: str, log_dir: Path, *, learn_ahead: bool) -> dict[str, list[tuple[Any, ...]]]:
    store = Store(url)
    store.upgrade()
    try:
        config = Config(log_dir=log_dir, db_url=url, once=True, learn_ahead=learn_ahead)
        summary = Pipeline(config, store).run_once(NOW)
        assert summary.lines == 10_000
    finally:
        store.close()
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            q = {
                "anomalies": "SELECT f.path, a.line, a.severity, a.score, a.template_id, "
                "a.reasons, "
                "a.closest FROM anomalies a JOIN files f ON f.id = a.file_id ORDER BY 1, 2",
                "templates": "SELECT s.name, t.template_id, t.template, t.size, t.slot_values, "
                "t.example FROM templates t JOIN streams s ON s.id = t.stream_id ORDER BY 1, 2",
                "streams": "SELECT name, events_total, level_counts, field_stats, trouble_events "
                "FROM streams ORDER BY 1",
                "files": 'SELECT path, "offset", line_no FROM files ORDER BY 1',
            }
            return {k: [tuple(map(str, r)) for r in conn.execute(text(v))] for k, v in q.items()}
    finally:
        engine.dispose()


@contextmanager
def _fresh_url(backend: str, tmp_path: Path, name: str) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / name}.db"
    else:
        with private_pg_url() as url:
            yield url


def _compare(backend: str, tmp_path: Path, logs: Path) -> None:
    """Inline learning, then learning ahead, each into a fresh database: the same outcome."""
    with _fresh_url(backend, tmp_path, "inline") as url:
        inline = _outcome(url, logs, learn_ahead=False)
    with _fresh_url(backend, tmp_path, "ahead") as url:
        result = _outcome(url, logs, learn_ahead=True)
    assert inline["anomalies"], "no anomalies at all: nothing was compared"
    for key in inline:
        assert result[key] == inline[key], key


BACKENDS = pytest.mark.parametrize("backend", ["sqlite", "postgresql"])


@BACKENDS
def test_learning_ahead_gives_the_results_of_learning_in_turn(
    backend: str, tmp_path: Path, logs: Path, delivered: list[str]
) -> None:
    _compare(backend, tmp_path, logs)
    # Every stream but the first was learned by a child (the first is learned here meanwhile).
    assert sorted(delivered) == [f"{s.lower()}/{s}.log" for s in SYSTEMS[1:]]
    assert multiprocessing.active_children() == []


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Labels of the streams a child was started for (whether or not it delivered)."""
    got: list[str] = []
    original = ahead.Ahead.__init__

    def counting(self: ahead.Ahead, fn: Callable[[], Any], label: str) -> None:
        original(self, fn, label)
        got.append(label)

    monkeypatch.setattr(ahead.Ahead, "__init__", counting)
    return got


def _in_child_only(monkeypatch: pytest.MonkeyPatch, act: Callable[[], None]) -> None:
    """Make the learning ``act`` (fail, die) in forked children; this process learns as usual."""
    parent = os.getpid()
    original = Pipeline._learn_scratch

    def learn(self: Pipeline, *args: Any, **kwargs: Any) -> Any:
        if os.getpid() != parent:
            act()
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "_learn_scratch", learn)


@BACKENDS
def test_a_failing_child_is_replaced_by_learning_here(
    backend: str,
    tmp_path: Path,
    logs: Path,
    delivered: list[str],
    started: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def fail() -> None:
        raise MemoryError("child out of memory")

    _in_child_only(monkeypatch, fail)
    _compare(backend, tmp_path, logs)
    assert len(started) == len(SYSTEMS) - 1  # children did start ...
    assert delivered == []  # ... none delivered; every stream was learned here


def test_a_killed_child_is_replaced_by_learning_here(
    tmp_path: Path,
    logs: Path,
    delivered: list[str],
    started: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _in_child_only(monkeypatch, lambda: os.kill(os.getpid(), signal.SIGKILL))
    _compare("sqlite", tmp_path, logs)
    assert len(started) == len(SYSTEMS) - 1
    assert delivered == []
    assert multiprocessing.active_children() == []


def test_stop_does_not_wait_for_a_child(
    tmp_path: Path, logs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stop request (SIGTERM in the daemon) while a child learns: run_once returns within a
    fraction of a second and leaves no child behind."""
    _in_child_only(monkeypatch, lambda: time.sleep(60))
    stop = threading.Event()
    url = f"sqlite:///{tmp_path / 'stop.db'}"
    store = Store(url)
    store.upgrade()
    config = Config(log_dir=logs, db_url=url, once=True)
    pipe = Pipeline(config, store, stop=stop)
    original = pipe._learned
    stopped_at: list[float] = []

    def learned(name: str, *args: Any) -> Any:
        if name.startswith("openssh"):  # the second stream: its child sleeps
            stop.set()
            stopped_at.append(time.monotonic())
        return original(name, *args)

    monkeypatch.setattr(pipe, "_learned", learned)
    try:
        summary = pipe.run_once(NOW)
    finally:
        store.close()
    assert stopped_at and time.monotonic() - stopped_at[0] < 5.0
    assert multiprocessing.active_children() == []
    # The first stream was processed in full before the stop; nothing after it was.
    first = logs / "healthapp" / "HealthApp.log"
    assert summary.lines == len(first.read_bytes().splitlines())


def test_the_child_never_runs_the_parents_exit_handlers(tmp_path: Path) -> None:
    """The child ends without atexit handlers or flushing the parent's buffered output: a file
    the parent has buffered is written once, by the parent."""
    out = tmp_path / "out.txt"
    with open(out, "w", buffering=1 << 16) as f:
        f.write("parent line\n")
        assert ahead.Ahead(lambda: 41 + 1, "answer").result() == 42
    assert out.read_text() == "parent line\n"


def test_unpicklable_result_is_a_failure_not_a_hang() -> None:
    with pytest.raises(ahead.AheadFailed, match="answer"):
        ahead.Ahead(lambda: threading.Lock(), "answer").result()
