"""A throwaway PostgreSQL 15 cluster of a test's own, to stop and start at will (RELIABILITY #23).

The shared server (127.0.0.1:5432, conftest's ``db_url``) must never be stopped by a test, so
outage tests run ``initdb`` in a temporary directory instead: trust authentication, listening on
127.0.0.1 only, on a free port (never 5432), with its unix socket in that directory. ``initdb`` and
``pg_ctl`` refuse to run as root, so as root they run as the ``postgres`` OS user (``runuser -u
postgres --``), which owns the directory.

Without the binaries (or, as root, without ``runuser`` or a ``postgres`` user) tests skip with the
reason; when CI=true they fail instead, like conftest's PostgreSQL check.

    with throwaway_cluster() as pg:      # initdb + start; stop and remove the directory at the end
        pg.url                           # postgresql+psycopg2://postgres@127.0.0.1:PORT/postgres
        pg.stop("immediate")             # or "fast"
        pg.start()
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

PG_BIN = Path(os.environ.get("LOGWATCH_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
RUNUSER = "/usr/sbin/runuser"
PG_USER = "postgres"  # the OS user the server runs as when the tests run as root
SHARED_PORT = 5432  # the shared server: never used here
IN_CI = os.environ.get("CI", "").lower() == "true"
_TOOLS = ("initdb", "pg_ctl", "postgres")
_TIMEOUT = 60.0  # seconds for any one initdb / pg_ctl call


def cluster_problem() -> str | None:
    """Why a throwaway cluster cannot be made here, or None when it can."""
    missing = [t for t in _TOOLS if not os.access(PG_BIN / t, os.X_OK)]
    if missing:
        return f"PostgreSQL binaries {', '.join(missing)} not found in {PG_BIN}"
    if os.geteuid() == 0:
        runuser = shutil.which("runuser") or (RUNUSER if os.access(RUNUSER, os.X_OK) else None)
        if runuser is None:
            return "running as root and `runuser` is missing (initdb refuses to run as root)"
        try:
            pwd.getpwnam(PG_USER)
        except KeyError:
            return f"running as root and there is no {PG_USER!r} OS user to run initdb as"
    return None


def require_cluster() -> None:
    """Skip (or, when CI=true, fail) the calling test when no cluster can be made."""
    problem = cluster_problem()
    if problem is None:
        return
    if IN_CI:
        pytest.fail(f"{problem} (CI=true: the PostgreSQL outage tests may not be skipped)")
    pytest.skip(problem)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (never the shared server's)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port != SHARED_PORT:
            return port


class PgCluster:
    """One private PostgreSQL cluster in ``base`` (data directory, log and socket inside it)."""

    def __init__(self, base: Path, port: int) -> None:
        if port == SHARED_PORT:
            raise ValueError("a throwaway cluster never uses the shared server's port 5432")
        self.base = base
        self.data = base / "data"
        self.logfile = base / "postgres.log"
        self.port = port
        self.running = False

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"

    # -- running the tools

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [str(PG_BIN / tool), *args]
        if os.geteuid() == 0:
            argv = [shutil.which("runuser") or RUNUSER, "-u", PG_USER, "--", *argv]
        # No PG* variables from the outside (PGPORT, PGDATA, PGHOST...) can redirect the tools.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = env["LANG"] = "C.UTF-8"
        result = subprocess.run(
            argv,
            cwd=self.base,  # readable by the postgres user, unlike pytest's tmp dirs
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{tool} {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}\n--- server log:\n{self.log_tail()}"
            )
        return result

    def init(self) -> None:
        self._run(
            "initdb",
            "-D", str(self.data),
            "-U", "postgres",
            "-A", "trust",
            "-E", "UTF8",
            "--no-sync",
            "--no-instructions",
        )  # fmt: skip
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.base}'",
            "max_connections": "40",
            "shared_buffers": "16MB",
            "fsync": "off",  # a throwaway cluster: an immediate stop keeps the page cache anyway
            "full_page_writes": "off",
            "log_min_messages": "warning",
        }
        with open(self.data / "postgresql.conf", "a") as fh:
            fh.write("\n# throwaway test cluster (tests/pg_cluster.py)\n")
            fh.writelines(f"{k} = {v}\n" for k, v in settings.items())

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and wait until it accepts connections (crash recovery included)."""
        self._run(
            "pg_ctl", "start", "-D", str(self.data), "-l", str(self.logfile),
            "-w", "-t", str(int(timeout)),
        )  # fmt: skip
        self.running = True

    def stop(self, mode: str = "fast", timeout: float = 30.0) -> None:
        """``immediate``: the postmaster and backends quit at once, no checkpoint (like a crash);
        ``fast``: sessions are terminated, then a clean shutdown."""
        if mode not in ("immediate", "fast", "smart"):
            raise ValueError(f"stop mode {mode!r} is not valid; valid: immediate, fast, smart")
        self._run("pg_ctl", "stop", "-D", str(self.data), "-m", mode, "-w", "-t", str(int(timeout)))
        self.running = False

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no server log)"

    def destroy(self) -> None:
        """Stop the server (whatever state it is in) and remove the directory."""
        if self.data.exists():
            try:
                self._run(
                    "pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w", "-t", "20",
                    check=False,
                )  # fmt: skip
            except subprocess.TimeoutExpired:
                pass
            pid = self.postmaster_pid()
            if pid is not None:  # pg_ctl could not stop it: end our own postmaster, by its pid
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        self.running = False
        shutil.rmtree(self.base, ignore_errors=True)


def _make_base() -> Path:
    # Not pytest's tmp_path: its parents are private to root, and the server runs as `postgres`.
    # Short, too: a unix socket path must fit in ~107 bytes.
    base = Path(tempfile.mkdtemp(prefix="lw-pg-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam(PG_USER)
        os.chown(base, user.pw_uid, user.pw_gid)
    return base


@contextmanager
def throwaway_cluster(*, started: bool = True) -> Iterator[PgCluster]:
    """A new cluster (initdb'd, and started unless ``started=False``); always destroyed after."""
    require_cluster()
    last: Exception | None = None
    for _ in range(3):  # the free port may be taken between choosing and binding it
        cluster = PgCluster(_make_base(), free_port())
        try:
            cluster.init()
            if started:
                cluster.start()
        except Exception as exc:  # noqa: BLE001 - retried on another port, then reported
            last = exc
            cluster.destroy()
            continue
        try:
            yield cluster
        finally:
            cluster.destroy()
        return
    raise RuntimeError(f"could not start a throwaway PostgreSQL cluster: {last}")


@pytest.fixture
def pg_cluster() -> Iterator[PgCluster]:
    """A running throwaway cluster, destroyed after the test (import it into a test module)."""
    with throwaway_cluster() as cluster:
        yield cluster
