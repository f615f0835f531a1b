"""The master model of a fleet sees every node's streams (docs/scaling.md, "The master model").

Two in-process daemons' bird's-eye stages (``Overview`` with nodes ``a`` and ``b``) share one
database: each writes its closed windows to ``window_stats``; only the leader scores, and it scores
the windows of both nodes. Seven hours of per-minute volume, three streams on ``a`` and two on
``b`` (one of them named like one of ``a``'s); in one minute two streams of each node are each a
little worse. The leader's verdict for that minute names streams of both nodes; the other daemon
scores nothing. Then the lease moves: the other daemon takes over from the saved model and
watermark, scoring only the windows not scored yet. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select

from logwatch import incident_store
from logwatch import overview as overview_module
from logwatch.config import Config
from logwatch.errors import StorageError
from logwatch.incident_store import WindowStat, WindowStatRow
from logwatch.overview import FLEET_GRACE_WINDOWS, WATERMARK_KEY, Overview, OverviewResult
from logwatch.records import Anomaly, Event, ParsedLine
from logwatch.storage import Store

W = 60.0
START = datetime(2026, 3, 3, 0, 0, tzinfo=UTC).timestamp()
USUAL = {"a": {"app.log": 120, "auth.log": 60, "db.log": 200}, "b": {"app.log": 90, "web.log": 150}}
DEGRADED = {("a", "app.log"), ("a", "db.log"), ("b", "app.log"), ("b", "web.log")}
MINUTES = 420  # seven hours of log time
ODD = 400  # the minute in which streams on both nodes are each a little worse
MORE = 30  # minutes after the lease moved


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


class Daemon:
    """What one daemon's pipeline does with its bird's-eye stage, minus the files."""

    def __init__(self, url: str, node: str) -> None:
        self.node = node
        self.store = Store(url, node=node)
        self.overview = Overview(Config(db_url=url), self.store, lambda s, t: None, node=node)
        self.offset = 0
        self.results: list[OverviewResult] = []

    def feed(self, minute: int, rng: np.random.Generator) -> None:
        at = START + minute * W + 7.0
        for stream, usual in USUAL[self.node].items():
            found: list[tuple[float, int]] = []
            if minute == ODD and (self.node, stream) in DEGRADED:
                # A little worse, each in a way this stream has seen before: 15% fewer events
                # than usual and two warnings of ordinary severity.
                events = int(usual * 0.85)
                found = [(at + 1, 62), (at + 2, 65)]
            else:
                events = int(rng.poisson(usual))
                found = [(at + 3, int(rng.integers(40, 71))) for _ in range(rng.poisson(0.3))]
            self.offset += 1
            event = Event(
                self.offset,
                self.offset,
                self.offset + 1,
                1,
                "service heartbeat ok",
                ParsedLine("service heartbeat ok", timestamp=datetime.fromtimestamp(at, UTC)),
                count=events,
            )
            self.overview.observe(stream, f"/var/log/{stream}", [event], [1], at)
            anomalies = []
            for t, severity in found:
                self.offset += 1
                anomalies.append(
                    Anomaly(
                        stream,
                        f"/var/log/{stream}",
                        self.offset,
                        self.offset,
                        _iso(t),
                        _iso(t),
                        severity,
                        severity / 100.0,
                        ("rare template",),
                        f"slow response from <*> ({stream})",
                        f"WARN slow response from peer-{self.offset} ({stream})",
                    )
                )
            self.overview.found(anomalies, at)

    def poll(self, minute: int, *, leader: bool) -> OverviewResult:
        """End of a poll a few seconds after ``minute`` ended (wall clock = log time here)."""
        self.overview.leader = leader  # as run_daemon sets it from the master lease, every poll
        result = self.overview.poll_end(datetime.fromtimestamp(START + (minute + 1) * W + 5, UTC))
        self.results.append(result)
        return result

    def flagged(self) -> dict[float, Any]:
        return {w.start: w for r in self.results for w in r.windows}

    def close(self) -> None:
        self.store.close()


def _rows_per_node(store: Store) -> dict[str, int]:
    with store.transaction() as conn:
        q = select(WindowStatRow.node, func.count()).group_by(WindowStatRow.node)
        return {str(node): int(n) for node, n in conn.execute(q).all()}


def test_the_leader_scores_the_windows_of_every_node(store: Store) -> None:
    rng = np.random.default_rng(0)
    a, b = Daemon(store.url, "a"), Daemon(store.url, "b")
    try:
        for minute in range(MINUTES):
            a.feed(minute, rng)
            b.feed(minute, rng)
            # The leader polls first: b writes the window that just closed after the leader's
            # poll, and the grace lets the leader score it one poll later all the same.
            a.poll(minute, leader=True)
            b.poll(minute, leader=False)

        # Every daemon wrote every closed window of its own streams (one window of grace: the
        # last minute is still open); b's app.log is its own stream, not a's.
        closed = MINUTES - 1
        assert _rows_per_node(store) == {"a": 3 * closed, "b": 2 * closed}
        # The non-leader scored nothing and holds no model.
        assert all(r.windows == [] for r in b.results)
        assert b.overview.master is not None and b.overview.master.n_windows == 0
        # The leader scored every window up to two windows before its last poll, each across
        # both nodes: five streams, named by node.
        scored = MINUTES - 1 - FLEET_GRACE_WINDOWS
        master = a.overview.master
        assert master is not None and master.n_windows == scored
        assert {s for s, _ in master._columns} == {
            f"{n}/{s}" for n, streams in USUAL.items() for s in streams
        }

        # The minute in which streams on both nodes were each a little worse is flagged, and
        # its verdict ranks the degraded streams of both nodes first.
        flagged = a.flagged()
        odd_start = START + ODD * W
        assert odd_start in flagged, sorted((t - START) / W for t in flagged)
        verdict = flagged[odd_start]
        assert verdict.fitted and verdict.severity >= 67
        assert verdict.severity == max(w.severity for w in flagged.values())
        top = [c.stream for c in verdict.streams[:4]]
        assert set(top) == {f"{n}/{s}" for n, s in DEGRADED}, verdict.streams
        assert Counter(s.split("/")[0] for s in top) == {"a": 2, "b": 2}
        assert len(flagged) <= 3, sorted((t - START) / W for t in flagged)
        # ... and joins an incident of the leader's, which names streams of both nodes.
        (incident,) = [
            i
            for i in incident_store.incidents(store, node="a")
            if "window" in i["kinds"]
            and datetime.fromisoformat(i["first"]).timestamp() < odd_start + W
            and datetime.fromisoformat(i["last"]).timestamp() >= odd_start
        ]
        assert {f"{n}/{s}" for n, s in DEGRADED} <= {s["stream"] for s in incident["streams"]}
        # b's incidents are its own anomalies only: no window verdict (no node/stream) in them.
        assert all(
            "/" not in s["stream"]
            for i in incident_store.incidents(store, node="b")
            for s in i["streams"]
        )

        # The lease moves to b (a lost it; at shutdown it saved its model and watermark).
        a.overview.close(datetime.fromtimestamp(START + (MINUTES + 1) * W, UTC))
        mark = incident_store.load_state(store, WATERMARK_KEY)
        assert mark == {"start": START + (scored - 1) * W}
        for minute in range(MINUTES, MINUTES + MORE):
            a.feed(minute, rng)
            b.feed(minute, rng)
            b.poll(minute, leader=True)
            a.poll(minute, leader=False)
        # b took over the model and went on from the watermark: each window scored once.
        assert a.overview.master is not None and a.overview.master.n_windows == 0
        assert all(r.windows == [] for r in a.results[MINUTES:])
        master = b.overview.master
        assert master is not None and master.n_windows == scored + MORE
        assert _rows_per_node(store) == {"a": 3 * (closed + MORE), "b": 2 * (closed + MORE)}
    finally:
        a.close()
        b.close()


def test_window_rows_are_written_once_and_pruned_with_retention(store: Store) -> None:
    def rows(node: str, starts: range, events: int) -> list[WindowStat]:
        return [
            WindowStat(node, s, START + k * W, events, 0, 0, 10.0)
            for k in starts
            for s in ("x.log", "y.log")
        ]

    incident_store.save_windows(store, rows("a", range(100), 10) + rows("b", range(100), 10))
    # A re-emission after a restart from older saved state counts fewer lines: the first stays.
    incident_store.save_windows(store, rows("a", range(90, 110), 0))
    got = incident_store.load_windows(store, after=None, before=START + 200 * W, max_windows=500)
    assert len(got) == 2 * 100 * 2 + 10 * 2
    assert all(r.events == 10 for r in got if r.window_start < START + 100 * W)
    # At most max_windows whole windows per read, oldest first, after the watermark.
    some = incident_store.load_windows(
        store, after=START + 9 * W, before=START + 50 * W, max_windows=5
    )
    assert sorted({r.window_start for r in some}) == [START + k * W for k in range(10, 15)]
    assert len(some) == 5 * 4
    # ... and at most max_rows rows, whole windows, but always the first window.
    page = incident_store.load_windows(
        store, after=None, before=START + 200 * W, max_windows=500, max_rows=10
    )
    assert sorted({r.window_start for r in page}) == [START, START + W]
    assert len(page) == 8
    one = incident_store.load_windows(
        store, after=None, before=START + 200 * W, max_windows=500, max_rows=1
    )
    assert {r.window_start for r in one} == {START} and len(one) == 4
    # Retention, by the logs' own clock: windows more than the retention older than the newest
    # (START + 109 W) go — here a retention of 49 windows — a batch of rows per transaction.
    cutoff = datetime.now(UTC) - timedelta(seconds=49 * W)
    gone = incident_store.prune(store, cutoff, batch=7)
    assert gone == 60 * 4
    left = incident_store.load_windows(store, after=None, before=START + 200 * W, max_windows=500)
    assert min(r.window_start for r in left) == START + 60 * W
    assert len(left) == 40 * 4 + 10 * 2


def test_windows_an_outage_kept_out_are_written_with_the_next_poll(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(1)
    a = Daemon(store.url, "a")
    save = incident_store.save_windows

    def down(*args: Any, **kwargs: Any) -> None:
        raise StorageError("database unavailable: connection refused")

    try:
        for minute in range(3):
            a.feed(minute, rng)
        monkeypatch.setattr(incident_store, "save_windows", down)
        with pytest.raises(StorageError):
            a.poll(2, leader=False)  # windows 0 and 1 close, and cannot be written
        monkeypatch.setattr(incident_store, "save_windows", save)
        a.feed(3, rng)
        a.poll(3, leader=False)  # window 2 closes: written with 0 and 1
        assert _rows_per_node(store) == {"a": 3 * 3}
    finally:
        a.close()


def test_a_catch_up_over_many_streams_is_read_a_page_at_a_time(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A leader catching up (a first poll over 1,000 streams, a takeover after an outage) holds
    one page of window rows at a time, and still scores every window once, in order."""
    streams, windows = 40, 30
    incident_store.save_windows(
        store,
        [
            WindowStat("a", f"s{i:02d}.log", START + k * W, 100 + (i * k) % 7, 0, 0, 100.0)
            for k in range(windows)
            for i in range(streams)
        ],
    )
    monkeypatch.setattr(overview_module, "FLEET_PAGE_ROWS", 100)
    pages: list[int] = []
    load = incident_store.load_windows

    def counting(*args: Any, **kwargs: Any) -> list[WindowStat]:
        rows = load(*args, **kwargs)
        pages.append(len(rows))
        return rows

    monkeypatch.setattr(incident_store, "load_windows", counting)
    view = Overview(Config(db_url=store.url), store, lambda s, t: None, node="a")
    view.leader = True
    try:
        view.poll_end(datetime.fromtimestamp(START + (windows + 5) * W, UTC))
        master = view.master
        assert master is not None and master.n_windows == windows
        assert max(pages) <= 100 and pages[:-1] == [80] * (windows // 2)
        assert pages[-1] == 0  # the read that found nothing more
        assert {s for s, _ in master._columns} == {f"a/s{i:02d}.log" for i in range(streams)}
    finally:
        view.close(datetime.fromtimestamp(START + (windows + 5) * W, UTC))
