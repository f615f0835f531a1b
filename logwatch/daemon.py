"""The loop: interval, signals, graceful stop, single-instance lock, back-off, health.

The only module that reads the wall clock or handles signals; everything below it gets ``now``.
"""

from __future__ import annotations

import fcntl
import gc
import logging
import os
import random
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from logwatch import incident_store
from logwatch.alerts import Dispatcher
from logwatch.config import Config
from logwatch.errors import AlreadyRunningError, StateCorruptError, StorageError
from logwatch.feedback import FeedbackRules
from logwatch.metrics import MetricsSink, NullMetrics
from logwatch.pipeline import Pipeline, PollSummary
from logwatch.storage import Store

log = logging.getLogger(__name__)

# Net allocations after which the cyclic collector walks its youngest generation (Python's default
# is 700). A busy poll makes several short-lived records per line and almost no reference cycles
# (1,818 objects collected in 200,000 lines), so at 700 the collector ran ~160 times a poll and
# took ~7% of the daemon's CPU for nothing; at 10,000, ~2%. Memory is unaffected: acyclic objects
# are freed when their last reference goes, whatever the threshold. (bench/README.md, issue 7.)
GC_YOUNG_THRESHOLD = 10_000


def tune_collector() -> None:
    """Collect the youngest generation less often (``GC_YOUNG_THRESHOLD``); older ones as usual."""
    young, older, oldest = gc.get_threshold()
    if young:  # 0: the collector was switched off on purpose; leave it so
        gc.set_threshold(max(young, GC_YOUNG_THRESHOLD), older, oldest)


class InstanceLock:
    """One daemon per (database, node): a lock file beside an SQLite database, a session-level
    advisory lock on PostgreSQL. Held for the life of the process; the OS or the server releases
    it when the process dies, even by kill -9."""

    def __init__(self, store: Store, node: str) -> None:
        self.store = store
        self.node = node
        self._file: TextIO | None = None
        self._conn: Connection | None = None

    def acquire(self) -> None:
        what = f"node {self.node!r} on this database"
        if self.store.dialect == "sqlite":
            database = make_url(self.store.url).database or ""
            if database in ("", ":memory:"):
                return
            fh = open(f"{database}.lock", "a+")  # noqa: SIM115 - held open for the process lifetime
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.close()
                raise AlreadyRunningError(
                    f"another logwatch is already running for {what}"
                ) from None
            fh.seek(0)
            fh.truncate()
            fh.write(f"{os.getpid()}\n")
            fh.flush()
            self._file = fh
            return
        conn = self.store.engine.connect()
        # The schema the connection really writes to (it may come from the URL's search_path):
        # daemons on different schemas of one server are different databases.
        schema = conn.execute(text("SELECT current_schema()")).scalar()
        key = zlib.crc32(f"logwatch:{schema}:{self.node}".encode())
        got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
        conn.commit()
        if not got:
            conn.close()
            raise AlreadyRunningError(f"another logwatch is already running for {what}")
        self._conn = conn

    def ensure(self) -> None:
        """Still holding the lock? A PostgreSQL restart ends the session that held it: take it
        again, or stop if another daemon got it meanwhile (two writers must never run at once)."""
        if self.store.dialect != "postgresql":
            return  # the lock file is held by this process until it exits
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT 1"))
                self._conn.commit()
                return
            except Exception:  # noqa: BLE001 - any failure means the session (and lock) is gone
                try:
                    self._conn.close()
                except Exception:  # noqa: BLE001
                    pass
                self._conn = None
                log.warning("the database session holding the instance lock was lost")
        # Not holding it (lost now, or a retry after the server was still down): take it again.
        try:
            self.acquire()
        except OperationalError as exc:
            first_line = (str(exc.orig).strip().splitlines() or ["connection failed"])[0]
            raise StorageError(f"database unavailable: {first_line}") from None
        log.warning("instance lock taken again")

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - closing the session releases the lock anyway
                pass
            self._conn = None


class MasterLease:
    """Which daemon of a fleet runs the master model and the retention pruning: the holder of a
    session-level advisory lock on a connection of its own (PostgreSQL), keyed by the schema.

    ``try_acquire`` is called every poll and costs one round trip: ``SELECT 1`` to check the
    session while held, ``pg_try_advisory_lock`` while not. When the holder dies (even by
    kill -9) its session ends and the server releases the lock; another daemon takes it on its
    next poll. A daemon whose session is lost stops being master at once. On SQLite (one host)
    the lease is always held."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._conn: Connection | None = None
        self._key: int | None = None
        self._held = store.dialect != "postgresql"

    @property
    def held(self) -> bool:
        return self._held

    def try_acquire(self) -> bool:
        """Held now? Takes the lease if it is free; never raises (an outage means "not held")."""
        if self.store.dialect != "postgresql":
            return True
        try:
            if self._conn is None:
                self._conn = self.store.engine.connect()
                # The schema this daemon really writes to: fleets on different schemas of one
                # server are different fleets.
                schema = self._conn.execute(text("SELECT current_schema()")).scalar()
                self._key = zlib.crc32(f"{schema}:logwatch-master".encode())
                self._conn.commit()
            if self._held:
                self._conn.execute(text("SELECT 1"))
            else:
                got = self._conn.execute(
                    text("SELECT pg_try_advisory_lock(:k)"), {"k": self._key}
                ).scalar()
                if got:
                    self._held = True
                    log.warning("this daemon is now the master (master model, retention)")
            self._conn.commit()
        except SQLAlchemyError:
            if self._held:
                log.warning("lost the master lease with the database session")
            self._drop()
        return self._held

    def _drop(self) -> None:
        self._held = False
        if self._conn is not None:
            try:
                # Really close the session (not back to the pool): that is what frees the lock.
                self._conn.invalidate()
                self._conn.close()
            except Exception:  # noqa: BLE001 - the session is gone either way
                pass
            self._conn = None

    def release(self) -> None:
        if self.store.dialect == "postgresql":
            self._drop()


class Pruner:
    """Retention: anomalies (and their acks), incidents, session findings and retired file rows
    older than ``retention_days`` go, in transactions of ``batch`` rows, at most ``max_batches``
    per poll, so ingestion never waits behind more than one short batch. A pass starts at most
    once per ``every`` seconds and continues over the next polls until nothing old is left.
    Only the master prunes (the rows are the whole fleet's); 0 days keeps everything."""

    def __init__(
        self,
        store: Store,
        retention_days: float,
        *,
        every: float = 3600.0,
        batch: int = 5_000,
        max_batches: int = 4,
    ) -> None:
        self.store = store
        self.retention = timedelta(days=retention_days) if retention_days > 0 else None
        self.every = every
        self.batch = batch
        self.max_batches = max_batches
        self._next_pass: float | None = None  # monotonic time the next pass may start
        self._before: datetime | None = None  # the cut-off of the pass under way
        self._stage = 0
        self.pruned = 0  # rows removed since start, for tests and logs

    def step(self, now: datetime, mono: float) -> int:
        """Do this poll's share; returns the rows removed. Raises StorageError like any query."""
        if self.retention is None:
            return 0
        if self._before is None:
            if self._next_pass is not None and mono < self._next_pass:
                return 0
            self._before, self._stage, self._next_pass = now - self.retention, 0, mono + self.every
        gone = 0
        for _ in range(self.max_batches):
            if self._stage == 0:
                n = self.store.prune_anomalies(self._before, batch=self.batch)
            elif self._stage == 1:
                n = self.store.prune_files(self._before, batch=self.batch)
            else:
                gone += incident_store.prune(self.store, self._before)
                self._before = None
                break
            gone += n
            if n < self.batch:
                self._stage += 1
        if gone:
            self.pruned += gone
            log.info("retention: pruned %d rows", gone)
        return gone


@dataclass
class Backoff:
    """Exponential back-off with full jitter, capped: a database outage never spins or gives up."""

    base: float = 1.0
    cap: float = 30.0
    attempt: int = 0

    def next_delay(self, rng: random.Random) -> float:
        self.attempt += 1
        return rng.uniform(0, min(self.cap, self.base * 2 ** (self.attempt - 1)))

    def reset(self) -> None:
        self.attempt = 0


def run_daemon(
    config: Config,
    store: Store,
    *,
    node: str,
    stop: threading.Event | None = None,
    lock: InstanceLock | None = None,
    clock: Callable[[], float] = time.monotonic,
    on_poll: Callable[[PollSummary], Any] | None = None,
    metrics: MetricsSink | None = None,
    dispatcher: Dispatcher | None = None,
    lease: MasterLease | None = None,
    pruner: Pruner | None = None,
) -> None:
    """Poll every ``config.poll_interval`` seconds until ``stop`` is set (SIGTERM / SIGINT).

    Every poll first tries the master lease; ``pipeline.leader`` says whether this daemon holds
    it for that poll, and the health row records it (``role``) for ``logwatch status``."""
    stop = stop or threading.Event()
    tune_collector()
    lease = lease or MasterLease(store)
    pruner = pruner or Pruner(store, config.retention_days)
    metrics = metrics or NullMetrics()
    failures_seen: dict[str, int] = {}  # per alert sink, already counted in metrics
    started = datetime.now(UTC)
    rng = random.Random()
    backoff = Backoff()
    pipeline: Pipeline | None = None
    degraded_since: datetime | None = None
    last_problem: str | None = None
    _health(store, node, "starting", started, role="standby")
    while not stop.is_set():
        t0 = clock()
        try:
            if lock is not None:
                lock.ensure()
            if pipeline is None:
                pipeline = Pipeline(config, store, stop=stop, metrics=metrics, node=node)
            now = datetime.now(UTC)
            # Feedback is re-read every poll, so an ack, a suppression or a mark-normal given
            # from the CLI applies from the next poll on.
            pipeline.feedback = FeedbackRules.load(store, now)
            # The pipeline runs the master model only while this daemon holds the lease.
            pipeline.leader = lease.try_acquire()
            summary = pipeline.poll(now)
            if lease.held:
                pruner.step(now, clock())
        except StateCorruptError:
            raise  # not an outage: retrying cannot help, and guessing could lose lines
        except StorageError as exc:
            delay = backoff.next_delay(rng)
            log.warning("database problem (%s); degraded, retrying in %.1f s", exc, delay)
            degraded_since = degraded_since or datetime.now(UTC)
            _health(store, node, "degraded", started, error=str(exc), role=_role(lease))
            last_problem = str(exc)
            stop.wait(delay)
            continue
        backoff.reset()
        elapsed = clock() - t0
        if gc.get_freeze_count() == 0:
            # What the first poll built (modules, the engine, every stream's templates, statistics
            # and model) lives as long as the daemon: out of the collector's full passes, which
            # would otherwise walk all of it again and again. Freed objects are still freed;
            # only a reference cycle among them would be kept, and this is done once.
            gc.freeze()
        lag, tracked = pipeline.lag()
        metrics.observe_poll(elapsed, lag, tracked, at=time.time())
        note = None
        if degraded_since is not None:
            # The database could not record the outage while it lasted; say so now it is back.
            seconds = (datetime.now(UTC) - degraded_since).total_seconds()
            note = (
                f"degraded for {seconds:.0f} s from {degraded_since:%Y-%m-%dT%H:%M:%SZ} "
                f"({last_problem}); recovered"
            )
            log.warning("database is back after %.0f s; resumed where it stopped", seconds)
            degraded_since = None
        _health(
            store,
            node,
            "running",
            started,
            poll_ms=elapsed * 1000.0,
            error=note,
            keep_error=note is None,
            role=_role(lease),
        )
        if summary.lines or summary.errors:
            log.info(
                "poll: %d lines, %d events, %d anomalies, %d errors in %.0f ms",
                summary.lines,
                summary.events,
                summary.anomalies,
                len(summary.errors),
                elapsed * 1000.0,
            )
        for path, error in summary.errors:
            log.warning("%s: %s", path, error)
        if dispatcher is not None:
            # Suppressed anomalies are recorded, not sent; submit never blocks or raises.
            dispatcher.muted = pipeline.feedback.mutes if pipeline.feedback else None
            dispatcher.submit(summary.found, group_of=pipeline.overview.group_of)
            for name, stats in dispatcher.stats().items():
                for _ in range(stats.failed - failures_seen.get(name, 0)):
                    metrics.sink_error(name)
                failures_seen[name] = stats.failed
        if on_poll is not None:
            on_poll(summary)
        stop.wait(max(0.0, config.poll_interval - elapsed))
    if pipeline is not None:
        pipeline.close()
    if dispatcher is not None:
        dispatcher.close(config.shutdown_timeout)
    lease.release()
    _health(store, node, "stopped", started, role="standby")


def _role(lease: MasterLease) -> str:
    return "master" if lease.held else "standby"


def _health(
    store: Store,
    node: str,
    state: str,
    started: datetime,
    *,
    poll_ms: float | None = None,
    error: str | None = None,
    keep_error: bool = False,
    role: str | None = None,
) -> None:
    try:
        store.record_daemon(
            node,
            state=state,
            started_at=started,
            last_poll_ms=poll_ms,
            error=error,
            keep_error=keep_error,
            role=role,
        )
    except StorageError as exc:  # health is best effort: a database that is down cannot hold it
        log.debug("could not record health: %s", exc)
