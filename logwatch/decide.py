"""Scores in, Anomaly records out: severity 0-100 and the reasons a person can read.

Severity is calibrated on each model's own score distribution: it is a function of the *tail
share* — the fraction of the model's training events that scored at least as high. A tail share of
1% gives the same severity in every stream, whatever the raw IsolationForest scores look like there.
"""

from __future__ import annotations

import math

from logwatch.records import Anomaly, Event, Features

# Tail share -> severity: 10% -> 33, 1% -> 67, 0.1% (or rarer) -> 100.
_TAIL_DECADES_FOR_MAX = 3.0
# Before a stream has a model (live warm-up), severity comes from these plain signals instead.
_WARMUP_MIN_EVENTS = 50
_TROUBLE_LEVELS = {"ERROR": 55, "CRITICAL": 75, "FATAL": 80}
MAX_TEXT_CHARS = 16_384


def severity_from_tail(tail: float) -> int:
    tail = min(max(tail, 1e-12), 1.0)
    return round(100 * min(1.0, math.log10(1.0 / tail) / _TAIL_DECADES_FOR_MAX))


def warmup_severity(f: Features) -> tuple[float, int]:
    """(score, severity) for a stream whose model is not trained yet: novelty and level only."""
    severity = 0
    if f.events_total >= _WARMUP_MIN_EVENTS and f.template_size <= 1:
        severity = round(35 + 50 * f.novelty)
    if f.level in _TROUBLE_LEVELS and f.level_share < 0.05:
        severity = max(severity, _TROUBLE_LEVELS[f.level])
    return severity / 100.0, severity


# Evidence thresholds: what makes a fact worth telling a person (and worth an alert at all).
TROUBLE_TEMPLATE_SHARE = 0.02
RARE_LEVEL_SHARE = 0.01  # ERROR in 1% of a stream's events is routine there
LONG_VALUE_Z = 4.0
# A rare template that is a close variant of an established one (a user name in first position
# splits Drain's tree, say) is not news; neither is one first seen while the stream was starting.
VARIANT_DISTANCE = 0.25
STARTUP_EVENTS = 100
NEW_TEMPLATE_SHARE = 0.02  # rare templates are news while under this share of events have one
TROUBLE_STREAM_SHARE = 0.02  # failure messages are news while under this share of the stream
EVIDENT_LEVELS = frozenset({"ERROR", "CRITICAL", "FATAL"})  # WARN alone is routine
# A number this many spreads (of its slot's log magnitudes, floored at half a decade) from usual.
NUMERIC_Z = 7.0
# A gap worth mentioning (never evidence on its own: logs go quiet at night).
GAP_MIN_SECONDS = 600.0
GAP_Z = 4.0


def _human_seconds(seconds: float) -> str:
    if seconds >= 7200:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 120:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def _number(x: float) -> str:
    return f"{x:,.0f}" if x >= 10 else f"{x:.2g}"


def explain(f: Features, score: float) -> tuple[tuple[str, ...], bool]:
    """The notable facts behind a score, most telling first, and whether any of them is concrete
    evidence. A high model score with no fact a person could check is not reported."""
    out: list[str] = []
    total = max(f.events_total, 1)
    share = f.template_size / total
    # Good-Turing: in a stream where events with never-repeated templates are common, one more new
    # template is not news; the same for failure messages in a stream full of them.
    own_rare = share if f.template_size <= f.rare_cut else 0.0
    vocabulary_settled = f.rare_template_share - own_rare < NEW_TEMPLATE_SHARE
    own_trouble = share if f.values.get("trouble", 0.0) > 0 else 0.0
    failures_rare = f.trouble_share - own_trouble < TROUBLE_STREAM_SHARE
    novel = (
        f.position >= STARTUP_EVENTS
        and vocabulary_settled
        and (f.nearest is None or f.novelty >= VARIANT_DISTANCE)
    )
    if novel and f.template_size <= 1 and f.nearest is not None:
        out.append(f"new template, {f.novelty:.2f} from nearest known line")
    elif novel and f.template_size <= 1:
        out.append("new template, nothing like it seen before")
    elif novel and f.template_size <= f.rare_cut:
        out.append(f"template seen {f.template_size:,} times in {f.events_total:,} events")
    elif f.values.get("trouble", 0.0) > 0 and share < TROUBLE_TEMPLATE_SHARE and failures_rare:
        out.append(
            f"failure message whose template is only {share:.1%} of this stream "
            f"({f.template_size:,} of {f.events_total:,} events)"
        )
    if (
        f.level in EVIDENT_LEVELS
        and f.level_share < RARE_LEVEL_SHARE
        and share < TROUBLE_TEMPLATE_SHARE
    ):
        if f.top_level is not None and f.top_level != f.level:
            out.append(f"level {f.level} in a stream that is {f.top_level_share:.1%} {f.top_level}")
        else:
            out.append(f"level {f.level} in {f.level_share:.1%} of this stream's events")
    rare = f.rare_slot
    if rare is not None:
        usual = ", ".join(repr(v) for v in rare.usual)
        seen = "never seen before" if rare.count <= 1 else f"seen {rare.count} times"
        where = f"in field {rare.field!r}" if rare.field else "in this position"
        out.append(
            f"value {rare.value!r} {seen} {where} over {rare.slot_total:,} events (usual: {usual})"
        )
    if (
        f.long_value is not None
        and f.position >= STARTUP_EVENTS
        and f.values.get("slot_length", 0.0) >= LONG_VALUE_Z
    ):
        out.append(
            f"value of unusual length in this position ({len(f.long_value)} chars, "
            f"{f.values['slot_length']:.0f} deviations from usual): {f.long_value[:80]!r}"
        )
    numeric = f.numeric
    if numeric is not None and numeric.z >= NUMERIC_Z and f.position >= STARTUP_EVENTS:
        where = f"in field {numeric.field!r}" if numeric.field else "in this position"
        out.append(
            f"value {numeric.value} far outside the usual range {where} "
            f"({_number(numeric.low)} to {_number(numeric.high)})"
        )
    if not out:
        return (f"unusual combination of template, level and values (score {score:.2f})",), False
    if (
        f.gap is not None
        and f.gap >= GAP_MIN_SECONDS
        and f.values.get("gap", 0.0) >= GAP_Z
        and f.usual_gap is not None
    ):
        out.append(
            f"first event after {_human_seconds(f.gap)} of silence in this stream "
            f"(usual gap {_human_seconds(f.usual_gap)})"
        )
    return tuple(out), True


def decide(
    event: Event,
    features: Features,
    *,
    score: float,
    severity: int,
    template: str,
    stream: str,
    path: str,
    detected_at: str,
    min_severity: int,
) -> Anomaly | None:
    """An Anomaly when the event's severity reaches ``min_severity``, else None."""
    if severity < min_severity:
        return None
    why, evident = explain(features, score)
    if not evident:
        return None
    if event.truncated:
        why = (*why, "a line of this event was truncated (longer than max_line_bytes)")
    ts = event.parsed.timestamp
    return Anomaly(
        stream=stream,
        path=path,
        line=event.line_no,
        offset=event.offset,
        timestamp=ts.isoformat() if ts is not None else None,
        detected_at=detected_at,
        severity=severity,
        score=round(score, 6),
        reasons=why,
        template=template,
        text=event.text[:MAX_TEXT_CHARS],
        count=event.count,
        level=event.parsed.level,
        host=event.parsed.host,
        process=event.parsed.process,
        pid=event.parsed.pid,
    )
