"""What the operator said about anomalies: acks, suppressions (mutes with expiry), normal marks.

Feedback lives in the database so it sticks across restarts and reaches every daemon sharing a
PostgreSQL; ``FeedbackRules`` is the pipeline's read of it, reloaded every poll so a command takes
effect at the next poll without a restart. Rows are never deleted: a removed suppression keeps its
row with ``removed_at`` set, so ``logwatch suppressions --all`` shows the history.

Templates are matched by their id within the stream when both sides know it (Drain3 generalises a
cluster's text as it learns, but its id is stable); by exact text otherwise.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    DateTime,
    ForeignKey,
    Integer,
    Text,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, mapped_column

from logwatch.errors import LogwatchError
from logwatch.records import Anomaly
from logwatch.storage import (
    AnomalyRow,
    Base,
    FileRow,
    ModelRow,
    Store,
    StreamRow,
    TemplateDbRow,
    utcnow,
)

# A recurrence of a template marked normal is reported again when it is at least this much more
# severe than the anomaly that was marked: "normal" covers what was seen, not anything worse.
NORMAL_MARGIN = 15


class FeedbackError(LogwatchError):
    """A feedback command named an anomaly, stream, template or suppression that does not exist."""


class AckRow(Base):
    """An operator has seen this anomaly (``logwatch ack``)."""

    __tablename__ = "acks"
    # Acks go with their anomaly if retention ever deletes it; nothing else refers to them.
    anomaly_id: Mapped[int] = mapped_column(
        ForeignKey("anomalies.id", ondelete="CASCADE"), primary_key=True
    )
    acked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    note: Mapped[str | None] = mapped_column(Text, nullable=True)


class SuppressionRow(Base):
    """A mute on one template of one stream: matching anomalies are recorded but not alerted."""

    __tablename__ = "suppressions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    stream_id: Mapped[int] = mapped_column(ForeignKey("streams.id"))
    template_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    template: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class NormalMarkRow(Base):
    """A template the operator called normal for its stream, at the severity it was seen with."""

    __tablename__ = "normal_marks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    stream_id: Mapped[int] = mapped_column(ForeignKey("streams.id"))
    template_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    template: Mapped[str] = mapped_column(Text)
    severity: Mapped[int] = mapped_column(Integer)
    # The mark outlives the anomaly it was made from (retention may prune anomalies).
    anomaly_id: Mapped[int | None] = mapped_column(
        ForeignKey("anomalies.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# ---------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class Ack:
    anomaly_id: int
    acked_at: str
    note: str | None
    already: bool = False  # the anomaly had been acked before this call


@dataclass(frozen=True, slots=True)
class Suppression:
    id: int
    stream: str
    template_id: int | None
    template: str
    reason: str
    created_at: str
    expires_at: str | None  # None: until removed
    removed_at: str | None
    state: str  # active / expired / removed, as of the ``now`` it was read at

    def as_row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "stream": self.stream,
            "template_id": self.template_id,
            "template": self.template,
            "reason": self.reason,
            "state": self.state,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "removed_at": self.removed_at,
        }


@dataclass(frozen=True, slots=True)
class NormalMark:
    stream: str
    template_id: int | None
    template: str
    severity: int
    anomaly_id: int
    created_at: str


# ---------------------------------------------------------------- commands


def ack(
    store: Store, anomaly_id: int, note: str | None = None, *, now: datetime | None = None
) -> Ack:
    """Record that the operator has seen ``anomaly_id``. Acking again keeps the first time and
    replaces the note only when a new one is given."""
    at = _utc(now)
    with _begin(store) as conn:
        _anomaly(conn, anomaly_id)
        inserted = conn.execute(
            _insert(store, AckRow)
            .values(anomaly_id=anomaly_id, acked_at=at, note=note)
            .on_conflict_do_nothing(index_elements=["anomaly_id"])
        ).rowcount
        if inserted != 1 and note is not None:
            conn.execute(update(AckRow).where(AckRow.anomaly_id == anomaly_id).values(note=note))
        row = conn.execute(select(AckRow).where(AckRow.anomaly_id == anomaly_id)).one()
        return Ack(anomaly_id, _iso(row.acked_at), row.note, already=inserted != 1)


def acks(store: Store) -> dict[int, Ack]:
    """Every ack, by anomaly id (for ``logwatch anomalies``: one query, not one per anomaly)."""
    with _begin(store) as conn:
        return {
            r.anomaly_id: Ack(r.anomaly_id, _iso(r.acked_at), r.note)
            for r in conn.execute(select(AckRow))
        }


def suppress(
    store: Store,
    stream: str,
    template: str,
    until: datetime | None,
    reason: str,
    *,
    now: datetime | None = None,
) -> Suppression:
    """Mute ``template`` (an id as listed by ``logwatch templates``, or its exact text) of
    ``stream`` until ``until`` (None: until removed)."""
    at = _utc(now)
    if until is not None and until.astimezone(UTC) <= at:
        raise FeedbackError(f"suppression end {until.isoformat()} is not in the future")
    if not reason.strip():
        raise FeedbackError("a suppression needs a reason (--reason TEXT): say why it is muted")
    with _begin(store) as conn:
        stream_id = _stream(conn, stream)
        template_id, text = _template(conn, stream_id, stream, template)
        new_id = conn.execute(
            _insert(store, SuppressionRow)
            .values(
                stream_id=stream_id,
                template_id=template_id,
                template=text,
                reason=reason.strip(),
                created_at=at,
                expires_at=until.astimezone(UTC) if until is not None else None,
            )
            .returning(SuppressionRow.id)
        ).scalar_one()
        return _suppressions(conn, at, SuppressionRow.id == new_id)[0]


def list_suppressions(
    store: Store, include_expired: bool = False, *, now: datetime | None = None
) -> list[Suppression]:
    """Active suppressions, oldest first; ``include_expired`` adds expired and removed ones."""
    at = _utc(now)
    with _begin(store) as conn:
        if include_expired:
            return _suppressions(conn, at)
        return _suppressions(conn, at, *_active(at))


def remove_suppression(
    store: Store, suppression_id: int, *, now: datetime | None = None
) -> Suppression:
    """End a suppression now; its row is kept (``removed_at``). Removing it twice is harmless."""
    at = _utc(now)
    with _begin(store) as conn:
        found = conn.scalar(select(SuppressionRow.id).where(SuppressionRow.id == suppression_id))
        if found is None:
            active = [s.id for s in _suppressions(conn, at, *_active(at))]
            valid = ", ".join(map(str, active)) if active else "none"
            raise FeedbackError(
                f"suppression {suppression_id} does not exist; active suppressions: {valid}"
            )
        conn.execute(
            update(SuppressionRow)
            .where(SuppressionRow.id == suppression_id, SuppressionRow.removed_at.is_(None))
            .values(removed_at=at)
        )
        return _suppressions(conn, at, SuppressionRow.id == suppression_id)[0]


def mark_normal(store: Store, anomaly_id: int, *, now: datetime | None = None) -> NormalMark:
    """Make the template of ``anomaly_id`` normal for its stream, up to its severity plus
    NORMAL_MARGIN. The anomaly is acked too: the operator has looked at it."""
    at = _utc(now)
    with _begin(store) as conn:
        a = _anomaly(conn, anomaly_id)
        template_id = a.template_id
        if template_id is None:
            # Anomalies stored before template ids were recorded: find the cluster by its text,
            # so the mark follows the cluster even if Drain3 later generalises the text.
            template_id = conn.scalar(
                select(TemplateDbRow.template_id).where(
                    TemplateDbRow.stream_id == a.stream_id, TemplateDbRow.template == a.template
                )
            )
        conn.execute(
            _insert(store, NormalMarkRow).values(
                stream_id=a.stream_id,
                template_id=template_id,
                template=a.template,
                severity=a.severity,
                anomaly_id=anomaly_id,
                created_at=at,
            )
        )
        conn.execute(
            _insert(store, AckRow)
            .values(anomaly_id=anomaly_id, acked_at=at, note="marked normal")
            .on_conflict_do_nothing(index_elements=["anomaly_id"])
        )
        return NormalMark(a.name, template_id, a.template, int(a.severity), anomaly_id, _iso(at))


# ---------------------------------------------------------------- what the pipeline applies


@dataclass
class FeedbackRules:
    """The feedback in force at one moment, for the pipeline: ``verdict`` per anomaly.

    Load once per poll (two small queries); an empty instance means "no feedback"."""

    # (stream, template id) and (stream, template text) -> the highest severity marked normal
    normal_by_id: dict[tuple[str, int], int] = field(default_factory=dict)
    normal_by_text: dict[tuple[str, str], int] = field(default_factory=dict)
    normal_by_text_only: dict[tuple[str, str], int] = field(default_factory=dict)  # marks w/o id
    muted_by_id: set[tuple[str, int]] = field(default_factory=set)
    muted_by_text: set[tuple[str, str]] = field(default_factory=set)
    muted_by_text_only: set[tuple[str, str]] = field(default_factory=set)

    @classmethod
    def load(cls, store: Store, now: datetime) -> FeedbackRules:
        at = _utc(now)
        rules = cls()
        with _begin(store) as conn:
            marks = conn.execute(
                select(
                    StreamRow.name,
                    NormalMarkRow.template_id,
                    NormalMarkRow.template,
                    func.max(NormalMarkRow.severity),
                )
                .join(StreamRow, StreamRow.id == NormalMarkRow.stream_id)
                .group_by(StreamRow.name, NormalMarkRow.template_id, NormalMarkRow.template)
            ).all()
            muted = conn.execute(
                select(StreamRow.name, SuppressionRow.template_id, SuppressionRow.template)
                .join(StreamRow, StreamRow.id == SuppressionRow.stream_id)
                .where(*_active(at))
            ).all()
        for stream, template_id, text, severity in marks:
            _keep_max(rules.normal_by_text, (stream, text), int(severity))
            if template_id is None:
                _keep_max(rules.normal_by_text_only, (stream, text), int(severity))
            else:
                _keep_max(rules.normal_by_id, (stream, int(template_id)), int(severity))
        for stream, template_id, text in muted:
            rules.muted_by_text.add((stream, text))
            if template_id is None:
                rules.muted_by_text_only.add((stream, text))
            else:
                rules.muted_by_id.add((stream, int(template_id)))
        return rules

    def __bool__(self) -> bool:
        return bool(self.normal_by_text or self.muted_by_text)

    def verdict(self, anomaly: Anomaly) -> str | None:
        """ "normal" (the operator said this template is normal here, and this one is not clearly
        more severe), "suppressed" (muted: record it, do not alert), or None (report as usual).

        "normal" wins over "suppressed": it is the stronger statement about the same events."""
        marked = self._normal_severity(anomaly)
        if marked is not None and anomaly.severity < marked + NORMAL_MARGIN:
            return "normal"
        if self._muted(anomaly):
            return "suppressed"
        return None

    def mutes(self, anomaly: Anomaly) -> bool:
        """For alerting (``Dispatcher(muted=...)``): any verdict means "do not alert"."""
        return self.verdict(anomaly) is not None

    def _normal_severity(self, a: Anomaly) -> int | None:
        if a.template_id is None:
            return self.normal_by_text.get((a.stream, a.template))
        by_id = self.normal_by_id.get((a.stream, a.template_id))
        by_text = self.normal_by_text_only.get((a.stream, a.template))
        found = [s for s in (by_id, by_text) if s is not None]
        return max(found) if found else None

    def _muted(self, a: Anomaly) -> bool:
        if a.template_id is None:
            return (a.stream, a.template) in self.muted_by_text
        return (a.stream, a.template_id) in self.muted_by_id or (
            a.stream,
            a.template,
        ) in self.muted_by_text_only


# ---------------------------------------------------------------- per-stream overview


def streams_report(store: Store) -> list[dict[str, Any]]:
    """Per stream: files being read, events, templates, anomalies (and how many are not acked),
    when it was last read, its last anomaly, and whether its model is trained."""
    with _begin(store) as conn:
        streams = conn.execute(
            select(StreamRow.id, StreamRow.name, StreamRow.events_total).order_by(StreamRow.name)
        ).all()
        files = _by_stream(
            conn,
            select(FileRow.stream_id, func.count(), func.max(FileRow.last_progress_at))
            .where(FileRow.status == "active")
            .group_by(FileRow.stream_id),
        )
        templates = _by_stream(
            conn,
            select(TemplateDbRow.stream_id, func.count()).group_by(TemplateDbRow.stream_id),
        )
        anomalies = _by_stream(
            conn,
            select(
                AnomalyRow.stream_id,
                func.count(),
                func.count(AckRow.anomaly_id),
                func.max(AnomalyRow.detected_at),
            )
            .outerjoin(AckRow, AckRow.anomaly_id == AnomalyRow.id)
            .group_by(AnomalyRow.stream_id),
        )
        models = _by_stream(
            conn,
            select(ModelRow.stream_id, ModelRow.trained_at).where(ModelRow.kind == "stream"),
        )
    report = []
    for s in streams:
        n_files, last_read = files.get(s.id, (0, None))
        (n_templates,) = templates.get(s.id, (0,))
        n_anomalies, n_acked, last_anomaly = anomalies.get(s.id, (0, 0, None))
        (trained_at,) = models.get(s.id, (None,))
        report.append(
            {
                "stream": s.name,
                "files": int(n_files),
                "events": int(s.events_total),
                "templates": int(n_templates),
                "anomalies": int(n_anomalies),
                "unacked": int(n_anomalies) - int(n_acked),
                "last_read": _iso(last_read) if last_read is not None else None,
                "last_anomaly": _iso(last_anomaly) if last_anomaly is not None else None,
                "model_trained": trained_at is not None,
                "model_trained_at": _iso(trained_at) if trained_at is not None else None,
            }
        )
    return report


# ---------------------------------------------------------------- helpers


@contextmanager
def _begin(store: Store) -> Iterator[Connection]:
    # The Store's own transaction frame: a database outage becomes a one-line StorageError.
    with store._begin() as conn:
        yield conn


def _insert(store: Store, table: Any) -> Any:
    # Dialect inserts: both have on_conflict_do_nothing (a second ack is not an error).
    return postgresql.insert(table) if store.dialect == "postgresql" else sqlite.insert(table)


def _utc(now: datetime | None) -> datetime:
    # Stored times are UTC: SQLite keeps them as naive text, so mixed zones would misorder.
    return (now or utcnow()).astimezone(UTC)


def _iso(value: datetime) -> str:
    if value.tzinfo is None:  # SQLite returns naive datetimes; we always store UTC
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def _active(at: datetime) -> tuple[Any, ...]:
    return (
        SuppressionRow.removed_at.is_(None),
        SuppressionRow.expires_at.is_(None) | (SuppressionRow.expires_at > at),
    )


def _keep_max(table: dict[Any, int], key: Any, value: int) -> None:
    table[key] = max(value, table.get(key, value))


def _by_stream(conn: Connection, query: Any) -> dict[int, tuple[Any, ...]]:
    return {row[0]: tuple(row[1:]) for row in conn.execute(query)}


def _suppressions(conn: Connection, at: datetime, *where: Any) -> list[Suppression]:
    rows = conn.execute(
        select(SuppressionRow, StreamRow.name)
        .join(StreamRow, StreamRow.id == SuppressionRow.stream_id)
        .where(*where)
        .order_by(SuppressionRow.id)
    ).all()
    out = []
    for r in rows:
        expires = _aware(r.expires_at)
        if r.removed_at is not None:
            state = "removed"
        elif expires is not None and expires <= at:
            state = "expired"
        else:
            state = "active"
        out.append(
            Suppression(
                id=r.id,
                stream=r.name,
                template_id=r.template_id,
                template=r.template,
                reason=r.reason,
                created_at=_iso(r.created_at),
                expires_at=_iso(expires) if expires is not None else None,
                removed_at=_iso(r.removed_at) if r.removed_at is not None else None,
                state=state,
            )
        )
    return out


def _aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _anomaly(conn: Connection, anomaly_id: int) -> Any:
    row = conn.execute(
        select(
            AnomalyRow.id,
            AnomalyRow.stream_id,
            AnomalyRow.template_id,
            AnomalyRow.template,
            AnomalyRow.severity,
            StreamRow.name,
        )
        .join(StreamRow, StreamRow.id == AnomalyRow.stream_id)
        .where(AnomalyRow.id == anomaly_id)
    ).first()
    if row is not None:
        return row
    low, high = conn.execute(select(func.min(AnomalyRow.id), func.max(AnomalyRow.id))).one()
    valid = f"ids run from {low} to {high}" if low is not None else "there are no anomalies yet"
    raise FeedbackError(f"anomaly {anomaly_id} does not exist; {valid} (see `logwatch anomalies`)")


def _stream(conn: Connection, name: str) -> int:
    found = conn.scalar(select(StreamRow.id).where(StreamRow.name == name))
    if found is not None:
        return int(found)
    names = list(conn.scalars(select(StreamRow.name).order_by(StreamRow.name)))
    if not names:
        raise FeedbackError(f"stream {name!r} is not known; no stream has been read yet")
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}? " if close else ""
    listed = ", ".join(names[:10]) + (f", ... ({len(names)} in all)" if len(names) > 10 else "")
    raise FeedbackError(f"stream {name!r} is not known; {hint}streams: {listed}")


def _template(conn: Connection, stream_id: int, stream: str, given: str) -> tuple[int | None, str]:
    """(template id, text) for a template id or exact template text of the stream."""
    rows = conn.execute(
        select(TemplateDbRow.template_id, TemplateDbRow.template).where(
            TemplateDbRow.stream_id == stream_id
        )
    ).all()
    value = given.strip()
    if value.isdigit():
        for template_id, text in rows:
            if template_id == int(value):
                return int(template_id), str(text)
    for template_id, text in rows:
        if text == given or text == value:
            return int(template_id), str(text)
    see = f"(see `logwatch templates --stream {stream}`)"
    if not rows:
        raise FeedbackError(f"stream {stream!r} has no templates yet {see}")
    if value.isdigit():
        ids = sorted(int(r[0]) for r in rows)
        raise FeedbackError(
            f"template {value} is not a template of stream {stream!r}; its template ids run from "
            f"{ids[0]} to {ids[-1]} {see}"
        )
    texts = {str(r[1]): int(r[0]) for r in rows}
    close = difflib.get_close_matches(value, list(texts), n=1, cutoff=0.0)
    hint = f"; closest: {texts[close[0]]} {_short(close[0])!r}" if close else ""
    raise FeedbackError(
        f"template {_short(value)!r} is not a template of stream {stream!r}{hint}; give its id "
        f"or exact text {see}"
    )


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
