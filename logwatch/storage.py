"""SQLAlchemy models and the Store: the only module with SQL.

Exactly-once rests on one rule (RELIABILITY.md §0.2): a batch's anomalies, template and stream
statistics, a newly trained model and the file's new offset commit in ONE transaction. The offset
update is guarded by the offset we started from, so a second writer or a replay cannot advance it
twice, and anomalies are unique per (file, byte offset) and inserted with "on conflict do nothing".
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, CursorResult, Engine, make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from logwatch.crashpoints import crash_point
from logwatch.errors import StateCorruptError, StorageError
from logwatch.records import Anomaly, TemplateRow, TrackedFile

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
PRUNE_BATCH = 5_000  # rows per retention transaction: each holds its locks for milliseconds


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class StreamRow(Base):
    """A logical log (rotated siblings share one): its statistics and model belong here."""

    __tablename__ = "streams"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Streams are per node (docs/scaling.md): two hosts' `syslog` are two streams, each written
    # by the one daemon that owns that node, so no two processes ever update one stream row.
    node: Mapped[str] = mapped_column(String(255), default="", server_default="")
    name: Mapped[str] = mapped_column(Text)
    events_total: Mapped[int] = mapped_column(BigInteger, default=0)
    level_counts: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    field_stats: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    trouble_events: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    __table_args__ = (UniqueConstraint("node", "name", name="uq_streams_node_name"),)


class FileRow(Base):
    """One tracked file and how far it has been read (RELIABILITY.md §4 'tracked_file')."""

    __tablename__ = "files"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    node: Mapped[str] = mapped_column(String(255), default="", server_default="")  # the owner
    path: Mapped[str] = mapped_column(Text)
    stream_id: Mapped[int] = mapped_column(ForeignKey("streams.id"))
    dev: Mapped[int] = mapped_column(BigInteger)
    ino: Mapped[int] = mapped_column(BigInteger)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    mtime_ns: Mapped[int] = mapped_column(BigInteger, default=0)
    ctime_ns: Mapped[int] = mapped_column(BigInteger, default=0)
    attr_hash: Mapped[str] = mapped_column(String(64), default="")
    fp_len: Mapped[int] = mapped_column(Integer, default=0)
    fp_hash: Mapped[str] = mapped_column(String(64), default="")
    offset: Mapped[int] = mapped_column(BigInteger, default=0)
    line_no: Mapped[int] = mapped_column(BigInteger, default=0)  # lines consumed before offset
    marker_len: Mapped[int] = mapped_column(Integer, default=0)
    marker_hash: Mapped[str] = mapped_column(String(64), default="")
    lines_read: Mapped[int] = mapped_column(BigInteger, default=0)
    events_read: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(16), default="active")
    rotations: Mapped[int] = mapped_column(Integer, default=0)
    truncations: Mapped[int] = mapped_column(Integer, default=0)
    gap_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    lines_truncated: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_progress_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    __table_args__ = (
        Index("ix_files_path_status", "path", "status"),
        Index("ix_files_node_status", "node", "status"),
    )


class TemplateDbRow(Base):
    """A stream's Drain3 cluster, stored as rows so it can be rebuilt without pickle."""

    __tablename__ = "templates"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    stream_id: Mapped[int] = mapped_column(ForeignKey("streams.id"))
    template_id: Mapped[int] = mapped_column(Integer)
    template: Mapped[str] = mapped_column(Text)
    template_tokens: Mapped[list[str]] = mapped_column(JSON)
    creation_tokens: Mapped[list[str]] = mapped_column(JSON)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    slot_values: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    example: Mapped[str | None] = mapped_column(Text, nullable=True)  # a normal line it matched
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    __table_args__ = (UniqueConstraint("stream_id", "template_id", name="uq_templates_stream"),)


class ModelRow(Base):
    """A fitted detector, kept as its parameters and training sample (refit on load: no pickle)."""

    __tablename__ = "models"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    stream_id: Mapped[int] = mapped_column(ForeignKey("streams.id"))
    kind: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    feature_names: Mapped[list[str]] = mapped_column(JSON)
    training: Mapped[list[list[float]]] = mapped_column(JSON)
    n_samples: Mapped[int] = mapped_column(Integer)
    trained_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    __table_args__ = (UniqueConstraint("stream_id", "kind", name="uq_models_stream_kind"),)


class AnomalyRow(Base):
    __tablename__ = "anomalies"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("files.id"))
    offset: Mapped[int] = mapped_column(BigInteger)
    line: Mapped[int] = mapped_column(BigInteger)
    stream_id: Mapped[int] = mapped_column(ForeignKey("streams.id"))
    template: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    level: Mapped[str | None] = mapped_column(String(16), nullable=True)
    timestamp: Mapped[str | None] = mapped_column(String(40), nullable=True)
    detected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    severity: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    reasons: Mapped[list[str]] = mapped_column(JSON)
    count: Mapped[int] = mapped_column(Integer, default=1)
    closest: Mapped[str | None] = mapped_column(Text, nullable=True)  # nearest normal line, marked
    template_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # within its stream
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    process: Mapped[str | None] = mapped_column(String(255), nullable=True)
    pid: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    __table_args__ = (
        UniqueConstraint("file_id", "offset", name="uq_anomalies_file_offset"),
        Index("ix_anomalies_detected_at", "detected_at"),
        Index("ix_anomalies_severity", "severity"),
    )


class DaemonRow(Base):
    """Health of the daemon, for ``logwatch status``."""

    __tablename__ = "daemon"
    node: Mapped[str] = mapped_column(String(255), primary_key=True)
    pid: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_poll_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_poll_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    role: Mapped[str | None] = mapped_column(String(16), nullable=True)  # master / standby


metadata = Base.metadata


# ---------------------------------------------------------------- records the Store exchanges


@dataclass(frozen=True, slots=True)
class StoredStream:
    id: int
    name: str
    events_total: int
    level_counts: dict[str, int]
    templates: tuple[TemplateRow, ...]
    slot_values: dict[int, dict[str, Any]]  # template_id -> slot statistics
    field_stats: dict[str, Any]  # JSON field -> value statistics
    trouble_events: int
    model: StoredModel | None
    examples: dict[int, str] = field(default_factory=dict)  # template id -> a normal line

    @classmethod
    def empty(cls, stream_id: int, name: str) -> StoredStream:
        """What ``load_stream`` returns for a stream just created: nothing learned yet."""
        return cls(
            id=stream_id,
            name=name,
            events_total=0,
            level_counts={},
            templates=(),
            slot_values={},
            field_stats={},
            trouble_events=0,
            model=None,
        )


@dataclass(frozen=True, slots=True)
class StoredModel:
    kind: str
    params: dict[str, Any]
    feature_names: tuple[str, ...]
    training: list[list[float]]


@dataclass(slots=True)
class FileUpdate:
    """What a batch changes on its file row. ``expected_offset`` guards against a double advance."""

    file_id: int
    expected_offset: int
    offset: int
    line_no: int
    size: int
    mtime_ns: int
    ctime_ns: int
    attr_hash: str
    lines_read: int
    events_read: int
    lines_truncated: int = 0
    fp_len: int | None = None
    fp_hash: str | None = None
    marker_len: int | None = None
    marker_hash: str | None = None
    last_error: str | None = None


@dataclass(slots=True)
class StreamUpdate:
    stream_id: int
    events_total: int
    level_counts: dict[str, int]
    field_stats: dict[str, Any]
    trouble_events: int
    # (row, template text, slot statistics, example normal line)
    templates: list[tuple[TemplateRow, str, dict[str, Any], str | None]] = field(
        default_factory=list
    )
    model: StoredModel | None = None


class StaleOffsetError(StorageError):
    """The file's stored offset moved under us (a second writer, or a replay): batch rolled back."""


# ---------------------------------------------------------------- the Store


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets `logwatch anomalies` read while the daemon writes; busy_timeout waits out a writer.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(url: str, schema: str | None = None) -> Engine:
    """An engine for ``url``; ``schema`` (PostgreSQL only) isolates tests or tenants."""
    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - sqlalchemy raises several types for bad URLs
        raise StorageError(
            "database URL is not valid; expected e.g. sqlite:///path/to/logwatch.db or "
            "postgresql+psycopg2://user@host:5432/dbname"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        db = parsed.database
        if db and db != ":memory:":
            folder = Path(db).expanduser().parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(
                    f"cannot create the database folder {str(folder)!r}: {exc.strerror}"
                ) from None
        engine = create_engine(url, connect_args={"timeout": 30}, json_serializer=json_text)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if backend == "postgresql":
        connect_args: dict[str, Any] = {"connect_timeout": 10}
        if schema:
            connect_args["options"] = f"-csearch_path={schema}"
        return create_engine(
            url, connect_args=connect_args, pool_pre_ping=True, json_serializer=json_text
        )
    raise StorageError(f"database backend {backend!r} is not supported; valid: sqlite, postgresql")


_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def json_text(value: Any) -> str:
    """A JSON column's text. A batch commit writes every changed template's slot statistics, and
    orjson writes them ~5x faster than ``json.dumps``. Whatever orjson declines (an integer beyond
    64 bits, an unknown type), and any text with "null" in it (orjson's NaN, or just a string
    that says null: ~1.4% of values), is left to ``json.dumps``: the text reads back as the same
    values either way. Per batch of a busy live poll: 0.32 -> 0.10 ms (orjson alone 0.06).
    Reading stays ``json.loads``."""
    try:
        text = orjson.dumps(value, option=_ORJSON_OPTIONS)
    except TypeError:
        return json.dumps(value)
    if b"null" in text:  # orjson writes NaN and infinities as null, json.dumps as themselves
        return json.dumps(value)
    return text.decode()


class Store:
    """All database access: short transactions; ``commit_batch`` is the exactly-once one.

    ``node`` is the daemon this store works for (``run --node``): the files and streams it
    creates, plans and reads back are that node's only. The queries for people (``anomalies``,
    ``files_report``, ``status_report``) take their own ``node=`` filter (None = every node)."""

    def __init__(self, url: str, *, schema: str | None = None, node: str = "") -> None:
        self.url = url
        self.schema = schema
        self.node = node
        self.engine = make_engine(url, schema)
        self.dialect = self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    # -- schema

    def upgrade(self) -> None:
        """Create or upgrade the schema to the newest Alembic revision."""
        from alembic import command
        from alembic.config import Config as AlembicConfig

        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.attributes["engine"] = self.engine
        try:
            with self._upgrade_lock():
                command.upgrade(cfg, "head")
        except OperationalError as exc:
            raise StorageError(f"cannot reach the database: {_db_reason(exc)}") from None
        except SQLAlchemyError as exc:
            raise StorageError(
                f"cannot upgrade the database schema: {_db_reason(exc)} (is --db-url a logwatch "
                "database? restore it from a backup, or use a new one)"
            ) from None

    @contextmanager
    def _upgrade_lock(self) -> Iterator[None]:
        """Daemons of a fleet often start together: on PostgreSQL one upgrades the schema while
        the others wait on an advisory lock, then find it at the newest revision."""
        if self.dialect != "postgresql":
            yield
            return
        with self.engine.connect() as conn:
            schema = conn.execute(text("SELECT current_schema()")).scalar()
            key = zlib.crc32(f"{schema}:logwatch-upgrade".encode())
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()

    def verify(self) -> None:
        """Refuse to start on corrupt state rather than silently re-read (RELIABILITY.md row 26).

        Checks what a bad disk or a bug could leave behind: impossible offsets, and template rows
        that do not decode to token lists."""
        with self._begin() as conn:
            bad = conn.execute(
                select(FileRow.path, FileRow.offset, FileRow.size)
                .where(
                    FileRow.status == "active",
                    FileRow.node == self.node,
                    (FileRow.offset < 0)
                    | (FileRow.line_no < 0)
                    # Compressed files' offsets count decompressed bytes, so may exceed the size.
                    | (
                        (FileRow.offset > FileRow.size)
                        & ~FileRow.path.like("%.gz")
                        & ~FileRow.path.like("%.bz2")
                    ),
                )
                .limit(1)
            ).first()
            if bad is not None:
                raise StateCorruptError(
                    f"stored state is corrupt: {bad.path!r} has offset {bad.offset} "
                    f"(file size when last seen: {bad.size}); {_RECOVER}"
                )
            try:
                rows = conn.execute(
                    select(
                        TemplateDbRow.template_id,
                        TemplateDbRow.template_tokens,
                        TemplateDbRow.creation_tokens,
                        StreamRow.name,
                    )
                    .join(StreamRow, StreamRow.id == TemplateDbRow.stream_id)
                    .where(StreamRow.node == self.node)
                )
                for row in rows:
                    _check_template(row, row.name)
            except (ValueError, TypeError) as exc:  # JSON that does not decode at all
                raise StateCorruptError(
                    f"stored state is corrupt: a template row does not decode ({exc}); {_RECOVER}"
                ) from None

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except StorageError:
            raise
        except OperationalError as exc:
            raise StorageError(f"database unavailable: {_db_reason(exc)}") from exc

    def transaction(self) -> AbstractContextManager[Connection]:
        """One transaction, for the modules that keep their own tables (feedback, incidents);
        a lost connection becomes a StorageError like everywhere else."""
        return self._begin()

    # -- reads used by the pipeline

    def stream_id(self, name: str) -> int:
        """This node's stream ``name`` (created on first use)."""
        return self.stream_id_created(name)[0]

    def stream_id_created(self, name: str) -> tuple[int, bool]:
        """``stream_id(name)``, and whether this call created the stream: a stream created now
        has nothing stored yet (no statistics, templates, model or files), so a caller can start
        it empty instead of loading it (``StoredStream.empty``)."""
        statements = self._statements
        mine = {"p_node": self.node, "p_name": name}
        with self._begin() as conn:
            found = conn.scalar(statements.stream_by_name, mine)
            if found is not None:
                return int(found), False
            created = conn.scalar(
                statements.new_stream,
                {
                    "node": self.node,
                    "name": name,
                    "events_total": 0,
                    "level_counts": {},
                    "field_stats": {},
                    "trouble_events": 0,
                    "created_at": utcnow(),
                },
            )
            if created is not None:
                return int(created), True
            # created meanwhile by someone else
            return int(conn.scalar(statements.stream_by_name, mine) or 0), False

    def load_stream(self, stream_id: int) -> StoredStream:
        statements = self._statements
        key = {"p_stream_id": stream_id}
        with self._begin() as conn:
            row = conn.execute(statements.stream_row, key).one()
            templates: list[TemplateRow] = []
            slots: dict[int, dict[str, Any]] = {}
            examples: dict[int, str] = {}
            for t in conn.execute(statements.stream_templates, key):
                _check_template(t, row.name)
                templates.append(
                    TemplateRow(
                        t.template_id,
                        tuple(t.template_tokens),
                        tuple(t.creation_tokens),
                        int(t.size),
                    )
                )
                slots[t.template_id] = dict(t.slot_values or {})
                if t.example is not None:
                    examples[t.template_id] = t.example
            model_row = conn.execute(statements.stream_model, key).one_or_none()
            model = None
            if model_row is not None:
                model = StoredModel(
                    model_row.kind,
                    dict(model_row.params),
                    tuple(model_row.feature_names),
                    list(model_row.training),
                )
            return StoredStream(
                row.id,
                row.name,
                int(row.events_total),
                dict(row.level_counts or {}),
                tuple(templates),
                slots,
                dict(row.field_stats or {}),
                int(row.trouble_events),
                model,
                examples,
            )

    def active_files(self) -> dict[str, TrackedFile]:
        """This node's active files by path (another host's /var/log/syslog is not ours)."""
        with self._begin() as conn:
            rows = conn.execute(
                select(FileRow).where(FileRow.node == self.node, FileRow.status == "active")
            ).all()
            return {r.path: _tracked(r) for r in rows}

    def add_file(
        self,
        *,
        path: str,
        stream_id: int,
        dev: int,
        ino: int,
        fp_len: int,
        fp_hash: str,
        size: int = 0,
        resume: TrackedFile | None = None,
    ) -> TrackedFile:
        """A new active row; ``resume`` is a retired row whose content this file carries (a copy,
        a compressed copy): reading then starts where that one stopped."""
        with self._begin() as conn:
            row = conn.execute(
                # Counters, hashes and timestamps not named here take the model's defaults; the
                # whole row comes back (RETURNING), so no second query reads it.
                self._statements.new_file,
                {
                    "node": self.node,
                    "path": path,
                    "stream_id": stream_id,
                    "dev": dev,
                    "ino": ino,
                    "size": size,
                    "fp_len": fp_len,
                    "fp_hash": fp_hash,
                    "offset": resume.offset if resume else 0,
                    "line_no": resume.line_no if resume else 0,
                    "rotations": 1 if resume else 0,
                    "marker_len": resume.marker_len if resume else 0,
                    "marker_hash": resume.marker_hash if resume else "",
                },
            ).one()
            return _tracked(row)

    def move_file(self, file_id: int, *, path: str, dev: int, ino: int) -> TrackedFile:
        """The file of ``file_id`` is now at ``path`` (renamed, or carried over to a new inode)."""
        with self._begin() as conn:
            conn.execute(
                update(FileRow)
                .where(FileRow.id == file_id)
                .values(path=path, dev=dev, ino=ino, rotations=FileRow.rotations + 1)
            )
            return _tracked(conn.execute(select(FileRow).where(FileRow.id == file_id)).one())

    def note_skipped(self, path: str, stream_id: int, reason: str) -> None:
        """Record an entry the watcher will not read (a FIFO, a socket, a second link to a file...)
        so that ``logwatch files`` shows every skip with its reason."""
        with self._begin() as conn:
            found = conn.scalar(
                select(FileRow.id).where(
                    FileRow.node == self.node, FileRow.path == path, FileRow.status == "skipped"
                )
            )
            if found is not None:
                conn.execute(update(FileRow).where(FileRow.id == found).values(last_error=reason))
                return
            conn.execute(
                self._insert(FileRow).values(
                    node=self.node,
                    path=path,
                    stream_id=stream_id,
                    dev=0,
                    ino=0,
                    status="skipped",
                    last_error=reason,
                )
            )

    def template_texts(self, stream: str) -> dict[int, str]:
        """Template id -> text of one stream of this node (for reasons, outside the hot path)."""
        with self._begin() as conn:
            rows = conn.execute(
                select(TemplateDbRow.template_id, TemplateDbRow.template)
                .join(StreamRow, StreamRow.id == TemplateDbRow.stream_id)
                .where(StreamRow.name == stream, StreamRow.node == self.node)
            ).all()
        return {int(r.template_id): r.template for r in rows}

    def stream_name(self, stream_id: int) -> str:
        with self._begin() as conn:
            return str(conn.scalar(select(StreamRow.name).where(StreamRow.id == stream_id)))

    def file_offset(self, file_id: int) -> int:
        with self._begin() as conn:
            return int(conn.scalar(select(FileRow.offset).where(FileRow.id == file_id)) or 0)

    def recent_retired(self, stream_id: int, limit: int = 20) -> list[TrackedFile]:
        """The stream's latest rows that are no longer active, newest first (copy candidates)."""
        with self._begin() as conn:
            rows = conn.execute(
                select(FileRow)
                .where(
                    FileRow.node == self.node,
                    FileRow.stream_id == stream_id,
                    FileRow.status != "active",
                )
                .order_by(FileRow.id.desc())
                .limit(limit)
            ).all()
            return [_tracked(r) for r in rows]

    def retire_file(
        self,
        file_id: int,
        status: str,
        *,
        truncated: bool = False,
        gap_bytes: int = 0,
        error: str | None = None,
    ) -> None:
        """Mark a file row as no longer live (replaced, truncated, deleted); rows are kept."""
        with self._begin() as conn:
            values: dict[str, Any] = {"status": status, "last_error": error}
            if truncated:
                values["truncations"] = FileRow.truncations + 1
            if gap_bytes:
                values["gap_bytes"] = FileRow.gap_bytes + gap_bytes
            conn.execute(update(FileRow).where(FileRow.id == file_id).values(**values))

    def note_file_error(self, file_id: int, error: str | None) -> None:
        with self._begin() as conn:
            conn.execute(update(FileRow).where(FileRow.id == file_id).values(last_error=error))

    # -- the exactly-once commit

    def commit_batch(
        self, file: FileUpdate, stream: StreamUpdate, anomalies: Sequence[Anomaly]
    ) -> int:
        """Commit one batch atomically; returns the number of anomalies actually inserted."""
        now = utcnow()
        with self._begin() as conn:
            crash_point("commit:begin")
            statements = self._statements
            moved = conn.execute(*statements.progress(file, now)).rowcount
            if moved != 1:
                raise StaleOffsetError(
                    f"file {file.file_id}: stored offset is no longer {file.expected_offset}"
                )
            crash_point("commit:offset")
            conn.execute(*statements.stream_totals(stream))
            if stream.templates:
                self._upsert_templates(conn, stream.stream_id, stream.templates, now)
            if stream.model is not None:
                self._save_model(conn, stream.stream_id, stream.model, now)
            inserted = 0
            if anomalies:
                rows = [_anomaly_values(a, file.file_id, stream.stream_id) for a in anomalies]
                result: CursorResult[Any] = conn.execute(statements.anomalies, rows)
                inserted = max(result.rowcount, 0)
            crash_point("commit:anomalies")
        crash_point("commit:after")
        return inserted

    @cached_property
    def _statements(self) -> _Statements:
        return _Statements(self._insert)

    def _insert(self, table: Any) -> Any:
        return postgresql.insert(table) if self.dialect == "postgresql" else sqlite.insert(table)

    def _upsert_templates(
        self,
        conn: Connection,
        stream_id: int,
        templates: list[tuple[TemplateRow, str, dict[str, Any], str | None]],
        now: datetime,
    ) -> None:
        rows = [
            {
                "stream_id": stream_id,
                "template_id": t.template_id,
                "template": text,
                "template_tokens": list(t.template_tokens),
                "creation_tokens": list(t.creation_tokens),
                "size": t.size,
                "slot_values": slots,
                "example": example,
                "first_seen_at": now,
                "last_seen_at": now,
            }
            for t, text, slots, example in templates
        ]
        conn.execute(self._statements.templates, rows)

    def _save_model(
        self, conn: Connection, stream_id: int, model: StoredModel, now: datetime
    ) -> None:
        conn.execute(
            self._statements.model,
            {
                "stream_id": stream_id,
                "kind": model.kind,
                "params": model.params,
                "feature_names": list(model.feature_names),
                "training": model.training,
                "n_samples": len(model.training),
                "trained_at": now,
            },
        )

    # -- health

    def record_daemon(
        self,
        node: str,
        *,
        state: str,
        started_at: datetime,
        last_poll_ms: float | None = None,
        error: str | None = None,
        keep_error: bool = False,
        role: str | None = None,
    ) -> None:
        """Upsert this node's health; ``keep_error`` leaves the last recorded problem in place.

        ``role`` is ``master`` or ``standby``. Only the holder of the master lease writes
        ``master``, and it demotes any other row still saying so (a master killed by -9 never
        wrote its own end), so at most one row says master."""
        now = utcnow()
        values = {
            "node": node,
            "pid": os.getpid(),
            "state": state,
            "started_at": started_at,
            "last_poll_at": now if last_poll_ms is not None else None,
            "last_poll_ms": last_poll_ms,
            "last_error": error,
            "role": role,
        }
        with self._begin() as conn:
            if role == "master":
                conn.execute(
                    update(DaemonRow)
                    .where(DaemonRow.node != node, DaemonRow.role == "master")
                    .values(role="standby")
                )
            stmt = self._insert(DaemonRow).values(**values)
            kept = (
                ("pid", "state", "started_at", "role")
                if keep_error
                else ("pid", "state", "started_at", "role", "last_error")
            )
            set_ = {k: stmt.excluded[k] for k in kept}
            if last_poll_ms is not None:
                set_["last_poll_at"] = stmt.excluded.last_poll_at
                set_["last_poll_ms"] = stmt.excluded.last_poll_ms
            conn.execute(stmt.on_conflict_do_update(index_elements=["node"], set_=set_))

    # -- queries for the CLI

    def anomalies(
        self,
        *,
        since: datetime | None = None,
        stream: str | None = None,
        min_severity: int = 0,
        limit: int | None = None,
        node: str | None = None,
    ) -> list[Anomaly]:
        """Anomalies oldest first; ``node`` keeps those found in that node's files."""
        q = (
            select(AnomalyRow, FileRow.path, StreamRow.name)
            .join(FileRow, FileRow.id == AnomalyRow.file_id)
            .join(StreamRow, StreamRow.id == AnomalyRow.stream_id)
            .where(AnomalyRow.severity >= min_severity)
        )
        if since is not None:
            # Stored times are UTC; SQLite compares them as text, so compare in UTC too.
            q = q.where(AnomalyRow.detected_at >= since.astimezone(UTC))
        if stream is not None:
            q = q.where(StreamRow.name == stream)
        if node is not None:
            q = q.where(FileRow.node == node)
        q = q.order_by(AnomalyRow.id)
        if limit is not None:
            q = q.limit(limit)
        with self._begin() as conn:
            return [
                Anomaly(
                    stream=a.name,
                    path=a.path,
                    line=int(a.line),
                    offset=int(a.offset),
                    timestamp=a.timestamp,
                    detected_at=_iso(a.detected_at),
                    severity=int(a.severity),
                    score=float(a.score),
                    reasons=tuple(a.reasons),
                    template=a.template,
                    text=a.text,
                    count=int(a._mapping["count"]),
                    level=a.level,
                    id=a.id,
                    template_id=a.template_id,
                    host=a.host,
                    process=a.process,
                    pid=a.pid,
                    closest=a.closest,
                )
                for a in conn.execute(q).all()
            ]

    def files_report(
        self, *, node: str | None = None, show_node: bool = False
    ) -> list[dict[str, Any]]:
        """Every file row; ``node`` keeps that node's, ``show_node`` adds each row's owner."""
        q = (
            select(FileRow, StreamRow.name)
            .join(StreamRow, StreamRow.id == FileRow.stream_id)
            .order_by(FileRow.node, FileRow.path, FileRow.id)
        )
        if node is not None:
            q = q.where(FileRow.node == node)
        with self._begin() as conn:
            return [
                {
                    **({"node": f.node} if show_node else {}),
                    "path": f.path,
                    "stream": f.name,
                    "status": f.status,
                    "offset": int(f.offset),
                    "size": int(f.size),
                    "lag_bytes": max(int(f.size) - int(f.offset), 0),
                    "lines_read": int(f.lines_read),
                    "events_read": int(f.events_read),
                    "rotations": f.rotations,
                    "truncations": f.truncations,
                    "gap_bytes": int(f.gap_bytes),
                    "lines_truncated": int(f.lines_truncated),
                    "last_error": f.last_error,
                }
                for f in conn.execute(q).all()
            ]

    def templates_report(self, stream: str | None = None) -> list[dict[str, Any]]:
        q = select(TemplateDbRow, StreamRow.name).join(
            StreamRow, StreamRow.id == TemplateDbRow.stream_id
        )
        if stream is not None:
            q = q.where(StreamRow.name == stream)
        q = q.order_by(StreamRow.name, TemplateDbRow.size.desc(), TemplateDbRow.template_id)
        with self._begin() as conn:
            return [
                {
                    "stream": t.name,
                    "template_id": t.template_id,
                    "count": int(t.size),
                    "template": t.template,
                    "first_seen": _iso(t.first_seen_at),
                    "last_seen": _iso(t.last_seen_at),
                }
                for t in conn.execute(q).all()
            ]

    def status_report(self, *, node: str | None = None) -> dict[str, Any]:
        """Health and counts; ``node`` narrows daemons, streams, files, templates, models and
        anomalies to that node. Each daemon's ``role`` says whether it holds the master lease
        (``master_node`` names the one that does)."""
        streams = select(StreamRow.id)
        daemons_q = select(DaemonRow).order_by(DaemonRow.node)
        files_q = select(
            func.count(), func.coalesce(func.sum(FileRow.size - FileRow.offset), 0)
        ).where(FileRow.status == "active")
        anomalies_q = select(func.count()).select_from(AnomalyRow)
        if node is not None:
            streams = streams.where(StreamRow.node == node)
            daemons_q = daemons_q.where(DaemonRow.node == node)
            files_q = files_q.where(FileRow.node == node)
            anomalies_q = anomalies_q.join(FileRow, FileRow.id == AnomalyRow.file_id).where(
                FileRow.node == node
            )
        with self._begin() as conn:
            daemons = [
                {
                    "node": d.node,
                    "pid": d.pid,
                    "state": d.state,
                    "role": d.role,
                    "started_at": _iso(d.started_at),
                    "last_poll_at": _iso(d.last_poll_at) if d.last_poll_at else None,
                    "last_poll_ms": d.last_poll_ms,
                    "last_error": d.last_error,
                }
                for d in conn.execute(daemons_q)
            ]
            files = conn.execute(files_q).one()

            def per_stream(table: Any) -> int:
                q = select(func.count()).select_from(table)
                if node is not None:
                    q = q.where(table.stream_id.in_(streams))
                return int(conn.scalar(q) or 0)

            return {
                "database": redact(self.url),
                "daemons": daemons,
                "streams": int(
                    conn.scalar(select(func.count()).select_from(streams.subquery())) or 0
                ),
                "files_active": int(files[0]),
                "lag_bytes": int(files[1]),
                "templates": per_stream(TemplateDbRow),
                "models": per_stream(ModelRow),
                "anomalies": int(conn.scalar(anomalies_q) or 0),
            }

    def master_node(self) -> str | None:
        """The node whose daemon holds the master lease, as its last health row says."""
        with self._begin() as conn:
            found = conn.scalar(
                select(DaemonRow.node)
                .where(DaemonRow.role == "master", DaemonRow.state != "stopped")
                .order_by(DaemonRow.last_poll_at.desc())
                .limit(1)
            )
            return None if found is None else str(found)

    # -- retention

    def prune_anomalies(self, before: datetime, *, batch: int = PRUNE_BATCH) -> int:
        """Delete at most ``batch`` anomalies detected before ``before`` (their acks go with them,
        by the foreign key) in one short transaction; returns how many went. Call it until it
        returns less than ``batch``: ingestion never waits behind more than one batch."""
        with self._begin() as conn:
            ids = list(
                conn.scalars(
                    select(AnomalyRow.id)
                    .where(AnomalyRow.detected_at < before.astimezone(UTC))
                    .order_by(AnomalyRow.id)
                    .limit(batch)
                )
            )
            if not ids:
                return 0
            conn.execute(delete(AnomalyRow).where(AnomalyRow.id.in_(ids)))
            return len(ids)

    def prune_files(self, before: datetime, *, batch: int = PRUNE_BATCH) -> int:
        """Delete at most ``batch`` retired file rows (rotated away, deleted, truncated) whose
        last progress was before ``before`` and that no anomaly still refers to."""
        cutoff = before.astimezone(UTC)
        with self._begin() as conn:
            ids = list(
                conn.scalars(
                    select(FileRow.id)
                    .where(
                        FileRow.status.not_in(("active", "skipped")),
                        func.coalesce(FileRow.last_progress_at, FileRow.first_seen_at) < cutoff,
                        ~select(AnomalyRow.id).where(AnomalyRow.file_id == FileRow.id).exists(),
                    )
                    .order_by(FileRow.id)
                    .limit(batch)
                )
            )
            if not ids:
                return 0
            conn.execute(delete(FileRow).where(FileRow.id.in_(ids)))
            return len(ids)


_RECOVER = (
    "logwatch will not guess (that could re-read or skip lines): restore the database from a "
    "backup, or start over with a new one (--db-url)"
)


def _check_template(row: Any, stream: str) -> None:
    if not isinstance(row.template_tokens, list) or not isinstance(row.creation_tokens, list):
        raise StateCorruptError(
            f"stored state is corrupt: template {row.template_id} of stream {stream!r} is not a "
            f"token list; {_RECOVER}"
        )


def redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - never leak a secret from an unparsable URL
        return "<unparsable database URL>"


def _db_reason(exc: SQLAlchemyError) -> str:
    # The driver's first line says what went wrong without the SQL or parameters (which may hold
    # log text) and without the URL's password.
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _iso(value: datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:  # SQLite returns naive datetimes; we always store UTC
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def _tracked(r: Any) -> TrackedFile:
    return TrackedFile(
        id=r.id,
        path=r.path,
        stream_id=r.stream_id,
        dev=int(r.dev),
        ino=int(r.ino),
        size=int(r.size),
        mtime_ns=int(r.mtime_ns),
        attr_hash=r.attr_hash,
        fp_len=int(r.fp_len),
        fp_hash=r.fp_hash,
        offset=int(r.offset),
        line_no=int(r.line_no),
        status=r.status,
        last_progress_at=r.last_progress_at,
        marker_len=int(r.marker_len),
        marker_hash=r.marker_hash,
    )


# The file row's columns a batch sets, those it adds to, and the identity hashes it may carry; the
# names are FileUpdate's fields too. (Bound parameters are "p_" + name: SQLAlchemy reserves a
# column's own name in an UPDATE's SET clause.)
_PROGRESS_SET = ("offset", "line_no", "size", "mtime_ns", "ctime_ns", "attr_hash", "last_error")
_PROGRESS_ADD = ("lines_read", "events_read", "lines_truncated")
_FINGERPRINT = ("fp_len", "fp_hash")
_MARKER = ("marker_len", "marker_hash")
# The stream row's columns a batch sets: StreamUpdate's fields of the same names.
_STREAM_TOTALS = ("events_total", "level_counts", "field_stats", "trouble_events")


class _Statements:
    """The statements run per batch, per new stream or file and per stream load, built once per
    store with bound parameters: building and keying an SQLAlchemy statement costs more than
    SQLite takes to run it (about 4 ms of a batch's commit, measured), a daemon commits a batch
    per file per poll, and a first run over thousands of files adds a stream and a file row for
    each."""

    def __init__(self, insert: Callable[[Any], Any]) -> None:
        self.stream_by_name = select(StreamRow.id).where(
            StreamRow.node == bindparam("p_node"), StreamRow.name == bindparam("p_name")
        )
        # Executed with a row's values as parameters (the columns named there are inserted).
        self.new_stream = insert(StreamRow).on_conflict_do_nothing().returning(StreamRow.id)
        self.new_file = insert(FileRow).returning(*FileRow.__table__.c)
        # Loading a stream (load_stream): its row, its templates in id order, its model.
        by_stream: Any = bindparam("p_stream_id")
        self.stream_row = select(StreamRow).where(StreamRow.id == by_stream)
        self.stream_templates = (
            select(TemplateDbRow)
            .where(TemplateDbRow.stream_id == by_stream)
            .order_by(TemplateDbRow.template_id)
        )
        self.stream_model = select(ModelRow).where(
            ModelRow.stream_id == by_stream, ModelRow.kind == "stream"
        )
        self._progress: dict[tuple[bool, bool], tuple[Any, tuple[str, ...]]] = {}
        self._stream_totals = (
            update(StreamRow)
            .where(StreamRow.id == bindparam("p_stream_id"))
            .values({name: bindparam(f"p_{name}") for name in _STREAM_TOTALS})
        )
        templates = insert(TemplateDbRow)
        self.templates = _on_conflict_update(
            templates,
            ("stream_id", "template_id"),
            ("template", "template_tokens", "size", "slot_values", "last_seen_at"),
            # A batch whose events were all flagged has no new example: keep the old one.
            example=func.coalesce(templates.excluded.example, TemplateDbRow.example),
        )
        self.model = _on_conflict_update(
            insert(ModelRow),
            ("stream_id", "kind"),
            ("params", "feature_names", "training", "n_samples", "trained_at"),
        )
        self.anomalies = insert(AnomalyRow).on_conflict_do_nothing(
            index_elements=["file_id", "offset"]
        )

    def progress(self, file: FileUpdate, now: datetime) -> tuple[Any, dict[str, Any]]:
        """The file row's move to its new offset, guarded by the offset it was read from (with
        the identity hashes when the batch carries them), and its parameters."""
        key = (file.fp_hash is not None, file.marker_hash is not None)
        built = self._progress.get(key)
        if built is None:
            names = (
                _PROGRESS_SET
                + _PROGRESS_ADD
                + (_FINGERPRINT if key[0] else ())
                + (_MARKER if key[1] else ())
            )
            values: dict[str, Any] = {name: bindparam(f"p_{name}") for name in names}
            for name in _PROGRESS_ADD:
                values[name] = getattr(FileRow, name) + values[name]
            values["last_progress_at"] = bindparam("p_now")
            stmt = (
                update(FileRow)
                .where(
                    FileRow.id == bindparam("p_file_id"),
                    FileRow.offset == bindparam("p_expected_offset"),
                )
                .values(values)
            )
            built = self._progress[key] = (stmt, names)
        stmt, names = built
        params = {f"p_{name}": getattr(file, name) for name in names}
        params.update(p_file_id=file.file_id, p_expected_offset=file.expected_offset, p_now=now)
        return stmt, params

    def stream_totals(self, stream: StreamUpdate) -> tuple[Any, dict[str, Any]]:
        """The stream row's totals, and their parameters."""
        params = {f"p_{name}": getattr(stream, name) for name in _STREAM_TOTALS}
        params["p_stream_id"] = stream.stream_id
        return self._stream_totals, params


def _on_conflict_update(
    insert: Any, keys: tuple[str, ...], columns: tuple[str, ...], **also: Any
) -> Any:
    """``insert`` as an upsert: on a conflict over ``keys``, ``columns`` take the new row's
    values, and ``also`` names other columns' expressions."""
    excluded = insert.excluded
    return insert.on_conflict_do_update(
        index_elements=list(keys), set_={**{c: excluded[c] for c in columns}, **also}
    )


def _anomaly_values(a: Anomaly, file_id: int, stream_id: int) -> dict[str, Any]:
    return {
        "file_id": file_id,
        "offset": a.offset,
        "line": a.line,
        "stream_id": stream_id,
        "template": a.template,
        "text": a.text,
        "level": a.level,
        "timestamp": a.timestamp,
        "detected_at": datetime.fromisoformat(a.detected_at),
        "severity": a.severity,
        "score": a.score,
        "reasons": list(a.reasons),
        "count": a.count,
        "closest": a.closest,
        "template_id": a.template_id,
        "host": a.host[:255] if a.host else a.host,
        "process": a.process[:255] if a.process else a.process,
        "pid": a.pid,
    }


# The feedback tables (acks, suppressions, normal marks) and the incident tables (incidents,
# anomalous sessions, model state) are declared on Base in their own modules;
# importing it here puts them in Base.metadata wherever the schema is built or compared.
from logwatch import feedback as _feedback  # noqa: E402,F401
from logwatch import incident_store as _incident_store  # noqa: E402,F401
