"""Many hosts on one PostgreSQL (docs/scaling.md): two real daemons, each owning its own root.

Each daemon (``--node a``, ``--node b``) reads only the files under its own root; both roots have a
``shared.log`` (same stream name on two hosts: two streams, one per node). Exactly one daemon is the
master; killed with -9, the other takes over within a minute, and the killed one comes back as a
standby. At the end every line of both roots was read exactly once. PostgreSQL only, by nature
(the lease is a PostgreSQL advisory lock); with CI=true an unreachable server fails the test.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from conftest import private_pg_url
from daemon_harness import (
    DaemonProcess,
    LineWriter,
    exactly_once_problems,
    wait_for,
    wait_until_drained,
)
from sqlalchemy import select

from logwatch.storage import FileRow, Store, StreamRow

pytestmark = pytest.mark.usefixtures("hang_guard")

KEYS = {"a": ("a1", "a2", "shared"), "b": ("b1", "shared")}
TAKEOVER_LIMIT = 60.0  # seconds: "another takes over within a minute"


def _status(url: str) -> dict[str, Any]:
    store = Store(url)
    try:
        return store.status_report()
    finally:
        store.close()


def _masters(url: str) -> list[str]:
    return [d["node"] for d in _status(url)["daemons"] if d["role"] == "master"]


def _master_node(url: str) -> str | None:
    store = Store(url)
    try:
        return store.master_node()
    finally:
        store.close()


def _files(url: str, node: str | None = None) -> list[dict[str, Any]]:
    store = Store(url)
    try:
        return store.files_report(node=node, show_node=True)
    finally:
        store.close()


def _running(url: str, node: str, pid: int) -> bool:
    return any(
        d["node"] == node and d["pid"] == pid and d["state"] == "running" and d["role"]
        for d in _status(url)["daemons"]
    )


def test_two_daemons_own_their_files_and_the_master_fails_over(tmp_path: Path, seed: int) -> None:
    root = tmp_path / "fleet"
    dirs = {n: root / n for n in KEYS}
    writers = {n: LineWriter(dirs[n], KEYS[n], seed=seed + i) for i, n in enumerate(KEYS)}
    for w in writers.values():
        for key in w.keys:
            w.burst(25, key)
    with private_pg_url() as url:
        daemons = {n: DaemonProcess(dirs[n], url, tmp_path / f"daemon-{n}", node=n) for n in KEYS}
        try:
            for d in daemons.values():
                d.start()  # together: one upgrades the schema, the other waits for it
            for d in daemons.values():
                d.wait_ready(60)
            for w in writers.values():
                w.start(pause=(0.05, 0.2))

            # Each daemon owns the files of its own root, and only those.
            def owned() -> bool:
                return all(
                    len({Path(f["path"]).name for f in _files(url, n)}) == len(KEYS[n])
                    for n in KEYS
                )

            wait_for(owned, 60, "both daemons to track their files")
            for n in KEYS:
                rows = _files(url, n)
                assert rows and all(Path(f["path"]).parent == dirs[n] for f in rows), rows
            assert {f["node"] for f in _files(url)} == set(KEYS)

            # Exactly one master, and status says which.
            for n, d in daemons.items():
                wait_for(lambda n=n, d=d: _running(url, n, d.pid), 60, f"{n} running", daemon=d)
            masters = wait_for(lambda: _masters(url), 30, "a master")
            assert len(masters) == 1, _status(url)
            master = masters[0]
            assert _master_node(url) == master
            standby = next(n for n in KEYS if n != master)

            # kill -9 the master: the standby takes over within a minute.
            daemons[master].kill9()
            killed_at = time.monotonic()
            wait_for(
                lambda: _masters(url) == [standby],
                TAKEOVER_LIMIT,
                f"{standby} to take over as master",
                daemon=daemons[standby],
            )
            took = time.monotonic() - killed_at
            print(f"takeover after kill -9 of {master}: {took:.1f} s")
            assert took < TAKEOVER_LIMIT
            assert _master_node(url) == standby

            # The killed one comes back as a standby and carries on with its own files.
            time.sleep(1.0)  # lines keep arriving in its root while it is down
            daemons[master].start()
            daemons[master].wait_ready(60)
            wait_for(
                lambda: _running(url, master, daemons[master].pid),
                30,
                f"{master} running again",
                daemon=daemons[master],
            )
            time.sleep(1.0)
            assert _masters(url) == [standby], _status(url)

            for w in writers.values():
                w.stop()
            wait_until_drained(url, root, 60)
            for d in daemons.values():
                assert d.term(30) == 0, d.stderr[-3000:]
                assert "Traceback" not in d.all_stderr(), d.all_stderr()[-3000:]
        finally:
            for w in writers.values():
                w.stop()
            for d in daemons.values():
                d.close()
        _assert_exactly_once_per_node(url, root, dirs, writers, seed)


def _assert_exactly_once_per_node(
    url: str, root: Path, dirs: dict[str, Path], writers: dict[str, LineWriter], seed: int
) -> None:
    """The harness oracle over both roots (it keys streams by name, so it cannot tell the two
    nodes' shared.log apart: those two checks are made here per node), plus every writer's
    count against its files."""
    report = exactly_once_problems(url, root)
    problems = [p for p in report.problems if not p.startswith("stream shared.log:")]
    store = Store(url)
    try:
        with store.engine.connect() as conn:
            for n, w in writers.items():
                for key, written in w.written.items():
                    lines = (dirs[n] / f"{key}.log").read_bytes().count(b"\n")
                    if lines != written:
                        problems.append(f"{n}/{key}.log: {lines} lines, writer wrote {written}")
                    stream = conn.execute(
                        select(StreamRow.id, StreamRow.events_total).where(
                            StreamRow.node == n, StreamRow.name == f"{key}.log"
                        )
                    ).one()
                    read = conn.execute(
                        select(FileRow.events_read, FileRow.node).where(
                            FileRow.stream_id == stream.id
                        )
                    ).all()
                    if stream.events_total != written or sum(r[0] for r in read) != written:
                        problems.append(
                            f"{n}/{key}.log: events_total {stream.events_total}, files read "
                            f"{sum(r[0] for r in read)}, writer wrote {written}"
                        )
                    if {r[1] for r in read} != {n}:
                        problems.append(f"{n}/{key}.log: stream has files of nodes {read}")
    finally:
        store.close()
    assert problems == [], f"seed {seed}: exactly-once violated:\n" + "\n".join(problems)
