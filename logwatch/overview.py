"""The bird's-eye stage: sessions, the master model over all streams, and incidents.

The pipeline feeds it every scored event (``observe``) and every recorded anomaly (``found``);
at the end of each poll (``poll_end``) or of a ``--once`` run (``finish_once``) it closes idle
sessions and scores them with each stream's session model, scores the closed time windows with the
master model, groups everything into incidents, and stores what it found.

Time is the logs' own time where lines carry one (epoch seconds, zone-less read as UTC); a line
without a time takes its stream's previous time, and a stream without times the wall clock.
Open sessions, open windows and open incidents live in memory only: after a restart they start
afresh (a session spanning a restart is judged on its part after it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from logwatch import incident_store
from logwatch.config import Config
from logwatch.errors import StateCorruptError
from logwatch.incident_store import SessionFinding
from logwatch.incidents import Incident, IncidentGrouper, SessionEvidence, anomaly_time
from logwatch.master import MasterModel, WindowAggregator, WindowVerdict
from logwatch.records import Anomaly, Event
from logwatch.sessions import ClosedSession, SessionKeys, SessionModel, SessionTracker
from logwatch.storage import Store

log = logging.getLogger(__name__)

# Anomalies held for incident grouping in one --once run (beyond this they are stored, not grouped).
MAX_PENDING = 100_000
# Model state is saved at most this often in daemon mode (seconds), and at the end of a run.
SAVE_EVERY_SECONDS = 300.0


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
            self.aggregator = WindowAggregator(config.master_window_seconds)
            self.master = MasterModel(random_state=config.random_state)
            self._restore_master()
        self.grouper = IncidentGrouper(config.master_window_seconds)
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
            ts = event.parsed.timestamp
            at = (
                (ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)).timestamp()
                if ts
                else previous
            )
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
        verdicts: list[WindowVerdict] = []
        if self.aggregator is not None and self.master is not None and self.leader:
            vectors = self.aggregator.closed(wall)
            if vectors:
                verdicts = self.master.score(vectors)
                self._dirty.add("master")
        result.windows = [v for v in verdicts if v.fitted and v.severity >= _window_floor()]
        pending, self._pending = self._pending, []
        incidents = self.grouper.add(pending, verdicts, evidence)
        self._remember_groups(pending, incidents)
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
        if self.aggregator is not None and self.master is not None and self.leader:
            vectors = self.aggregator.flush()
            if vectors:
                verdicts = self.master.score(vectors)
                self._dirty.add("master")
        result.windows = [v for v in verdicts if v.fitted and v.severity >= _window_floor()]
        pending, self._pending = self._pending, []
        incidents = self.grouper.add(pending, verdicts, evidence)
        self._remember_groups(pending, incidents)
        closed = self.grouper.flush()
        result.incidents = _latest(incidents + closed)
        self._store(result, now.timestamp(), force=True)
        return result

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

    def _restore_master(self) -> None:
        state = incident_store.load_state(self.store, "master")
        if state is None or self.master is None or self.aggregator is None:
            return
        try:
            self.master = MasterModel.from_state(state["model"])
            self.aggregator = WindowAggregator.from_state(state["windows"])
        except (StateCorruptError, KeyError, TypeError, ValueError) as exc:
            log.warning("master model state unreadable (%s); relearning", exc)

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
        states = {}
        for key in self._dirty:
            if key == "master" and self.master is not None and self.aggregator is not None:
                states[key] = {
                    "model": self.master.to_state(),
                    "windows": self.aggregator.to_state(),
                }
            elif key.startswith("session:"):
                model = self.session_models.get(key[len("session:") :])
                if model is not None:
                    states[key] = model.to_state()
        incident_store.save_state(self.store, states)
        self._dirty.clear()
        self._last_save = wall

    def _remember_groups(self, anomalies: Sequence[Anomaly], incidents: list[Incident]) -> None:
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


def _window_floor() -> int:
    return IncidentGrouper().window_min_severity


def _latest(incidents: list[Incident]) -> list[Incident]:
    latest: dict[str, Incident] = {}
    for incident in incidents:
        latest[incident.id] = incident
    return sorted(latest.values(), key=lambda i: (i.first_time, i.id))
