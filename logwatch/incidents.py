"""Anomalies that belong together, grouped into incidents a person can act on.

An alert per line floods; an incident says "auth.log: 12 anomalies, new template 'Failed password
for <*>'" once. Anomalies join an incident when they are close in time (the same window, across
streams), when they share a template that spreads over sibling files or streams, and an anomalous
session is one incident of its own. Master-model window verdicts join the incident of their time.

The grouper is incremental and bounded: it keeps open incidents only (at most ``max_open``), and an
incident closes once nothing could join it any more. Time is the log's own, in epoch seconds; an
anomaly's ``timestamp`` when parsed, else its ``detected_at``. Nothing here reads the clock.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from logwatch.records import Anomaly

KIND_WINDOW = "window"  # several streams at once, or a window the master model flagged
KIND_SPREADING = "spreading template"  # one template in several files or streams
KIND_SESSION = "session"  # one anomalous session
KIND_SINGLE = "single"  # one stream, one kind of trouble

TOP_LINES = 5
_MAX_TEMPLATES = 50  # per incident; beyond this its anomalies are counted but their text not kept
_MAX_PLACES = 20  # files and streams remembered per template
_TITLE_TEMPLATE_CHARS = 60
_WILDCARD = re.compile(r"<[^<>\s]*>")


class StreamScoreLike(Protocol):
    """One stream's part in a flagged window (``logwatch.master.StreamContribution`` fits)."""

    @property
    def stream(self) -> str: ...
    @property
    def contribution(self) -> float: ...
    @property
    def anomalies(self) -> int: ...
    @property
    def max_severity(self) -> int: ...


class WindowLike(Protocol):
    """A window verdict (``logwatch.master.WindowVerdict`` fits)."""

    @property
    def start(self) -> float: ...
    @property
    def end(self) -> float: ...
    @property
    def severity(self) -> int: ...
    @property
    def streams(self) -> Sequence[StreamScoreLike]: ...


class SessionLike(Protocol):
    """An anomalous session: what the grouper needs of it, whatever the session model's record."""

    @property
    def stream(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def first_time(self) -> float: ...  # epoch seconds, log time
    @property
    def last_time(self) -> float: ...
    @property
    def severity(self) -> int: ...
    @property
    def reasons(self) -> Sequence[str]: ...


@dataclass(frozen=True, slots=True)
class SessionEvidence:
    """A ready-made SessionLike, for callers whose session record has other field names."""

    stream: str
    key: str
    first_time: float
    last_time: float
    severity: int
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class IncidentStream:
    """One stream's part in an incident."""

    stream: str
    count: int  # anomalies (and anomalous sessions) of this stream in the incident
    max_severity: int
    contribution: float  # summed severity / 100 of its anomalies, plus master-model deviations


@dataclass(frozen=True, slots=True)
class IncidentLine:
    """One of the most telling lines of an incident."""

    stream: str
    path: str
    line: int
    offset: int
    timestamp: str | None
    text: str
    severity: int
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Incident:
    """A snapshot of one incident; the grouper hands out a new one each time it changes."""

    id: str  # stable: derived from its first member (file and offset of the first anomaly)
    title: str
    kinds: tuple[str, ...]
    first_time: float  # epoch seconds, log time
    last_time: float
    severity: int  # highest of its members
    count: int  # anomalies in it
    streams: tuple[IncidentStream, ...]  # most contributing first
    lines: tuple[IncidentLine, ...]  # highest severity first, at most TOP_LINES
    templates: tuple[str, ...]  # most frequent first
    sessions: tuple[str, ...]  # session keys
    windows: int  # master-model windows joined
    closed: bool

    @property
    def first(self) -> str:
        return _iso(self.first_time)

    @property
    def last(self) -> str:
        return _iso(self.last_time)


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def _epoch(value: str | None) -> float | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:  # logwatch reads zone-less log times as UTC everywhere
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def anomaly_time(anomaly: Anomaly) -> float:
    """The log time of an anomaly; when the log gave none, when it was detected."""
    t = _epoch(anomaly.timestamp)
    if t is None:
        t = _epoch(anomaly.detected_at)
    return t if t is not None else 0.0


def template_key(template: str) -> str | None:
    """A template as compared across streams: masks unified (one stream's ``<NUM>`` is another's
    ``<*>``); None for a template too generic to say two lines are the same message."""
    key = _WILDCARD.sub("<*>", template).strip()
    words = [t for t in key.split() if t != "<*>" and any(c.isalpha() for c in t)]
    return key if len(words) >= 2 else None


def _digest(*parts: object) -> str:
    text = "\0".join(str(p) for p in parts)
    return "inc-" + hashlib.sha1(text.encode("utf-8", "replace")).hexdigest()[:12]


def _short(text: str) -> str:
    text = " ".join(text.split())
    if len(text) <= _TITLE_TEMPLATE_CHARS:
        return text
    return text[: _TITLE_TEMPLATE_CHARS - 1] + "…"


def _plural(n: int, word: str, words: str | None = None) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {words or word + 's'}"


class _Template:
    __slots__ = ("text", "count", "new", "paths", "streams")

    def __init__(self, text: str) -> None:
        self.text = text
        self.count = 0
        self.new = False
        self.paths: set[str] = set()
        self.streams: set[str] = set()


class _Open:
    """An incident while it can still grow (mutable; snapshots are Incident records)."""

    def __init__(self, id_: str, first: float, last: float, *, by_time: bool) -> None:
        self.id = id_
        self.first = first
        self.last = last
        self.by_time = by_time  # session incidents do not take anomalies in by time
        self.count = 0
        self.severity = 0
        self.streams: dict[str, list[float]] = {}  # stream -> [count, max severity, contribution]
        self.top: list[tuple[int, float, int, IncidentLine]] = []  # min-heap of the best lines
        self.templates: dict[str, _Template] = {}
        self.sessions: list[str] = []
        self.session_reasons: tuple[str, ...] = ()
        self.windows = 0
        self.last_exclusive = False  # ``last`` is a window's end, which the window does not include
        self.buckets: set[int] = set()

    def stream(self, name: str) -> list[float]:
        return self.streams.setdefault(name, [0.0, 0.0, 0.0])

    def span_with(self, t: float) -> float:
        return max(self.last, t) - min(self.first, t)


class IncidentGrouper:
    """Groups anomalies, flagged windows and anomalous sessions into incidents, incrementally.

    Parameters
    ----------
    gap_seconds : float, default=60.0
        Anomalies this close in time (any stream) join one incident; the master window length.
    spread_seconds : float, optional
        How long the same template may take to spread to another file or stream and still join;
        default ten gaps. An incident closes when nothing joined it for this long.
    max_span_seconds : float, optional
        An incident is not extended past this length (default an hour, or 60 gaps if longer), so a
        stream that is always a little noisy gives an incident an hour, not one that never ends.
    window_min_severity : int, default=67
        Window verdicts below this (a 1% tail) are ignored.
    max_open : int, default=1000
        Open incidents kept; beyond it the one idle longest is closed.
    """

    def __init__(
        self,
        gap_seconds: float = 60.0,
        *,
        spread_seconds: float | None = None,
        max_span_seconds: float | None = None,
        window_min_severity: int = 67,
        max_open: int = 1000,
        top_lines: int = TOP_LINES,
    ) -> None:
        if not math.isfinite(gap_seconds) or gap_seconds <= 0:
            raise ValueError(f"gap_seconds = {gap_seconds!r} must be greater than 0")
        self.gap_seconds = gap_seconds
        self.spread_seconds = spread_seconds if spread_seconds is not None else 10 * gap_seconds
        self.max_span_seconds = (
            max_span_seconds if max_span_seconds is not None else max(3600.0, 60 * gap_seconds)
        )
        self.window_min_severity = window_min_severity
        self.max_open = max_open
        self.top_lines = top_lines
        self._open: dict[str, _Open] = {}
        self._buckets: dict[int, set[str]] = {}  # time bucket -> ids of incidents spanning it
        self._by_template: dict[str, str] = {}  # template key -> id of its latest open incident
        self._by_session: dict[tuple[str, str], str] = {}
        self._seq = 0
        # (path, offset) -> incident id, for the anomalies of the last ``add`` (alert grouping)
        self.assigned: dict[tuple[str, int], str] = {}

    # -- public ---------------------------------------------------------------------------------

    def add(
        self,
        anomalies: Sequence[Anomaly],
        windows: Sequence[WindowLike] = (),
        sessions: Sequence[SessionLike] = (),
    ) -> list[Incident]:
        """Group new evidence; the incidents created or changed by it (and any closed to make room),
        oldest first."""
        touched: dict[str, _Open] = {}
        closed: list[Incident] = []
        # Time order (then file and offset) so an incident's id is its earliest anomaly's, whatever
        # order the pipeline's streams happened to be processed in.
        timed = sorted(
            ((anomaly_time(a), a) for a in anomalies), key=lambda p: (p[0], p[1].path, p[1].offset)
        )
        self.assigned = {}
        for t, anomaly in timed:
            inc = self._place_anomaly(t, anomaly, closed)
            touched[inc.id] = inc
            self.assigned[(anomaly.path, anomaly.offset)] = inc.id
        for window in windows:
            if window.severity < self.window_min_severity:
                continue
            inc = self._place_window(window, closed)
            touched[inc.id] = inc
        for session in sessions:
            inc = self._place_session(session, closed)
            touched[inc.id] = inc
        out = closed + [
            self._snapshot(i, closed=False) for i in touched.values() if i.id in self._open
        ]
        return sorted(out, key=lambda i: (i.first_time, i.id))

    def expire(self, watermark: float) -> list[Incident]:
        """Close the incidents nothing can join any more at log time ``watermark``."""
        done = [i for i in self._open.values() if i.last + self._horizon(i) < watermark]
        return [self._close(i) for i in sorted(done, key=lambda i: (i.first, i.id))]

    def flush(self) -> list[Incident]:
        """Close every open incident (end of a ``--once`` run, or shutdown)."""
        return [self._close(i) for i in sorted(self._open.values(), key=lambda i: (i.first, i.id))]

    @property
    def open_count(self) -> int:
        return len(self._open)

    # -- placing evidence -----------------------------------------------------------------------

    def _place_anomaly(self, t: float, anomaly: Anomaly, closed: list[Incident]) -> _Open:
        key = template_key(anomaly.template)
        inc = None
        if key is not None:
            hit = self._open.get(self._by_template.get(key, ""))
            if (
                hit is not None
                and hit.first - self.spread_seconds <= t <= hit.last + self.spread_seconds
                and hit.span_with(t) <= self.max_span_seconds
            ):
                inc = hit
        if inc is None:
            inc = self._nearest_in_time(t, t)
        if inc is None:
            inc = self._new(
                _digest(anomaly.path, anomaly.offset), t, t, by_time=True, closed=closed
            )
        if t >= inc.last:
            inc.last_exclusive = False
        self._extend(inc, t, t)
        inc.count += 1
        inc.severity = max(inc.severity, anomaly.severity)
        row = inc.stream(anomaly.stream)
        row[0] += 1
        row[1] = max(row[1], anomaly.severity)
        row[2] += anomaly.severity / 100.0
        if key is not None:
            self._by_template[key] = inc.id
            tpl = inc.templates.get(key)
            if tpl is None and len(inc.templates) < _MAX_TEMPLATES:
                tpl = inc.templates[key] = _Template(anomaly.template)
            if tpl is not None:
                tpl.count += 1
                tpl.new = tpl.new or any(r.startswith("new template") for r in anomaly.reasons)
                if len(tpl.paths) < _MAX_PLACES:
                    tpl.paths.add(anomaly.path)
                if len(tpl.streams) < _MAX_PLACES:
                    tpl.streams.add(anomaly.stream)
        line = IncidentLine(
            anomaly.stream,
            anomaly.path,
            anomaly.line,
            anomaly.offset,
            anomaly.timestamp,
            anomaly.text,
            anomaly.severity,
            anomaly.reasons,
        )
        self._seq += 1
        # Highest severity first, then earliest; the heap's root is the least telling kept line.
        entry = (anomaly.severity, -t, -self._seq, line)
        if len(inc.top) < self.top_lines:
            heapq.heappush(inc.top, entry)
        elif entry[:3] > inc.top[0][:3]:
            heapq.heapreplace(inc.top, entry)
        return inc

    def _place_window(self, window: WindowLike, closed: list[Incident]) -> _Open:
        inc = self._nearest_in_time(window.start, window.end)
        if inc is None:
            inc = self._new(
                _digest("window", window.start),
                window.start,
                window.end,
                by_time=True,
                closed=closed,
            )
        if window.end >= inc.last:
            inc.last_exclusive = True
        self._extend(inc, window.start, window.end)
        inc.windows += 1
        inc.severity = max(inc.severity, window.severity)
        for part in window.streams:
            row = inc.stream(part.stream)
            row[1] = max(row[1], part.max_severity)
            row[2] += part.contribution
        return inc

    def _place_session(self, session: SessionLike, closed: list[Incident]) -> _Open:
        where = (session.stream, session.key)
        inc = self._open.get(self._by_session.get(where, ""))
        if inc is None:
            inc = self._new(
                _digest("session", session.stream, session.key, session.first_time),
                session.first_time,
                session.last_time,
                by_time=False,
                closed=closed,
            )
            self._by_session[where] = inc.id
            inc.sessions.append(session.key)
        self._extend(inc, session.first_time, session.last_time)
        inc.severity = max(inc.severity, session.severity)
        inc.session_reasons = tuple(session.reasons)
        row = inc.stream(session.stream)
        row[0] += 1
        row[1] = max(row[1], session.severity)
        row[2] += session.severity / 100.0
        return inc

    def _nearest_in_time(self, start: float, end: float) -> _Open | None:
        """The open incident within one gap of ``[start, end]`` that is closest in time."""
        g = self.gap_seconds
        best: tuple[float, int, str] | None = None
        found: _Open | None = None
        for b in range(math.floor((start - g) / g), math.floor((end + g) / g) + 1):
            for id_ in self._buckets.get(b, ()):
                inc = self._open[id_]
                if not inc.by_time or start > inc.last + g or end < inc.first - g:
                    continue
                if max(inc.last, end) - min(inc.first, start) > self.max_span_seconds:
                    continue
                distance = max(0.0, start - inc.last, inc.first - end)
                rank = (distance, -inc.count, inc.id)
                if best is None or rank < best:
                    best, found = rank, inc
        return found

    # -- bookkeeping ----------------------------------------------------------------------------

    def _new(
        self, id_: str, first: float, last: float, *, by_time: bool, closed: list[Incident]
    ) -> _Open:
        if id_ in self._open:  # the same first member fed twice (a re-run): a fresh id all the same
            id_ = _digest(id_, len(self._open), self._seq)
        while len(self._open) >= self.max_open:
            idle = min(self._open.values(), key=lambda i: (i.last, i.id))
            closed.append(self._close(idle))
        inc = _Open(id_, first, last, by_time=by_time)
        self._open[id_] = inc
        return inc

    def _extend(self, inc: _Open, start: float, end: float) -> None:
        inc.first = min(inc.first, start)
        inc.last = max(inc.last, end)
        g = self.gap_seconds
        for b in range(math.floor(inc.first / g), math.floor(inc.last / g) + 1):
            if b not in inc.buckets:
                inc.buckets.add(b)
                self._buckets.setdefault(b, set()).add(inc.id)

    def _horizon(self, inc: _Open) -> float:
        return self.spread_seconds if inc.templates else self.gap_seconds

    def _close(self, inc: _Open) -> Incident:
        del self._open[inc.id]
        for b in inc.buckets:
            ids = self._buckets.get(b)
            if ids is not None:
                ids.discard(inc.id)
                if not ids:
                    del self._buckets[b]
        for key in inc.templates:
            if self._by_template.get(key) == inc.id:
                del self._by_template[key]
        for where in [k for k, v in self._by_session.items() if v == inc.id]:
            del self._by_session[where]
        return self._snapshot(inc, closed=True)

    # -- describing -----------------------------------------------------------------------------

    def _snapshot(self, inc: _Open, *, closed: bool) -> Incident:
        streams = tuple(
            sorted(
                (
                    IncidentStream(s, int(v[0]), int(v[1]), round(v[2], 3))
                    for s, v in inc.streams.items()
                ),
                key=lambda s: (-s.contribution, -s.count, s.stream),
            )
        )
        lines = tuple(e[3] for e in sorted(inc.top, reverse=True))
        templates = sorted(inc.templates.values(), key=lambda t: -t.count)
        kinds = _kinds(inc, streams)
        return Incident(
            id=inc.id,
            title=_title(inc, kinds, streams, templates),
            kinds=kinds,
            first_time=inc.first,
            last_time=inc.last,
            severity=inc.severity,
            count=inc.count,
            streams=streams,
            lines=lines,
            templates=tuple(t.text for t in templates),
            sessions=tuple(inc.sessions),
            windows=inc.windows,
            closed=closed,
        )


def _kinds(inc: _Open, streams: Sequence[IncidentStream]) -> tuple[str, ...]:
    kinds: list[str] = []
    if inc.sessions:
        kinds.append(KIND_SESSION)
    anomaly_streams = [s for s in streams if s.count > 0]
    # Several streams in trouble together, beyond one template spreading between them.
    if inc.windows or (len(anomaly_streams) > 1 and len(inc.templates) > 1):
        kinds.append(KIND_WINDOW)
    if any(len(t.paths) > 1 or len(t.streams) > 1 for t in inc.templates.values()):
        kinds.append(KIND_SPREADING)
    return tuple(kinds) or (KIND_SINGLE,)


def _clock(inc: _Open) -> str:
    first = datetime.fromtimestamp(inc.first, UTC).strftime("%H:%M")
    end = inc.last - 0.001 if inc.last_exclusive else inc.last
    last = datetime.fromtimestamp(max(inc.first, end), UTC).strftime("%H:%M")
    return first if first == last else f"{first}-{last}"


def _names(streams: Iterable[str], limit: int = 3) -> str:
    names = list(streams)
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _title(
    inc: _Open,
    kinds: Sequence[str],
    streams: Sequence[IncidentStream],
    templates: Sequence[_Template],
) -> str:
    if KIND_SESSION in kinds and inc.count == 0:
        stream = streams[0].stream if streams else "?"
        why = f" ({inc.session_reasons[0]})" if inc.session_reasons else ""
        return f"{stream}: anomalous session {inc.sessions[0]}{why}"
    if KIND_WINDOW in kinds:
        return f"{_plural(len(streams), 'stream')} abnormal at {_clock(inc)}: " + _names(
            s.stream for s in streams
        )
    top = templates[0] if templates else None
    if KIND_SPREADING in kinds and top is not None:
        if len(top.streams) > 1:
            where = f"{len(top.streams)} streams: " + _names(sorted(top.streams))
        else:
            where = f"{len(top.paths)} files: " + _names(sorted(top.paths))
        new = "new template " if top.new else "template "
        return f"{new}'{_short(top.text)}' spreading over {where}"
    stream = streams[0].stream if streams else "?"
    what = _plural(inc.count, "anomaly", "anomalies")
    if top is None:
        return f"{stream}: {what}"
    new = "new template" if top.new else "template"
    return f"{stream}: {what}, {new} '{_short(top.text)}'"
