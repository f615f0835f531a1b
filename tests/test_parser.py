"""Tests of the parse stage: header layouts on real lines, JSON lines, multi-line events."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logwatch.parser import group_events, parse_line
from logwatch.records import ParsedLine, RawLine

DATA = Path(__file__).parents[1].parent / "shared" / "data"
LOGHUB = DATA / "loghub"
SYSTEMS = [
    "Android", "Apache", "HPC", "Hadoop", "HealthApp", "Linux",
    "Mac", "OpenSSH", "Proxifier", "Spark", "Windows", "Zookeeper",
]  # fmt: skip
PLUS1 = timezone(timedelta(hours=1))


def p(text: str) -> ParsedLine:
    return parse_line(text, default_year=2026)


# --- syslog ----------------------------------------------------------------------------------


def test_rfc3164_with_pid() -> None:
    r = p("Mar  3 10:15:02 web01 sshd[1234]: Accepted password for root from 10.0.0.5 port 22")
    assert r.layout == "syslog"
    assert r.message == "Accepted password for root from 10.0.0.5 port 22"
    assert r.timestamp == datetime(2026, 3, 3, 10, 15, 2)
    assert (r.host, r.process, r.pid) == ("web01", "sshd", 1234)


def test_rfc3164_without_pid_and_process_with_spaces() -> None:
    r = p("Jun 14 15:16:02 combo kernel: Out of memory: Kill process 812")
    assert (r.process, r.pid, r.message) == ("kernel", None, "Out of memory: Kill process 812")
    r = p("Jul  4 23:22:09 mac-1 Microsoft Word[14463]: Cocoa scripting error for '0x00660011'")
    assert (r.process, r.pid) == ("Microsoft Word", 14463)
    assert r.message == "Cocoa scripting error for '0x00660011'"


def test_rfc3164_year_defaults_to_the_given_year() -> None:
    assert parse_line("Dec 31 23:59:59 h cron: x", default_year=2025).timestamp == datetime(
        2025, 12, 31, 23, 59, 59
    )


def test_rsyslog_iso_prefix() -> None:
    r = p("2026-03-03T10:15:02.123456+01:00 web01 sshd[1234]: Failed password for bob")
    assert r.layout == "syslog"
    assert r.timestamp == datetime(2026, 3, 3, 10, 15, 2, 123456, tzinfo=PLUS1)
    assert (r.host, r.process, r.pid, r.message) == (
        "web01",
        "sshd",
        1234,
        "Failed password for bob",
    )


def test_rfc5424() -> None:
    r = p("<34>1 2026-03-03T10:15:02.003Z mymachine.example.com su 1234 ID47 - 'su root' failed")
    assert r.layout == "rfc5424"
    assert r.message == "'su root' failed"
    assert r.timestamp == datetime(2026, 3, 3, 10, 15, 2, 3000, tzinfo=UTC)
    assert (r.host, r.process, r.pid, r.level) == ("mymachine.example.com", "su", 1234, "CRITICAL")
    assert r.fields["msgid"] == "ID47"
    r = p('<165>1 2026-03-03T10:15:02Z h app - - [ex@32473 iut="3"] An application event')
    assert (r.message, r.pid, r.level) == ("An application event", None, "NOTICE")


def test_rfc3164_with_pri() -> None:
    r = p("<11>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick")
    assert (r.layout, r.level, r.host, r.process) == ("syslog", "ERROR", "mymachine", "su")
    assert r.message == "'su root' failed for lonvick"


# --- application layouts ---------------------------------------------------------------------


def test_log4j_with_thread_and_logger() -> None:
    r = p("2026-03-03 10:15:02,123 INFO  [http-nio-8080-exec-1] com.x.Y - Request served in 12 ms")
    assert r.message == "Request served in 12 ms"
    assert r.timestamp == datetime(2026, 3, 3, 10, 15, 2, 123000)
    assert (r.level, r.process) == ("INFO", "com.x.Y")


def test_logback_layouts_with_the_thread_before_the_level() -> None:
    # logback's default pattern "%d{HH:mm:ss.SSS} [%thread] %-5level %logger{36} - %msg"
    r = p("10:15:02.123 [main] INFO  com.example.Application - Started Application in 3.2 seconds")
    assert (r.layout, r.level, r.process) == ("time", "INFO", "com.example.Application")
    assert r.message == "Started Application in 3.2 seconds"
    r = p("2026-03-03 10:15:02.123 [http-nio-8080-exec-1] WARN  o.h.e.j.s.SqlExceptionHelper - x")
    assert (r.level, r.process, r.message) == ("WARN", "o.h.e.j.s.SqlExceptionHelper", "x")
    assert r.timestamp == datetime(2026, 3, 3, 10, 15, 2, 123000)
    assert p("10:15:02 is when it broke").layout == "plain"  # a bare time starts a sentence


def test_iso_with_zone_and_warning() -> None:
    r = p("2026-03-03T10:15:02.123+01:00 WARN disk /var is 91% full")
    assert (r.level, r.message) == ("WARN", "disk /var is 91% full")
    assert r.timestamp == datetime(2026, 3, 3, 10, 15, 2, 123000, tzinfo=PLUS1)
    assert p("2026-03-03 10:15:02 +0000 WARNING x").timestamp == datetime(
        2026, 3, 3, 10, 15, 2, tzinfo=UTC
    )


def test_python_logging_layouts() -> None:
    r = p("2026-03-03 10:15:02,123 - myapp.db - ERROR - connection lost")
    assert (r.level, r.process, r.message) == ("ERROR", "myapp.db", "connection lost")
    r = p("CRITICAL:root:disk on fire")
    assert (r.layout, r.level, r.process, r.message) == (
        "python-basic",
        "CRITICAL",
        "root",
        "disk on fire",
    )


def test_levels_in_brackets() -> None:
    r = p("2026-03-03 10:15:02 [ERROR] payment declined")
    assert (r.level, r.message) == ("ERROR", "payment declined")
    r = p("[WARNING] cache almost full")
    assert (r.layout, r.level, r.message) == ("level", "WARN", "cache almost full")
    r = p("[2026-03-03T10:15:02Z] [crit] kernel panic")
    assert (r.level, r.message, r.timestamp) == (
        "CRITICAL",
        "kernel panic",
        datetime(2026, 3, 3, 10, 15, 2, tzinfo=UTC),
    )


def test_lower_case_word_after_timestamp_is_message() -> None:
    # "error" right after the timestamp is as likely the first word of the message.
    r = p("2026-03-03 10:15:02 error reading config")
    assert (r.level, r.message) == (None, "error reading config")


# --- web servers -----------------------------------------------------------------------------


def test_combined_access_log() -> None:
    line = (
        '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 '
        '"http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"'
    )
    r = p(line)
    assert r.layout == "access"
    assert r.host == "127.0.0.1"
    assert r.timestamp == datetime(2000, 10, 10, 13, 55, 36, tzinfo=timezone(-timedelta(hours=7)))
    assert r.message == line[line.index('"GET') :]


def test_common_access_log() -> None:
    r = p('10.1.2.3 - - [03/Mar/2026:10:15:02 +0000] "POST /api/login HTTP/1.1" 401 12')
    assert (r.host, r.message) == ("10.1.2.3", '"POST /api/login HTTP/1.1" 401 12')
    assert r.timestamp is not None and r.timestamp.tzinfo is not None


def test_apache_error_logs() -> None:
    r = p("[Sun Dec 04 04:47:44 2005] [error] mod_jk child workerEnv in error state 6")
    assert (r.layout, r.level, r.message) == (
        "apache-error",
        "ERROR",
        "mod_jk child workerEnv in error state 6",
    )
    assert r.timestamp == datetime(2005, 12, 4, 4, 47, 44)
    r = p(
        "[Wed Oct 11 14:32:52.123456 2000] [core:error] [pid 35708:tid 4328636416] "
        "[client 72.15.99.187] File does not exist: /favicon.ico"
    )
    assert (r.level, r.pid) == ("ERROR", 35708)
    assert r.message == "[client 72.15.99.187] File does not exist: /favicon.ico"


def test_nginx_error_log() -> None:
    r = p('2026/03/03 10:15:02 [error] 1234#0: *5 open() "/x" failed (2: No such file)')
    assert (r.level, r.pid, r.timestamp) == ("ERROR", 1234, datetime(2026, 3, 3, 10, 15, 2))
    assert r.message == '*5 open() "/x" failed (2: No such file)'


# --- epochs ----------------------------------------------------------------------------------


def test_epoch_seconds_and_millis() -> None:
    want = datetime(2024, 3, 3, 10, 20, 34, tzinfo=UTC)
    assert p("1709461234 job finished").timestamp == want
    r = p("1709461234123 job finished")
    assert (r.layout, r.message, r.timestamp) == (
        "epoch",
        "job finished",
        want + timedelta(milliseconds=123),
    )


def test_bgl_style_epoch_columns() -> None:
    r = p(
        "- 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872 "
        "R02-M1-N0-C:J12-U11 RAS KERNEL INFO instruction cache parity error corrected"
    )
    assert (r.level, r.message) == ("INFO", "instruction cache parity error corrected")
    assert r.timestamp == datetime(2005, 6, 3, 22, 42, 50, tzinfo=UTC)


def test_small_numbers_are_not_epochs() -> None:
    assert p("12345 is a number").layout == "plain"
    assert p("user 42 logged in 99 times").layout == "plain"
    # an epoch-sized id inside a sentence is not a header
    assert p("user 1234567890 logged in").message == "user 1234567890 logged in"


def test_stacked_pri_does_not_recurse() -> None:
    r = p("<1>" * 3000)
    assert r.level == "FATAL" and r.message.startswith("<1>")


# --- plain -----------------------------------------------------------------------------------


def test_plain_line_finds_a_standalone_level() -> None:
    r = p("  something FATAL happened here  ")
    assert (r.layout, r.message, r.level) == ("plain", "something FATAL happened here", "FATAL")
    assert p("ERRORS are not a level word").level is None
    assert p("").message == ""


@given(st.text())
def test_parse_line_never_raises(text: str) -> None:
    r = parse_line(text)
    assert isinstance(r.message, str)


@given(st.text(alphabet="0123456789-:/.T Z+[]{}<>|\"'#,abcINFOERWJanDec", max_size=80))
def test_parse_line_never_raises_on_header_like_text(text: str) -> None:
    parse_line(text)


# --- JSON ------------------------------------------------------------------------------------


def test_json_line_flattened() -> None:
    r = p(
        '{"@timestamp":"2026-03-03T10:15:02.123Z","log":{"level":"error"},"message":"boom",'
        '"httpRequest":{"country":"US","headers":[{"name":"a"}]},"n":3,"ok":true,"x":null}'
    )
    assert (r.layout, r.message, r.level) == ("json", "boom", "ERROR")
    assert r.timestamp == datetime(2026, 3, 3, 10, 15, 2, 123000, tzinfo=UTC)
    assert dict(r.fields) == {
        "httpRequest.country": "US",
        "httpRequest.headers": '[{"name": "a"}]',
        "n": 3,
        "ok": True,
        "x": None,
    }


def test_json_numeric_time_and_level() -> None:
    r = p('{"time":1709461234,"level":30,"msg":"hello","pid":42,"hostname":"h1"}')
    assert (r.message, r.level, r.host, r.pid) == ("hello", "INFO", "h1", 42)
    assert r.timestamp == datetime(2024, 3, 3, 10, 20, 34, tzinfo=UTC)


def test_waf_style_json_without_message() -> None:
    r = p(
        '{"timestamp":1709461234123,"action":"BLOCK","terminatingRuleId":"AWS-SQLi",'
        '"httpRequest":{"clientIp":"1.2.3.4","country":"US","uri":"/login"}}'
    )
    assert r.timestamp == datetime(2024, 3, 3, 10, 20, 34, 123000, tzinfo=UTC)
    assert r.message == (
        "action=BLOCK terminatingRuleId=AWS-SQLi httpRequest.clientIp=1.2.3.4 "
        "httpRequest.country=US httpRequest.uri=/login"
    )


def test_invalid_json_is_plain() -> None:
    assert p('{"a": 1').layout == "plain"
    assert p("{not json} ERROR").level == "ERROR"


# --- loghub ----------------------------------------------------------------------------------


@pytest.mark.parametrize("system", SYSTEMS)
def test_loghub_content_matches(system: str) -> None:
    folder = LOGHUB / system
    if not folder.is_dir():
        pytest.skip(f"loghub samples not found in {LOGHUB} (shared data not mounted)")
    with open(folder / f"{system}_2k.log_structured.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    lines = (folder / f"{system}_2k.log").read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(rows)
    same = with_ts = level_wanted = level_ok = 0
    for row, line in zip(rows, lines, strict=True):
        r = p(line)
        same += r.message.split() == row["Content"].split()
        with_ts += r.timestamp is not None
        # Linux's "Level" column holds the host name: only compare values that are levels.
        want = parse_line(f"[{row['Level']}] x").level if row.get("Level") else None
        if want is not None:
            level_wanted += 1
            level_ok += r.level == want
    assert same / len(rows) >= 0.95, f"{system}: message == Content for {same}/{len(rows)}"
    assert with_ts / len(rows) >= 0.95, f"{system}: timestamp found for {with_ts}/{len(rows)}"
    assert level_ok == level_wanted, f"{system}: level right for {level_ok}/{level_wanted}"


# --- multi-line events -----------------------------------------------------------------------


def raw(*texts: str, truncated: int = -1) -> list[RawLine]:
    out, offset = [], 0
    for i, t in enumerate(texts):
        out.append(RawLine(offset, i + 1, t, truncated=i == truncated))
        offset += len(t.encode()) + 1
    return out


JAVA = [
    "2026-03-03 10:15:02,123 ERROR [main] com.x.Api - Request failed",
    "java.lang.NullPointerException: user is null",
    "\tat com.x.Api.handle(Api.java:42)",
    "\tat com.x.Server.run(Server.java:7)",
    "Caused by: java.io.IOException: closed",
    "\t... 2 more",
    "2026-03-03 10:15:03,000 INFO  [main] com.x.Api - next",
]


def test_java_trace_is_one_event() -> None:
    events, consumed = group_events(raw(*JAVA), final=True)
    assert consumed == len(JAVA)
    assert [e.n_lines for e in events] == [6, 1]
    first = events[0]
    assert first.text == "\n".join(JAVA[:6])
    assert first.parsed.message == "Request failed java.lang.NullPointerException: user is null"
    assert first.parsed.level == "ERROR"
    lines = raw(*JAVA)
    assert first.end_offset == lines[6].offset
    assert events[1].offset == lines[6].offset and events[1].line_no == 7


def test_python_traceback_is_one_event() -> None:
    texts = [
        "2026-03-03 10:15:02,123 - app - ERROR - handler crashed",
        "Traceback (most recent call last):",
        '  File "app.py", line 3, in <module>',
        "    main()",
        "ValueError: bad literal",
    ]
    events, _ = group_events(raw(*texts), final=True)
    assert len(events) == 1 and events[0].n_lines == 5
    assert events[0].parsed.message == "handler crashed ValueError: bad literal"


def test_indented_continuation_lines_join_their_event() -> None:
    lines = raw(
        "2026-03-03 10:15:02,123 INFO  [main] com.x.Cfg - Loaded configuration:",
        "    db.url = jdbc:postgresql://db:5432/app",
        "    pool.size = 10",
        "2026-03-03 10:15:03,000 INFO  [main] com.x.Api - ready",
    )
    events, consumed = group_events(lines, final=True)
    assert [e.n_lines for e in events] == [3, 1] and consumed == 4
    assert events[0].parsed.message.startswith("Loaded configuration:")


def test_plain_logs_are_never_merged() -> None:
    texts = ["starting up", "  indented detail", "ValueError: bad"]
    events, consumed = group_events(raw(*texts), final=False)
    assert [e.n_lines for e in events] == [1, 1, 1] and consumed == 3


def test_line_with_its_own_header_starts_an_event() -> None:
    texts = ["Mar  3 10:15:02 h app[1]: a", " Mar  3 10:15:03 h app[1]: b"]
    events, _ = group_events(raw(*texts), final=True)
    assert [e.n_lines for e in events] == [1, 1]


def test_last_event_is_held_back_until_final() -> None:
    lines = raw(*JAVA[:4])
    events, consumed = group_events(lines, final=False)
    assert (events, consumed) == ([], 0)
    lines = raw(*JAVA)
    events, consumed = group_events(lines, final=False)
    assert [e.n_lines for e in events] == [6] and consumed == 6
    events, consumed = group_events(lines[consumed:], final=True)
    assert [e.n_lines for e in events] == [1] and consumed == 1


def test_blank_lines_are_dropped() -> None:
    texts = ["", JAVA[0], "   ", JAVA[1], "", JAVA[6], "  "]
    events, consumed = group_events(raw(*texts), final=False)
    # the blank inside the trace is dropped; the last event and the blank after it wait
    assert [e.n_lines for e in events] == [2] and consumed == 5
    assert events[0].text == f"{JAVA[0]}\n{JAVA[1]}"
    events, consumed = group_events(raw("", " ", "\t"), final=False)
    assert (events, consumed) == ([], 3)


def test_event_cap_starts_a_new_event_that_keeps_growing() -> None:
    texts = [JAVA[0]] + [f"\tat f{i}(X.java:{i})" for i in range(7)]
    events, consumed = group_events(raw(*texts), final=True, max_event_lines=3)
    assert [e.n_lines for e in events] == [3, 3, 2] and consumed == 8


def test_truncated_line_flags_its_event() -> None:
    events, _ = group_events(raw(*JAVA, truncated=2), final=True)
    assert [e.truncated for e in events] == [True, False]
