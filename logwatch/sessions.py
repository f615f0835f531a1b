"""Sessions: events grouped by the identifiers in them, and judged as a whole once they end.

Some failures show in no single line: an HDFS block whose writes stop half way, a request that never
gets its response. Every line of such a session is ordinary; what is wrong is which templates the
session has and how many of each (loglizer's session windows). Three pure pieces, no database and no
clock, so the pipeline drives them:

- ``SessionKeys`` finds the identifiers in an event's text. It runs on every event, so each default
  pattern sits behind a substring test and starts with a literal (CPython's ``re`` scans fast for a
  literal, and crawls through an alternation of patterns tried at every position).
- ``SessionTracker`` groups events by (stream, identifier), closes sessions that went idle and, past
  ``max_open``, the least recently active one first.
- ``SessionModel`` is one stream's IsolationForest over template-count vectors, calibrated on its
  own training scores; it explains a verdict: templates missing, unusual, or far beyond usual.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections import Counter, OrderedDict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from sklearn.base import BaseEstimator
from sklearn.ensemble import IsolationForest

from logwatch.decide import severity_from_tail
from logwatch.errors import ConfigError, NotFittedError, StateCorruptError

if TYPE_CHECKING:
    from logwatch.config import Config

# ---------------------------------------------------------------------------------------------
# Keys

_HEX = "[0-9a-fA-F]"
# HDFS block ids; the digits stop at '_', so Hadoop's blk_1073743512_2731 (id, generation stamp)
# gives the block, which keeps its id when a recovery bumps the stamp.
_BLOCK = re.compile(r"blk_-?\d+")
# A UUID found from its first dash: a pattern that starts with a literal is scanned for at C speed,
# one that starts with a character class is tried at every position (5x slower, measured).
_UUID_TAIL = re.compile(rf"-(?<={_HEX}{{8}}-){_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}")
_ID_VALUE = re.compile(r"[iI][dD][\"']?[ \t]*[:=][ \t]*[\"']?([\w-]+(?:\.[\w-]+)*)")
_ID_NAME = re.compile(r"(?<![a-z0-9])(?:x-)?(?:request|trace|correlation)[-_ ]?\Z")
_NOT_AN_ID = frozenset({"null", "none", "nil", "undefined", "-", "0"})
_ID_NAME_SPAN = 20  # chars before "id" that can hold "x-correlation-"
MAX_KEYS_PER_EVENT = 32  # an HDFS "ask ... to delete blk_1 blk_2 ..." line can name hundreds
_NUMBERED_REFERENCE = re.compile(r"\\[1-9]|\(\?\(\d")


# Per stream: (fused extras, id group by lastindex, extras that could not be fused with group).
_Extra = tuple[re.Pattern[str] | None, tuple[int, ...], tuple[tuple[re.Pattern[str], int], ...]]


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


class SessionKeys:
    """The session identifiers in one event: HDFS ``blk_`` ids, UUIDs (``req-<uuid>`` as a whole),
    ``request_id=`` / ``X-Request-ID:`` / ``trace_id`` / ``correlation-id`` values, and the
    stream's own regexes.

    Parameters
    ----------
    patterns : mapping of stream-name glob to regexes, default={}
        Extra identifier patterns for the streams a glob matches; the first group is the id (the
        whole match when the pattern has no group). All of a stream's extras are fused into one
        compiled regex. An invalid pattern raises ConfigError naming the glob and the pattern.

    Examples
    --------
    >>> SessionKeys().keys("hdfs.log", "Receiving block blk_-1608999687919862906 src: /10.2.1.9")
    ('blk_-1608999687919862906',)
    >>> SessionKeys({"app*": [r"order #(\\d+)"]}).keys("app.log", "order #42 paid, request_id=ab12")
    ('42', 'ab12')
    """

    def __init__(self, patterns: Mapping[str, Sequence[str]] | None = None) -> None:
        checked: list[tuple[str, tuple[str, ...]]] = []
        for glob, raw in (patterns or {}).items():
            regexes = (raw,) if isinstance(raw, str) else raw
            if not isinstance(regexes, Sequence) or not all(isinstance(p, str) for p in regexes):
                raise ConfigError(
                    f"sessions: {glob!r} must be a list of regular expressions, got {raw!r}"
                )
            for pattern in regexes:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ConfigError(
                        f"sessions: pattern {pattern!r} for streams {glob!r} is not a valid "
                        f"regular expression: {exc}"
                    ) from None
            checked.append((str(glob), tuple(regexes)))
        self.patterns = tuple(checked)
        self._extras: dict[str, _Extra] = {}

    @classmethod
    def from_config(cls, config: Config) -> SessionKeys:
        return cls(config.sessions)

    def _extra(self, stream: str) -> _Extra:
        """The stream's extra patterns, fused into one regex whenever that is safe."""
        mine = [p for glob, ps in self.patterns if fnmatch.fnmatchcase(stream, glob) for p in ps]
        if not mine:
            return None, (), ()
        # A numbered back-reference would point at another pattern's group once fused.
        if not any(_NUMBERED_REFERENCE.search(p) for p in mine):
            try:
                fused = re.compile("|".join(f"(?P<_k{i}>{p})" for i, p in enumerate(mine)))
            except re.error:
                # A group name used by two patterns, or a global flag such as (?i) that is only
                # legal at the very start: match them one by one rather than rewrite them.
                fused = None
            if fused is not None:
                # A wrapper group closes after every group inside it, so a match's ``lastindex``
                # is its wrapper; the id is the group right after it, if the pattern has one.
                id_group = [0] * (fused.groups + 1)
                for i, pattern in enumerate(mine):
                    wrapper = fused.groupindex[f"_k{i}"]
                    id_group[wrapper] = wrapper + 1 if re.compile(pattern).groups else wrapper
                return fused, tuple(id_group), ()
        separate = tuple((c, 1 if c.groups else 0) for c in map(re.compile, mine))
        return None, (), separate

    def keys(self, stream: str, text: str) -> tuple[str, ...]:
        """The distinct identifiers in ``text``, in order of first appearance."""
        # HDFS lines are the hot path: findall (strings, no match objects) and no sorting unless
        # another kind of id turns up too.
        blocks: list[str] = _BLOCK.findall(text) if "blk_" in text else []
        found: list[tuple[int, str]] = []
        if text.count("-") >= 4:
            for m in _UUID_TAIL.finditer(text):
                start = m.start() - 8
                if start >= 4 and text[start - 4 : start] == "req-":
                    start -= 4  # OpenStack's request ids: req-<uuid> is the id, whole
                if start > 0 and _is_word(text[start - 1]):
                    continue
                if m.end() < len(text) and _is_word(text[m.end()]):
                    continue
                found.append((start, text[start : m.end()]))
        if "id" in text or "ID" in text or "Id" in text:
            for m in _ID_VALUE.finditer(text):
                before = text[max(m.start() - _ID_NAME_SPAN, 0) : m.start()].lower()
                value = m.group(1)
                if _ID_NAME.search(before) and value.lower() not in _NOT_AN_ID:
                    found.append((m.start(1), value))
        extra = self._extras.get(stream)
        if extra is None:
            extra = self._extras[stream] = self._extra(stream)
        fused, id_group, separate = extra
        if fused is not None:
            for m in fused.finditer(text):
                index = m.lastindex or 0
                key = m.group(id_group[index]) or m.group(index)
                if key:
                    found.append((m.start(), key))
        for pattern, group in separate:
            for m in pattern.finditer(text):
                key = m.group(group) or m.group()
                if key:
                    found.append((m.start(), key))
        if not found:
            if len(blocks) == 1:
                return (blocks[0],)
            return tuple(dict.fromkeys(blocks))[:MAX_KEYS_PER_EVENT]
        if blocks:
            found.extend((m.start(), m.group()) for m in _BLOCK.finditer(text))
        elif len(found) == 1:
            return (found[0][1],)
        found.sort()
        return tuple(dict.fromkeys(k for _, k in found))[:MAX_KEYS_PER_EVENT]


# ---------------------------------------------------------------------------------------------
# Tracking


@dataclass(frozen=True, slots=True)
class SessionPoint:
    """Where a session's first or last event was."""

    path: str
    line: int  # 1-based line number of the event in ``path``
    at: float  # event time, epoch seconds


@dataclass(frozen=True, slots=True)
class ClosedSession:
    """A session that ended: its template counts and where it started and stopped."""

    stream: str
    key: str
    counts: Counter[int]  # template id -> events; at most ``max_templates`` distinct ids
    first: SessionPoint
    last: SessionPoint
    events: int
    first_template: int
    overflow: int = 0  # events not counted because the session already had max_templates ids
    closed_by: str = "idle"  # idle / evicted / end


class _Open:
    """An open session; mutable and slotted because it is touched once per event."""

    __slots__ = ("counts", "first", "first_template", "last_path", "last_line", "last_at",
                 "events", "overflow")  # fmt: skip

    def __init__(self, template_id: int, path: str, line: int, at: float) -> None:
        self.counts: Counter[int] = Counter()
        self.first = SessionPoint(path, line, at)
        self.first_template = template_id
        self.last_path, self.last_line, self.last_at = path, line, at
        self.events = 0
        self.overflow = 0

    def close(self, stream: str, key: str, closed_by: str) -> ClosedSession:
        return ClosedSession(
            stream=stream,
            key=key,
            counts=self.counts,
            first=self.first,
            last=SessionPoint(self.last_path, self.last_line, self.last_at),
            events=self.events,
            first_template=self.first_template,
            overflow=self.overflow,
            closed_by=closed_by,
        )


class SessionTracker:
    """Open sessions by (stream, key), closed when idle, when memory is full, or at the end.

    Idle is measured on each stream's own clock: the latest event time seen in the stream, running
    on with ``now`` while the stream is quiet. So a replay of 2008 logs closes sessions by the log's
    time, a live stream whose log clock is hours off wall time is not closed wholesale, and a
    session whose stream went silent still ends ``idle_seconds`` after the silence began.

    Parameters
    ----------
    idle_seconds : float, default=300.0
    max_open : int, default=10_000
        Sessions kept open at most; past it the least recently active one is closed (``evicted``).
    max_templates : int, default=256
        Distinct templates counted per session; events of further templates count as ``overflow``.
    """

    def __init__(
        self, idle_seconds: float = 300.0, max_open: int = 10_000, max_templates: int = 256
    ) -> None:
        self.idle_seconds = idle_seconds
        self.max_open = max_open
        self.max_templates = max_templates
        self.evicted = 0
        # Insertion order is activity order (move_to_end on each event): the front is the least
        # recently active session, evicted first in O(1).
        self._open: OrderedDict[tuple[str, str], _Open] = OrderedDict()
        self._evicted: list[ClosedSession] = []
        self._latest: dict[str, float] = {}  # stream -> latest event time seen
        self._clock: dict[str, tuple[float, float]] = {}  # stream -> (latest, now when it moved)

    @property
    def open_count(self) -> int:
        return len(self._open)

    def observe(
        self, stream: str, key: str, template_id: int, path: str, line: int, at: float
    ) -> None:
        """Count one event into its session; ``at`` is the event's log time when known, else the
        wall clock (pass the stream's previous log time for a line without one: a jump to wall
        time would age every open session of a replayed stream at once)."""
        ident = (stream, key)
        session = self._open.get(ident)
        if session is None:
            if len(self._open) >= self.max_open:
                (old_stream, old_key), old = self._open.popitem(last=False)
                self._evicted.append(old.close(old_stream, old_key, "evicted"))
                self.evicted += 1
            session = self._open[ident] = _Open(template_id, path, line, at)
        else:
            self._open.move_to_end(ident)
        counts = session.counts
        if template_id in counts or len(counts) < self.max_templates:
            counts[template_id] += 1
        else:
            session.overflow += 1
        session.events += 1
        session.last_path, session.last_line = path, line
        if at > session.last_at:
            session.last_at = at
        if at > self._latest.get(stream, -math.inf):
            self._latest[stream] = at

    def expire(self, now: float) -> list[ClosedSession]:
        """Close and return the idle sessions, and those evicted since the last call."""
        clock: dict[str, float] = {}
        for stream, latest in self._latest.items():
            moved = self._clock.get(stream)
            if moved is None or moved[0] != latest:
                self._clock[stream] = (latest, now)
                clock[stream] = latest
            else:
                clock[stream] = latest + max(0.0, now - moved[1])
        out, self._evicted = self._evicted, []
        stale = [
            ident
            for ident, s in self._open.items()
            if clock[ident[0]] - s.last_at >= self.idle_seconds
        ]
        for ident in stale:
            out.append(self._open.pop(ident).close(*ident, "idle"))
        return out

    def close_all(self) -> list[ClosedSession]:
        """Close every open session (the end of a ``--once`` run)."""
        out, self._evicted = self._evicted, []
        out.extend(s.close(stream, key, "end") for (stream, key), s in self._open.items())
        self._open.clear()
        return out


# ---------------------------------------------------------------------------------------------
# Scoring

MISSING_SHARE = 0.9  # a template in at least this share of like sessions is expected
UNUSUAL_SHARE = 0.01  # a template in under this share of normal sessions is unusual
EXCESS_FACTOR = 2.0  # a count over twice the usual high (99th percentile) is far beyond usual
EXCESS_MARGIN = 3  # ... and at least this many over it: 1 -> 3 is not news
MIN_GROUP = 10  # like sessions (same first template) needed before they set expectations


@dataclass(frozen=True, slots=True)
class SessionVerdict:
    """A session's score, severity and the facts behind them."""

    session: ClosedSession
    score: float  # higher is more anomalous
    # Share of the model's training sessions scoring at least as high, or showing the rarest of
    # the facts below, whichever is smaller (both smoothed: never below 1 / (n + 1)).
    tail: float
    severity: int  # 0-100, from ``tail``: comparable with line severities
    missing: tuple[tuple[int, float], ...]  # (template, share of like normal sessions having it)
    unusual: tuple[tuple[int, float], ...]  # (template, share of normal sessions having it)
    excess: tuple[tuple[int, int, int], ...]  # (template, count here, usual high count)

    @property
    def evident(self) -> bool:
        """Whether a person could check the verdict: some template is missing, unusual or
        counted far beyond usual. A high score without such a fact is not worth reporting."""
        return bool(self.missing or self.unusual or self.excess)

    def reasons(self, templates: Mapping[int, str] | None = None) -> tuple[str, ...]:
        """Readable facts, templates shown by text when ``templates`` has it."""
        names = templates or {}

        def name(template_id: int) -> str:
            text = names.get(template_id)
            return f"{text!r}" if text is not None else f"template {template_id}"

        out = [
            f"missing {name(t)}, present in {share:.0%} of normal sessions that start like this"
            for t, share in self.missing
        ]
        out += [
            f"unusual {name(t)}, "
            + ("never in a normal session" if share == 0 else f"in {share:.1%} of normal sessions")
            for t, share in self.unusual
        ]
        out += [f"{name(t)} {n} times, usually at most {usual}" for t, n, usual in self.excess]
        return tuple(out)


_Row = tuple[int, tuple[tuple[int, int], ...]]  # (first template, sorted (template, count))


class SessionModel(BaseEstimator):  # type: ignore[misc]
    """One stream's session model, loglizer-style: an IsolationForest over template-count vectors.

    The vocabulary is the templates seen in training sessions (the ``max_vocabulary`` most common);
    templates outside it do not move the score but are reported as unusual. With ``idf``, counts
    are weighted by smoothed inverse document frequency (sklearn's: a template in every session
    keeps weight 1 rather than loglizer's 0, which would hide a missing step). Severity comes from
    the tail share among the model's own training scores, as for lines.

    ``learn`` keeps a bounded window of recent sessions judged normal, fits once ``min_sessions``
    are there and refits after every ``refit_every`` more. Persisted as parameters, vocabulary and
    training matrix, refitted on load (seeded, so scores are identical; nothing is unpickled).

    Parameters
    ----------
    n_estimators : int, default=100
    min_sessions : int, default=50
    max_train_sessions : int, default=2048
    refit_every : int, default=500
    idf : bool, default=False
    max_vocabulary : int, default=1000
    protect_severity : int, default=40
        A session scored at or above this severity, with facts to show for it, does not enter the
        training window. 40 is Config.min_severity's default; a model fitted on 50 sessions
        cannot reach 60 (its smallest tail share is 1/51).
    random_state : int, default=42
    """

    def __init__(
        self,
        n_estimators: int = 100,
        min_sessions: int = 50,
        max_train_sessions: int = 2048,
        refit_every: int = 500,
        idf: bool = False,
        max_vocabulary: int = 1000,
        protect_severity: int = 40,
        random_state: int = 42,
    ) -> None:
        self.n_estimators = n_estimators
        self.min_sessions = min_sessions
        self.max_train_sessions = max_train_sessions
        self.refit_every = refit_every
        self.idf = idf
        self.max_vocabulary = max_vocabulary
        self.protect_severity = protect_severity
        self.random_state = random_state

    # -- training -----------------------------------------------------------------------------

    @property
    def fitted(self) -> bool:
        return hasattr(self, "forest_")

    @staticmethod
    def _row(session: ClosedSession) -> _Row:
        return session.first_template, tuple(sorted(session.counts.items()))

    def _window(self) -> deque[_Row]:
        window: deque[_Row] | None = getattr(self, "window_", None)
        if window is None:
            window = deque(maxlen=self.max_train_sessions)
            self.window_ = window
            self.since_fit_ = 0
        return window

    def fit(self, sessions: Sequence[ClosedSession]) -> SessionModel:
        """Fit on ``sessions`` (the most recent ``max_train_sessions`` of them)."""
        window = self._window()
        window.clear()
        window.extend(self._row(s) for s in sessions)
        return self._fit_window()

    def learn(
        self,
        sessions: Sequence[ClosedSession],
        verdicts: Sequence[SessionVerdict | None] | None = None,
    ) -> bool:
        """Add sessions judged normal to the training window; fit or refit when due (True)."""
        window = self._window()
        for i, session in enumerate(sessions):
            verdict = verdicts[i] if verdicts is not None else None
            if (
                verdict is not None
                and verdict.severity >= self.protect_severity
                and verdict.evident
            ):
                continue  # a flagged session must not teach the model that it is normal
            window.append(self._row(session))
            self.since_fit_ += 1
        due = self.since_fit_ >= self.refit_every if self.fitted else True
        if due and len(window) >= self.min_sessions:
            self._fit_window()
            return True
        return False

    def _fit_window(self, vocabulary: Sequence[int] | None = None) -> SessionModel:
        rows = list(self._window())
        if len(rows) < 2:
            raise ValueError(f"a session model needs at least 2 sessions, got {len(rows)}")
        if vocabulary is None:
            df: Counter[int] = Counter(t for _, counts in rows for t, _ in counts)
            vocabulary = sorted(t for t, _ in df.most_common(self.max_vocabulary))
        self.vocabulary_ = tuple(vocabulary)
        self._column = {t: i for i, t in enumerate(self.vocabulary_)}
        matrix = self._matrix([counts for _, counts in rows])
        self.training_ = matrix
        self.first_templates_ = np.array([first for first, _ in rows], dtype=np.int64)
        present = matrix > 0
        n = len(rows)
        # Smoothed idf (sklearn's): ln((1 + n) / (1 + df)) + 1 is never 0, unlike ln(n / df).
        self.idf_ = np.log((1 + n) / (1 + present.sum(axis=0))) + 1 if self.idf else None
        self.forest_ = IsolationForest(
            n_estimators=self.n_estimators, random_state=self.random_state
        ).fit(self._weighted(matrix))
        self.train_scores_ = np.sort(self._raw(matrix))
        # Expectations for explanations: presence share overall and among sessions that start with
        # the same template (a "read" session need not have a "write" step), and the usual high
        # count of each template where it occurs.
        self.share_ = present.mean(axis=0)
        self.group_share_ = {
            int(g): (int(mask.sum()), present[mask].mean(axis=0))
            for g in np.unique(self.first_templates_)
            for mask in [self.first_templates_ == g]
            if mask.sum() >= MIN_GROUP
        }
        self.usual_high_ = np.array(
            [
                np.percentile(col[col > 0], 99, method="higher") if col.any() else 0.0
                for col in matrix.T
            ]
        )
        self.since_fit_ = 0
        return self

    def _matrix(self, rows: Iterable[Iterable[tuple[int, int]]]) -> NDArray[np.float64]:
        column = self._column
        out = []
        for counts in rows:
            vector = [0.0] * len(column)
            for t, n in counts:
                i = column.get(t)
                if i is not None:
                    vector[i] = float(n)
            out.append(vector)
        return np.array(out, dtype=np.float64).reshape(len(out), len(column))

    def _weighted(self, matrix: NDArray[np.float64]) -> NDArray[np.float64]:
        return matrix * self.idf_ if self.idf_ is not None else matrix

    def _raw(self, matrix: NDArray[np.float64]) -> NDArray[np.float64]:
        # sklearn's score_samples is "the lower, the more abnormal"; we want high = anomalous.
        return np.asarray(-self.forest_.score_samples(self._weighted(matrix)), dtype=np.float64)

    # -- scoring ------------------------------------------------------------------------------

    def score(self, sessions: Sequence[ClosedSession]) -> list[SessionVerdict]:
        """Verdicts for a batch of sessions, scored in one call to the forest."""
        if not self.fitted:
            raise NotFittedError("SessionModel is not fitted yet; call fit or learn first")
        if not sessions:
            return []
        matrix = self._matrix(s.counts.items() for s in sessions)
        scores = self._raw(matrix)
        n = len(self.train_scores_)
        at_least = n - np.searchsorted(self.train_scores_, scores, side="left")
        tails = (at_least + 1) / (n + 1)
        return [
            self._explain(s, float(score), float(tail), matrix[i])
            for i, (s, score, tail) in enumerate(zip(sessions, scores, tails, strict=True))
        ]

    def _explain(
        self, session: ClosedSession, score: float, tail: float, vector: NDArray[np.float64]
    ) -> SessionVerdict:
        group = self.group_share_.get(session.first_template)
        n_like, expected = group if group is not None else (len(self.training_), self.share_)
        n = len(self.training_)
        # Each fact has a tail share of its own: how many training sessions show it. The forest
        # cannot see counts beyond the training range (a split never falls outside it) nor
        # templates outside its vocabulary, so severity takes the rarer of its tail and the facts'.
        tails = [tail]
        missing: list[tuple[int, float]] = []
        for gap in np.flatnonzero((expected >= MISSING_SHARE) & (vector == 0)).tolist():
            share = float(expected[gap])
            missing.append((self.vocabulary_[gap], round(share, 4)))
            tails.append(((1 - share) * n_like + 1) / (n_like + 1))
        unusual: list[tuple[int, float]] = []
        excess: list[tuple[int, int, int]] = []
        for t, count in sorted(session.counts.items()):
            i = self._column.get(t)
            share = float(self.share_[i]) if i is not None else 0.0
            if share < UNUSUAL_SHARE:
                unusual.append((t, round(share, 4)))
                tails.append((share * n + 1) / (n + 1))
            elif i is not None:
                high = int(self.usual_high_[i])
                if count > EXCESS_FACTOR * high and count >= high + EXCESS_MARGIN:
                    excess.append((t, count, high))
                    as_many = int((self.training_[:, i] >= count).sum())
                    tails.append((as_many + 1) / (n + 1))
        tail = min(tails)
        return SessionVerdict(
            session=session,
            score=score,
            tail=tail,
            severity=severity_from_tail(tail),
            missing=tuple(missing),
            unusual=tuple(unusual),
            excess=tuple(excess),
        )

    # -- persistence --------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """JSON-safe state: parameters, vocabulary, training matrix, and the sessions learned
        since the last fit (sparse), so a restart neither loses nor double-counts any."""
        window = list(self._window())
        pending = window[len(window) - self.since_fit_ :] if self.since_fit_ else []
        state: dict[str, Any] = {
            "params": self.get_params(),
            "pending": [[first, [list(c) for c in counts]] for first, counts in pending],
        }
        if self.fitted:
            state["vocabulary"] = list(self.vocabulary_)
            state["first_templates"] = self.first_templates_.tolist()
            state["training"] = self.training_.astype(np.int64).tolist()
        return state

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> SessionModel:
        """Rebuild a model saved by ``to_state``, refitting it on its training matrix."""
        try:
            allowed = set(cls().get_params())
            model = cls(**{k: v for k, v in state["params"].items() if k in allowed})
            window = model._window()
            if "training" in state:
                vocabulary = [int(t) for t in state["vocabulary"]]
                for first, values in zip(state["first_templates"], state["training"], strict=True):
                    # strict: a row longer or shorter than the vocabulary is corrupt state
                    pairs = zip(vocabulary, values, strict=True)
                    counts = tuple((t, int(n)) for t, n in pairs if n)
                    window.append((int(first), counts))
                model._fit_window(vocabulary)
            for first, counts in state.get("pending", []):
                window.append((int(first), tuple((int(t), int(n)) for t, n in counts)))
                model.since_fit_ += 1
        except (KeyError, TypeError, ValueError) as exc:
            raise StateCorruptError(f"stored session model state is unusable: {exc}") from None
        return model
