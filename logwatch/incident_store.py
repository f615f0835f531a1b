"""Tables and queries for the bird's-eye view: incidents, anomalous sessions, every daemon's closed
time windows (what the master model of a fleet scores), and the saved state of the session and
master models. Declared on ``storage.Base`` (storage imports this module), kept
apart so storage.py stays about files, streams and lines.

Model state is JSON (parameters and training rows, refitted on load), never a pickle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    Integer,
    String,
    Text,
    delete,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from logwatch.incidents import Incident
from logwatch.storage import Base, Store, utcnow


class IncidentRow(Base):
    __tablename__ = "incidents"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    node: Mapped[str] = mapped_column(String(255), default="")
    title: Mapped[str] = mapped_column(Text)
    kinds: Mapped[list[str]] = mapped_column(JSON)
    first_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_time: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    severity: Mapped[int] = mapped_column(Integer)
    count: Mapped[int] = mapped_column(Integer)
    streams: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    templates: Mapped[list[str]] = mapped_column(JSON)
    sessions: Mapped[list[str]] = mapped_column(JSON)
    windows: Mapped[int] = mapped_column(Integer, default=0)
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SessionAnomalyRow(Base):
    """A session (events sharing an id) whose template counts the session model found abnormal."""

    __tablename__ = "session_anomalies"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    node: Mapped[str] = mapped_column(String(255), default="")
    stream: Mapped[str] = mapped_column(String(512))
    key: Mapped[str] = mapped_column(String(255))
    first_path: Mapped[str] = mapped_column(Text)
    first_line: Mapped[int] = mapped_column(BigInteger)
    last_path: Mapped[str] = mapped_column(Text)
    last_line: Mapped[int] = mapped_column(BigInteger)
    first_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    events: Mapped[int] = mapped_column(BigInteger)
    severity: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    reasons: Mapped[list[str]] = mapped_column(JSON)
    detected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ModelStateRow(Base):
    """Saved state of a model that is not one stream's line model (session models, master)."""

    __tablename__ = "model_state"
    key: Mapped[str] = mapped_column(String(600), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WindowStatRow(Base):
    """One stream's numbers in one closed time window, written by the daemon of its node.

    ``expected`` is the stream's usual events per window at that hour, from that daemon's own
    volume baseline (None while unknown). The fleet's master reads these rows back across nodes."""

    __tablename__ = "window_stats"
    node: Mapped[str] = mapped_column(String(255), primary_key=True)
    stream: Mapped[str] = mapped_column(String(512), primary_key=True)
    window_start: Mapped[float] = mapped_column(Float, primary_key=True, index=True)  # epoch s
    events: Mapped[int] = mapped_column(BigInteger)
    anomalies: Mapped[int] = mapped_column(Integer)
    max_severity: Mapped[int] = mapped_column(Integer)
    expected: Mapped[float | None] = mapped_column(Float, nullable=True)


@dataclass(frozen=True, slots=True)
class WindowStat:
    """A row of ``window_stats``."""

    node: str
    stream: str
    window_start: float  # epoch seconds, log time
    events: int
    anomalies: int
    max_severity: int
    expected: float | None


@dataclass(frozen=True, slots=True)
class SessionFinding:
    """An anomalous session as stored and listed."""

    stream: str
    key: str
    first_path: str
    first_line: int
    last_path: str
    last_line: int
    first_time: float  # epoch seconds
    last_time: float
    events: int
    severity: int
    score: float
    reasons: tuple[str, ...]


# Rows per statement when writing windows, and per transaction when pruning them.
_WRITE_BATCH = 5_000
_PRUNE_BATCH = 5_000


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _upsert(store: Store, table: Any) -> Any:
    return postgresql.insert(table) if store.dialect == "postgresql" else sqlite.insert(table)


def save_incidents(store: Store, incidents: Sequence[Incident], node: str = "") -> None:
    """Insert or update incidents by id (the grouper hands out a new snapshot on every change)."""
    if not incidents:
        return
    now = utcnow()
    latest = {i.id: i for i in incidents}  # the last snapshot of each wins
    rows = [
        {
            "id": i.id,
            "node": node,
            "title": i.title,
            "kinds": list(i.kinds),
            "first_time": _at(i.first_time),
            "last_time": _at(i.last_time),
            "severity": i.severity,
            "count": i.count,
            "streams": [
                {
                    "stream": s.stream,
                    "count": s.count,
                    "max_severity": s.max_severity,
                    "contribution": round(s.contribution, 4),
                }
                for s in i.streams
            ],
            "lines": [
                {
                    "stream": ln.stream,
                    "path": ln.path,
                    "line": ln.line,
                    "timestamp": ln.timestamp,
                    "text": ln.text,
                    "severity": ln.severity,
                    "reasons": list(ln.reasons),
                }
                for ln in i.lines
            ],
            "templates": list(i.templates),
            "sessions": list(i.sessions),
            "windows": i.windows,
            "closed": i.closed,
            "updated_at": now,
        }
        for i in latest.values()
    ]
    stmt = _upsert(store, IncidentRow)
    stmt = stmt.on_conflict_do_update(
        index_elements=["id"],
        set_={
            name: getattr(stmt.excluded, name)
            for name in rows[0]
            if name not in ("id", "node", "first_time")
        },
    )
    with store.transaction() as conn:
        conn.execute(stmt, rows)


def incidents(
    store: Store,
    *,
    since: datetime | None = None,
    min_severity: int = 0,
    limit: int | None = None,
    node: str | None = None,
) -> list[dict[str, Any]]:
    """Incidents, most recent first, as plain rows for the listings."""
    q = select(IncidentRow).where(IncidentRow.severity >= min_severity)
    if since is not None:
        q = q.where(IncidentRow.last_time >= since.astimezone(UTC))
    if node is not None:
        q = q.where(IncidentRow.node == node)
    q = q.order_by(IncidentRow.last_time.desc(), IncidentRow.id)
    if limit is not None:
        q = q.limit(limit)
    with store.transaction() as conn:
        rows = conn.execute(q).all()
        return [
            {
                "id": r.id,
                "title": r.title,
                "kinds": list(r.kinds),
                "first": _iso(r.first_time),
                "last": _iso(r.last_time),
                "severity": r.severity,
                "count": r.count,
                "streams": list(r.streams),
                "lines": list(r.lines),
                "templates": list(r.templates),
                "sessions": list(r.sessions),
                "closed": bool(r.closed),
                "node": r.node,
            }
            for r in rows
        ]


def save_sessions(store: Store, findings: Sequence[SessionFinding], node: str = "") -> None:
    if not findings:
        return
    now = utcnow()
    with store.transaction() as conn:
        conn.execute(
            SessionAnomalyRow.__table__.insert(),  # type: ignore[attr-defined]
            [
                {
                    "node": node,
                    "stream": f.stream,
                    "key": f.key[:255],
                    "first_path": f.first_path,
                    "first_line": f.first_line,
                    "last_path": f.last_path,
                    "last_line": f.last_line,
                    "first_time": _at(f.first_time),
                    "last_time": _at(f.last_time),
                    "events": f.events,
                    "severity": f.severity,
                    "score": f.score,
                    "reasons": list(f.reasons),
                    "detected_at": now,
                }
                for f in findings
            ],
        )


def sessions(store: Store, *, stream: str | None = None) -> list[SessionFinding]:
    q = select(SessionAnomalyRow).order_by(SessionAnomalyRow.id)
    if stream is not None:
        q = q.where(SessionAnomalyRow.stream == stream)
    with store.transaction() as conn:
        return [
            SessionFinding(
                r.stream,
                r.key,
                r.first_path,
                int(r.first_line),
                r.last_path,
                int(r.last_line),
                _epoch(r.first_time),
                _epoch(r.last_time),
                int(r.events),
                int(r.severity),
                float(r.score),
                tuple(r.reasons),
            )
            for r in conn.execute(q).all()
        ]


def load_state(store: Store, key: str) -> dict[str, Any] | None:
    with store.transaction() as conn:
        value = conn.scalar(select(ModelStateRow.state).where(ModelStateRow.key == key))
    return dict(value) if value is not None else None


def save_state(store: Store, states: dict[str, dict[str, Any]]) -> None:
    if not states:
        return
    now = utcnow()
    stmt = _upsert(store, ModelStateRow)
    stmt = stmt.on_conflict_do_update(
        index_elements=["key"],
        set_={"state": stmt.excluded.state, "updated_at": stmt.excluded.updated_at},
    )
    with store.transaction() as conn:
        conn.execute(stmt, [{"key": k, "state": v, "updated_at": now} for k, v in states.items()])


def save_windows(store: Store, windows: Sequence[WindowStat]) -> None:
    """Store closed windows. One daemon writes each (node, stream); a window already stored is
    kept as it is: the only second write is a re-emission after a restart from older saved state,
    which counts just the lines read since the restart (the first write counted them all)."""
    if not windows:
        return
    stmt = _upsert(store, WindowStatRow).on_conflict_do_nothing(
        index_elements=["node", "stream", "window_start"]
    )
    with store.transaction() as conn:
        for i in range(0, len(windows), _WRITE_BATCH):  # parameters built a batch at a time
            rows = [
                {
                    "node": w.node,
                    "stream": w.stream,
                    "window_start": w.window_start,
                    "events": w.events,
                    "anomalies": w.anomalies,
                    "max_severity": w.max_severity,
                    "expected": w.expected,
                }
                for w in windows[i : i + _WRITE_BATCH]
            ]
            conn.execute(stmt, rows)


def load_windows(
    store: Store,
    *,
    after: float | None,
    before: float,
    max_windows: int,
    max_rows: int | None = None,
) -> list[WindowStat]:
    """Rows of every node with ``after < window_start < before`` (``after`` None: from the oldest),
    of at most the ``max_windows`` oldest such windows and, past the first window, at most
    ``max_rows`` rows (memory: a catch-up over many streams loads a page at a time); ordered by
    window, node, stream."""
    where = [WindowStatRow.window_start < before]
    if after is not None:
        where.append(WindowStatRow.window_start > after)
    with store.transaction() as conn:
        sizes = conn.execute(
            select(WindowStatRow.window_start, func.count())
            .where(*where)
            .group_by(WindowStatRow.window_start)
            .order_by(WindowStatRow.window_start)
            .limit(max_windows)
        ).all()
        if not sizes:
            return []
        last, total = sizes[0][0], 0
        for i, (start, count) in enumerate(sizes):
            total += int(count)
            if i and max_rows is not None and total > max_rows:
                break
            last = start
        rows = conn.execute(
            select(WindowStatRow)
            .where(*where, WindowStatRow.window_start <= last)
            .order_by(WindowStatRow.window_start, WindowStatRow.node, WindowStatRow.stream)
        ).all()
    return [
        WindowStat(
            r.node,
            r.stream,
            float(r.window_start),
            int(r.events),
            int(r.anomalies),
            int(r.max_severity),
            None if r.expected is None else float(r.expected),
        )
        for r in rows
    ]


def overview_report(store: Store, node: str | None = None) -> dict[str, Any]:
    """Counts for ``logwatch status``: incidents, anomalous sessions, open sessions per daemon."""
    with store.transaction() as conn:
        q_inc = select(func.count()).select_from(IncidentRow)
        q_open = select(func.count()).select_from(IncidentRow).where(IncidentRow.closed.is_(False))
        q_ses = select(func.count()).select_from(SessionAnomalyRow)
        if node is not None:
            q_inc = q_inc.where(IncidentRow.node == node)
            q_open = q_open.where(IncidentRow.node == node)
            q_ses = q_ses.where(SessionAnomalyRow.node == node)
        live = conn.execute(
            select(ModelStateRow.key, ModelStateRow.state).where(
                ModelStateRow.key.like("sessions-open:%")
            )
        ).all()
        models = conn.scalar(
            select(func.count())
            .select_from(ModelStateRow)
            .where(ModelStateRow.key.like("session:%"))
        )
        return {
            "incidents": int(conn.scalar(q_inc) or 0),
            "incidents_open": int(conn.scalar(q_open) or 0),
            "anomalous_sessions": int(conn.scalar(q_ses) or 0),
            "session_models": int(models or 0),
            "sessions_open": {
                key.split(":", 1)[1] or "-": dict(state)
                for key, state in live
                if node is None or key == f"sessions-open:{node}"
            },
        }


def prune(store: Store, before: datetime, *, batch: int = _PRUNE_BATCH) -> int:
    """Drop incidents and session findings last stored before ``before``, and windows more than
    the retention older than the newest window (retention). Stored times, and for windows the
    logs' own clock, are what count: an archive of March processed today is not pruned at once.
    Windows go in transactions of about ``batch`` rows (whole windows), so ingestion never waits
    behind a long delete."""
    with store.transaction() as conn:
        gone = conn.execute(delete(IncidentRow).where(IncidentRow.updated_at < before)).rowcount
        gone += conn.execute(
            delete(SessionAnomalyRow).where(SessionAnomalyRow.detected_at < before)
        ).rowcount
        newest = conn.scalar(select(func.max(WindowStatRow.window_start)))
    span = utcnow().timestamp() - before.timestamp()  # the retention itself
    cutoff = before.timestamp()
    if newest is not None:
        cutoff = min(cutoff, float(newest) - span)
    while True:
        with store.transaction() as conn:
            # The start of the batch-th oldest old row: everything up to it is about one batch.
            edge = conn.scalar(
                select(WindowStatRow.window_start)
                .where(WindowStatRow.window_start < cutoff)
                .order_by(WindowStatRow.window_start)
                .offset(batch - 1)
                .limit(1)
            )
            upto = WindowStatRow.window_start < cutoff
            if edge is not None:
                upto = WindowStatRow.window_start <= edge
            n = int(conn.execute(delete(WindowStatRow).where(upto)).rowcount)
        gone += n
        if edge is None or n == 0:
            break
    return int(gone)


def _epoch(value: datetime) -> float:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def _iso(value: datetime) -> str:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).isoformat()
