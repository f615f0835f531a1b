"""Database outages and hostile input, end to end with real processes (RELIABILITY rows 17-19, 23).

- Row 23: the daemon's PostgreSQL (a throwaway cluster, tests/pg_cluster.py) is stopped while lines
  keep coming: the daemon stays up with bounded memory, backs off, and resumes by itself with
  exactly-once results once the server is back.
- Row 18: random binary garbage, NUL bytes, a JSON ``\\u0000`` escape, invalid UTF-8.
- Row 19: UTF-8 with BOM, Latin-1, UTF-16 with BOM.
- Row 17: a 30 MB (200 MB when slow) line under an address-space limit.

Randomised tests print their seed; rerun one with LOGWATCH_TEST_SEED=<seed>.
"""

from __future__ import annotations

import json
import os
import random
import re
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_harness import (
    VMSTAT_WRAPPER,
    DaemonProcess,
    LineWriter,
    daemon_env,
    exactly_once_problems,
    lines_read_total,
    read_vmstat,
    run_cli,
    wait_for,
    wait_until_drained,
)
from pg_cluster import PgCluster, throwaway_cluster

from logwatch.decide import MAX_TEXT_CHARS
from logwatch.storage import Store

pytestmark = pytest.mark.usefixtures("hang_guard")

ROOT = Path(__file__).resolve().parents[1]
MAX_LINE_BYTES = 64 * 1024  # Config.max_line_bytes (the default the daemon runs with)
RSS_GROWTH_LIMIT_KB = 50 * 1024  # row 23: memory may not grow with the length of the outage
BACKOFF_CAP = 30.0  # daemon.Backoff.cap
_RETRY = re.compile(r"database problem \((.*)\); degraded, retrying in ([0-9.]+) s")


@pytest.fixture
def cluster() -> Iterator[PgCluster]:
    """A running PostgreSQL cluster of this test's own; stopped and removed afterwards."""
    with throwaway_cluster() as pg:
        yield pg


@pytest.fixture
def make_daemon(tmp_path: Path) -> Iterator[Callable[..., DaemonProcess]]:
    """DaemonProcess factory (one node name per test); every daemon is killed at teardown."""
    made: list[DaemonProcess] = []
    node = f"test-{uuid.uuid4().hex[:10]}"

    def make(log_dir: Path, url: str, name: str = "daemon") -> DaemonProcess:
        d = DaemonProcess(log_dir=log_dir, db_url=url, work_dir=tmp_path / name, node=node)
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()


def _vm_kb(pid: int, field: str = "VmRSS") -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _retries(stderr: str) -> list[tuple[str, float]]:
    """The daemon's 'degraded, retrying in X s' warnings: (reason, delay)."""
    return [(m.group(1), float(m.group(2))) for m in _RETRY.finditer(stderr)]


def _status(url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(
        ["status", "--db-url", url, "--format", "json"],
        cwd=cwd,
        env=daemon_env(cwd / "state"),
        timeout=60,
    )


# ---------------------------------------------------------------- row 23: PostgreSQL outage


def _outage_scenario(
    cluster: PgCluster,
    lw_dir: Path,
    tmp_path: Path,
    make_daemon: Callable[..., DaemonProcess],
    seed: int,
    outage: float,
) -> None:
    url = cluster.url
    writer = LineWriter(lw_dir, seed=seed)
    for key in writer.keys:
        writer.burst(120, key)
    daemon = make_daemon(lw_dir, url).start()
    daemon.wait_ready()
    wait_until_drained(url, lw_dir, timeout=60, daemon=daemon)
    pid = daemon.pid
    writer.start(pause=(0.05, 0.2))
    before = lines_read_total(url)
    wait_for(lambda: lines_read_total(url) > before, 30, "live progress", daemon=daemon)

    rss_start = _vm_kb(pid)
    assert rss_start is not None
    rss: list[int] = [rss_start]
    cluster.stop("immediate")
    t_stop = time.monotonic()
    written_at_stop = writer.total
    # While the server is down, `logwatch status` fails cleanly too (one line, no traceback).
    down = _status(url, tmp_path)
    assert down.returncode == 1, (down.returncode, down.stdout, down.stderr)
    assert "Traceback" not in down.stderr and len(down.stderr.splitlines()) == 1, down.stderr
    assert down.stderr.startswith("Error:"), down.stderr
    while time.monotonic() - t_stop < outage:
        if not daemon.alive:
            pytest.fail(
                f"seed {seed}: daemon exited ({daemon.proc.returncode if daemon.proc else None})"
                f" {time.monotonic() - t_stop:.1f}s into the outage; stderr:\n"
                f"{daemon.stderr[-3000:]}"
            )
        sample = _vm_kb(pid)
        if sample is not None:
            rss.append(sample)
        time.sleep(0.25)
    written_during = writer.total - written_at_stop
    assert written_during > 0, "the writer wrote nothing during the outage"
    assert daemon.alive and daemon.pid == pid

    cluster.start()
    t_up = time.monotonic()
    time.sleep(1.0)  # lines keep coming across the restart too
    writer.stop()
    # The back-off can have grown to min(cap, 2^k) s during the outage: allow a full cap and more.
    wait_until_drained(url, lw_dir, timeout=BACKOFF_CAP + 60, daemon=daemon)
    recovered_after = time.monotonic() - t_up
    report = exactly_once_problems(url, lw_dir, writer)
    assert report.problems == [], f"seed {seed}: exactly-once violated:\n" + "\n".join(
        report.problems
    )
    assert daemon.alive and daemon.pid == pid, "the daemon was replaced, not recovered"

    growth = max(rss) - rss_start
    print(
        f"outage {outage:.0f}s: {written_during} lines written meanwhile; RSS {rss_start} kB at "
        f"the stop, max {max(rss)} kB (+{growth} kB) over {len(rss)} samples; drained "
        f"{recovered_after:.1f}s after the restart"
    )
    assert growth < RSS_GROWTH_LIMIT_KB, f"RSS grew by {growth} kB during a {outage:.0f}s outage"

    # What is observable of the degraded state: the warnings on stderr (the database, where
    # `status` reads the health row, is exactly what is down), with capped, non-spinning delays.
    err = daemon.stderr
    assert "Traceback" not in err, err[-3000:]
    retries = _retries(err)
    print(f"{len(retries)} retries, delays {[d for _, d in retries]}")
    assert retries, f"no 'degraded, retrying' warning during the outage; stderr:\n{err[-3000:]}"
    assert all(0.0 <= d <= BACKOFF_CAP for _, d in retries), retries
    # Exponential back-off: about log2(outage) + a few attempts, not one per poll interval.
    assert len(retries) <= 5 + 2 * outage**0.5 + outage / 4, f"{len(retries)} retries: {retries}"

    # After recovery `status` works again and shows this daemon running, same pid.
    up = _status(url, tmp_path)
    assert up.returncode == 0, up.stderr
    (status,) = json.loads(up.stdout)
    mine = [d for d in status["daemons"] if d["node"] == daemon.node]
    assert mine and mine[0]["state"] == "running" and mine[0]["pid"] == pid, status
    print(f"status after recovery: {mine[0]}")
    # ... and that it went through the degraded state (recorded once the database is back).
    assert "degraded" in (mine[0]["last_error"] or ""), mine[0]
    assert "database is back" in err, err[-3000:]
    assert daemon.term() == 0, daemon.stderr[-3000:]


def test_pg_outage_daemon_survives_and_resumes_exactly_once(
    cluster: PgCluster,
    tmp_path: Path,
    make_daemon: Callable[..., DaemonProcess],
    seed: int,
) -> None:
    _outage_scenario(cluster, tmp_path / "lw-logs", tmp_path, make_daemon, seed, outage=10.0)


@pytest.mark.slow
def test_pg_outage_daemon_survives_and_resumes_exactly_once_soak(
    cluster: PgCluster,
    tmp_path: Path,
    make_daemon: Callable[..., DaemonProcess],
    seed: int,
) -> None:
    _outage_scenario(cluster, tmp_path / "lw-logs", tmp_path, make_daemon, seed, outage=30.0)


def test_pg_down_at_startup_is_one_line_error(
    tmp_path: Path, make_daemon: Callable[..., DaemonProcess]
) -> None:
    """Start-up against a server that is down: exit 1 with one 'Error:' line, no traceback."""
    lw_dir = tmp_path / "lw-logs"
    LineWriter(lw_dir, ["alpha"]).burst(10, "alpha")
    with throwaway_cluster(started=False) as pg:
        daemon = make_daemon(lw_dir, pg.url).start()
        try:
            code = daemon.wait(45.0)
        except subprocess.TimeoutExpired:
            pytest.fail(f"daemon neither exited nor failed in 45 s; stderr:\n{daemon.stderr}")
        err = daemon.stderr
        print(f"exit code {code}; stderr: {err!r}")
        assert "Traceback" not in err, err
        assert code == 1, err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error:"), err
        assert str(pg.port) in lines[0] or "reach" in lines[0], err


def test_sigterm_during_pg_outage_exits_0(
    cluster: PgCluster, tmp_path: Path, make_daemon: Callable[..., DaemonProcess], seed: int
) -> None:
    """Stopping the daemon while it is backing off from a dead server is still graceful."""
    lw_dir = tmp_path / "lw-logs"
    writer = LineWriter(lw_dir, ["alpha"], seed=seed)
    writer.burst(50, "alpha")
    daemon = make_daemon(lw_dir, cluster.url).start()
    daemon.wait_ready()
    wait_until_drained(cluster.url, lw_dir, timeout=60, daemon=daemon)
    cluster.stop("fast")
    writer.burst(20, "alpha")
    wait_for(lambda: _retries(daemon.stderr), 30, "the first retry warning", daemon=daemon)
    t0 = time.monotonic()
    code = daemon.term(timeout=15.0)
    elapsed = time.monotonic() - t0
    assert "Traceback" not in daemon.stderr, daemon.stderr[-3000:]
    assert code == 0, daemon.stderr[-3000:]
    assert elapsed < 10.0, f"took {elapsed:.1f}s to stop"
    # Nothing was lost: the next daemon reads the 20 lines written during the outage, once.
    cluster.start()
    daemon.start()
    wait_until_drained(cluster.url, lw_dir, timeout=60, daemon=daemon)
    report = exactly_once_problems(cluster.url, lw_dir, writer)
    assert report.problems == [], "\n".join(report.problems)
    daemon.wait_ready()
    assert daemon.term() == 0


def test_instance_lock_survives_pg_restart(
    cluster: PgCluster, tmp_path: Path, make_daemon: Callable[..., DaemonProcess], seed: int
) -> None:
    """The single-instance lock (a session-level advisory lock on PostgreSQL) dies with the
    server's sessions. After the server comes back, the running daemon must still be the only
    one: a second daemon for the same node and database must refuse to start (row 27)."""
    lw_dir = tmp_path / "lw-logs"
    writer = LineWriter(lw_dir, ["alpha"], seed=seed)
    writer.burst(30, "alpha")
    first = make_daemon(lw_dir, cluster.url, "first").start()
    first.wait_ready()
    wait_until_drained(cluster.url, lw_dir, timeout=60, daemon=first)
    cluster.stop("fast")
    writer.burst(10, "alpha")  # an idle daemon does not touch the database: give it work
    wait_for(lambda: _retries(first.stderr), 30, "the first retry warning", daemon=first)
    cluster.start()
    wait_until_drained(cluster.url, lw_dir, timeout=BACKOFF_CAP + 30, daemon=first)
    second = make_daemon(lw_dir, cluster.url, "second").start()
    # It either refuses (exits) or gets past the lock and says it is watching.
    wait_for(lambda: not second.alive or "watching" in second.stderr, 45, "the second daemon")
    code = second.proc.poll() if second.proc else None
    assert code is not None and code != 0, (
        "a second daemon for the same node started after a PostgreSQL restart: the first one's "
        f"advisory lock was lost with its session and never re-acquired; second's stderr:\n"
        f"{second.stderr[-2000:]}"
    )
    assert "already running" in second.stderr, second.stderr
    assert first.alive
    assert first.term() == 0


# ---------------------------------------------------------------- helpers for --once runs


def _once(
    log_dir: Path, url: str, cwd: Path, *, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    result = run_cli(
        ["run", "--once", "--log-dir", str(log_dir), "--db-url", url],
        cwd=cwd,
        env=daemon_env(cwd / "state"),
        timeout=timeout,
    )
    assert "Traceback" not in result.stderr, result.stderr[-4000:]
    return result


def _db(url: str) -> tuple[list[dict[str, Any]], list[Any], list[dict[str, Any]]]:
    store = Store(url)
    try:
        return store.files_report(), store.anomalies(), store.templates_report()
    finally:
        store.close()


def _expected_lines(data: bytes) -> list[tuple[int, bytes]]:
    """(offset, raw bytes without '\\n') of every line, the last one even without a '\\n' (what
    --once reads: a file at rest is final)."""
    out, pos = [], 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        end = len(data) if nl < 0 else nl
        out.append((pos, data[pos:end]))
        pos = end + 1
    return out


def _line_text(offset: int, raw: bytes) -> str:
    """How the reader should present a line: BOM dropped at offset 0, one '\\r' stripped,
    UTF-8 with replacement, NUL shown as U+FFFD, cut to max_line_bytes and MAX_TEXT_CHARS."""
    if offset == 0 and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    text = raw[:MAX_LINE_BYTES].decode("utf-8", "replace").replace("\x00", "\ufffd")
    return text[:MAX_TEXT_CHARS]


def _check_file(path: Path, files: list[dict[str, Any]], anomalies: list[Any]) -> list[str]:
    """Every line of ``path`` counted exactly once; anomalies point at real lines, without NUL."""
    data = path.read_bytes()
    lines = _expected_lines(data)
    problems = []
    rows = [f for f in files if os.path.realpath(f["path"]) == os.path.realpath(path)]
    if len(rows) != 1:
        return [f"{path.name}: {len(rows)} rows: {rows}"]
    (row,) = rows
    if row["lines_read"] != len(lines):
        problems.append(f"{path.name}: lines_read {row['lines_read']} != {len(lines)} lines")
    if row["offset"] != len(data):
        problems.append(f"{path.name}: offset {row['offset']} != size {len(data)}")
    starts = dict(lines)
    for a in anomalies:
        if os.path.realpath(a.path) != os.path.realpath(path):
            continue
        if "\x00" in a.text or "\x00" in a.template:
            problems.append(f"{path.name}:{a.line}: NUL stored: {a.text[:80]!r}")
        raw = starts.get(a.offset)
        if raw is None:
            problems.append(f"{path.name}:{a.line}: offset {a.offset} is not a line start")
            continue
        expected = _line_text(a.offset, raw)
        if not a.text.startswith(expected[:200]):
            problems.append(f"{path.name}:{a.line}: text {a.text[:80]!r} != {expected[:80]!r}")
    return problems


# ---------------------------------------------------------------- row 18: garbage and NUL


def _garbage_file(path: Path, seed: int) -> int:
    """Sentinel lines between random binary blocks (with '\\n', '\\r', NUL in them), NUL-in-the-
    middle lines, a JSON line with a \\u0000 escape, invalid UTF-8. Returns the sentinel count."""
    rng = random.Random(seed)
    parts: list[bytes] = []
    sentinels = 0
    for i in range(40):
        parts.append(b"2024-03-01 12:00:%02d INFO sentinel %d ok\n" % (i % 60, i))
        sentinels += 1
        size = rng.choice((1, 17, 300, 4096, 65536 if i % 10 == 0 else 2000))
        block = rng.randbytes(size)
        parts.append(block + b"\n")
        if i % 5 == 0:
            parts.append(b"ERROR request failed \x00 in the middle\x00\x00 of it id=%d\n" % i)
            parts.append(
                b'{"level":"error","msg":"nul \\u0000 escape %d","k\\u0000":"v\\u0000"}\n' % i
            )
            parts.append(
                b"invalid utf-8 \xff\xfe\xc3\x28 \xed\xa0\x80 \xf4\x90\x80\x80 id=%d\n" % i
            )
            parts.append(b"\x00" * 32 + b"\n")
            parts.append(b"\x00\n\r\n\n")
    parts.append(b"2024-03-01 12:01:00 FATAL final sentinel \x00 without newline")
    path.write_bytes(b"".join(parts))
    return sentinels + 1


def test_binary_garbage_and_nul_bytes(db_url: str, tmp_path: Path, seed: int) -> None:
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    path = log_dir / "garbage.log"
    _garbage_file(path, seed)
    first = _once(log_dir, db_url, tmp_path)
    assert first.returncode == 0, first.stderr[-4000:]
    files, anomalies, templates = _db(db_url)
    problems = _check_file(path, files, anomalies)
    problems += [
        f"template with NUL: {t['template'][:80]!r}" for t in templates if "\x00" in t["template"]
    ]
    assert problems == [], f"seed {seed}:\n" + "\n".join(problems)
    print(f"{len(anomalies)} anomalies; {first.stdout.strip()}")


def test_json_lone_surrogate_escape_does_not_crash(db_url: str, tmp_path: Path) -> None:
    """A JSON line whose string holds an escaped lone surrogate (\\ud800) is valid JSON, and
    json.loads returns a str that cannot be encoded as UTF-8 (RELIABILITY row 19: lone surrogates).
    It must be stored like any other line, not crash the run."""
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    path = log_dir / "app.log"
    lines = [b'{"level":"info","msg":"request %d served"}' % i for i in range(30)]
    lines.append(b'{"level":"error","msg":"lone \\ud800 surrogate","user":"\\udfff"}')
    lines += [b'{"level":"info","msg":"request %d served"}' % i for i in range(30, 40)]
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = _once(log_dir, db_url, tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    files, anomalies, _ = _db(db_url)
    problems = _check_file(path, files, anomalies)
    assert problems == [], "\n".join(problems)


# ---------------------------------------------------------------- row 19: encodings

_TEXT = [
    "2024-03-01 12:00:00 INFO café crème brûlée served to user zoë",
    "2024-03-01 12:00:01 WARN naïve façade of the Æther — 50 €",
    "2024-03-01 12:00:02 INFO plain ascii line id=42",
] * 10 + ["2024-03-01 12:00:03 ERROR Größenüberschreitung in Straße"]


def test_encodings_bom_latin1_utf16(db_url: str, tmp_path: Path) -> None:
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    body = "\n".join(_TEXT) + "\n"
    encoded = {
        "utf8bom.log": b"\xef\xbb\xbf" + body.encode("utf-8"),
        "latin1.log": body.encode("latin-1", "replace"),  # '€' and '—' become '?'
        "utf16.log": body.encode("utf-16"),  # BOM + UTF-16-LE on this platform
        "utf16crlf.log": body.replace("\n", "\r\n").encode("utf-16-le"),
    }
    for name, data in encoded.items():
        (log_dir / name).write_bytes(data)
    result = _once(log_dir, db_url, tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    files, anomalies, templates = _db(db_url)
    problems = []
    for name in encoded:
        problems += _check_file(log_dir / name, files, anomalies)
    problems += [
        f"template with NUL: {t['template'][:80]!r}" for t in templates if "\x00" in t["template"]
    ]
    # UTF-8 with BOM: decoded exactly, BOM dropped (only at offset 0).
    bom_row = next(f for f in files if f["path"].endswith("utf8bom.log"))
    assert bom_row["lines_read"] == len(_TEXT)
    for a in anomalies:
        if a.path.endswith("utf8bom.log"):
            assert a.text in _TEXT, a.text
    # How UTF-16 comes out (reported, not required): every '\n' byte ends a line, so each line
    # but the first starts with the 0x00 high byte of U+000A; NULs become U+FFFD.
    shown = {a.path.rsplit("/", 1)[-1]: a.text[:60] for a in anomalies}
    print(f"anomalies per file (first text): {shown}")
    print("templates:", sorted({(t["stream"], t["template"][:60]) for t in templates})[:12])
    assert problems == [], "\n".join(problems)


# ---------------------------------------------------------------- row 17: a very long line

AFTER_LINES = 300  # so that one FATAL line is under 1% of the stream: an anomaly
AS_HEADROOM_MB = 64  # address space allowed beyond a normal run: < 3 copies of a 30 MB line


def _run_measured(
    log_dir: Path, url: str, cwd: Path, name: str, as_limit_kb: int | None
) -> tuple[subprocess.CompletedProcess[str], dict[str, int]]:
    stat_file = cwd / f"{name}.vmstat"

    def limit() -> None:
        if as_limit_kb is not None:
            resource.setrlimit(resource.RLIMIT_AS, (as_limit_kb * 1024, as_limit_kb * 1024))

    result = subprocess.run(
        [sys.executable, "-c", VMSTAT_WRAPPER, "run", "--once", "--log-dir", str(log_dir),
         "--db-url", url],
        cwd=cwd,
        env=daemon_env(cwd / "state", LW_TEST_VMSTAT=str(stat_file)),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=limit,
        start_new_session=True,
    )  # fmt: skip
    return result, read_vmstat(stat_file)


def _write_long_line_logs(log_dir: Path, long_mb: int | None) -> int:
    """30 normal lines, a FATAL line of ``long_mb`` MiB (written 1 MiB at a time), then
    AFTER_LINES normal lines;
    returns the long line's byte offset."""
    log_dir.mkdir()
    with open(log_dir / "app.log", "wb") as fh:
        for i in range(30):
            fh.write(b"2024-03-01 12:00:00 INFO before %d ok\n" % i)
        long_offset = fh.tell()
        if long_mb:
            fh.write(b"2024-03-01 12:00:01 FATAL huge payload ")
            chunk = (b"0123456789abcdef" * 65536)[: 1 << 20]
            for _ in range(long_mb):
                fh.write(chunk)
            fh.write(b"\n")
        for i in range(AFTER_LINES):
            fh.write(b"2024-03-01 12:00:02 INFO after %d ok\n" % i)
    return long_offset


def _long_line_scenario(tmp_path: Path, long_mb: int) -> None:
    url = f"sqlite:///{tmp_path / 'logwatch.db'}"
    base_dir, long_dir = tmp_path / "base", tmp_path / "long"
    _write_long_line_logs(base_dir, None)
    long_offset = _write_long_line_logs(long_dir, long_mb)
    base, base_vm = _run_measured(
        base_dir, f"sqlite:///{tmp_path / 'base.db'}", tmp_path, "base", None
    )
    assert base.returncode == 0 and base_vm, base.stderr[-3000:]
    as_limit = base_vm["VmPeak"] + AS_HEADROOM_MB * 1024
    run, vm = _run_measured(long_dir, url, tmp_path, "long", as_limit)
    print(
        f"{long_mb} MB line: normal run VmPeak {base_vm['VmPeak'] // 1024} MB, VmHWM "
        f"{base_vm['VmHWM'] // 1024} MB; RLIMIT_AS {as_limit // 1024} MB; long-line run "
        f"{ {k: v // 1024 for k, v in vm.items()} } MB; exit {run.returncode}"
    )
    assert "Traceback" not in run.stderr and "MemoryError" not in run.stderr, run.stderr[-3000:]
    assert run.returncode == 0, run.stderr[-3000:]
    assert vm["VmHWM"] - base_vm["VmHWM"] < 48 * 1024, (
        f"peak RSS grew {vm['VmHWM'] - base_vm['VmHWM']} kB"
    )

    path = long_dir / "app.log"
    size = path.stat().st_size
    files, anomalies, templates = _db(url)
    (row,) = files
    assert row["lines_read"] == 30 + 1 + AFTER_LINES, (
        row
    )  # the long line counted once, its neighbours too
    assert row["offset"] == size and row["status"] == "active", row
    assert row["events_read"] == 30 + 1 + AFTER_LINES, row
    # The lines after it were read as lines of their own (one template, 50 events).
    after = [t for t in templates if "after" in t["template"]]
    assert [t["count"] for t in after] == [AFTER_LINES], after
    before = [t for t in templates if "before" in t["template"]]
    assert [t["count"] for t in before] == [30], before
    # The FATAL line is the stream's one anomaly, its text cut (never the whole line).
    (a,) = anomalies
    print(f"the long line is anomaly #{a.id}: {len(a.text)} chars, reasons {a.reasons}")
    assert (a.offset, a.line) == (long_offset, 31), a
    assert a.text.startswith("2024-03-01 12:00:01 FATAL huge payload 0123456789abcdef"), a.text[:80]
    assert len(a.text) <= min(MAX_LINE_BYTES, MAX_TEXT_CHARS), len(a.text)
    huge = [t for t in templates if "huge" in t["template"]]
    assert all(len(t["template"]) <= MAX_LINE_BYTES for t in huge), [
        len(t["template"]) for t in huge
    ]
    print(f"long-line template(s): {[(t['count'], len(t['template'])) for t in huge]}")
    # Run again (a restart): nothing is read twice.
    again = _once(long_dir, url, tmp_path, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    files2, anomalies2, _ = _db(url)
    assert files2 == files and len(anomalies2) == len(anomalies)


def test_very_long_line_under_memory_limit(tmp_path: Path) -> None:
    _long_line_scenario(tmp_path, 30)


@pytest.mark.slow
def test_very_long_line_under_memory_limit_200mb(tmp_path: Path) -> None:
    _long_line_scenario(tmp_path, 200)


def test_long_line_record_says_it_was_truncated(tmp_path: Path) -> None:
    """Row 17: a line over max_line_bytes gives one record *flagged* as truncated (RELIABILITY:
    "emit one truncated record (flag + original length)"). The reader flags it
    (RawLine.truncated, Event.truncated); what is stored must show it too, or a reader of
    `logwatch anomalies` takes the cut text for the whole line."""
    url = f"sqlite:///{tmp_path / 'logwatch.db'}"
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    lines = [b"2024-03-01 12:00:00 INFO request %d served ok" % i for i in range(300)]
    lines.insert(100, b"2024-03-01 12:00:01 FATAL huge payload " + b"x" * (3 * MAX_LINE_BYTES))
    (log_dir / "app.log").write_bytes(b"\n".join(lines) + b"\n")
    result = _once(log_dir, url, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    files, anomalies, _ = _db(url)
    assert files[0]["lines_read"] == 301
    long = [a for a in anomalies if a.line == 101]
    assert len(long) == 1, [(a.line, a.reasons) for a in anomalies]
    (a,) = long
    shown = " ".join(a.reasons) + " " + a.text[-200:]
    assert "truncat" in shown.lower(), (
        f"the stored record of a {len(lines[100])}-byte line cut to {len(a.text)} chars does not "
        f"say it was truncated (reasons {a.reasons}, text ends {a.text[-30:]!r})"
    )
