"""Incidents: anomalies that belong together, grouped, titled and ranked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from logwatch.incidents import (
    KIND_SESSION,
    KIND_SINGLE,
    KIND_SPREADING,
    KIND_WINDOW,
    IncidentGrouper,
    SessionEvidence,
    anomaly_time,
    template_key,
)
from logwatch.master import StreamContribution, WindowVerdict
from logwatch.records import Anomaly

T0 = datetime(2024, 5, 1, 10, 4, 0, tzinfo=UTC)
NEW = ("new template, 0.71 from nearest known line",)


def anomaly(
    stream: str,
    at: datetime,
    *,
    template: str,
    severity: int = 60,
    path: str | None = None,
    offset: int = 0,
    reasons: tuple[str, ...] = NEW,
    timestamp: bool = True,
) -> Anomaly:
    return Anomaly(
        stream=stream,
        path=path or f"/var/log/{stream}",
        line=offset // 80 + 1,
        offset=offset,
        timestamp=at.replace(tzinfo=None).isoformat() if timestamp else None,
        detected_at=(at + timedelta(seconds=2)).isoformat(),
        severity=severity,
        score=0.7,
        reasons=reasons,
        template=template,
        text=template.replace("<*>", "x"),
        level="ERROR",
    )


def test_thirty_anomalies_over_three_streams_in_one_minute_are_one_incident() -> None:
    plan = {"auth.log": 12, "app.log": 10, "db.log": 8}
    batch = []
    for s, (stream, n) in enumerate(plan.items()):
        for i in range(n):
            batch.append(
                anomaly(
                    stream,
                    T0 + timedelta(seconds=2 * i + s),
                    template=f"{stream} failure number <*> in worker pool",
                    severity=50 + i + (30 if (stream, i) == ("db.log", 7) else 0),
                    offset=80 * i,
                )
            )
    grouper = IncidentGrouper(60.0)
    out = grouper.add(batch[::-1])  # the order they arrive in does not matter
    assert len(out) == 1
    inc = out[0]
    assert inc.count == 30 and not inc.closed
    assert inc.kinds == (KIND_WINDOW,)
    assert inc.title == "3 streams abnormal at 10:04: auth.log, app.log, db.log"
    assert [(s.stream, s.count) for s in inc.streams] == [
        ("auth.log", 12),
        ("app.log", 10),
        ("db.log", 8),
    ]
    assert inc.streams[2].max_severity == 87
    assert inc.severity == 87
    # The most telling lines: the highest severities, db.log's worst first.
    assert len(inc.lines) == 5
    assert (inc.lines[0].stream, inc.lines[0].severity, inc.lines[0].line) == ("db.log", 87, 8)
    assert [line.severity for line in inc.lines] == sorted(
        (line.severity for line in inc.lines), reverse=True
    )
    assert inc.lines[0].reasons == NEW
    assert (inc.first, inc.last) == ("2024-05-01T10:04:00+00:00", "2024-05-01T10:04:22+00:00")
    # Its id is its earliest anomaly's, whatever the order: feeding again in order gives the same.
    again = IncidentGrouper(60.0).add(batch)
    assert again[0].id == inc.id and inc.id.startswith("inc-")
    assert grouper.flush()[0].closed


def test_a_new_template_spreading_to_a_sibling_file_is_one_incident() -> None:
    tpl = "Failed password for <*> from <IP> port <NUM>"
    grouper = IncidentGrouper(60.0)
    first = grouper.add([anomaly("app.log", T0, template=tpl, severity=70)])
    assert first[0].kinds == (KIND_SINGLE,)
    assert (
        first[0].title
        == "app.log: 1 anomaly, new template 'Failed password for <*> from <IP> port <NUM>'"
    )
    # Three minutes later, past the gap, the same message in a sibling application's log.
    later = [
        anomaly("app2.log", T0 + timedelta(minutes=3, seconds=i), template=tpl, offset=80 * i)
        for i in range(3)
    ]
    out = grouper.add(later)
    assert len(out) == 1 and out[0].id == first[0].id
    inc = out[0]
    assert inc.kinds == (KIND_SPREADING,)
    assert inc.title == (
        "new template 'Failed password for <*> from <IP> port <NUM>' spreading over "
        "2 streams: app.log, app2.log"
    )
    assert [(s.stream, s.count) for s in inc.streams] == [("app2.log", 3), ("app.log", 1)]
    assert inc.templates == (tpl,)
    assert inc.count == 4


def test_rotated_siblings_of_one_stream_spread_over_files() -> None:
    tpl = "disk quota exceeded for volume <*>"
    grouper = IncidentGrouper(60.0)
    grouper.add([anomaly("app.log", T0, template=tpl, path="/var/log/app.log.1")])
    out = grouper.add([anomaly("app.log", T0 + timedelta(minutes=4), template=tpl)])
    assert out[0].kinds == (KIND_SPREADING,)
    assert out[0].title.endswith("spreading over 2 files: /var/log/app.log, /var/log/app.log.1")


def test_far_apart_anomalies_are_separate_incidents_and_close() -> None:
    grouper = IncidentGrouper(60.0)
    a = grouper.add([anomaly("auth.log", T0, template="session opened for user <*> by root")])
    b = grouper.add(
        [
            anomaly("auth.log", T0 + timedelta(hours=1), template="connection reset by peer <*>"),
            anomaly(
                "auth.log",
                T0 + timedelta(hours=2),
                template="session opened for user <*> by root",  # same template, long after
                offset=800,
            ),
        ]
    )
    assert len({a[0].id, b[0].id, b[1].id}) == 3
    assert [i.title for i in b] == [
        "auth.log: 1 anomaly, new template 'connection reset by peer <*>'",
        "auth.log: 1 anomaly, new template 'session opened for user <*> by root'",
    ]
    assert grouper.open_count == 3
    # Nothing can join the first two any more by the time of the third plus its spread.
    done = grouper.expire((T0 + timedelta(hours=2, minutes=5)).timestamp())
    assert [i.id for i in done] == [a[0].id, b[0].id] and all(i.closed for i in done)
    assert grouper.open_count == 1
    assert len(grouper.flush()) == 1 and grouper.open_count == 0


def test_a_quiet_trickle_in_one_stream_is_one_incident_until_it_stops() -> None:
    grouper = IncidentGrouper(60.0)
    for i in range(10):  # one every 40 s, each a different message
        out = grouper.add(
            [
                anomaly(
                    "db.log", T0 + timedelta(seconds=40 * i), template=f"slow query <*> plan {i} x"
                )
            ]
        )
    assert len(out) == 1 and out[0].count == 10
    assert out[0].kinds == (KIND_SINGLE,)
    assert out[0].title.startswith("db.log: 10 anomalies, new template ")


def test_a_flagged_window_joins_the_anomalies_of_its_time() -> None:
    grouper = IncidentGrouper(60.0)
    start = T0.timestamp()
    verdict = WindowVerdict(
        start,
        start + 60.0,
        0.71,
        25.0,
        0.001,
        100,
        (
            StreamContribution("db.log", 19.0, 0, 340.0, 0, 0),
            StreamContribution("app.log", 2.5, 230, 205.0, 1, 55),
        ),
        True,
    )
    ignored = WindowVerdict(start + 3600, start + 3660, 0.5, 1.0, 0.2, 20, (), True)
    line = anomaly("app.log", T0 + timedelta(seconds=20), template="request timed out after <*>")
    out = grouper.add([line], windows=[verdict, ignored])
    assert len(out) == 1
    inc = out[0]
    assert inc.kinds == (KIND_WINDOW,) and inc.windows == 1 and inc.severity == 100
    assert [s.stream for s in inc.streams] == ["db.log", "app.log"]
    assert inc.title == "2 streams abnormal at 10:04: db.log, app.log"
    # A window with no anomaly around is an incident of its own.
    silent = StreamContribution("db.log", 30.0, 0, 340.0, 0, 0)
    later = WindowVerdict(start + 7200, start + 7260, 0.7, 30.0, 0.001, 100, (silent,), True)
    alone = grouper.add([], windows=[later])
    assert alone[0].title == "1 stream abnormal at 12:04: db.log"
    assert alone[0].lines == () and alone[0].count == 0


def test_an_anomalous_session_is_one_incident() -> None:
    grouper = IncidentGrouper(60.0)
    session = SessionEvidence(
        "hdfs.log",
        "blk_-1608999687919862906",
        T0.timestamp(),
        T0.timestamp() + 30,
        81,
        ("template 'Receiving block <*>' expected 3 times, seen 1",),
    )
    nearby = anomaly(
        "hdfs.log", T0 + timedelta(seconds=5), template="PacketResponder <*> terminating"
    )
    out = grouper.add([nearby], sessions=[session])
    assert len(out) == 2  # a session is its own incident, not a time window's
    inc = next(i for i in out if KIND_SESSION in i.kinds)
    assert inc.title == (
        "hdfs.log: anomalous session blk_-1608999687919862906 "
        "(template 'Receiving block <*>' expected 3 times, seen 1)"
    )
    assert inc.sessions == ("blk_-1608999687919862906",) and inc.severity == 81
    # The same session reported again (its tail closed later) updates the same incident.
    again = grouper.add([], sessions=[session])
    assert [i.id for i in again] == [inc.id]


def test_open_incidents_are_capped() -> None:
    grouper = IncidentGrouper(60.0, max_open=3)
    closed = []
    for i in range(5):
        out = grouper.add(
            [anomaly("a.log", T0 + timedelta(hours=i), template=f"error {i} in module <*> now")]
        )
        closed += [x for x in out if x.closed]
    assert grouper.open_count == 3
    assert len(closed) == 2 and closed[0].first_time < closed[1].first_time


def test_time_falls_back_to_detection_and_generic_templates_do_not_spread() -> None:
    no_ts = anomaly("a.log", T0, template="x <*>", timestamp=False)
    assert anomaly_time(no_ts) == (T0 + timedelta(seconds=2)).timestamp()
    assert template_key("<*> <NUM> <*>") is None
    assert template_key("Failed password for <NUM>") == "Failed password for <*>"
