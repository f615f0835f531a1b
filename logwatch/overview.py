"""The bird's-eye stage: sessions, the master model over all streams, and incidents.

The pipeline feeds it every scored event (``observe``) and every recorded anomaly (``found``);
at the end of each poll (``poll_end``) or of a ``--once`` run (``finish_once``) it closes idle
sessions and scores them with each stream's session model, scores the closed time windows with the
master model, groups everything into incidents, and stores what it found.

The master model sees the whole fleet. Every daemon writes its closed windows (per stream: events,
anomalies, highest severity, the usual volume from its own baseline) to ``window_stats``; the
leader (the holder of the master lease) reads the windows of every node back once they ended
``1 + FLEET_GRACE_WINDOWS`` windows ago, scores them with streams named ``node/stream``, and keeps
the start of the newest window it scored (``master-watermark``) with the model's state.

Time is the logs' own time where lines carry one (epoch seconds, zone-less read as UTC); a line
without a time takes its stream's previous time, and a stream without times the wall clock.
Open sessions, open windows and open incidents live in memory only: after a restart they start
afresh (a session spanning a restart is judged on its part after it).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from logwatch import incident_store
from logwatch.config import Config
from logwatch.errors import StateCorruptError, StorageError
from logwatch.incident_store import SessionFinding, WindowStat
from logwatch.incidents import Incident, IncidentGrouper, SessionEvidence, anomaly_time
from logwatch.master import (
    MasterModel,
    StreamWindow,
    WindowAggregator,
    WindowVector,
    WindowVerdict,
    relative_volume,
)
from logwatch.records import Anomaly, Event, epoch_seconds
from logwatch.sessions import ClosedSession, SessionKeys, SessionModel, SessionTracker
from logwatch.storage import Store

log = logging.getLogger(__name__)

# Anomalies held for incident grouping in one --once run (beyond this they are stored, not grouped).
MAX_PENDING = 100_000
# Model state is saved at most this often in daemon mode (seconds), and at the end of a run.
SAVE_EVERY_SECONDS = 300.0
# A daemon writes a window once it ended one window before its poll (its own grace for lines that
# arrive late); the leader scores the fleet's windows this many windows later still, so a daemon
# whose poll runs up to that much behind the leader's is in the window all the same.
FLEET_GRACE_WINDOWS = 1
# Windows the leader reads and scores in one poll at most: a backlog is caught up over polls.
MAX_FLEET_WINDOWS = 1440
# ... loaded this many window rows (streams x windows) at a time: a catch-up over 1,000 streams
# would otherwise hold 1.4 million rows at once. Up to ~14 streams a poll's windows are one page.
FLEET_PAGE_ROWS = 20_000
# Window rows held for the next poll when the database could not take them (newest kept).
MAX_UNPUBLISHED = 100_000
# model_state keys: the master model (the leader's), the start of the newest window it scored
# (saved with the model, in one transaction), and each node's window aggregator (its baseline).
MASTER_KEY = "master"
WATERMARK_KEY = "master-watermark"


@dataclass
class OverviewResult:
    """What one poll (or run) of the bird's-eye stage found."""

    incidents: list[Incident] = field(default_factory=list)
    sessions: list[SessionFinding] = field(default_factory=list)
    windows: list[WindowVerdict] = field(default_factory=list)  # flagged windows


class Overview:
    def __init__(
        self,
        config: Config,
        store: Store,
        template_text: Callable[[str, int], str | None],
        *,
        node: str = "",
    ) -> None:
        self.config = config
        self.store = store
        self.node = node
        self.template_text = template_text
        self.keys = SessionKeys.from_config(config)
        self.tracker = SessionTracker(config.session_idle_seconds, config.max_open_sessions)
        self.session_models: dict[str, SessionModel] = {}
        self.aggregator: WindowAggregator | None = None
        self.master: MasterModel | None = None
        if config.master_model:
            self.aggregator = self._restore_aggregator()
            self.master = MasterModel(random_state=config.random_state)
        # The master model and its watermark are read when this daemon first leads (again):
        # another daemon may have led meanwhile.
        self._master_loaded = False
        self._scored_to: float | None = None  # start of the newest window the master scored
        self._unpublished: list[WindowStat] = []  # closed windows not written yet (an outage)
        self.grouper = IncidentGrouper(config.master_window_seconds)
        self._window_floor = self.grouper.window_min_severity  # windows worth reporting
        # Only one daemon of a fleet runs the master model (the holder of the master lease).
        self.leader = True
        self._pending: list[Anomaly] = []
        self._stream_time: dict[str, float] = {}
        self._last_save = 0.0
        self._dirty: set[str] = set()  # model_state keys changed since the last save
        self.incident_of: dict[tuple[str, int], tuple[str, str]] = {}  # for alert grouping
        self._sessions_reported: dict[str, int] = {}

    # ------------------------------------------------------------------ feeding

    def observe(
        self,
        stream: str,
        path: str,
        events: Sequence[Event],
        template_ids: Sequence[int],
        now: float,
    ) -> None:
        """Count scored events into their sessions and time windows."""
        keys, tracker, aggregator = self.keys, self.tracker, self.aggregator
        previous = self._stream_time.get(stream, now)
        for event, template_id in zip(events, template_ids, strict=True):
            seconds = epoch_seconds(event.parsed.timestamp)
            at = seconds if seconds is not None else previous
            previous = at
            for key in keys.keys(stream, event.text):
                tracker.observe(stream, key, template_id, path, event.line_no, at)
            if aggregator is not None:
                aggregator.add(stream, at, events=event.count)
        self._stream_time[stream] = previous

    def found(self, anomalies: Sequence[Anomaly], now: float) -> None:
        """Recorded anomalies: they count in their window and wait for incident grouping."""
        if self.aggregator is not None:
            for a in anomalies:
                self.aggregator.add(a.stream, anomaly_time(a), 0, a.severity)
        room = MAX_PENDING - len(self._pending)
        self._pending.extend(anomalies[: max(room, 0)])

    # ------------------------------------------------------------------ judging

    def poll_end(self, now: datetime) -> OverviewResult:
        """Daemon mode, after every poll: idle sessions, closed windows, incidents."""
        wall = now.timestamp()
        result = OverviewResult()
        closed = self.tracker.expire(wall)
        evidence = self._judge_sessions(closed, result, once=False)
        verdicts = self._fleet_windows(wall)
        result.windows = [v for v in verdicts if v.fitted and v.severity >= self._window_floor]
        pending, self._pending = self._pending, []
        incidents = self.grouper.add(pending, verdicts, evidence)
        self._remember_groups(incidents)
        incidents += self.grouper.expire(self._watermark(wall))
        result.incidents = incidents
        self._store(result, wall, force=False)
        return result

    def finish_once(self, now: datetime) -> OverviewResult:
        """End of a --once run: every session closes and is judged against a model fitted on the
        stream's sessions; every window is scored; everything is grouped into incidents."""
        result = OverviewResult()
        evidence = self._judge_sessions(self.tracker.close_all(), result, once=True)
        verdicts: list[WindowVerdict] = []
        if self.aggregator is not None and self.master is not None:
            # One process: its own windows, in memory; stored all the same for the fleet's view.
            vectors = self.aggregator.flush()
            self._publish(vectors)
            if vectors and self.leader:
                master = self._lead()
                verdicts = master.score([_keyed(v, self.node) for v in vectors])
                self._scored_to = max(self._scored_to or -math.inf, vectors[-1].start)
                self._dirty.add(MASTER_KEY)
        result.windows = [v for v in verdicts if v.fitted and v.severity >= self._window_floor]
        pending, self._pending = self._pending, []
        incidents = self.grouper.add(pending, verdicts, evidence)
        self._remember_groups(incidents)
        closed = self.grouper.flush()
        result.incidents = _latest(incidents + closed)
        self._store(result, now.timestamp(), force=True)
        return result

    def _fleet_windows(self, wall: float) -> list[WindowVerdict]:
        """Daemon mode: write this node's closed windows; the leader scores the fleet's."""
        if self.aggregator is None or self.master is None:
            return []
        self._publish(self.aggregator.closed(wall))
        if not self.leader:
            self._step_down()
            return []
        master = self._lead()
        width = self.aggregator.window_seconds
        before = (math.floor(wall / width) - 1 - FLEET_GRACE_WINDOWS) * width
        verdicts: list[WindowVerdict] = []
        scored = 0
        while scored < MAX_FLEET_WINDOWS:  # a page at a time: bounded memory however many streams
            rows = incident_store.load_windows(
                self.store,
                after=self._scored_to,
                before=before,
                max_windows=MAX_FLEET_WINDOWS - scored,
                max_rows=FLEET_PAGE_ROWS,
            )
            vectors = fleet_vectors(rows, width)
            if not vectors:
                break
            verdicts += master.score(vectors)
            self._scored_to = vectors[-1].start
            self._dirty.add(MASTER_KEY)
            scored += len(vectors)
        return verdicts

    def _publish(self, vectors: Sequence[WindowVector]) -> None:
        """Write closed windows to ``window_stats``; rows a database outage kept out go with the
        next poll's (the aggregator emits a window only once)."""
        rows = self._unpublished + [
            WindowStat(
                self.node, s.stream, v.start, s.events, s.anomalies, s.max_severity, s.expected
            )
            for v in vectors
            for s in v.streams
        ]
        self._unpublished = []
        if not rows:
            return
        try:
            incident_store.save_windows(self.store, rows)
        except StorageError:
            self._unpublished = rows[-MAX_UNPUBLISHED:]
            raise
        self._dirty.add(self._windows_key)

    def close(self, now: datetime) -> None:
        """Shutdown: save model state (open sessions and windows are not kept)."""
        self._store(OverviewResult(), now.timestamp(), force=True)

    def _judge_sessions(
        self, closed: list[ClosedSession], result: OverviewResult, *, once: bool
    ) -> list[SessionEvidence]:
        by_stream: dict[str, list[ClosedSession]] = {}
        for session in closed:
            by_stream.setdefault(session.stream, []).append(session)
        evidence: list[SessionEvidence] = []
        for stream, sessions in sorted(by_stream.items()):
            model = self._session_model(stream)
            if once and not model.fitted and len(sessions) >= model.min_sessions:
                model.fit(sessions)  # --once: the stream's own sessions are its normal
            verdicts = model.score(sessions) if model.fitted else []
            if not once:
                model.learn(sessions, verdicts or None)
            self._dirty.add(_session_key(stream))
            for verdict in verdicts:
                if verdict.severity < self.config.min_severity or not verdict.evident:
                    continue
                s = verdict.session
                texts = {
                    tid: text
                    for tid in s.counts
                    if (text := self.template_text(stream, tid)) is not None
                }
                for tid, _ in (*verdict.missing, *verdict.unusual):
                    text = self.template_text(stream, tid)
                    if text is not None:
                        texts[tid] = text
                reasons = verdict.reasons(texts)
                result.sessions.append(
                    SessionFinding(
                        stream,
                        s.key,
                        s.first.path,
                        s.first.line,
                        s.last.path,
                        s.last.line,
                        s.first.at,
                        s.last.at,
                        s.events,
                        verdict.severity,
                        float(verdict.score),
                        reasons,
                    )
                )
                evidence.append(
                    SessionEvidence(stream, s.key, s.first.at, s.last.at, verdict.severity, reasons)
                )
        return evidence

    # ------------------------------------------------------------------ state

    def _session_model(self, stream: str) -> SessionModel:
        model = self.session_models.get(stream)
        if model is None:
            state = incident_store.load_state(self.store, _session_key(stream))
            model = SessionModel(random_state=self.config.random_state)
            if state is not None:
                try:
                    model = SessionModel.from_state(state)
                except (StateCorruptError, KeyError, TypeError, ValueError) as exc:
                    # A model is a summary of what was seen; relearning it loses no line.
                    log.warning("session model of %s unreadable (%s); relearning", stream, exc)
            self.session_models[stream] = model
        return model

    @property
    def _windows_key(self) -> str:
        return f"master-windows:{self.node}"

    def _restore_aggregator(self) -> WindowAggregator:
        """This node's window aggregator (its volume baseline), as last saved."""
        width = self.config.master_window_seconds
        state = incident_store.load_state(self.store, self._windows_key)
        if state is not None:
            try:
                aggregator = WindowAggregator.from_state(state)
                if aggregator.window_seconds == width:
                    return aggregator
                log.warning("master window length changed; relearning the volume baseline")
            except (StateCorruptError, KeyError, TypeError, ValueError) as exc:
                log.warning("window aggregator state unreadable (%s); relearning", exc)
        return WindowAggregator(width)

    def _lead(self) -> MasterModel:
        """The master model, read with its watermark as the last leader saved them."""
        if self._master_loaded and self.master is not None:
            return self.master
        master = MasterModel(random_state=self.config.random_state)
        state = incident_store.load_state(self.store, MASTER_KEY)
        if state is not None:
            try:
                master = MasterModel.from_state(state["model"])
            except (StateCorruptError, KeyError, TypeError, ValueError) as exc:
                log.warning("master model state unreadable (%s); relearning", exc)
        mark = incident_store.load_state(self.store, WATERMARK_KEY)
        start = None if mark is None else mark.get("start")
        self._scored_to = float(start) if isinstance(start, int | float) else None
        self.master, self._master_loaded = master, True
        return master

    def _step_down(self) -> None:
        """Not the leader (any more): forget the model; the leader's saved state is the truth."""
        if self._master_loaded:
            self.master = MasterModel(random_state=self.config.random_state)
            self._master_loaded = False
            self._scored_to = None
        self._dirty.discard(MASTER_KEY)

    def _store(self, result: OverviewResult, wall: float, *, force: bool) -> None:
        incident_store.save_sessions(self.store, result.sessions, self.node)
        incident_store.save_incidents(self.store, result.incidents, self.node)
        sessions = {"open": self.tracker.open_count, "evicted": self.tracker.evicted}
        if sessions != self._sessions_reported:
            # For `logwatch status`: open sessions live in this process only.
            incident_store.save_state(self.store, {f"sessions-open:{self.node}": sessions})
            self._sessions_reported = sessions
        if not self._dirty or not (force or wall - self._last_save >= SAVE_EVERY_SECONDS):
            return
        states: dict[str, dict[str, Any]] = {}
        for key in self._dirty:
            if key == MASTER_KEY and self.master is not None and self._master_loaded:
                # One transaction: a leader taking over finds the model and the windows it holds.
                states[key] = {"model": self.master.to_state()}
                states[WATERMARK_KEY] = {"start": self._scored_to}
            elif key == self._windows_key and self.aggregator is not None:
                states[key] = self.aggregator.to_state()
            elif key.startswith("session:"):
                model = self.session_models.get(key[len("session:") :])
                if model is not None:
                    states[key] = model.to_state()
        incident_store.save_state(self.store, states)
        self._dirty.clear()
        self._last_save = wall

    def _remember_groups(self, incidents: list[Incident]) -> None:
        titles = {i.id: i.title for i in incidents}
        self.incident_of = {
            key: (incident_id, titles.get(incident_id, incident_id))
            for key, incident_id in self.grouper.assigned.items()
        }

    def group_of(self, anomaly: Anomaly) -> tuple[str, str] | None:
        """(incident id, title) of an anomaly of the last poll: alerts go out per incident."""
        return self.incident_of.get((anomaly.path, anomaly.offset))

    def _watermark(self, wall: float) -> float:
        """Log time up to which every stream has spoken: incidents older than it can close."""
        return min(self._stream_time.values(), default=wall)


def _session_key(stream: str) -> str:
    return f"session:{stream}"


def fleet_stream(node: str, stream: str) -> str:
    """A stream as the master model names it: ``node/stream``, or the stream on a node-less run."""
    return f"{node}/{stream}" if node else stream


def _keyed(vector: WindowVector, node: str) -> WindowVector:
    if not node:
        return vector
    return replace(
        vector,
        streams=tuple(replace(s, stream=fleet_stream(node, s.stream)) for s in vector.streams),
    )


def fleet_vectors(rows: Sequence[WindowStat], window_seconds: float) -> list[WindowVector]:
    """Window vectors across nodes from ``window_stats`` rows ordered by window start."""
    out: list[WindowVector] = []
    cells: list[StreamWindow] = []
    for i, row in enumerate(rows):
        cells.append(
            StreamWindow(
                fleet_stream(row.node, row.stream),
                row.events,
                row.anomalies,
                row.max_severity,
                row.expected,
                relative_volume(row.events, row.expected),
            )
        )
        if i + 1 == len(rows) or rows[i + 1].window_start != row.window_start:
            start = row.window_start
            cells.sort(key=lambda c: c.stream)
            out.append(WindowVector(start, start + window_seconds, tuple(cells)))
            cells = []
    return out


def _latest(incidents: list[Incident]) -> list[Incident]:
    latest: dict[str, Incident] = {}
    for incident in incidents:
        latest[incident.id] = incident
    return sorted(latest.values(), key=lambda i: (i.first_time, i.id))
