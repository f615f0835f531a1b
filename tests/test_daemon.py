"""Real-process tests of the daemon (``python -m logwatch run``), on SQLite and PostgreSQL.

The daemon runs as a subprocess (tests/daemon_harness.py): it is killed with SIGKILL at random
moments, stopped with SIGTERM/SIGINT, paused with SIGSTOP, and the database is checked against the
files on disk for exactly-once (RELIABILITY.md §4, §5). Randomised tests print their seed; rerun
one with LOGWATCH_TEST_SEED=<seed>.
"""

from __future__ import annotations

import gc
import os
import random
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import private_pg_url
from daemon_harness import (
    POLL_INTERVAL,
    DaemonProcess,
    LineWriter,
    OracleReport,
    active_by_path,
    assert_exactly_once,
    daemon_env,
    lines_read_total,
    run_cli,
    wait_for,
    wait_until_drained,
)

from logwatch.config import Config
from logwatch.daemon import GC_YOUNG_THRESHOLD, run_daemon, tune_collector
from logwatch.records import Anomaly
from logwatch.storage import Store

pytestmark = pytest.mark.usefixtures("hang_guard")


@pytest.fixture
def make_daemon(db_url: str, tmp_path: Path) -> Iterator[Callable[..., DaemonProcess]]:
    """Factory of DaemonProcess objects on ``db_url``; every one is killed at teardown."""
    made: list[DaemonProcess] = []
    # One node name per test, shared by its daemons: other test runs on the same PostgreSQL
    # server (other schemas) cannot take this test's instance lock (see test_instance_lock_...).
    node = f"test-{uuid.uuid4().hex[:10]}"

    def make(log_dir: Path, name: str = "daemon", url: str = db_url) -> DaemonProcess:
        d = DaemonProcess(log_dir=log_dir, db_url=url, work_dir=tmp_path / name, node=node)
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()


def _lw_anomalies(report: OracleReport, key: str | None = None) -> list[Anomaly]:
    return [
        a
        for a in report.anomalies
        if a.text.startswith("LW|") and (key is None or a.text.startswith(f"LW|{key}|"))
    ]


# ---------------------------------------------------------------- 1. kill -9


def _kill9_scenario(
    db_url: str,
    log_dir: Path,
    make_daemon: Callable[..., DaemonProcess],
    seed: int,
    kills: int,
) -> None:
    rng = random.Random(seed)
    writer = LineWriter(log_dir, seed=seed)
    for key in writer.keys:  # some history, so each stream warms up and can flag the unusual
        writer.burst(120, key)
    daemon = make_daemon(log_dir).start()
    writer.start()
    for i in range(kills):
        before = lines_read_total(db_url) if i else 0
        wait_for(
            lambda b=before: lines_read_total(db_url) > b,
            45,
            f"progress before kill {i + 1} (seed {seed})",
            daemon=daemon,
        )
        time.sleep(rng.uniform(0.0, 3 * POLL_INTERVAL))
        if i % 3 == 2:
            # Kill it while SIGSTOPped, with more lines written meanwhile.
            daemon.pause()
            writer.burst()
            time.sleep(rng.uniform(0.0, POLL_INTERVAL))
        assert daemon.kill9() == -signal.SIGKILL
        daemon.start()
    writer.stop()
    wait_until_drained(db_url, log_dir, timeout=60, daemon=daemon)
    report = assert_exactly_once(db_url, log_dir, writer, seed)
    daemon.wait_ready()  # drained may mean "by the previous run": this one may still be starting
    assert daemon.term() == 0, daemon.stderr[-3000:]
    assert "Traceback" not in daemon.all_stderr(), daemon.all_stderr()[-3000:]
    # The injected unusual lines are found, and every anomaly points at its own line (checked
    # by the oracle: offset = byte offset of that line's start, text = the line).
    assert _lw_anomalies(report), f"seed {seed}: no injected unusual line was flagged"


def test_kill9_mid_run_loses_and_duplicates_nothing(
    db_url: str, log_dir: Path, make_daemon: Callable[..., DaemonProcess], seed: int
) -> None:
    _kill9_scenario(db_url, log_dir, make_daemon, seed, kills=5)


@pytest.mark.slow
def test_kill9_mid_run_loses_and_duplicates_nothing_soak(
    db_url: str, log_dir: Path, make_daemon: Callable[..., DaemonProcess], seed: int
) -> None:
    _kill9_scenario(db_url, log_dir, make_daemon, seed, kills=20)


# ---------------------------------------------------------------- 2. SIGTERM / SIGINT


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_sigterm_stops_gracefully_exit_0(
    db_url: str,
    lw_dir: Path,
    make_daemon: Callable[..., DaemonProcess],
    seed: int,
    sig: signal.Signals,
) -> None:
    writer = LineWriter(lw_dir, seed=seed)
    writer.burst(100, "alpha")
    daemon = make_daemon(lw_dir).start()
    writer.start()
    wait_for(lambda: lines_read_total(db_url) >= 100, 30, "first lines to be read", daemon=daemon)
    time.sleep(random.Random(seed).uniform(0.0, 2 * POLL_INTERVAL))
    t0 = time.monotonic()
    try:
        code = daemon.term(timeout=10.0, sig=sig)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{sig.name}: daemon still running after 10 s; stderr:\n{daemon.stderr}")
    elapsed = time.monotonic() - t0
    writer.stop()
    assert code == 0, f"{sig.name}: exit code {code}; stderr:\n{daemon.stderr[-3000:]}"
    assert "Traceback" not in daemon.stderr, daemon.stderr[-3000:]
    assert elapsed < 10.0
    # State is consistent: a new daemon takes over from exactly where the old one stopped.
    daemon.start()
    wait_until_drained(db_url, lw_dir, timeout=30, daemon=daemon)
    assert_exactly_once(db_url, lw_dir, writer, seed)
    daemon.wait_ready()
    assert daemon.term() == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_during_startup_exits_cleanly(
    db_url: str, lw_dir: Path, make_daemon: Callable[..., DaemonProcess], sig: signal.Signals
) -> None:
    """A service manager may stop the daemon at any moment, also while it is still starting
    (importing, upgrading the schema): it exits 0, with no traceback, like any graceful stop."""
    LineWriter(lw_dir, ["alpha"]).burst(5, "alpha")
    daemon = make_daemon(lw_dir).start()
    time.sleep(0.5)  # the interpreter is up, the daemon not ready yet
    assert daemon.alive and "watching" not in daemon.stderr, "started too fast to test this"
    code = daemon.term(timeout=10.0, sig=sig)
    assert "Traceback" not in daemon.stderr, daemon.stderr[-3000:]
    assert code == 0, f"{sig.name} during start-up: exit code {code}; stderr:\n{daemon.stderr}"


# ---------------------------------------------------------------- 3. single instance


def test_second_instance_refuses_to_start(
    db_url: str, lw_dir: Path, make_daemon: Callable[..., DaemonProcess], seed: int
) -> None:
    writer = LineWriter(lw_dir, seed=seed)
    writer.burst(20, "alpha")
    first = make_daemon(lw_dir, "first").start()
    wait_until_drained(db_url, lw_dir, timeout=30, daemon=first)

    def refused(second: DaemonProcess) -> None:
        try:
            code = second.wait(30.0)
        except subprocess.TimeoutExpired:
            pytest.fail("second instance is still running after 30 s; it should refuse")
        err = second.stderr
        lines = err.strip().splitlines()
        assert code != 0, err
        assert "Traceback" not in err, err
        assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
        assert lines[0].startswith("Error:") and "already running" in lines[0], err

    refused(make_daemon(lw_dir, "second").start())
    # Still refused while the first one is frozen (SIGSTOP): the lock is held by the process,
    # not by its activity.
    first.pause()
    try:
        refused(make_daemon(lw_dir, "third").start())
    finally:
        first.resume()
    # The first daemon was not disturbed: it keeps reading, and stops cleanly.
    writer.burst(10, "alpha")
    wait_until_drained(db_url, lw_dir, timeout=30, daemon=first)
    assert first.term() == 0
    assert_exactly_once(db_url, lw_dir, writer, seed)


@pytest.fixture
def other_db_url(db_url: str, tmp_path: Path) -> Iterator[str]:
    """A second, separate database of the same kind: another SQLite file, or another schema."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'other.db'}"
        return
    with private_pg_url() as url:
        yield url


def test_instance_lock_is_per_database(
    db_url: str,
    other_db_url: str,
    tmp_path: Path,
    make_daemon: Callable[..., DaemonProcess],
    seed: int,
) -> None:
    """Two daemons with the same node name on two separate databases (SQLite files, or
    PostgreSQL schemas chosen in the URL, as conftest and multi-tenant set-ups do) both run."""
    one, two = tmp_path / "logs-one", tmp_path / "logs-two"
    LineWriter(one, ["alpha"], seed=seed).burst(10, "alpha")
    LineWriter(two, ["alpha"], seed=seed).burst(10, "alpha")
    first = make_daemon(one, "one").start()
    wait_until_drained(db_url, one, timeout=30, daemon=first)
    second = make_daemon(two, "two", url=other_db_url).start()
    wait_until_drained(other_db_url, two, timeout=30, daemon=second)
    assert first.term() == 0 and second.term() == 0


# ---------------------------------------------------------------- 4. partial lines


def test_partial_line_waits_for_newline(
    db_url: str, lw_dir: Path, make_daemon: Callable[..., DaemonProcess], seed: int
) -> None:
    writer = LineWriter(lw_dir, ["alpha"], seed=seed)
    writer.burst(30, "alpha")
    path = writer.path("alpha")
    daemon = make_daemon(lw_dir).start()
    files = wait_until_drained(db_url, lw_dir, timeout=30, daemon=daemon)
    row = active_by_path(files)[os.path.realpath(path)]
    assert (row["lines_read"], row["offset"]) == (30, path.stat().st_size)
    complete_size = path.stat().st_size

    writer.write_partial("alpha")
    assert path.stat().st_size > complete_size
    time.sleep(6 * POLL_INTERVAL)  # several polls see the partial line
    _, files = _report(db_url)
    row = active_by_path(files)[os.path.realpath(path)]
    assert row["lines_read"] == 30, "a line without its newline was counted"
    assert row["offset"] == complete_size, "offset committed past the last newline"

    writer.finish_partial()
    writer.burst(2, "alpha")
    files = wait_until_drained(db_url, lw_dir, timeout=30, daemon=daemon)
    row = active_by_path(files)[os.path.realpath(path)]
    assert row["lines_read"] == 33
    assert daemon.term() == 0
    assert_exactly_once(db_url, lw_dir, writer, seed)


def _report(db_url: str) -> tuple[list[Anomaly], list[dict[str, Any]]]:
    from logwatch.storage import Store

    store = Store(db_url)
    try:
        return store.anomalies(), store.files_report()
    finally:
        store.close()


# ---------------------------------------------------------------- 5. restart


def test_restart_resumes_without_reread(
    db_url: str, lw_dir: Path, make_daemon: Callable[..., DaemonProcess], seed: int
) -> None:
    writer = LineWriter(lw_dir, ["alpha", "beta"], seed=seed, unusual_every=40)
    writer.burst(150, "alpha")
    writer.burst(150, "beta")
    daemon = make_daemon(lw_dir).start()
    wait_until_drained(db_url, lw_dir, timeout=30, daemon=daemon)
    assert daemon.term() == 0, daemon.stderr
    anomalies_before, files_before = _report(db_url)
    read_before = sum(f["lines_read"] for f in files_before)
    assert read_before == 300

    daemon.start()
    daemon.wait_ready()
    writer.burst(10, "alpha")
    files_after = wait_until_drained(db_url, lw_dir, timeout=30, daemon=daemon)
    assert daemon.term() == 0, daemon.stderr
    assert sum(f["lines_read"] for f in files_after) == read_before + 10
    report = assert_exactly_once(db_url, lw_dir, writer, seed)
    by_id = {a.id: a for a in report.anomalies}
    for old in anomalies_before:  # none re-detected, none changed
        assert by_id.get(old.id) == old
    assert all(
        a.line > 150 for a in report.anomalies if a.id not in {o.id for o in anomalies_before}
    )


# ---------------------------------------------------------------- 6. missing log directory


def test_missing_log_dir_is_one_line_error(db_url: str, tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent"
    env = daemon_env(tmp_path / "state", LOGWATCH_DB_URL=db_url)
    result = run_cli(["--log_dir", str(missing)], cwd=tmp_path, env=env, timeout=60)
    lines = result.stderr.splitlines()
    assert result.returncode == 1, result.stderr
    assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    assert lines[0].startswith("Error:"), lines[0]
    assert str(missing) in lines[0], lines[0]
    assert result.stdout == ""


def test_the_daemon_collects_young_objects_less_often_but_never_turns_the_collector_on(
    tmp_path: Path,
) -> None:
    saved = gc.get_threshold()
    store = Store(f"sqlite:///{tmp_path / 'gc.db'}")
    try:
        store.upgrade()
        gc.set_threshold(700, 10, 10)
        stop = threading.Event()
        stop.set()  # the daemon sets itself up, polls nothing and returns
        run_daemon(Config(log_dir=tmp_path, db_url=store.url), store, node="gc", stop=stop)
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, 10, 10)
        gc.set_threshold(50_000, 5, 20)  # someone's higher setting is kept, and the older ones
        tune_collector()
        assert gc.get_threshold() == (50_000, 5, 20)
        gc.set_threshold(0, 10, 10)  # collector switched off: stays off
        tune_collector()
        assert gc.get_threshold() == (0, 10, 10)
    finally:
        gc.set_threshold(*saved)
        store.close()
