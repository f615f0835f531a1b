"""Features (pure statistics) and decide (severity, evidence, reasons)."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from logwatch.decide import decide, explain, severity_from_tail, warmup_severity
from logwatch.features import (
    MAX_SLOT_VALUES,
    SlotStats,
    StreamStats,
    event_features,
    has_trouble_words,
)
from logwatch.records import Event, EventSketch, ParsedLine
from logwatch.storage import json_text


def sketch(
    tid: int = 1,
    level: str | None = "INFO",
    slots: tuple[tuple[int, str], ...] = (),
    fields: tuple[tuple[str, str], ...] = (),
    position: int = 500,
    trouble: bool = False,
) -> EventSketch:
    positions = tuple(p for p, _ in slots)
    values = tuple(v for _, v in slots)
    return EventSketch(tid, level, positions, values, 40, trouble, fields, position)


def busy_stream() -> StreamStats:
    stats = StreamStats()
    for i in range(1000):
        stats.observe(sketch(1, slots=((3, "200" if i % 10 else "304"), (5, f"id{i}"))))
    return stats


def test_rare_value_in_a_categorical_slot_is_evidence() -> None:
    stats = busy_stream()
    odd = sketch(1, slots=((3, "503"), (5, "id-new")))
    stats.observe(odd)
    f = event_features(odd, stats)
    assert f.rare_slot is not None and (f.rare_slot.value, f.rare_slot.count) == ("503", 1)
    assert f.values["slot_rarity"] == pytest.approx(3.0, abs=0.01)  # log10(1001 / 1)
    reasons, evident = explain(f, 0.7)
    assert evident
    assert reasons[0].startswith("value '503' never seen before in this position over 1,001")
    assert "'200'" in reasons[0]


def test_new_values_in_an_identifier_slot_are_not_news() -> None:
    stats = busy_stream()
    # Position 5 held a new value every time: its histogram was dropped (bounded memory) ...
    assert stats.slots[1][5].hist is None and len(stats.slots[1][3].hist or {}) == 2
    odd = sketch(1, slots=((3, "200"), (5, "id777x")))  # new, but of ordinary length
    stats.observe(odd)
    f = event_features(odd, stats)
    assert f.rare_slot is None  # ... so a new id there is no evidence
    assert explain(f, 0.9)[1] is False


def test_slot_where_rare_values_are_common_gives_no_evidence() -> None:
    stats = StreamStats()
    for i in range(1000):
        stats.observe(sketch(1, slots=((0, f"v{i % 25}" if i % 40 == 0 else "common"),)))
    f = event_features(sketch(1, slots=((0, "v3"),)), stats)
    assert f.rare_slot is None


def test_slot_histogram_is_bounded() -> None:
    slot = SlotStats()
    for i in range(MAX_SLOT_VALUES + 5):
        slot.observe(str(i), 1)
    assert slot.hist is None and slot.n == MAX_SLOT_VALUES + 5


@pytest.mark.parametrize("distinct", [3, MAX_SLOT_VALUES + 5])
def test_slot_statistics_are_stored_without_nulls_and_read_back_the_same(distinct: int) -> None:
    """With or without its histogram (dropped past MAX_SLOT_VALUES values), a slot's stored JSON
    holds no null (so the fast JSON writer takes it) and reads back as the same statistics."""
    slot = SlotStats()
    for i in range(200):
        slot.observe(str(i % distinct * 7), 1)
    text = json_text(slot.to_json())
    assert "null" not in text
    back = SlotStats.from_json(json.loads(text))
    assert (back.hist, back.n, back.mean, back.m2, back.non_numeric) == (
        slot.hist,
        slot.n,
        slot.mean,
        slot.m2,
        slot.non_numeric,
    )
    assert back.numbers == slot.numbers
    assert (back.hist is None) == (distinct > MAX_SLOT_VALUES)


def test_json_fields_are_judged_stream_wide() -> None:
    stats = StreamStats()
    for i in range(600):  # the same field value spread over two templates
        stats.observe(sketch(1 + i % 2, fields=(("action", "ALLOW"), ("status", "200"))))
    block = sketch(1, fields=(("action", "BLOCK"), ("status", "200")))
    stats.observe(block)
    f = event_features(block, stats)
    assert f.rare_slot is not None and f.rare_slot.field == "action"
    reasons, evident = explain(f, 0.5)
    assert evident and "in field 'action'" in reasons[0]


def test_stats_copy_and_restore_round_trip() -> None:
    stats = busy_stream()
    stats.observe(sketch(2, level="ERROR", trouble=True, fields=(("k", "v"),)))
    copied = stats.copy()
    copied.observe(sketch(3))
    assert 3 not in stats.template_counts  # the copy is independent
    restored = StreamStats.restore(
        stats.events_total,
        dict(stats.level_counts),
        dict(stats.template_counts),
        {t: stats.slots_json(t) for t in stats.slots},
        stats.fields_json(),
        stats.trouble_events,
    )
    probe = sketch(1, slots=((3, "304"), (5, "x")))
    assert event_features(probe, restored) == event_features(probe, stats)
    assert restored.trouble_events == 1


def test_new_template_is_news_only_in_a_settled_vocabulary() -> None:
    settled = busy_stream()
    new = sketch(7, position=1000)
    settled.observe(new)
    f = event_features(new, settled, novelty=0.8, nearest="something else")
    assert explain(f, 0.6) == (("new template, 0.80 from nearest known line",), True)
    chatty = busy_stream()
    for i in range(100, 160):  # 6% of events have a template seen only once
        chatty.observe(sketch(i))
    chatty.observe(new)
    f = event_features(new, chatty, novelty=0.8, nearest="something else")
    assert explain(f, 0.6)[1] is False


def test_startup_and_close_variants_are_not_news() -> None:
    stats = busy_stream()
    early = sketch(7, position=10)
    stats.observe(early)
    assert explain(event_features(early, stats, novelty=0.9, nearest="x"), 0.6)[1] is False
    variant = sketch(8, position=900)
    stats.observe(variant)
    assert explain(event_features(variant, stats, novelty=0.1, nearest="x"), 0.6)[1] is False


def test_rare_error_level_reason() -> None:
    stats = busy_stream()
    err = sketch(9, level="ERROR", position=900)
    stats.observe(err)
    reasons, evident = explain(event_features(err, stats, novelty=0.1, nearest="x"), 0.6)
    assert evident and "level ERROR in a stream that is 99.9% INFO" in reasons


@pytest.mark.parametrize(
    ("tail", "severity"), [(1.0, 0), (0.1, 33), (0.01, 67), (0.001, 100), (1e-9, 100)]
)
def test_severity_from_tail(tail: float, severity: int) -> None:
    assert severity_from_tail(tail) == severity


def test_warmup_severity_uses_novelty_and_level() -> None:
    stats = busy_stream()
    new = sketch(7)
    stats.observe(new)
    assert warmup_severity(event_features(new, stats, novelty=1.0, nearest="x"))[1] == 85
    common = sketch(1)
    assert warmup_severity(event_features(common, stats))[1] == 0


def test_trouble_words() -> None:
    assert has_trouble_words("Failed password for <*>")
    assert has_trouble_words("request timed out after <NUM>ms")
    assert not has_trouble_words("session opened for user <*>")
    assert not has_trouble_words("profiled request")  # no substring matches


def test_decide_keeps_event_position_and_text() -> None:
    stats = busy_stream()
    new = sketch(7, position=1000)
    stats.observe(new)
    f = event_features(new, stats, novelty=0.9, nearest="x")
    parsed = ParsedLine("boom", timestamp=datetime(2026, 3, 3, 10, 0), level="ERROR")
    event = Event(120, 7, 180, 2, "line one\n\tat trace", parsed)
    found = decide(
        event,
        f,
        score=0.7,
        severity=80,
        template="boom",
        stream="s",
        path="/p",
        detected_at="2026-03-04T00:00:00+00:00",
        min_severity=40,
    )
    assert found is not None
    assert (found.line, found.offset, found.text, found.timestamp) == (
        7,
        120,
        "line one\n\tat trace",
        "2026-03-03T10:00:00",
    )
    assert (
        decide(
            event,
            f,
            score=0.7,
            severity=39,
            template="boom",
            stream="s",
            path="/p",
            detected_at="2026-03-04T00:00:00+00:00",
            min_severity=40,
        )
        is None
    )
