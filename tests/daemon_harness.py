"""Real-process harness for daemon tests (RELIABILITY.md §5).

- ``LineWriter``: appends self-checking numbered lines
  ``LW|<file_key>|<seq:010d>|<len:05d>|<payload>|<crc32:08x>\\n`` to ``<file_key>.log`` files in
  bursts, sometimes split mid-line across two writes, with occasional unusual lines injected so the
  detector has something to find. It can run in a background thread.
- ``DaemonProcess``: ``python -m logwatch run ...`` as a subprocess in its own session: start,
  kill -9, SIGTERM/SIGINT with exit-code capture, SIGSTOP/SIGCONT, stderr capture.
- ``wait_until_drained``: polls the database until every active file's offset equals its size.
- ``exactly_once_problems``: the oracle, read from the database and the files on disk.

Every wait has a timeout: a hung daemon fails the test, it never hangs it.
"""

from __future__ import annotations

import fnmatch
import os
import random
import signal
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from logwatch.storage import Store
from logwatch.watcher import DEFAULT_INCLUDE

POLL_INTERVAL = 0.2

_WORDS = (
    "user", "session", "request", "served", "cache", "hit", "miss", "ok", "GET", "POST",
    "/api/v1/items", "/login", "/health", "status=200", "status=204", "bytes", "took", "ms",
)  # fmt: skip
_UNUSUAL = (
    "FATAL kernel: BUG unable to handle page fault at ffff8800deadbeef, Oops: 0002 [#1] SMP",
    "CRITICAL disk controller sda reported uncorrectable media error; array degraded",
    "FATAL out of memory: killed process 4242 (postgres) total-vm:8123456kB, anon-rss:7000000kB",
    "CRITICAL segfault in libssl.so.3 at 0x00007f3c2a1b; core dumped to /var/crash/core.1337",
)


# ---------------------------------------------------------------- self-checking lines


def make_line(file_key: str, seq: int, payload: str) -> bytes:
    """One complete numbered line, with its own length and CRC32 (of everything before the CRC)."""
    body = f"LW|{file_key}|{seq:010d}|{len(payload.encode()):05d}|{payload}|"
    crc = zlib.crc32(body.encode()) & 0xFFFFFFFF
    return f"{body}{crc:08x}\n".encode()


def check_line(raw: bytes) -> tuple[str, int] | None:
    """``(file_key, seq)`` of a well-formed numbered line (without or with its '\\n'), else None."""
    text = raw.rstrip(b"\n").decode("utf-8", "replace")
    head, sep, crc = text.rpartition("|")
    if not sep or f"{zlib.crc32((head + '|').encode()) & 0xFFFFFFFF:08x}" != crc:
        return None
    parts = head.split("|", 4)
    if len(parts) != 5 or parts[0] != "LW":
        return None
    _, key, seq, length, payload = parts
    if len(payload.encode()) != int(length):
        return None
    return key, int(seq)


def read_lines_with_offsets(path: Path) -> list[tuple[int, bytes]]:
    """Complete lines of ``path`` as (byte offset of the line start, bytes without '\\n')."""
    data = path.read_bytes()
    out: list[tuple[int, bytes]] = []
    pos = 0
    while True:
        nl = data.find(b"\n", pos)
        if nl < 0:
            return out
        out.append((pos, data[pos:nl]))
        pos = nl + 1


class LineWriter:
    """Appends numbered lines to ``<dir>/<key>.log``; remembers how many it wrote per file.

    Thread-safe enough for one background thread plus foreground calls: each call to ``burst`` (or
    ``write_partial``) holds a lock, so a split line is always finished before anyone else writes.
    """

    def __init__(
        self,
        log_dir: Path,
        keys: Iterable[str] = ("alpha", "beta", "gamma"),
        *,
        seed: int = 0,
        unusual_every: int = 60,
        split_chance: float = 0.15,
    ) -> None:
        self.dir = Path(log_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.keys = list(keys)
        self.rng = random.Random(seed)
        self.unusual_every = unusual_every
        self.split_chance = split_chance
        self.written: dict[str, int] = {k: 0 for k in self.keys}
        self.unusual: dict[str, list[int]] = {k: [] for k in self.keys}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._pending: tuple[str, bytes] | None = None  # a line written without its end yet
        self.error: BaseException | None = None

    def path(self, key: str) -> Path:
        return self.dir / f"{key}.log"

    def _payload(self, key: str, seq: int) -> str:
        if self.unusual_every and seq % self.unusual_every == self.unusual_every // 2:
            self.unusual[key].append(seq)
            return self.rng.choice(_UNUSUAL)
        words = self.rng.sample(_WORDS, 5)
        return f"INFO {' '.join(words)} id={self.rng.randrange(10_000)}"

    def next_line(self, key: str) -> bytes:
        seq = self.written[key] + 1
        self.written[key] = seq
        return make_line(key, seq, self._payload(key, seq))

    def burst(self, n: int | None = None, key: str | None = None) -> int:
        """Append ``n`` lines (random 1-30) to one file (random); sometimes split the last line
        across two writes with a short pause between them. Returns the number of lines."""
        with self._lock:
            key = key or self.rng.choice(self.keys)
            n = n if n is not None else self.rng.randint(1, 30)
            data = b"".join(self.next_line(key) for _ in range(n))
            with open(self.path(key), "ab") as fh:
                if self.rng.random() < self.split_chance:
                    cut = len(data) - self.rng.randint(2, 20)
                    fh.write(data[:cut])
                    fh.flush()
                    time.sleep(self.rng.uniform(0.0, 2 * POLL_INTERVAL))
                    fh.write(data[cut:])
                else:
                    fh.write(data)
            return n

    def write_partial(self, key: str) -> bytes:
        """Write a numbered line without its last bytes (no '\\n'); ``finish_partial`` ends it."""
        with self._lock:
            assert self._pending is None, "one partial line at a time"
            line = self.next_line(key)
            cut = len(line) // 2
            with open(self.path(key), "ab") as fh:
                fh.write(line[:cut])
            self._pending = (key, line[cut:])
            return line

    def finish_partial(self) -> None:
        with self._lock:
            assert self._pending is not None
            key, rest = self._pending
            with open(self.path(key), "ab") as fh:
                fh.write(rest)
            self._pending = None

    # -- background writing

    def start(self, pause: tuple[float, float] = (0.02, 0.12)) -> None:
        def loop() -> None:
            try:
                while not self._stop.is_set():
                    self.burst()
                    self._stop.wait(self.rng.uniform(*pause))
            except BaseException as exc:  # noqa: BLE001 - reported by stop()
                self.error = exc

        self._stop.clear()
        self._thread = threading.Thread(target=loop, name="LineWriter", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError("LineWriter thread did not stop")
        self._thread = None
        if self.error is not None:
            raise RuntimeError("LineWriter failed") from self.error

    @property
    def total(self) -> int:
        return sum(self.written.values())


# ---------------------------------------------------------------- the daemon as a process


def daemon_env(state_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGWATCH_")}
    env["XDG_STATE_HOME"] = str(state_dir)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


@dataclass
class DaemonProcess:
    """``python -m logwatch run --log-dir DIR --db-url URL --poll-interval 0.2`` as a subprocess.

    Runs in its own session (so a SIGINT sent to it never reaches pytest); stdout and stderr go
    to files (no pipe can fill up and block it). ``close()`` kills whatever is still running.
    """

    log_dir: Path
    db_url: str
    work_dir: Path
    extra_args: tuple[str, ...] = ()
    node: str | None = None  # --node; None = the daemon's default (the host name)
    poll_interval: float = POLL_INTERVAL
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    history: list[tuple[int, int | None]] = field(default_factory=list)  # (pid, exit code)

    @property
    def argv(self) -> list[str]:
        return [
            sys.executable, "-m", "logwatch", "run",
            "--log-dir", str(self.log_dir),
            "--db-url", self.db_url,
            "--poll-interval", str(self.poll_interval),
            *(("--node", self.node) if self.node else ()),
            *self.extra_args,
        ]  # fmt: skip

    def _out(self, name: str) -> Path:
        return self.work_dir / f"daemon-{self.starts}.{name}"

    def start(self) -> DaemonProcess:
        assert not self.alive, "daemon already running"
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        with open(self._out("stdout"), "wb") as out, open(self._out("stderr"), "wb") as err:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.work_dir,
                env=daemon_env(self.work_dir / "state"),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def stderr(self) -> str:
        """What the current (or last) run wrote on stderr."""
        path = self._out("stderr")
        return path.read_text(errors="replace") if path.exists() else ""

    def all_stderr(self) -> str:
        return "".join(
            (self.work_dir / f"daemon-{i}.stderr").read_text(errors="replace")
            for i in range(1, self.starts + 1)
            if (self.work_dir / f"daemon-{i}.stderr").exists()
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until the daemon has installed its signal handlers (it then prints 'watching')."""
        wait_for(lambda: "watching" in self.stderr, timeout, "the daemon to start", daemon=self)

    def send(self, sig: int) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def wait(self, timeout: float) -> int:
        """Exit code; raises ``subprocess.TimeoutExpired`` if it is still running."""
        assert self.proc is not None
        code = self.proc.wait(timeout=timeout)
        self.history.append((self.proc.pid, code))
        return code

    def kill9(self) -> int:
        self.send(signal.SIGKILL)
        return self.wait(10.0)

    def term(self, timeout: float = 10.0, sig: int = signal.SIGTERM) -> int:
        """Send ``sig`` (SIGTERM by default) and return the exit code (within ``timeout``)."""
        self.send(sig)
        return self.wait(timeout)

    def interrupt(self, timeout: float = 10.0) -> int:
        return self.term(timeout, signal.SIGINT)

    def pause(self) -> None:
        self.send(signal.SIGSTOP)

    def resume(self) -> None:
        self.send(signal.SIGCONT)

    def close(self) -> None:
        """Teardown: whatever is still running is killed (SIGCONT first, in case it is stopped)."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
                os.kill(self.proc.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - a zombie we cannot reap
                pass


def run_cli(
    args: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """``python -m logwatch ARGS`` to completion (raises ``TimeoutExpired`` if it hangs)."""
    return subprocess.run(
        [sys.executable, "-m", "logwatch", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        start_new_session=True,
    )


# ---------------------------------------------------------------- reading the database


def _snapshot(url: str) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """(files_report(), {stream name: events_total}) from a fresh Store."""
    from sqlalchemy import select

    from logwatch.storage import StreamRow

    store = Store(url)
    try:
        files = store.files_report()
        with store.engine.connect() as conn:
            streams = {
                name: int(total)
                for name, total in conn.execute(select(StreamRow.name, StreamRow.events_total))
            }
        return files, streams
    finally:
        store.close()


def log_files(log_dir: Path) -> list[Path]:
    """The files the daemon watches by default (its own include globs)."""
    return sorted(
        p
        for p in Path(log_dir).rglob("*")
        if p.is_file() and any(fnmatch.fnmatch(p.name, g) for g in DEFAULT_INCLUDE)
    )


def _same(a: str | Path, b: str | Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def active_by_path(files: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {os.path.realpath(f["path"]): f for f in files if f["status"] == "active"}


def wait_until_drained(
    url: str,
    log_dir: Path,
    timeout: float = 30.0,
    *,
    daemon: DaemonProcess | None = None,
) -> list[dict[str, Any]]:
    """Poll the database until every log file under ``log_dir`` is tracked as active with its
    committed offset equal to its size on disk (and that holds on two reads in a row, a poll
    apart). Returns the last ``files_report()``. Raises ``TimeoutError`` naming the laggards,
    or ``RuntimeError`` if ``daemon`` exits meanwhile."""
    deadline = time.monotonic() + timeout
    last: object = "no database yet"
    good_once = False
    while True:
        if daemon is not None and not daemon.alive:
            raise RuntimeError(
                f"daemon exited ({daemon.proc.returncode if daemon.proc else None}) while "
                f"draining; stderr:\n{daemon.stderr[-3000:]}"
            )
        try:
            files, _ = _snapshot(url)
        except Exception as exc:  # noqa: BLE001 - schema not created yet, database busy...
            last, good_once = f"{type(exc).__name__}: {exc}", False
        else:
            active = active_by_path(files)
            lagging = []
            for p in log_files(log_dir):
                row = active.get(os.path.realpath(p))
                size = p.stat().st_size
                if row is None or row["offset"] != size:
                    lagging.append((str(p), None if row is None else row["offset"], size))
            if not lagging:
                if good_once:
                    return files
                good_once = True
            else:
                good_once = False
            last = lagging or "stabilising"
        if time.monotonic() > deadline:
            raise TimeoutError(f"not drained after {timeout:.0f}s: {last}")
        time.sleep(POLL_INTERVAL)


def wait_for(
    predicate: Any,
    timeout: float,
    what: str,
    interval: float = 0.05,
    *,
    daemon: DaemonProcess | None = None,
) -> Any:
    """Call ``predicate`` until it returns something truthy; ``TimeoutError`` naming ``what``.
    With ``daemon``: ``RuntimeError`` as soon as it exits, with its stderr."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except Exception:  # noqa: BLE001 - e.g. tables not created yet
            value = None
        if value:
            return value
        if daemon is not None and not daemon.alive:
            raise RuntimeError(
                f"daemon exited ({daemon.proc.returncode if daemon.proc else None}) while "
                f"waiting for {what}; stderr:\n{daemon.stderr[-3000:]}"
            )
        if time.monotonic() > deadline:
            tail = f"; daemon stderr:\n{daemon.stderr[-3000:]}" if daemon is not None else ""
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}{tail}")
        time.sleep(interval)


def lines_read_total(url: str) -> int:
    files, _ = _snapshot(url)
    return sum(f["lines_read"] for f in files)


# ---------------------------------------------------------------- the exactly-once oracle


@dataclass
class OracleReport:
    problems: list[str]
    files: list[dict[str, Any]]
    streams: dict[str, int]
    anomalies: list[Any]


def exactly_once_problems(
    url: str, log_dir: Path, writer: LineWriter | None = None
) -> OracleReport:
    """Check exactly-once from the database against the files on disk; list every violation.

    Per log file: ``lines_read`` (summed over every row of that path, so a re-read after a
    spurious retire is caught too) equals the number of complete lines, the active row's offset
    equals the size, and for numbered files (``LW|...``) every line is well-formed and numbered
    1..n and the stream's ``events_total`` equals n (each numbered line is its own event). For
    every stream, ``events_total`` equals the sum of its files' ``events_read``. Anomalies: no
    duplicate (path, line); each one's ``offset`` is the byte offset where line ``line`` starts
    and its ``text`` is that line.
    """
    files, streams = _snapshot(url)
    store = Store(url)
    try:
        anomalies = store.anomalies()
    finally:
        store.close()
    problems: list[str] = []
    active = active_by_path(files)
    content: dict[str, list[tuple[int, bytes]]] = {}
    for p in log_files(log_dir):
        real = os.path.realpath(p)
        lines = read_lines_with_offsets(p)
        content[real] = lines
        size = p.stat().st_size
        rows = [f for f in files if _same(f["path"], p)]
        row = active.get(real)
        if row is None:
            problems.append(f"{p.name}: no active row (rows: {rows})")
            continue
        if len(rows) != 1:
            problems.append(f"{p.name}: {len(rows)} rows for one never-rotated file: {rows}")
        read = sum(f["lines_read"] for f in rows)
        if read != len(lines):
            problems.append(f"{p.name}: lines_read {read} != {len(lines)} lines in the file")
        if row["offset"] != size:
            problems.append(f"{p.name}: offset {row['offset']} != size {size}")
        if lines and lines[0][1].startswith(b"LW|"):
            key = p.name[: -len(".log")]
            seqs = []
            for off, raw in lines:
                checked = check_line(raw)
                if checked is None or checked[0] != key:
                    problems.append(f"{p.name}: malformed line at byte {off}: {raw[:80]!r}")
                else:
                    seqs.append(checked[1])
            if seqs != list(range(1, len(seqs) + 1)):
                problems.append(f"{p.name}: numbered lines out of order (writer bug?)")
            if writer is not None and key in writer.written and writer.written[key] != len(seqs):
                problems.append(
                    f"{p.name}: writer wrote {writer.written[key]}, file has {len(seqs)}"
                )
            events = streams.get(p.name)
            if events != len(seqs):
                problems.append(
                    f"stream {p.name}: events_total {events} != {len(seqs)} numbered lines"
                )
    by_stream: dict[str, int] = {}
    for f in files:
        by_stream[f["stream"]] = by_stream.get(f["stream"], 0) + f["events_read"]
    for name, total in sorted(streams.items()):
        if by_stream.get(name, 0) != total:
            problems.append(
                f"stream {name}: events_total {total} != sum of files' events_read "
                f"{by_stream.get(name, 0)}"
            )
    seen: set[tuple[str, int]] = set()
    for a in anomalies:
        where = (os.path.realpath(a.path), a.line)
        if where in seen:
            problems.append(f"duplicate anomaly at {a.path}:{a.line}")
        seen.add(where)
        file_lines = content.get(where[0])
        if file_lines is None:
            problems.append(f"anomaly in an unknown file {a.path}")
            continue
        lines = file_lines
        if not 1 <= a.line <= len(lines):
            problems.append(f"anomaly at {a.path}:{a.line}: no such line ({len(lines)} lines)")
            continue
        off, raw = lines[a.line - 1]
        if a.offset != off:
            problems.append(f"anomaly at {a.path}:{a.line}: offset {a.offset} != line start {off}")
        line_text = raw.decode("utf-8", "replace")
        multiline = not raw.startswith(b"LW|") and a.text.startswith(line_text + "\n")
        if a.text != line_text and not multiline:  # a multiline event's text starts with it
            problems.append(f"anomaly at {a.path}:{a.line}: text {a.text[:80]!r} != {raw[:80]!r}")
    return OracleReport(problems, files, streams, anomalies)


def assert_exactly_once(
    db_url: str, log_dir: Path, writer: LineWriter | None, seed: int
) -> OracleReport:
    """The oracle, as an assertion naming the seed that reproduces the run."""
    report = exactly_once_problems(db_url, log_dir, writer)
    assert report.problems == [], f"seed {seed}: exactly-once violated:\n" + "\n".join(
        report.problems
    )
    return report


# ---------------------------------------------------------------- fixtures for the process tests

TEST_TIMEOUT = 150  # seconds; a hung daemon or wait fails the test instead of hanging the run
SLOW_TIMEOUT = 600  # for @pytest.mark.slow soak variants


@pytest.fixture
def hang_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail (not hang) a test that runs too long (no pytest-timeout here). Process-test modules
    use it for every test: ``pytestmark = pytest.mark.usefixtures("hang_guard")``."""
    limit = SLOW_TIMEOUT if request.node.get_closest_marker("slow") else TEST_TIMEOUT

    def expired(_signum: int, _frame: FrameType | None) -> None:
        raise TimeoutError(f"test exceeded {limit}s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(limit)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def seed() -> int:
    """Random per run, printed, and repeatable with LOGWATCH_TEST_SEED."""
    value = int(os.environ.get("LOGWATCH_TEST_SEED", random.randrange(2**32)))
    print(f"LOGWATCH_TEST_SEED={value}")
    return value


@pytest.fixture
def lw_dir(tmp_path: Path) -> Path:
    """An empty log directory for numbered files only."""
    target = tmp_path / "lw-logs"
    target.mkdir()
    return target


# Runs `python -m logwatch` and, at exit, copies /proc/self/status to $LW_TEST_VMSTAT. Its VmHWM is
# the peak RSS of exactly that process: unlike wait4()/RUSAGE_CHILDREN's ru_maxrss, which on Linux
# carries over the parent's (pytest's) RSS at fork time and so grows with the rest of the suite.
VMSTAT_WRAPPER = """
import atexit, os, runpy, sys
def _report():
    with open("/proc/self/status") as st, open(os.environ["LW_TEST_VMSTAT"], "w") as out:
        out.write(st.read())
atexit.register(_report)
sys.argv[0] = "logwatch"
runpy.run_module("logwatch", run_name="__main__", alter_sys=True)
"""


def read_vmstat(path: Path) -> dict[str, int]:
    """VmPeak and VmHWM (kB) from a status file written by VMSTAT_WRAPPER; {} if none."""
    stats: dict[str, int] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmPeak", "VmHWM"):
                stats[key] = int(value.split()[0])
    return stats
