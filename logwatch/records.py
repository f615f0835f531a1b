"""The typed records that pass between pipeline stages.

Every stage takes and returns these frozen dataclasses; no stage passes dicts of strings.
Byte offsets are positions in the file's (decompressed) byte stream; line numbers are 1-based.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

_Record = TypeVar("_Record", bound=type)

_NAIVE_EPOCH = datetime(1970, 1, 1)


def epoch_seconds(ts: datetime | None) -> float | None:
    """Log time as epoch seconds. A time without a zone is read as UTC, everywhere in logwatch
    (``datetime.timestamp()`` would take the host's local zone): gaps within a stream come out
    right whatever its real zone. Naive times skip building an aware copy (hot path)."""
    if ts is None:
        return None
    if ts.tzinfo is None:
        return (ts - _NAIVE_EPOCH).total_seconds()
    return ts.timestamp()


def _setter_init(cls: _Record) -> _Record:
    """Give a frozen, slotted dataclass an ``__init__`` that stores each field through its slot's
    own setter instead of ``object.__setattr__(self, name, value)``: the same object, still frozen
    (assignment afterwards raises FrozenInstanceError), built in about half the time. Several of
    these records are made per log line, where the standard frozen ``__init__`` cost ~5 us a line.
    """
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: __post_init__ is not supported")
    namespace: dict[str, Any] = {"_MISSING": dataclasses.MISSING}
    params, body = [], []
    for f in dataclasses.fields(cls):
        if not f.init or f.kw_only:
            raise TypeError(f"{cls.__name__}.{f.name}: only positional init fields are supported")
        namespace[f"_set_{f.name}"] = cls.__dict__[f.name].__set__
        value = f.name
        if f.default is not dataclasses.MISSING:
            namespace[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
        elif f.default_factory is not dataclasses.MISSING:
            namespace[f"_factory_{f.name}"] = f.default_factory
            params.append(f"{f.name}=_MISSING")
            value = f"_factory_{f.name}() if {f.name} is _MISSING else {f.name}"
        else:
            params.append(f.name)
        body.append(f"    _set_{f.name}(self, {value})")
    source = f"def __init__(self, {', '.join(params)}) -> None:\n" + "\n".join(body) + "\n"
    exec(source, namespace)  # noqa: S102 - our own field names, as dataclasses itself does
    init: Callable[..., None] = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__annotations__ = dict(cls.__dict__["__init__"].__annotations__)
    cls.__init__ = init  # type: ignore[misc]
    return cls


# JSON attribute values kept from JSON log lines (nested objects are flattened to dotted keys).
FieldValue = str | int | float | bool | None


@_setter_init
@dataclass(frozen=True, slots=True)
class FileSnapshot:
    """What the watcher saw of one regular file, from ``stat`` alone (the file is not opened)."""

    path: str  # absolute path
    rel_path: str  # path relative to the log root, '/'-separated
    stream: str  # logical log this file belongs to: rotated siblings share one stream
    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int
    attr_hash: str  # hash of (dev, ino, size, mtime_ns, ctime_ns): unchanged hash => not opened
    compressed: bool  # .gz / .bz2: read through a decompressor, offsets are decompressed bytes


@_setter_init
@dataclass(frozen=True, slots=True)
class TrackedFile:
    """A file's stored state: where it is, what it is (identity hashes), how far it was read."""

    id: int
    path: str
    stream_id: int
    dev: int
    ino: int
    size: int  # size when last seen
    mtime_ns: int
    attr_hash: str
    fp_len: int  # bytes covered by fp_hash: the file's first <= 1 KiB, grown as the file grows
    fp_hash: str
    offset: int  # just past the last processed line
    line_no: int  # lines before offset
    status: str  # active / rotated / deleted / replaced / truncated
    last_progress_at: datetime | None = None
    marker_len: int = 0  # bytes covered by marker_hash: the <= 32 bytes just before offset
    marker_hash: str = ""


@_setter_init
@dataclass(frozen=True, slots=True)
class RawLine:
    """One complete line read from a file, without its line terminator."""

    offset: int  # byte offset of the first byte of the line
    line_no: int  # 1-based line number in the file
    text: str  # decoded with errors="replace"; NUL replaced; one trailing '\r' stripped
    truncated: bool = False  # the line was longer than max_line_bytes and was cut


@_setter_init
@dataclass(frozen=True, slots=True)
class ReadResult:
    """The complete lines of one bounded read, and where the next read starts."""

    lines: tuple[RawLine, ...]
    end_offset: int  # just past the last '\n' consumed; never past a partial line
    end_line_no: int  # number of lines consumed up to end_offset
    at_eof: bool  # nothing complete remains to read right now
    bytes_read: int  # bytes consumed by this read (end_offset - start offset)
    problem: str | None = None  # e.g. "truncated gzip stream": reported, never silently dropped


@_setter_init
@dataclass(frozen=True, slots=True)
class ParsedLine:
    """Header fields taken from one line; ``message`` is what gets templated."""

    message: str  # the body, header stripped (the whole line when no layout matched)
    timestamp: datetime | None = None  # aware when the log states a zone, naive otherwise
    level: str | None = None  # normalised: TRACE DEBUG INFO NOTICE WARN ERROR CRITICAL FATAL
    host: str | None = None
    process: str | None = None
    pid: int | None = None
    fields: Mapping[str, FieldValue] = field(default_factory=dict)  # JSON attributes
    layout: str = "plain"  # name of the recognised layout


@_setter_init
@dataclass(frozen=True, slots=True)
class Event:
    """One log event: a line, or a line and its continuation lines (stack traces)."""

    offset: int  # byte offset of the first line
    line_no: int  # line number of the first line
    end_offset: int  # just past the last line of the event
    n_lines: int
    text: str  # the raw lines joined with '\n'
    parsed: ParsedLine  # header of the first line; message includes continuation lines
    truncated: bool = False
    count: int = 1  # identical events collapsed into this one within a batch


class TemplateChange(enum.Enum):
    """What templating one message did to its stream's template set."""

    CREATED = "created"
    CHANGED = "changed"
    NONE = "none"


@_setter_init
@dataclass(frozen=True, slots=True)
class TemplateMatch:
    """The template an event belongs to."""

    template_id: int  # stable per stream, across restarts
    template: str  # template text, masked values shown as <NUM>, <IP>, ... and <*>
    change: TemplateChange
    slot_values: tuple[str, ...]  # original text at each variable position, in order


@_setter_init
@dataclass(frozen=True, slots=True)
class TemplateRow:
    """One stream's template as persisted: enough to rebuild the miner exactly, without pickle."""

    template_id: int
    template_tokens: tuple[str, ...]  # current template
    creation_tokens: tuple[str, ...]  # tokens of the message that created it (its tree path)
    size: int  # events matched so far


@_setter_init
@dataclass(frozen=True, slots=True)
class Anomaly:
    """One anomalous event, as stored and as printed."""

    stream: str
    path: str
    line: int
    offset: int
    timestamp: str | None  # ISO-8601 from the log, when parsed
    detected_at: str  # ISO-8601 UTC
    severity: int  # 0-100, comparable across streams; higher is more anomalous
    score: float  # raw detector score; higher is more anomalous
    reasons: tuple[str, ...]
    template: str
    text: str
    count: int = 1
    level: str | None = None
    id: int | None = None  # database id, once stored
    template_id: int | None = None  # the template's id within its stream
    host: str | None = None  # header fields of the line, when its layout has them
    process: str | None = None
    pid: int | None = None
    # The closest normal line of the stream, tokens that differ from this event in [[...]].
    closest: str | None = None


@_setter_init
@dataclass(frozen=True, slots=True)
class EventSketch:
    """The compact description of an event that detection needs; kept (bounded) for training.

    Its variable values are ``values[i]`` at template token ``positions[i]`` (pairs up to the
    shorter of the two). Two tuples rather than one of pairs: ``positions`` is the template's own,
    shared by all its events, and ``values`` the match's, so a sketch adds no tuple per value. A
    training reservoir holds max_train_samples sketches for each stream in memory (4,096 x 100
    by default): with pairs, a busy daemon's RSS was ~42 MB higher."""

    template_id: int
    level: str | None
    positions: tuple[int, ...]  # template token positions of the variable values
    values: tuple[str, ...]  # the original values at those positions
    length: int
    trouble: bool = False  # the template contains a word that means something went wrong
    fields: tuple[tuple[str, str], ...] = ()  # JSON events: scalar attributes, as text
    # Events the stream had before this one, up to decide.STARTUP_EVENTS (early events are not
    # news; nothing asks more of it).
    position: int = 0
    gap: float | None = None  # seconds since the stream's previous event, by log time


@_setter_init
@dataclass(frozen=True, slots=True)
class NumericOutlier:
    """A numeric variable value far outside what its slot has held (in orders of magnitude)."""

    position: int  # template token position; -1 for a JSON field
    value: str
    z: float  # distance from the slot's mean, in standard deviations of log10(1 + |value|)
    low: float  # the slot's usual range (mean +- 2 standard deviations), in the value's units
    high: float
    field: str | None = None


@_setter_init
@dataclass(frozen=True, slots=True)
class RareSlot:
    """The most surprising variable value of an event, for its reasons."""

    position: int  # template token position; -1 for a JSON field
    value: str
    count: int  # times this value was seen in this slot
    slot_total: int  # values seen in this slot
    usual: tuple[str, ...]  # the slot's most common values
    field: str | None = None  # the JSON field name, for field slots


@_setter_init
@dataclass(frozen=True, slots=True)
class Features:
    """Name-keyed feature values of one event, and the facts behind them (for reasons)."""

    values: Mapping[str, float]
    template_size: int
    events_total: int
    level: str | None
    level_share: float  # share of the stream's events with this level
    top_level: str | None  # the stream's most common level
    top_level_share: float
    rare_slot: RareSlot | None
    nearest: str | None  # nearest established template, when the event's template is rare
    novelty: float  # normalised edit distance to ``nearest`` (0 = identical, 1 = nothing alike)
    long_value: str | None = None  # the variable value whose length is furthest from its slot's
    position: int = 0  # events the stream had before this one, up to decide.STARTUP_EVENTS
    rare_template_share: float = 0.0  # share of the stream's events whose template is rare
    rare_cut: int = 2  # a template with at most this many events is rare in this stream
    trouble_share: float = 0.0  # share of the stream's events with a failure word
    numeric: NumericOutlier | None = None  # the numeric value furthest outside its slot's range
    gap: float | None = None  # seconds since the stream's previous event
    usual_gap: float | None = None  # the stream's typical gap (geometric mean), seconds
    nearest_id: int | None = None  # template id of ``nearest``
