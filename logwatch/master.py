"""The master model: one vector per time window over all streams, scored against the history.

Some failures show in no single stream: three services each a little worse in the same minute,
or a stream gone quiet in the hour it is usually busiest. Per window and per stream the vector holds
the highest severity, the anomaly count and the volume against the stream's usual volume for that
hour of day; an IsolationForest over the window history says which windows are abnormal across
streams, and robust deviations from the history's median say which streams pushed a window out.

Time is the log's own (epoch seconds), passed in; nothing here reads the clock. One score direction:
higher is more anomalous.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from logwatch.decide import severity_from_tail
from logwatch.detectors import StreamDetector
from logwatch.records import epoch_seconds

# Column kinds of a stream, in this order. Every kind is 0 when a stream has nothing to say (no
# anomaly, usual volume or unknown volume), so padding a row for a stream it predates with zeros is
# exact, not a guess.
SEVERITY = "severity"  # highest anomaly severity in the window, scaled to 0-1
ANOMALIES = "anomalies"  # log1p(anomaly count): ten anomalies are not ten times one
VOLUME = "volume"  # log((events + 1) / (usual + 1)): dips and bursts alike, 0 = as usual
KINDS = (SEVERITY, ANOMALIES, VOLUME)
# Only deviations in the bad direction count towards a stream's contribution: fewer anomalies than
# usual explains nothing, but volume is news both ways (a burst, or silence).
_TWO_SIDED = {SEVERITY: False, ANOMALIES: False, VOLUME: True}
# Smallest robust scale per kind, for columns that never moved in the history (a stream that never
# had an anomaly): one anomaly is then a deviation of about 7, not of infinity.
_SCALE_FLOOR = {SEVERITY: 0.05, ANOMALIES: 0.1, VOLUME: 0.05}
# A stream is named in a verdict once it deviates by at least this many robust units.
CONTRIBUTION_MIN = 1.0
_STATE_VERSION = 1


def _rows(matrix: NDArray[np.float64]) -> Sequence[Sequence[float]]:
    # StreamDetector takes rows through np.asarray, so an array passes as is, without a copy.
    return cast(Sequence[Sequence[float]], matrix)


def log_time(ts: datetime | None, fallback: datetime) -> float:
    """Epoch seconds of an event: its log timestamp when parsed, else ``fallback`` (poll time).

    A log timestamp without a zone is taken as UTC, as everywhere else in logwatch; ``datetime``'s
    own ``timestamp()`` would read it as the host's local time instead.
    """
    seconds = epoch_seconds(ts if ts is not None else fallback)
    assert seconds is not None
    return seconds


def relative_volume(events: int, expected: float | None) -> float:
    """A window's volume against the usual: ``log((events + 1) / (expected + 1))``, 0 = as usual
    or unknown (``expected`` None)."""
    return 0.0 if expected is None else math.log((events + 1.0) / (expected + 1.0))


@dataclass(frozen=True, slots=True)
class StreamWindow:
    """One stream's numbers in one window."""

    stream: str
    events: int
    anomalies: int
    max_severity: int  # 0 when the window had no anomaly in this stream
    expected: float | None  # usual events per window at this hour; None while not yet known
    volume: float  # log((events + 1) / (expected + 1)); 0 while expected is unknown


@dataclass(frozen=True, slots=True)
class WindowVector:
    """All streams' numbers in one window ``[start, end)`` (epoch seconds, log time)."""

    start: float
    end: float
    streams: tuple[StreamWindow, ...]  # sorted by stream; silent known streams appear with 0 events

    def values(self) -> dict[tuple[str, str], float]:
        """Column (stream, kind) -> value, as the master model sees it."""
        out: dict[tuple[str, str], float] = {}
        for s in self.streams:
            out[(s.stream, SEVERITY)] = s.max_severity / 100.0
            out[(s.stream, ANOMALIES)] = math.log1p(s.anomalies)
            out[(s.stream, VOLUME)] = s.volume
        return out


@dataclass(frozen=True, slots=True)
class StreamContribution:
    """How far one stream pushed a window out of the ordinary."""

    stream: str
    contribution: float  # robust deviations from the history's median, summed over its columns
    events: int
    expected: float | None
    anomalies: int
    max_severity: int


@dataclass(frozen=True, slots=True)
class WindowVerdict:
    """The master model's verdict on one window."""

    start: float
    end: float
    score: float  # the forest's score, higher is more anomalous; 0 while not fitted
    deviation: float  # total robust deviation from the history's median (bad direction only)
    tail: float  # share of the history's windows as extreme (the rarer of score and deviation)
    severity: int  # 0-100 from the tail share, comparable with line severities
    streams: tuple[StreamContribution, ...]  # most contributing first; only those that deviate
    fitted: bool  # False while the history is shorter than min_windows


class VolumeBaseline:
    """Usual events per window, per stream and hour of day: an exponentially weighted mean.

    Hours are UTC hours of the log's time. Logs written in another zone only relabel the hours;
    the daily pattern is learned all the same. The weight is set by a half-life in days, so one busy
    Monday does not become the norm. An hour not seen ``min_windows`` times yet (the first day)
    borrows the nearest earlier hour that has been: the recent level is a far better guess for a
    stream with a daily rhythm than its all-day mean, which would make every first-day evening look
    like an outage.
    """

    def __init__(
        self, window_seconds: float = 60.0, half_life_days: float = 7.0, min_windows: int = 3
    ) -> None:
        self.window_seconds = window_seconds
        self.half_life_days = half_life_days
        self.min_windows = min_windows
        # An hour-of-day bucket sees 3600 / window_seconds windows a day.
        per_day = 3600.0 / window_seconds
        self._alpha = 1.0 - 0.5 ** (1.0 / max(half_life_days * per_day, 1.0))
        self._means: dict[tuple[str, int], tuple[float, int]] = {}  # (stream, hour) -> (mean, n)

    @staticmethod
    def _hour(start: float) -> int:
        return int(start // 3600.0) % 24

    def expected(self, stream: str, start: float) -> float | None:
        """Usual events per window for ``stream`` in the hour of ``start``; None when unknown."""
        hour = self._hour(start)
        for back in range(24):
            hit = self._means.get((stream, (hour - back) % 24))
            if hit is not None and hit[1] >= self.min_windows:
                return hit[0]
        return None

    def update(self, stream: str, start: float, events: int) -> None:
        key = (stream, self._hour(start))
        mean, n = self._means.get(key, (0.0, 0))
        n += 1
        # A plain running mean until the history is long enough for the decay to matter.
        weight = max(self._alpha, 1.0 / n)
        self._means[key] = (mean + weight * (events - mean), n)

    def to_state(self) -> dict[str, Any]:
        return {
            "params": {
                "window_seconds": self.window_seconds,
                "half_life_days": self.half_life_days,
                "min_windows": self.min_windows,
            },
            "means": [[s, h, m, n] for (s, h), (m, n) in sorted(self._means.items())],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> VolumeBaseline:
        p = state["params"]
        out = cls(float(p["window_seconds"]), float(p["half_life_days"]), int(p["min_windows"]))
        for s, h, m, n in state["means"]:
            out._means[(str(s), int(h))] = (float(m), int(n))
        return out


class WindowAggregator:
    """Counts events and anomalies per (window, stream) and hands out closed windows as vectors.

    ``add`` takes events as they come, slightly out of order across streams; ``closed(watermark)``
    emits the windows that ended at least one window before ``watermark`` (one window of grace for
    stragglers); ``flush()`` emits the rest (end of ``--once``). Emitted windows are forgotten, so
    memory holds only the open windows. An event for a window already emitted is counted in
    ``late_events`` and otherwise dropped: its window has been scored.

    Streams seen recently appear in every window, with 0 events when silent, so a stream quiet in
    its busy hour shows up as a deep volume dip. A stream silent for ``forget_after_seconds`` is
    taken as gone (decommissioned, or an archive that ends) and no longer padded until it logs
    again.
    """

    def __init__(
        self,
        window_seconds: float = 60.0,
        *,
        forget_after_seconds: float = 6 * 3600.0,
        baseline: VolumeBaseline | None = None,
        max_open_windows: int = 10_000,
    ) -> None:
        if not math.isfinite(window_seconds) or window_seconds <= 0:
            raise ValueError(f"window_seconds = {window_seconds!r} must be greater than 0")
        self.window_seconds = window_seconds
        self.forget_after_seconds = forget_after_seconds
        self.baseline = baseline if baseline is not None else VolumeBaseline(window_seconds)
        self.max_open_windows = max_open_windows
        self.late_events = 0
        # window index -> stream -> [events, anomalies, max severity]
        self._open: dict[int, dict[str, list[int]]] = {}
        self._next: int | None = None  # index of the oldest window not yet emitted
        self._last_active: dict[str, int] = {}  # stream -> index of its last window with events

    def add(self, stream: str, at: float, events: int = 1, severity: int | None = None) -> None:
        """Count ``events`` of ``stream`` at log time ``at``; ``severity`` not None counts one
        anomaly of that severity (pass ``events=0`` to count an anomaly without volume)."""
        k = math.floor(at / self.window_seconds)
        if self._next is not None and k < self._next:
            self.late_events += max(events, 1)
            return
        cell = self._open.setdefault(k, {}).setdefault(stream, [0, 0, 0])
        cell[0] += events
        if severity is not None:
            cell[1] += 1
            cell[2] = max(cell[2], severity)

    def closed(self, watermark: float) -> list[WindowVector]:
        """Windows that ended at least one window before ``watermark``, oldest first."""
        cutoff = math.floor(watermark / self.window_seconds) - 1
        if len(self._open) > self.max_open_windows:
            # Timestamps far ahead of the watermark must not hold memory forever.
            cutoff = max(cutoff, sorted(self._open)[len(self._open) - self.max_open_windows])
        return self._emit_before(cutoff)

    def flush(self) -> list[WindowVector]:
        """Every open window, oldest first (end of a ``--once`` run)."""
        if not self._open:
            return []
        return self._emit_before(max(self._open) + 1)

    def _emit_before(self, cutoff: int) -> list[WindowVector]:
        out: list[WindowVector] = []
        forget = max(1, math.ceil(self.forget_after_seconds / self.window_seconds))
        k = self._next if self._next is not None else min(self._open, default=cutoff)
        while k < cutoff:
            padded = [s for s, last in self._last_active.items() if k - last <= forget]
            if k not in self._open and not padded:
                # Nothing open here and nobody left to miss: jump to the next open window.
                k = min((i for i in self._open if i > k), default=cutoff)
                continue
            vector = self._vector(k, self._open.pop(k, {}), padded)
            if vector.streams:
                out.append(vector)
            k += 1
        self._next = max(k, self._next if self._next is not None else k)
        return out

    def _vector(self, k: int, cells: dict[str, list[int]], padded: list[str]) -> WindowVector:
        start = k * self.window_seconds
        rows: list[StreamWindow] = []
        for stream in sorted(set(cells) | set(padded)):
            events, anomalies, max_severity = cells.get(stream, (0, 0, 0))
            # Compare with the baseline as it was before this window, then learn from it.
            expected = self.baseline.expected(stream, start)
            volume = relative_volume(events, expected)
            self.baseline.update(stream, start, events)
            if events > 0 or anomalies > 0:
                self._last_active[stream] = k
            rows.append(StreamWindow(stream, events, anomalies, max_severity, expected, volume))
        return WindowVector(start, start + self.window_seconds, tuple(rows))

    def to_state(self) -> dict[str, Any]:
        """The baseline and where emission stands. Open windows are not kept: after a restart their
        few minutes are counted again from the lines read then."""
        return {
            "window_seconds": self.window_seconds,
            "forget_after_seconds": self.forget_after_seconds,
            "next": self._next,
            "last_active": sorted(self._last_active.items()),
            "baseline": self.baseline.to_state(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> WindowAggregator:
        out = cls(
            float(state["window_seconds"]),
            forget_after_seconds=float(state["forget_after_seconds"]),
            baseline=VolumeBaseline.from_state(state["baseline"]),
        )
        out._next = None if state["next"] is None else int(state["next"])
        out._last_active = {str(s): int(k) for s, k in state["last_active"]}
        return out


class MasterModel:
    """IsolationForest over the history of window vectors, one column per (stream, kind).

    Streams appear over time, so the column set grows; a window is scored on the columns the model
    was fitted with and the next refit takes the new ones in. The model is refitted every
    ``refit_every`` windows (and when new columns appeared) on the newest ``history`` windows.
    Until ``min_windows`` windows are known, verdicts say ``fitted=False`` with severity 0. When the
    model is fitted for the first time the batch being scored is part of its history, so the single
    batch of a ``--once`` run is scored against all of its windows.

    Flagged windows do enter the history: an IsolationForest tolerates a few outliers, and a change
    that lasts (a new service, a permanent traffic shift) should become normal in time.

    Persisted as parameters plus history and refitted on load (seeded, so scores are identical);
    nothing read back executes code.

    Examples
    --------
    >>> model = MasterModel(random_state=0, min_windows=2)
    >>> v = WindowVector(0.0, 60.0, (StreamWindow("a", 10, 0, 0, 10.0, 0.0),))
    >>> [r.fitted for r in model.score([v, v, v])]
    [True, True, True]
    """

    def __init__(
        self,
        random_state: int = 42,
        min_windows: int = 30,
        history: int = 10_000,
        n_estimators: int = 100,
        refit_every: int = 60,
    ) -> None:
        if min_windows < 2 or history < min_windows or refit_every < 1:
            raise ValueError(
                f"need 2 <= min_windows <= history and refit_every >= 1, got min_windows="
                f"{min_windows}, history={history}, refit_every={refit_every}"
            )
        self.random_state = random_state
        self.min_windows = min_windows
        self.history = history
        self.n_estimators = n_estimators
        self.refit_every = refit_every
        self._columns: list[tuple[str, str]] = []  # append-only between refits
        self._index: dict[tuple[str, str], int] = {}
        # Rows hold values for a prefix of the columns (those known when the row was made); the
        # first ``_fit_rows`` of them are exactly what the current model was fitted on.
        self._rows: list[NDArray[np.float64]] = []
        self._fit_rows = 0
        self._fit_columns = 0

    @property
    def fitted(self) -> bool:
        return hasattr(self, "detector_")

    @property
    def n_windows(self) -> int:
        return len(self._rows)

    def score(self, vectors: Sequence[WindowVector]) -> list[WindowVerdict]:
        """One verdict per vector, in order; then the vectors join the history."""
        rows = [self._row(v) for v in vectors]
        if not self.fitted:
            self._rows.extend(rows)
            if len(self._rows) >= self.min_windows:
                self._refit()
                # The refit drops all-zero columns (a stream that never had an anomaly), which
                # shifts the columns after them: rebuild the rows in the fitted column order.
                rows = [self._row(v) for v in vectors]
            return self._verdicts(vectors, rows)
        verdicts = self._verdicts(vectors, rows)
        self._rows.extend(rows)
        # A stream the model has not seen with anything to say gets its columns at once; columns
        # that are still all zero (a new stream before its baseline is known) wait for the
        # periodic refit, which would prune them anyway.
        grown = any(np.any(row[self._fit_columns :] != 0.0) for row in rows)
        if grown or len(self._rows) - self._fit_rows >= self.refit_every:
            self._refit()
        return verdicts

    def _row(self, vector: WindowVector) -> NDArray[np.float64]:
        values = vector.values()
        for col in values:
            if col not in self._index:
                self._index[col] = len(self._columns)
                self._columns.append(col)
        row = np.zeros(len(self._columns), dtype=np.float64)
        for col, value in values.items():
            row[self._index[col]] = value
        return row

    def _matrix(self, rows: Sequence[NDArray[np.float64]], width: int) -> NDArray[np.float64]:
        out = np.zeros((len(rows), width), dtype=np.float64)
        for i, row in enumerate(rows):
            n = min(width, len(row))
            out[i, :n] = row[:n]
        return out

    def _refit(self) -> None:
        rows = self._rows[-self.history :]
        matrix = self._matrix(rows, len(self._columns))
        # Columns all zero over the whole history (a stream gone for good, a daily file name that
        # never comes back) carry no information and would otherwise grow the model forever.
        keep = np.flatnonzero(np.any(matrix != 0.0, axis=0))
        if len(keep) == 0:
            keep = np.arange(min(1, matrix.shape[1]))
        if len(keep) < matrix.shape[1]:
            matrix = np.ascontiguousarray(matrix[:, keep])
            self._columns = [self._columns[i] for i in keep]
            self._index = {c: i for i, c in enumerate(self._columns)}
        self._fit(matrix)
        self._rows = list(matrix)

    def _fit(self, matrix: NDArray[np.float64]) -> None:
        if matrix.shape[1] == 0:  # every window so far was empty: one constant column will do
            matrix = np.zeros((matrix.shape[0], 1), dtype=np.float64)
            self._columns, self._index = [("", VOLUME)], {("", VOLUME): 0}
        names = [f"{s}:{k}" for s, k in self._columns[: matrix.shape[1]]]
        self.detector_ = StreamDetector(
            n_estimators=self.n_estimators, random_state=self.random_state
        ).fit(_rows(matrix), names)
        self.median_ = np.median(matrix, axis=0)
        mad = 1.4826 * np.median(np.abs(matrix - self.median_), axis=0)
        # Where more than half the windows sit on the median (a stream that rarely has anomalies)
        # MAD is 0; the mean absolute deviation (scaled to a normal's sigma) still sees spread.
        mean_ad = 1.2533 * np.mean(np.abs(matrix - self.median_), axis=0)
        floor = np.array([_SCALE_FLOOR[k] for _, k in self._columns[: matrix.shape[1]]])
        self.scale_ = np.maximum(np.where(mad > 0, mad, mean_ad), floor)
        self.train_deviation_ = np.sort(self._deviations(matrix).sum(axis=1))
        self._fit_rows = matrix.shape[0]
        self._fit_columns = matrix.shape[1]

    def _deviations(self, matrix: NDArray[np.float64]) -> NDArray[np.float64]:
        """Robust deviations from the history's median per window and column, bad direction only."""
        z = (matrix - self.median_) / self.scale_
        two_sided = np.array([_TWO_SIDED[k] for _, k in self._columns[: matrix.shape[1]]])
        return np.asarray(np.where(two_sided, np.abs(z), np.maximum(z, 0.0)), dtype=np.float64)

    def _tails(self, scores: NDArray[np.float64], z: NDArray[np.float64]) -> NDArray[np.float64]:
        # An IsolationForest only splits within the range it was fitted on, so a value far beyond
        # it (a busy stream at 0 events, when the history never saw silence) isolates no faster
        # than the most extreme ordinary window. The windows' total robust deviation sees how far;
        # the verdict takes the rarer of the two tails, doubled because it had two chances.
        by_forest = self.detector_.tail(scores)
        n = len(self.train_deviation_)
        at_least = n - np.searchsorted(self.train_deviation_, z.sum(axis=1), side="left")
        by_deviation = (at_least + 1) / (n + 1)
        return np.asarray(np.minimum(1.0, 2.0 * np.minimum(by_forest, by_deviation)))

    def _verdicts(
        self, vectors: Sequence[WindowVector], rows: Sequence[NDArray[np.float64]]
    ) -> list[WindowVerdict]:
        if not vectors:
            return []
        if not self.fitted:
            return [WindowVerdict(v.start, v.end, 0.0, 0.0, 1.0, 0, (), False) for v in vectors]
        matrix = self._matrix(rows, self._fit_columns)
        scores = self.detector_.score(_rows(matrix))
        z = self._deviations(matrix)
        tails = self._tails(scores, z)
        # Sum each stream's columns: z (windows x columns) times a columns x streams indicator.
        names = sorted({s for s, _ in self._columns[: self._fit_columns]})
        at = {s: i for i, s in enumerate(names)}
        member = np.zeros((self._fit_columns, len(names)))
        for j, (stream, _) in enumerate(self._columns[: self._fit_columns]):
            member[j, at[stream]] = 1.0
        per_stream = z @ member
        out: list[WindowVerdict] = []
        for i, vector in enumerate(vectors):
            by_stream = {s: float(per_stream[i, at[s]]) for s in names}
            ranked = sorted(
                (
                    StreamContribution(
                        s.stream,
                        round(by_stream[s.stream], 3),
                        s.events,
                        s.expected,
                        s.anomalies,
                        s.max_severity,
                    )
                    for s in vector.streams
                    if by_stream.get(s.stream, 0.0) >= CONTRIBUTION_MIN
                ),
                key=lambda c: (-c.contribution, c.stream),
            )
            tail = float(tails[i])
            out.append(
                WindowVerdict(
                    vector.start,
                    vector.end,
                    round(float(scores[i]), 6),
                    round(float(z[i].sum()), 3),
                    tail,
                    severity_from_tail(tail),
                    tuple(ranked),
                    True,
                )
            )
        return out

    def to_state(self) -> dict[str, Any]:
        """JSON-safe: parameters, columns and the window history (rows as plain lists)."""
        return {
            "version": _STATE_VERSION,
            "params": {
                "random_state": self.random_state,
                "min_windows": self.min_windows,
                "history": self.history,
                "n_estimators": self.n_estimators,
                "refit_every": self.refit_every,
            },
            "columns": [list(c) for c in self._columns],
            "rows": [row.tolist() for row in self._rows],
            "fit_rows": self._fit_rows if self.fitted else 0,
            "fit_columns": self._fit_columns if self.fitted else 0,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> MasterModel:
        """Rebuild from ``to_state()``, refitting on exactly the rows and columns it had."""
        version = state.get("version")
        if version != _STATE_VERSION:
            raise ValueError(f"master model state version {version!r} is not supported")
        p = state["params"]
        model = cls(
            random_state=int(p["random_state"]),
            min_windows=int(p["min_windows"]),
            history=int(p["history"]),
            n_estimators=int(p["n_estimators"]),
            refit_every=int(p["refit_every"]),
        )
        model._columns = [(str(s), str(k)) for s, k in state["columns"]]
        if any(k not in KINDS for _, k in model._columns):
            raise ValueError("master model state has a column of unknown kind")
        model._index = {c: i for i, c in enumerate(model._columns)}
        model._rows = [np.asarray(r, dtype=np.float64) for r in state["rows"]]
        fit_rows, fit_columns = int(state["fit_rows"]), int(state["fit_columns"])
        if fit_rows:
            model._fit(model._matrix(model._rows[:fit_rows], fit_columns))
        return model
