"""The bird's-eye view end to end (issue 5): on a generated multi-stream folder whose anomalies are
known, the line model alone misses what exists only at session level or only across streams, the
session model and the master model catch it, and everything is grouped into few incidents. Runs
the real Pipeline, --once and in daemon mode, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import private_pg_url
from overview_logs import HDFS, MISSING_WORDS, SERVICES, Truth, generate, judge

from logwatch import incident_store
from logwatch.config import Config
from logwatch.master import MasterModel, StreamWindow, WindowVector
from logwatch.overview import OverviewResult
from logwatch.pipeline import Pipeline, PollSummary
from logwatch.records import Anomaly
from logwatch.storage import Store

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


@dataclass
class Run:
    truth: Truth
    store: Store
    pipeline: Pipeline
    summary: PollSummary
    result: OverviewResult
    anomalies: list[Anomaly]
    sessions: list[incident_store.SessionFinding]
    incidents: list[dict[str, Any]]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Truth:
    # 12 hours of log time: a --once master model needs about 400 windows before a window can be
    # in its 1% tail at all (its own history includes the window, and the tail is doubled).
    return generate(tmp_path_factory.mktemp("overview") / "logs", seed=0)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def run(
    request: pytest.FixtureRequest, folder: Truth, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Run]:
    """One --once run per database, shared by the tests that read what it stored."""
    if request.param == "sqlite":
        yield from _run(folder, f"sqlite:///{tmp_path_factory.mktemp('db') / 'lw.db'}")
    else:
        with private_pg_url() as url:
            yield from _run(folder, url)


def _run(truth: Truth, url: str) -> Iterator[Run]:
    store = Store(url)
    store.upgrade()
    pipeline = Pipeline(Config(log_dir=truth.root, db_url=url, once=True), store)
    kept: list[OverviewResult] = []
    finish = pipeline.overview.finish_once

    def keep(now: datetime) -> OverviewResult:
        kept.append(finish(now))
        return kept[-1]

    setattr(pipeline.overview, "finish_once", keep)  # noqa: B010 - a method patched per instance
    summary = pipeline.run_once(NOW)
    try:
        yield Run(
            truth,
            store,
            pipeline,
            summary,
            kept[0],
            store.anomalies(),
            incident_store.sessions(store),
            incident_store.incidents(store),
        )
    finally:
        store.close()


def _time(a: Anomaly) -> float:
    assert a.timestamp is not None
    return datetime.fromisoformat(a.timestamp).timestamp()


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def test_the_line_model_finds_the_injected_errors_and_little_else(run: Run) -> None:
    truth = run.truth
    found = {(Path(a.path).name, a.line) for a in run.anomalies}
    assert found >= truth.lines  # all 15: two single ERRORs and the 13 of the outage minute
    assert len(found - truth.lines) <= 2, sorted(found - truth.lines)
    assert run.summary.lines > 20_000


def test_session_anomalies_are_missed_by_lines_and_caught_by_the_session_model(run: Run) -> None:
    truth = run.truth
    broken = {key for _, key in truth.sessions}
    assert len(broken) == 6
    # (a) Line model: every line of a broken block is a line normal blocks write too; not one of
    # them is stored as an anomaly.
    text = (truth.root / HDFS).read_text()
    assert sum(text.count(key) for key in broken) >= 6 * 3
    assert [a for a in run.anomalies if any(key in a.text for key in broken)] == []
    # Session model: exactly the broken blocks, each naming the template it lacks.
    flagged = {(f.stream, f.key): f for f in run.sessions}
    assert set(flagged) == set(truth.sessions)
    for where, fault in truth.sessions.items():
        finding = flagged[where]
        missing = [r for r in finding.reasons if r.startswith("missing ")]
        for word in MISSING_WORDS[fault]:
            assert any(word in r for r in missing), (fault, finding.reasons)
        assert finding.severity >= 40
        assert finding.first_path.endswith(HDFS) and finding.first_line <= finding.last_line
        # What the finding points at is the block's own first and last line.
        lines = text.splitlines()
        assert (
            where[1] in lines[finding.first_line - 1] and where[1] in lines[finding.last_line - 1]
        )
    # Each is an incident of its own, titled by what is missing.
    by_key = {i["sessions"][0]: i for i in run.incidents if i["kinds"] == ["session"]}
    assert set(by_key) == broken
    assert all("missing" in i["title"] and i["count"] == 0 for i in by_key.values())


def _per_minute(truth: Truth, stream: str) -> Counter[int]:
    counts: Counter[int] = Counter()
    for line in (truth.root / stream).read_text().splitlines():
        at = datetime.fromisoformat(line.split(" ", 1)[0]).timestamp()
        counts[math.floor((at - truth.start) / 60)] += 1
    return counts


def test_a_cross_stream_window_is_missed_by_lines_and_caught_by_the_master_model(
    run: Run,
) -> None:
    truth = run.truth
    (start,) = truth.windows
    minute = round((start - truth.start) / 60)
    # Each stream alone is ordinary in that minute: in at least 3 other minutes the stream alone
    # had as few lines (relative to its median), and its extra WARNs are of its common templates.
    for stream in SERVICES:
        counts = _per_minute(truth, stream)
        usual = sorted(counts.values())[len(counts) // 2]
        dip = counts[minute] / usual
        assert 0.6 <= dip <= 0.9, (stream, counts[minute], usual)
        as_low = sum(n / usual <= dip for m, n in counts.items() if m != minute)
        assert as_low >= 3, (stream, as_low)
    # (b) Line model: nothing in that minute, in any stream.
    assert [a for a in run.anomalies if start <= _time(a) < start + 60] == []
    # Master model: the window is flagged, and one incident of kind "window" covers it, naming
    # the three services first.
    flagged = {w.start: w for w in run.result.windows}
    assert start in flagged
    verdict = flagged[start]
    assert verdict.severity >= 67
    assert {c.stream for c in verdict.streams[:3]} == set(SERVICES)
    (incident,) = [
        i for i in run.incidents if _epoch(i["first"]) <= start and _epoch(i["last"]) >= start + 60
    ]
    assert "window" in incident["kinds"] and incident["count"] == 0
    assert [s["stream"] for s in incident["streams"][:3]] == [c.stream for c in verdict.streams[:3]]
    assert incident["title"].startswith(f"{len(incident['streams'])} streams abnormal at ")
    # Few windows flagged in twelve hours: the outage minute, and the degraded one.
    assert len(run.result.windows) <= 4


def test_anomalies_are_grouped_into_few_incidents_that_cover_the_truth(run: Run) -> None:
    truth = run.truth
    lines, sessions, windows = len(run.anomalies), len(run.sessions), len(run.result.windows)
    # (c) Far fewer incidents than things found.
    assert len(run.incidents) <= (lines + sessions + windows) / 2
    # Every stored line anomaly belongs to exactly one incident, and the counts add up.
    assigned = run.pipeline.overview.grouper.assigned
    ids = {i["id"] for i in run.incidents}
    assert {(a.path, a.offset) for a in run.anomalies} == set(assigned)
    assert set(assigned.values()) <= ids
    assert sum(i["count"] for i in run.incidents) == lines
    # The outage minute (13 ERRORs in app.log and db.log) is one incident.
    burst = {assigned[(a.path, a.offset)] for a in run.anomalies if truth.burst[0] <= _time(a)}
    burst &= {assigned[(a.path, a.offset)] for a in run.anomalies if _time(a) <= truth.burst[1]}
    (outage,) = [i for i in run.incidents if i["id"] in burst]
    assert outage["count"] >= 13 and {s["stream"] for s in outage["streams"]} >= {
        "app.log",
        "db.log",
    }
    # Against the truth: every incident covers a true anomaly, every true anomaly is covered.
    j = judge(
        truth,
        run.incidents,
        {(f.stream, f.key) for f in run.sessions},
        [w.start for w in run.result.windows],
    )
    assert j.incidents == len(run.incidents)
    assert j.truths == 6 + 1 + 15
    assert (j.incidents_true, j.truths_covered) == (j.incidents, j.truths), (j.false, j.missed)
    assert (j.sessions_true, j.windows_hit) == (6, 1)


def test_a_once_run_stores_its_windows_for_the_fleet_view(run: Run) -> None:
    """--once scores its windows in memory and also writes them to window_stats, as a daemon does
    (this run has no node: its streams are named as they are)."""
    rows = incident_store.load_windows(run.store, after=None, before=1e12, max_windows=10_000)
    assert {r.node for r in rows} == {""}
    (start,) = run.truth.windows
    degraded = {r.stream: r for r in rows if r.window_start == start}
    assert set(SERVICES) <= set(degraded)
    # Each of the services a little below its usual volume in the degraded minute.
    for stream in SERVICES:
        row = degraded[stream]
        assert row.expected is not None and 0 < row.events < row.expected, row
    # The master model's watermark is the newest window it scored.
    mark = incident_store.load_state(run.store, "master-watermark")
    assert mark == {"start": max(r.window_start for r in rows)}


# -- daemon mode -----------------------------------------------------------------------------


def _blocks(first: int, n: int, at: float, broken: dict[int, str]) -> list[tuple[float, str]]:
    """Short HDFS block lifecycles, one starting every 4 s from ``at``."""
    out: list[tuple[float, str]] = []
    state = "org.apache.hadoop.hdfs.StateChange"
    node = "org.apache.hadoop.hdfs.server.datanode.DataNode"
    for i in range(first, first + n):
        t = at + 4.0 * (i - first)
        blk = f"blk_{7_000_000 + i}"
        fault = broken.get(i)
        steps = [f"INFO {state}: BLOCK* NameSystem.allocateBlock: /user/root/part-{i:05d}. {blk}"]
        steps += [
            f"INFO {node}: Receiving block {blk} src: /10.251.{i % 200}.{k}:4{k}01{i % 10} "
            f"dest: /10.251.7.{k + 1}:50010"
            for k in range(3)
        ]
        if fault == "stops half way":
            steps = steps[:2]
        else:
            if fault != "skips ack":
                steps += [
                    f"INFO {state}: BLOCK* NameSystem.addStoredBlock: blockMap updated: "
                    f"10.251.7.{k + 1}:50010 is added to {blk} size {60_000_000 + 977 * i}"
                    for k in range(3)
                ]
            if fault != "skips delete":
                steps.append(f"INFO {node}: Deleting block {blk} file /data/current/{blk}")
        out += [(t + 1.5 * k, s) for k, s in enumerate(steps)]
    return sorted(out)


def _append(path: Path, rows: list[tuple[float, str]]) -> None:
    with path.open("a", encoding="utf-8") as fh:
        for at, text in rows:
            t = datetime.fromtimestamp(at, UTC)
            fh.write(f"{t:%Y-%m-%d %H:%M:%S},{t.microsecond // 1000:03d} {text}\n")


def test_daemon_scores_idle_sessions_once_the_session_model_is_trained(
    store: Store, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    hdfs = logs / HDFS
    base = datetime(2026, 3, 3, 9, 0, tzinfo=UTC).timestamp()
    config = Config(log_dir=logs, db_url=store.url, session_idle_seconds=30.0)
    pipeline = Pipeline(config, store)
    # Poll 1: 70 normal blocks over 280 s; those idle for 30 s of log time close and are learned.
    _append(hdfs, _blocks(0, 70, base, {}))
    wall = datetime.now(UTC)
    first = pipeline.poll(wall)
    model = pipeline.overview.session_models[HDFS]
    assert first.sessions == 0  # nothing is judged before the model exists ...
    assert model.fitted and len(model.training_) >= model.min_sessions == 50  # ... it does now
    assert pipeline.overview.tracker.open_count > 0  # the last ones are not idle yet
    # Poll 2: three broken blocks among 25 more, written after the first ones.
    broken = {72: "stops half way", 78: "skips ack", 84: "skips delete"}
    _append(hdfs, _blocks(70, 25, base + 300.0, broken))
    second = pipeline.poll(wall + timedelta(seconds=1))
    assert second.sessions == 3
    found = {f.key: f for f in incident_store.sessions(store)}
    assert set(found) == {f"blk_{7_000_000 + i}" for i in broken}
    for i, fault in broken.items():
        reasons = found[f"blk_{7_000_000 + i}"].reasons
        for word in MISSING_WORDS[fault]:
            assert any(r.startswith("missing ") and word in r for r in reasons), reasons
    kinds = Counter(k for i in incident_store.incidents(store) for k in i["kinds"])
    assert kinds["session"] == 3
    # Later polls with nothing new: the last event, held back in case continuation lines come,
    # is scored once the file is quiet; then the stream's clock runs on with the wall clock and
    # the remaining sessions close idle, all of them ordinary.
    later = [pipeline.poll(wall + timedelta(seconds=s)) for s in (61, 122)]
    assert [p.sessions for p in later] == [0, 0]
    assert pipeline.overview.tracker.open_count == 0
    assert len(incident_store.sessions(store)) == 3


def test_a_once_batch_is_scored_in_the_columns_the_model_was_fitted_with() -> None:
    """Regression: the first fit drops all-zero columns (here the quiet stream "a", sorted first);
    the batch it is fitted on must be scored in the fitted column order, not the one before."""
    vectors = [
        WindowVector(
            60.0 * k,
            60.0 * k + 60,
            (
                StreamWindow("a", 10, 0, 0, 10.0, 0.0),
                StreamWindow("b", 9, k % 5 == 0, 50 * (k % 5 == 0), 10.0, 0.05 * (k % 3 - 1)),
            ),
        )
        for k in range(60)
    ]
    odd = 37
    b = vectors[odd].streams[1]
    vectors[odd] = WindowVector(
        vectors[odd].start, vectors[odd].end, (vectors[odd].streams[0], replace(b, volume=-1.5))
    )
    verdicts = MasterModel(random_state=0).score(vectors)
    top = max(verdicts, key=lambda v: v.deviation)
    assert top.start == vectors[odd].start
    assert [c.stream for c in top.streams] == ["b"]
