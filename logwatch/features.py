"""Pure feature computation: stream statistics in, name-keyed feature vectors out.

``StreamStats`` is the bounded, incrementally updated summary of one stream (template counts, level
counts, per-slot value histograms). It holds no file or database handle; the pipeline persists it.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from logwatch.records import EventSketch, Features, NumericOutlier, RareSlot

FEATURE_NAMES: tuple[str, ...] = (
    "template_rarity",
    "level_rarity",
    "slot_rarity",
    "slot_length",
    "novelty",
    "trouble",
    "numeric_range",
    "gap",
)

# Only levels that signal trouble add rarity: a rare DEBUG line is not news.
LEVEL_WEIGHT = {"WARN": 0.5, "ERROR": 1.0, "CRITICAL": 1.0, "FATAL": 1.0}

# Words that mean something went wrong, in any log format. On their own they prove nothing (many
# streams log "failed" all day); with a template that is rare in its stream they are evidence.
TROUBLE_WORDS = re.compile(
    r"(?i)\b(?:fail(?:s|ed|ure|ing)?|errors?|exceptions?|fatal|panic|denied|refused|invalid|"
    r"timed?[ -]?out|timeout|unreachable|corrupt(?:ed|ion)?|killed|segfault|abort(?:ed)?|"
    r"critical|unauthori[sz]ed|forbidden|not available|unavailable|overflow|out of memory|"
    r"outofmemory\w*|traceback|crash(?:ed)?|violation|attack|malicious)\b"
)

# A slot that has held more distinct values than this is an identifier (ids, ports, durations);
# its histogram is dropped. This is also what bounds memory per slot.
MAX_SLOT_VALUES = 32
# Below this many observations a slot's statistics say nothing yet.
MIN_SLOT_OBSERVATIONS = 20
MAX_SLOT_VALUE_CHARS = 120
# A template is rare in its stream up to this share of its events (and at least 2 events).
RARE_TEMPLATE_SHARE = 0.002
# A value is rare in its slot under this share; a slot is "categorical" (new values there are
# news) while its other rare values together stay under it too (Good-Turing: the mass of values
# seen rarely estimates the chance of seeing a new one).
RARE_SHARE = 0.01
# JSON fields tracked per stream (beyond this, new field names are ignored: bounded memory).
MAX_FIELDS = 64
# Numeric slots: judged in orders of magnitude (log10(1 + |x|)), once this many numbers were seen
# and nearly all of the slot's values were numbers. The spread has a floor of half a decade, so
# ids, ports and pids, whose values wander over a decade or two, are not "out of range".
MIN_NUMERIC_OBSERVATIONS = 50
NUMERIC_SPREAD_FLOOR = 0.5
NUMERIC_SHARE = 0.95
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
# Template rarity forgets: a template's weight halves every this many events of its stream, so a
# template that was common last month and is back after a long absence counts as rare again.
RARITY_HALF_LIFE_EVENTS = 100_000
_DECAY = 0.5 ** (1.0 / RARITY_HALF_LIFE_EVENTS)
_RESCALE_AT = 1e150
# Gaps between events are judged in log10(1 + seconds); floor of the spread in decades.
GAP_SPREAD_FLOOR = 0.3
# Spreads within which a number or a gap is ordinary (feature value 0).
NUMERIC_Z_QUIET = 4.0
GAP_Z_QUIET = 3.0


def _log_magnitude(value: float) -> float:
    return math.log10(1.0 + abs(value))


@dataclass
class Welford:
    """Running mean and variance (Welford's method): O(1) memory for any number of values."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, x: float) -> None:
        self.n += 1
        delta = x - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (x - self.mean)

    def std(self) -> float:
        return math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else 0.0

    def to_json(self) -> list[float]:
        return [self.n, self.mean, self.m2]

    @classmethod
    def from_json(cls, data: Any) -> Welford:
        if isinstance(data, list) and len(data) == 3:
            return cls(int(data[0]), float(data[1]), float(data[2]))
        return cls()


def has_trouble_words(text: str) -> bool:
    return TROUBLE_WORDS.search(text) is not None


@dataclass
class SlotStats:
    """One variable position of one template: a value histogram (None once high-cardinality) and
    the running mean/variance of its values' lengths (Welford)."""

    hist: dict[str, int] | None = field(default_factory=dict)
    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    numbers: Welford = field(default_factory=Welford)  # log magnitudes of numeric values
    non_numeric: int = 0
    # Derived from the fields above, computed when first asked for and dropped by ``observe``:
    # (length spread, values counted, count of rare values, usual values or None).
    _memo: list[Any] | None = field(default=None, init=False, repr=False, compare=False)

    def observe(self, value: str, count: int) -> None:
        self._memo = None
        hist = self.hist
        if hist is not None:
            key = value[:MAX_SLOT_VALUE_CHARS]
            hist[key] = hist.get(key, 0) + count
            if len(hist) > MAX_SLOT_VALUES:
                self.hist = None
        size = len(value)
        length = float(size)
        first = value[:1]
        # (the first-character test only spares the regex: it is the regex's own first step)
        number = (
            size < 30
            and (first == "-" or first.isdecimal())
            and _NUMBER.fullmatch(value) is not None
        )
        magnitude = _log_magnitude(float(value)) if number else 0.0
        if count == 1:  # the loop below, once
            n = self.n = self.n + 1
            delta = length - self.mean
            mean = self.mean = self.mean + delta / n
            self.m2 += delta * (length - mean)
            if number:
                self.numbers.add(magnitude)
            else:
                self.non_numeric += 1
            return
        for _ in range(min(count, 3)):  # duplicates add nothing new to a length distribution
            self.n += 1
            delta = length - self.mean
            self.mean += delta / self.n
            self.m2 += delta * (length - self.mean)
            if number:
                self.numbers.add(magnitude)
            else:
                self.non_numeric += 1

    def _summary(self) -> list[Any]:
        memo = self._memo
        if memo is None:
            std = math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else 0.0
            hist = self.hist
            total = sum(hist.values()) if hist else 0
            rare = sum(c for c in hist.values() if c / total < RARE_SHARE) if hist else 0
            memo = self._memo = [max(std, 1.0, 0.1 * self.mean), total, rare, None]
        return memo

    def numeric_z(self, value: str) -> tuple[float, float, float]:
        """(z, low, high): how many spreads ``value`` lies from the slot's usual magnitude, and
        the usual range in the value's own units; z is 0 when the slot is not numeric (yet)."""
        numbers = self.numbers
        if (
            numbers.n < MIN_NUMERIC_OBSERVATIONS
            or self.non_numeric > (1.0 - NUMERIC_SHARE) * (numbers.n + self.non_numeric)
            or _NUMBER.fullmatch(value) is None
            or len(value) >= 30
        ):
            return 0.0, 0.0, 0.0
        spread = max(numbers.std(), NUMERIC_SPREAD_FLOOR)
        z = abs(_log_magnitude(float(value)) - numbers.mean) / spread
        low = max(0.0, 10 ** (numbers.mean - 2 * numbers.std()) - 1)
        high = 10 ** (numbers.mean + 2 * numbers.std()) - 1
        return z, low, high

    def length_z(self, value: str) -> float:
        if self.n < MIN_SLOT_OBSERVATIONS:
            return 0.0
        spread: float = (self._memo or self._summary())[0]
        return abs(len(value) - self.mean) / spread

    def copy(self) -> SlotStats:
        return SlotStats(
            dict(self.hist) if self.hist is not None else None,
            self.n,
            self.mean,
            self.m2,
            Welford(self.numbers.n, self.numbers.mean, self.numbers.m2),
            self.non_numeric,
        )

    def rare_value(self, value: str) -> tuple[int, int, tuple[str, ...]] | None:
        """(count, slot total, usual values) when ``value`` is rare in a slot where rare values
        are themselves rare; None otherwise."""
        hist = self.hist
        if not hist:
            return None
        memo = self._memo or self._summary()
        slot_total: int = memo[1]
        if slot_total < MIN_SLOT_OBSERVATIONS:
            return None
        count = max(hist.get(value[:MAX_SLOT_VALUE_CHARS], 1), 1)
        if count / slot_total >= RARE_SHARE:
            return None
        rare_mass = memo[2] - count
        if rare_mass / slot_total >= RARE_SHARE:
            return None  # this slot sees rare values all the time: one more is not news
        usual: tuple[str, ...] | None = memo[3]
        if usual is None:
            usual = memo[3] = tuple(v for v, _ in sorted(hist.items(), key=lambda kv: -kv[1])[:3])
        return count, slot_total, usual

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "n": self.n,
            "mu": self.mean,
            "m2": self.m2,
            "num": self.numbers.to_json(),
            "nx": self.non_numeric,
        }
        # A dropped histogram is left out rather than written as null (read back the same): a
        # JSON value without a null is written by the fast encoder (storage.json_text).
        if self.hist is not None:
            out["v"] = self.hist
        return out

    @classmethod
    def from_json(cls, data: Any) -> SlotStats:
        if not isinstance(data, dict):
            return cls()
        hist = data.get("v")
        return cls(
            {str(k): int(v) for k, v in hist.items()} if isinstance(hist, dict) else None,
            int(data.get("n", 0)),
            float(data.get("mu", 0.0)),
            float(data.get("m2", 0.0)),
            Welford.from_json(data.get("num")),
            int(data.get("nx", 0)),
        )


@dataclass
class StreamStats:
    """Counts for one stream; ``slots[template_id][position]`` describes one variable position."""

    events_total: int = 0
    level_counts: Counter[str] = field(default_factory=Counter)
    template_counts: dict[int, int] = field(default_factory=dict)
    slots: dict[int, dict[int, SlotStats]] = field(default_factory=dict)
    fields: dict[str, SlotStats] = field(default_factory=dict)  # JSON attributes, stream-wide
    trouble_events: int = 0  # events whose template has a failure word
    # Decayed template counts. Instead of multiplying every count by the decay factor at each
    # event (O(templates)), each new event adds a weight that grows by 1/decay: ratios between
    # weights are what decayed counts would give. Rescaled (rarely) before floats overflow.
    weights: dict[int, float] = field(default_factory=dict)
    weight_total: float = 0.0
    weight_step: float = 1.0
    last_ts: float | None = None  # latest log time seen (epoch seconds)
    gaps: Welford = field(default_factory=Welford)  # log10(1 + seconds) between events

    def __post_init__(self) -> None:
        if not self.weights and self.template_counts:
            self.weights = {t: float(c) for t, c in self.template_counts.items()}
            self.weight_total = float(sum(self.template_counts.values()))

    def gap_before(self, ts: float | None) -> float | None:
        """Seconds from the stream's latest event to one at ``ts`` (None without log times)."""
        if ts is None or self.last_ts is None:
            return None
        return max(0.0, ts - self.last_ts)

    def observe(self, sketch: EventSketch, count: int = 1, ts: float | None = None) -> None:
        self.events_total += count
        if sketch.trouble:
            self.trouble_events += count
        self.level_counts[sketch.level or "NONE"] += count
        tid = sketch.template_id
        counts = self.template_counts
        counts[tid] = counts.get(tid, 0) + count
        # _DECAY**1 is _DECAY exactly: the same division, without the power.
        step = self.weight_step = self.weight_step / (_DECAY if count == 1 else _DECAY**count)
        added = step * count
        weights = self.weights
        weights[tid] = weights.get(tid, 0.0) + added
        self.weight_total += added
        if step > _RESCALE_AT:
            scale = step
            self.weights = {t: w / scale for t, w in weights.items()}
            self.weight_total /= scale
            self.weight_step = 1.0
        if sketch.gap is not None:
            self.gaps.add(_log_magnitude(sketch.gap))
        if ts is not None and (self.last_ts is None or ts > self.last_ts):
            self.last_ts = ts
        for name, value in sketch.fields:
            stats = self.fields.get(name)
            if stats is None:
                if len(self.fields) >= MAX_FIELDS:
                    continue
                stats = self.fields[name] = SlotStats()
            stats.observe(value, count)
        if not sketch.positions or not sketch.values:
            return
        per_template = self.slots.get(tid)
        if per_template is None:
            per_template = self.slots[tid] = {}
        for position, value in zip(sketch.positions, sketch.values, strict=False):
            slot = per_template.get(position)
            if slot is None:
                slot = per_template[position] = SlotStats()
            slot.observe(value, count)

    def decayed_share(self, template_id: int) -> float:
        """The template's share of the stream's recent events (counts with decay)."""
        return self.weights.get(template_id, 0.0) / self.weight_total if self.weight_total else 0.0

    def copy(self) -> StreamStats:
        return StreamStats(
            self.events_total,
            Counter(self.level_counts),
            dict(self.template_counts),
            {t: {p: v.copy() for p, v in per.items()} for t, per in self.slots.items()},
            {name: v.copy() for name, v in self.fields.items()},
            self.trouble_events,
            dict(self.weights),
            self.weight_total,
            self.weight_step,
            self.last_ts,
            Welford(self.gaps.n, self.gaps.mean, self.gaps.m2),
        )

    def rare_cut(self) -> int:
        """Up to this many events, a template is rare in this stream."""
        return max(2, int(RARE_TEMPLATE_SHARE * self.events_total))

    def rare_template_share(self) -> float:
        """Share of events whose template is rare (Good-Turing, generalised from singletons: how
        likely the next event is to have a template seen never or hardly ever before)."""
        cut = self.rare_cut()
        return sum(c for c in self.template_counts.values() if c <= cut) / max(self.events_total, 1)

    def fields_json(self) -> dict[str, Any]:
        return {name: v.to_json() for name, v in self.fields.items()}

    def slots_json(self, template_id: int) -> dict[str, Any]:
        """The persisted form of a template's slot statistics (JSON object keys are strings)."""
        out: dict[str, Any] = {
            str(p): v.to_json() for p, v in self.slots.get(template_id, {}).items()
        }
        # The template's decayed count rides along (key "w": not a position).
        out["w"] = self.weights.get(template_id, 0.0) / self.weight_step
        return out

    @classmethod
    def restore(
        cls,
        events_total: int,
        level_counts: Mapping[str, int],
        template_counts: Mapping[int, int],
        slots: Mapping[int, Mapping[str, Any]],
        fields: Mapping[str, Any],
        trouble_events: int = 0,
    ) -> StreamStats:
        restored = {
            tid: {int(p): SlotStats.from_json(v) for p, v in per.items() if p.isdigit()}
            for tid, per in slots.items()
        }
        weights = {tid: float(per["w"]) for tid, per in slots.items() if "w" in per}
        for tid, count in template_counts.items():
            weights.setdefault(tid, float(count))  # stored before decay existed
        return cls(
            events_total,
            Counter({str(k): int(v) for k, v in level_counts.items()}),
            dict(template_counts),
            restored,
            {str(k): SlotStats.from_json(v) for k, v in fields.items()},
            trouble_events,
            weights,
            sum(weights.values()),
        )


class FeatureContext:
    """What ``event_features`` takes from a stream's statistics that is the same for every event
    scored against them: computed once (per batch), valid while ``stats`` do not change."""

    def __init__(self, stats: StreamStats, rare_template_share: float | None = None) -> None:
        self.stats = stats
        self.total = total = max(stats.events_total, 1)
        top_level, top_count = (stats.level_counts.most_common(1) or [("NONE", 0)])[0]
        self.top_level = None if top_level == "NONE" else top_level
        self.top_share = top_count / total
        self.rare_share = (
            stats.rare_template_share() if rare_template_share is None else rare_template_share
        )
        self.rare_cut = stats.rare_cut()
        self.trouble_share = stats.trouble_events / total
        gaps = stats.gaps
        self.gaps_known = gaps.n >= MIN_SLOT_OBSERVATIONS
        self.gap_mean = gaps.mean
        self.gap_spread = max(gaps.std(), GAP_SPREAD_FLOOR) if self.gaps_known else 1.0
        self.usual_gap = 10**gaps.mean - 1 if self.gaps_known else None
        # level -> (its count, its rarity); template id -> (its size, its rarity)
        self.levels: dict[str | None, tuple[int, float]] = {}
        self.templates: dict[int, tuple[int, float]] = {}

    def level(self, level: str | None) -> tuple[int, float]:
        known = self.levels.get(level)
        if known is None:
            count = max(self.stats.level_counts.get(level or "NONE", 1), 1)
            rarity = LEVEL_WEIGHT.get(level or "", 0.0) * math.log10(self.total / count)
            known = self.levels[level] = (count, rarity)
        return known

    def template(self, template_id: int) -> tuple[int, float]:
        known = self.templates.get(template_id)
        if known is None:
            stats = self.stats
            size = max(stats.template_counts.get(template_id, 1), 1)
            share = stats.decayed_share(template_id) or size / self.total
            # Rounded: decayed weights restored from the database differ in the last bits.
            known = self.templates[template_id] = (size, round(-math.log10(max(share, 1e-12)), 9))
        return known


def event_features(
    sketch: EventSketch,
    stats: StreamStats,
    *,
    novelty: float = 0.0,
    nearest: str | None = None,
    rare_template_share: float | None = None,
    nearest_id: int | None = None,
    context: FeatureContext | None = None,
) -> Features:
    """The feature vector of one event against ``stats`` (which already include the event).

    ``context``: ``FeatureContext(stats)``, when many events are scored against the same stats."""
    if context is None:
        context = FeatureContext(stats, rare_template_share)
    total = context.total
    size, template_rarity = context.template(sketch.template_id)
    level = sketch.level
    level_count, level_rarity = context.level(level)
    rare, longest, numeric = _slot_evidence(sketch, stats)
    slot_rarity = math.log10(rare.slot_total / rare.count) if rare is not None else 0.0
    gap_z, usual_gap = 0.0, None
    if sketch.gap is not None and context.gaps_known:
        gap_z = (_log_magnitude(sketch.gap) - context.gap_mean) / context.gap_spread
        usual_gap = context.usual_gap
    values = {
        "template_rarity": template_rarity,
        "level_rarity": level_rarity,
        "slot_rarity": slot_rarity,
        "slot_length": min(longest[0], 20.0),
        "novelty": novelty,
        "trouble": 1.0 if sketch.trouble else 0.0,
        # Both count only beyond a few spreads: below that, numbers and gaps wander on every
        # line, and a column that is noisy on normal events dilutes the forest's other columns.
        "numeric_range": min(max(numeric.z - NUMERIC_Z_QUIET, 0.0), 20.0) if numeric else 0.0,
        # Only a gap longer than usual is a feature: bursts are what logs do.
        "gap": min(max(gap_z - GAP_Z_QUIET, 0.0), 20.0),
    }
    return Features(
        values,
        size,
        total,
        level,
        level_count / total,
        context.top_level,
        context.top_share,
        rare,
        nearest,
        novelty,
        longest[1],
        sketch.position,
        context.rare_share if rare_template_share is None else rare_template_share,
        context.rare_cut,
        context.trouble_share,
        numeric,
        sketch.gap,
        usual_gap,
        nearest_id,
    )


def _slot_evidence(
    sketch: EventSketch,
    stats: StreamStats,
) -> tuple[RareSlot | None, tuple[float, str | None], NumericOutlier | None]:
    """The rarest value in a categorical slot, and the value whose length is furthest out.

    JSON events are judged on their fields, stream-wide (``httpStatus`` means the same in every
    template); other events on their template's variable positions."""
    best: RareSlot | None = None
    longest_z, longest_value = 0.0, None
    numeric: NumericOutlier | None = None
    fields = sketch.fields
    for name, value in fields:
        field_stats = stats.fields.get(name)
        if field_stats is None:
            continue
        z, low, high = field_stats.numeric_z(value)
        if z > 0 and (numeric is None or z > numeric.z):
            numeric = NumericOutlier(-1, value, z, low, high, name)
        found = field_stats.rare_value(value)
        if found is not None and (
            best is None or found[0] / found[1] < best.count / best.slot_total
        ):
            best = RareSlot(-1, value, found[0], found[1], found[2], name)
    if not sketch.positions or not sketch.values:
        return best, (longest_z, longest_value), numeric
    per_template = stats.slots.get(sketch.template_id)
    if not per_template:
        return best, (longest_z, longest_value), numeric
    for position, value in zip(sketch.positions, sketch.values, strict=False):
        slot = per_template.get(position)
        if slot is None:
            continue
        z = slot.length_z(value)
        if z > longest_z:
            longest_z, longest_value = z, value
        if slot.numbers.n >= MIN_NUMERIC_OBSERVATIONS:  # numeric_z is 0 below: not called
            z, low, high = slot.numeric_z(value)
            if z > 0 and (numeric is None or z > numeric.z):
                numeric = NumericOutlier(position, value, z, low, high, None)
        if fields or not slot.hist:  # rare_value is None without a histogram
            continue
        found = slot.rare_value(value)
        if found is not None and (
            best is None or found[0] / found[1] < best.count / best.slot_total
        ):
            best = RareSlot(position, value, found[0], found[1], found[2])
    return best, (longest_z, longest_value), numeric


def as_matrix(rows: list[Features], names: tuple[str, ...] = FEATURE_NAMES) -> list[list[float]]:
    """Feature dicts onto a fixed column order; a feature a row lacks is 0 (features may emerge)."""
    if len(names) < 2:
        return [[float(r.values.get(n, 0.0)) for n in names] for r in rows]
    pick = itemgetter(*names)
    out = []
    for r in rows:
        try:  # every row event_features makes has every column
            out.append(list(map(float, pick(r.values))))
        except KeyError:
            out.append([float(r.values.get(n, 0.0)) for n in names])
    return out
