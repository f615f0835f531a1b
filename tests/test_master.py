"""The master model: windows across streams, volume against the hour's usual, joint anomalies."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from logwatch.master import (
    MasterModel,
    StreamWindow,
    VolumeBaseline,
    WindowAggregator,
    WindowVector,
    log_time,
)

W = 300.0  # five-minute windows keep four days of history small
BASE = {"app.log": 120, "auth.log": 60, "db.log": 200, "cron.log": 30}
DEGRADED = ("app.log", "auth.log", "db.log")
N = int(4 * 86400 / W)  # four days of ordinary windows
BUSY = N + 6 * 12  # 06:00 on day five: the daily peak


def usual(stream: str, k: int) -> float:
    """Events per window: a daily rhythm, peaking at 06:00 and quietest at 18:00 (5.7 to 1)."""
    hour = int(k * W // 3600) % 24
    return BASE[stream] * (1 + 0.7 * math.sin(2 * math.pi * hour / 24))


def feed(
    agg: WindowAggregator,
    k: int,
    rng: np.random.Generator,
    *,
    degrade: tuple[str, ...] = (),
    silent: tuple[str, ...] = (),
) -> None:
    at = k * W + 7.0
    for stream in BASE:
        if stream in silent:
            continue
        if stream in degrade:
            # A little worse, each in a way this stream has seen before: two warnings of ordinary
            # severity and 15% fewer events than usual.
            agg.add(stream, at, int(usual(stream, k) * 0.85))
            agg.add(stream, at + 1, 0, 62)
            agg.add(stream, at + 2, 0, 65)
            continue
        agg.add(stream, at, int(rng.poisson(usual(stream, k))))
        for _ in range(rng.poisson(0.3)):  # a few anomalies of ordinary severity, now and then
            agg.add(stream, at + 3, 0, int(rng.integers(40, 71)))


@pytest.fixture(scope="module")
def history() -> tuple[list[WindowVector], dict[str, Any], dict[str, Any]]:
    """Four ordinary days: the vectors, the aggregator's state after them, a fitted model's."""
    rng = np.random.default_rng(0)
    agg = WindowAggregator(W)
    for k in range(N):
        feed(agg, k, rng)
    vectors = agg.closed((N + 1) * W)
    model = MasterModel(random_state=0)
    model.score(vectors)
    return vectors, agg.to_state(), model.to_state()


def continue_days(
    agg_state: dict[str, Any], last: int, **odd: tuple[str, ...]
) -> tuple[list[WindowVector], int]:
    """Ordinary windows from N up to ``last`` (exclusive), the odd window at ``last``, one more."""
    rng = np.random.default_rng(1)
    agg = WindowAggregator.from_state(agg_state)
    for k in range(N, last):
        feed(agg, k, rng)
    feed(agg, last, rng, **odd)
    feed(agg, last + 1, rng)
    feed(agg, last + 2, rng)
    vectors = agg.closed((last + 3) * W)
    assert [v.start for v in vectors][-2:] == [last * W, (last + 1) * W]
    return vectors, len(vectors) - 2


def share_as_bad(history: list[WindowVector], stream: str, odd: StreamWindow) -> dict[str, float]:
    """For each number of ``odd``, the share of ordinary windows in which this stream was at least
    as bad in that respect alone (the first day, while the baseline learns, left out)."""
    rows = [s for v in history[288:] for s in v.streams if s.stream == stream]
    n = len(rows)
    return {
        "severity": sum(r.max_severity >= odd.max_severity for r in rows) / n,
        "anomalies": sum(r.anomalies >= odd.anomalies for r in rows) / n,
        "volume": sum(r.volume <= odd.volume for r in rows) / n,
    }


# -- aggregation --------------------------------------------------------------------------------


def test_windows_close_after_one_window_of_grace_and_late_events_are_counted() -> None:
    agg = WindowAggregator(60.0)
    agg.add("a", 130.0, 5)  # window [120, 180)
    agg.add("a", 50.0, 3, severity=70)  # an older window, out of order: still on time
    agg.add("b", 55.0, 0, severity=40)
    assert agg.closed(110.0) == []  # [0, 60) ended 50 s ago: inside the grace window ...
    first = agg.closed(120.0)  # ... and out of it now
    assert [(v.start, v.end) for v in first] == [(0.0, 60.0)]
    assert {s.stream: (s.events, s.anomalies, s.max_severity) for s in first[0].streams} == {
        "a": (3, 1, 70),
        "b": (0, 1, 40),
    }
    agg.add("a", 10.0, 2)  # its window is scored already
    assert agg.late_events == 2
    agg.add("a", 70.0, 4)  # [60, 120) is still open
    rest = agg.flush()
    assert [v.start for v in rest] == [60.0, 120.0]
    assert {s.stream: s.events for s in rest[0].streams} == {"a": 4, "b": 0}  # b, silent, is there
    assert {s.stream: s.events for s in rest[1].streams}["a"] == 5


def test_a_long_gap_emits_a_bounded_number_of_windows() -> None:
    agg = WindowAggregator(60.0, forget_after_seconds=600.0)
    agg.add("a", 0.0, 10)
    # A year later: the stream is missed for ten minutes, then taken as gone; nothing in between.
    out = agg.closed(365 * 86400.0)
    assert len(out) == 11
    assert all(s.events == 0 for v in out[1:] for s in v.streams)
    agg.add("a", 365 * 86400.0 + 5, 10)
    assert [v.start for v in agg.flush()] == [365 * 86400.0]


def test_volume_is_measured_against_the_usual_for_that_hour(
    history: tuple[list[WindowVector], dict[str, Any], dict[str, Any]],
) -> None:
    vectors = history[0]
    db = {v.start: s for v in vectors[288:] for s in v.streams if s.stream == "db.log"}
    peak = [s for t, s in db.items() if int(t // 3600) % 24 == 6]
    trough = [s for t, s in db.items() if int(t // 3600) % 24 == 18]
    # Five times the events at the peak, yet both hours read as "as usual".
    assert np.mean([s.events for s in peak]) > 5 * np.mean([s.events for s in trough])
    for rows in (peak, trough):
        assert abs(float(np.mean([s.volume for s in rows]))) < 0.05


def test_baseline_falls_back_to_the_nearest_earlier_hour_and_round_trips() -> None:
    base = VolumeBaseline(600.0)
    for k in range(6):  # one hour, 00:00-01:00, at 100 events per window
        base.update("s", k * 600.0, 100)
    assert base.expected("s", 3 * 3600.0) == pytest.approx(100.0)  # 03:00 borrows 00:00
    assert base.expected("other", 0.0) is None
    copy = VolumeBaseline.from_state(json.loads(json.dumps(base.to_state())))
    assert copy.expected("s", 0.0) == base.expected("s", 0.0)


def test_log_time_reads_zone_less_timestamps_as_utc() -> None:
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert (
        log_time(datetime(2024, 5, 1, 10, 4), now)
        == datetime(2024, 5, 1, 10, 4, tzinfo=UTC).timestamp()
    )
    assert log_time(None, now) == now.timestamp()


# -- the model ----------------------------------------------------------------------------------


def test_three_streams_each_a_little_worse_together_is_the_window_flagged(
    history: tuple[list[WindowVector], dict[str, Any], dict[str, Any]],
) -> None:
    vectors, agg_state, model_state = history
    later, odd_at = continue_days(agg_state, BUSY, degrade=DEGRADED)
    odd = later[odd_at]
    # On its own, each stream's numbers are ordinary: in every respect at least 1% of ordinary
    # windows were as bad, so no per-stream threshold would fire on this window.
    for stream in DEGRADED:
        row = next(s for s in odd.streams if s.stream == stream)
        assert row.anomalies == 2 and row.max_severity == 65 and row.volume < 0
        shares = share_as_bad(vectors, stream, row)
        assert min(shares.values()) >= 0.01, (stream, shares)
    model = MasterModel.from_state(model_state)
    verdicts = model.score(later)
    flagged = verdicts[odd_at]
    assert flagged.fitted and (flagged.start, flagged.end) == (odd.start, odd.end)
    assert flagged.score == max(v.score for v in verdicts)
    assert flagged.severity == max(v.severity for v in verdicts)
    assert flagged.severity >= 67  # rarer than 1 window in 100 of the history
    others = sorted((v.severity for i, v in enumerate(verdicts) if i != odd_at), reverse=True)
    assert others[0] < flagged.severity
    # The streams involved come first; the one that behaved, if named at all, well behind.
    assert sorted(c.stream for c in flagged.streams[:3]) == sorted(DEGRADED)
    assert all(c.contribution >= 1.0 for c in flagged.streams)
    if len(flagged.streams) > 3:
        assert flagged.streams[3].stream == "cron.log"
        assert flagged.streams[3].contribution < flagged.streams[2].contribution / 2


def test_a_stream_silent_in_its_busy_hour_is_flagged(
    history: tuple[list[WindowVector], dict[str, Any], dict[str, Any]],
) -> None:
    _, agg_state, model_state = history
    later, odd_at = continue_days(agg_state, BUSY, silent=("db.log",))
    model = MasterModel.from_state(model_state)
    verdicts = model.score(later)
    flagged = verdicts[odd_at]
    assert flagged.severity >= 90
    assert flagged.severity == max(v.severity for v in verdicts)
    top = flagged.streams[0]
    assert (top.stream, top.events) == ("db.log", 0)
    assert top.expected is not None and top.expected > 250  # usually busy at this hour
    assert all(c.contribution * 5 < top.contribution for c in flagged.streams[1:])


def test_the_once_batch_is_scored_against_itself(
    history: tuple[list[WindowVector], dict[str, Any], dict[str, Any]],
) -> None:
    vectors, agg_state, _ = history
    later, odd_at = continue_days(agg_state, N + 2, degrade=DEGRADED)
    model = MasterModel(random_state=0)
    verdicts = model.score(vectors + later)  # one unfitted batch, as at the end of --once
    assert all(v.fitted for v in verdicts)
    flagged = verdicts[len(vectors) + odd_at]
    ranked = sorted(verdicts, key=lambda v: -v.score)
    assert flagged in ranked[:3]
    assert flagged.severity >= 67


def test_too_few_windows_give_unfitted_verdicts() -> None:
    model = MasterModel(random_state=0, min_windows=5)
    v = WindowVector(0.0, 60.0, (StreamWindow("a", 10, 0, 0, None, 0.0),))
    verdicts = model.score([v] * 4)
    assert [(r.fitted, r.severity, r.streams) for r in verdicts] == [(False, 0, ())] * 4
    assert model.score([v])[0].fitted  # the fifth window completes the history


def test_same_seed_same_verdicts_other_seed_other_scores(
    history: tuple[list[WindowVector], dict[str, Any], dict[str, Any]],
) -> None:
    vectors = history[0][:400]
    a = MasterModel(random_state=7).score(vectors)
    b = MasterModel(random_state=7).score(vectors)
    c = MasterModel(random_state=8).score(vectors)
    assert a == b
    assert [v.score for v in a] != [v.score for v in c]


def test_state_round_trip_is_json_and_scores_identically(
    history: tuple[list[WindowVector], dict[str, Any], dict[str, Any]],
) -> None:
    vectors, agg_state, _ = history
    model = MasterModel(random_state=3, refit_every=50)
    model.score(vectors[:300])
    model.score(vectors[300:340])  # 40 windows since the last fit: not refitted yet
    text = json.dumps(model.to_state())
    assert "pickle" not in text
    loaded = MasterModel.from_state(json.loads(text))
    later, _ = continue_days(agg_state, N + 5)
    assert loaded.score(later) == model.score(later)
    agg = WindowAggregator.from_state(json.loads(json.dumps(agg_state)))
    assert agg.to_state() == agg_state


def test_a_new_stream_gets_its_columns_once_it_has_something_to_say() -> None:
    model = MasterModel(random_state=0, min_windows=10, refit_every=1000)
    rng = np.random.default_rng(2)

    def window(k: int, *rows: StreamWindow) -> WindowVector:
        base = StreamWindow("a", 100, 0, 0, 100.0, float(rng.normal(0, 0.1)))
        return WindowVector(k * 60.0, k * 60.0 + 60.0, (base, *rows))

    model.score([window(k) for k in range(40)])
    # A new stream with nothing unusual yet: no refit for a column of zeros ...
    quiet = model.score([window(40, StreamWindow("b", 5, 0, 0, None, 0.0))])[0]
    assert [c.stream for c in quiet.streams] == []
    fitted_on = model.to_state()["fit_columns"]
    # ... one with an anomaly makes the model refit and can be named from then on.
    model.score([window(41, StreamWindow("b", 5, 1, 80, None, 0.0))])
    state = model.to_state()
    assert state["fit_columns"] > fitted_on
    assert ["b", "anomalies"] in state["columns"][: state["fit_columns"]]
    again = model.score([window(42, StreamWindow("b", 5, 3, 90, None, 0.0))])[0]
    assert again.streams[0].stream == "b"
