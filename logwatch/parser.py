"""The parse stage: header fields (time, host, process, pid, level) and multi-line events.

``parse_line`` needs no configuration: it dispatches on the first character of the line to a few
anchored regexes compiled at import, so a typical line costs one or two regex matches. ``message``
is the body with the header stripped, because that is what gets templated: a timestamp or a pid
left in it would make every line look new. ``group_events`` joins stack-trace lines to their event.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import TypeVar

from logwatch.records import Event, FieldValue, ParsedLine, RawLine

T = TypeVar("T")

_LEVELS = {
    alias: level
    for level, aliases in (
        ("TRACE", "TRACE FINEST VERBOSE V"),
        ("DEBUG", "DEBUG DBG FINE FINER D"),
        ("INFO", "INFO INFORMATION I"),
        ("NOTICE", "NOTICE"),
        ("WARN", "WARN WARNING W"),
        ("ERROR", "ERROR ERR SEVERE E"),
        ("CRITICAL", "CRITICAL CRIT"),
        ("FATAL", "FATAL EMERG EMERGENCY ALERT PANIC F"),
    )
    for alias in aliases.split()
}
# Syslog severity (PRI % 8) and bunyan/pino numeric levels.
_SYSLOG_SEVERITY = ("FATAL", "FATAL", "CRITICAL", "ERROR", "WARN", "NOTICE", "INFO", "DEBUG")
_NUMERIC_LEVELS = {10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL"}
_MONTHS = {m: i for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)}

# Level words longest first, so INFORMATION wins over INFO. A bare word must be UPPER case or one
# of the common Title-case words (Windows writes "Info"); lower case only counts in brackets
# ("[error]"), because "error" right after a timestamp is as likely the first word of the message.
_WORDS = sorted((w for w in _LEVELS if len(w) > 1), key=len, reverse=True)
_UPPER = "|".join(_WORDS)
_TITLE = "Information|Info|Warning|Warn|Error|Debug|Trace|Notice|Critical|Fatal|Verbose"
_BARE = f"{_UPPER}|{_TITLE}"
_LEVEL = rf"(?:\[(?:(?:\w+:)?(?P<blevel>(?i:{_UPPER})))\]|(?P<level>{_BARE})(?![\w.]))"
_MON = "|".join(_MONTHS)
_TZ = r"(?P<tz>Z|[+-]\d\d:?\d\d)(?![\w:])"

# Date and time at the start of a line: Y-M-D (also / and .), compact YYYYMMDD (HealthApp),
# yy/mm/dd (log4j's default in Spark), or mm-dd / mm.dd without a year (Android logcat, Proxifier).
_TS = re.compile(
    r"(?:(?P<Y>\d{4})(?P<sep>[-/.])(?P<m>\d\d?)(?P=sep)(?P<d>\d\d?)|(?P<Yc>\d{4})(?P<mc>\d\d)"
    r"(?P<dc>\d\d)|(?P<y2>\d\d)/(?P<m2>\d\d)/(?P<d2>\d\d)|(?P<m3>\d\d)[-.](?P<d3>\d\d))"
    r"(?:T| +|-)(?P<H>\d\d?):(?P<M>\d\d?):(?P<S>\d\d?)(?:(?P<fs>[.,:])(?P<f>\d{1,9}))?"
    rf"(?: ?{_TZ})?"
)
# What follows a timestamp when a level is there: "- name - LEVEL -" (Python logging), logcat's
# "pid tid L", "[LEVEL]", nginx "pid#tid:", "[thread]", and a logger ended by ': ', ' - ' or a
# padded column ("Info   CBS    msg"), then the message.
_AFTER_TS = re.compile(
    r"[\s,|-]*(?:(?P<name>[^\s\[\]]+) - (?=\[?(?i:" + _UPPER + r")\b))?"
    # logback's "[thread] LEVEL logger - msg": the thread before the level.
    r"(?:\[(?P<thread0>[^\[\]]*)\] +(?=(?:" + _UPPER + r")\b))?"
    r"(?:(?P<lpid>\d+) +(?P<tid>\d+) +(?P<letter>[VDIWEF]) +|" + _LEVEL + r"[\s:|-]*)"
    r"(?:(?P<npid>\d+)#\d+: +)?"
    r"(?:\[(?P<thread>(?:[^\[\]]|\[[^\[\]]*\])*)\] *)?"
    r"(?:- +|(?P<logger>[^\s\[\]]+?)(?:: +|:$| +- +| {2,}))?",
)
_CLOCK = re.compile(r"\d\d:\d\d:\d\d[.,]\d{3} (?=\[|(?:" + _UPPER + r")\b)")
_PIPE = re.compile(r"\|(?P<proc>[^|]*)\|(?:(?P<pid>\d+)\|)?")  # ts|component|pid|message
# A syslog tag: "sshd[1234]:", "sshd(pam_unix)[1]:", "kernel:", "syslogd 1.4.1:", "x[1] (detail):".
# A name with spaces ("Microsoft Word[1]:") only counts when a pid follows it.
_TAG = (
    r"(?:(?P<proc>[^\s\[\]:]+(?: [^\s\[\]:]+){0,3})\[(?P<pid>\d+)\]"
    r"|(?P<proc2>[^\s\[\]:]+(?: [\d.]+)?))(?: \([^)]*\))?: *"
)
_HOST_TAG = re.compile(rf"(?P<host>\S+) +(?:{_TAG})?")
_PROC_DASH = re.compile(r"(?P<proc>\S+(?: [*(]\S*)?) - ")  # "[ts] chrome.exe *64 - msg"
_RFC3164 = re.compile(
    rf"(?P<mon>{_MON}) +(?P<d>\d\d?) (?P<H>\d\d):(?P<M>\d\d):(?P<S>\d\d)(?:\.(?P<f>\d+))?"
    rf"(?: (?P<Y>\d{{4}}))? +(?P<host>\S+) +(?:{_TAG})?"
)
_RFC5424 = re.compile(
    r"(?P<v>\d\d?) (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<pid>\S+) (?P<msgid>\S+) "
    r"(?P<sd>-|(?:\[(?:[^\]\\]|\\.)*\])+) ?\ufeff?"
)
_APACHE_ERR = re.compile(
    rf"\[\w{{3}} (?P<mon>{_MON}) +(?P<d>\d\d?) (?P<H>\d\d):(?P<M>\d\d):(?P<S>\d\d)(?:\.(?P<f>\d+))?"
    r" (?P<Y>\d{4})\] *(?:\[(?:\w+:)?(?P<level>\w+)\] *)?(?:\[pid (?P<pid>\d+)[^\]]*\] *)?"
)
_ACCESS = re.compile(
    rf"(?P<host>\S+) \S+ \S+ \[(?P<d>\d\d)/(?P<mon>{_MON})/(?P<Y>\d{{4}}):(?P<H>\d\d):(?P<M>\d\d)"
    r':(?P<S>\d\d)(?:\.(?P<f>\d+))?(?: (?P<tz>[+-]\d{4}))?\] (?=")'
)
_PY_BASIC = re.compile(rf"(?P<level>{_UPPER}):(?P<name>[^\s:]*):")  # logging.basicConfig()
_LEADING_LEVEL = re.compile(_LEVEL + r"[\s:]*")
_PLAIN_LEVEL = re.compile(rf"\b({_UPPER})\b")
_EPOCH = re.compile(r"(\d{10}(?:\.\d{1,9})?|\d{13})$")
_EPOCH_NEAR = re.compile(r"(?:\S+ +){0,4}(?:\d{10}|\d{13})(?:[.\s]|$)")  # cheap gate for _epoch
_TOKEN = re.compile(r"\S+")
_FLAG = re.compile(r"-?\d$")
_TZ_CACHE: dict[str, timezone] = {"Z": UTC}


def parse_line(text: str, *, default_year: int | None = None) -> ParsedLine:
    """Split one line into header fields and the message; never raises.

    ``default_year`` is used for timestamps that state no year (syslog, logcat); None means the
    current year, or the previous one when the month would lie in the future (a December line read
    in January).
    """
    s = text.strip()
    if not s:
        return ParsedLine(message="")
    try:
        parsed = _dispatch(s, default_year)
    except Exception:  # noqa: BLE001 - a parser bug must cost one line's header, not the pipeline
        parsed = None
    return parsed if parsed is not None else _plain(s)


def _dispatch(s: str, year: int | None) -> ParsedLine | None:
    c = s[0]
    if c == "{":
        return _json(s)
    if '] "' in s and (m := _ACCESS.match(s)):  # cheap substring test before the regex
        ts = _dt(int(m["Y"]), _MONTHS[m["mon"]], int(m["d"]), m, m["tz"])
        return ParsedLine(s[m.end() :], ts, host=m["host"], layout="access")
    if "0" <= c <= "9":
        if m := _TS.match(s):
            layout = "iso" if m["Y"] else "timestamp"
            return _after_ts(s, m.end(), _ts(m, year), bool(m["tz"]), layout)
        if m := _CLOCK.match(s):  # logback's default: a time of day without a date
            return _after_ts(s, m.end(), None, False, "time")
    if c == "[":
        if m := _APACHE_ERR.match(s):
            ts = _dt(int(m["Y"]), _MONTHS[m["mon"]], int(m["d"]), m)
            lv, pid = m["level"], m["pid"]
            return ParsedLine(
                s[m.end() :],
                ts,
                _LEVELS.get(lv.upper()) if lv else None,
                pid=int(pid) if pid else None,
                layout="apache-error",
            )
        if (end := s.find("]", 1, 48)) > 0 and (m := _TS.fullmatch(s, 1, end)):
            return _after_ts(s, end + 1, _ts(m, year), bool(m["tz"]), "bracket-timestamp")
        if m := _LEADING_LEVEL.match(s):
            return ParsedLine(s[m.end() :], level=_level(m), layout="level")
        return None
    if c == "<":
        return _syslog_pri(s, year)
    if (m := _RFC3164.match(s)) is not None:
        mon, day = _MONTHS[m["mon"]], int(m["d"])
        ts = _dt(int(m["Y"]) if m["Y"] else _year(year, mon), mon, day, m)
        pid = int(m["pid"]) if m["pid"] else None
        proc = m["proc"] or m["proc2"]
        return ParsedLine(s[m.end() :], ts, None, m["host"], proc, pid, layout="syslog")
    if (m := _PY_BASIC.match(s)) is not None:
        return ParsedLine(
            s[m.end() :],
            level=_LEVELS[m["level"]],
            process=m["name"] or None,
            layout="python-basic",
        )
    return _epoch(s) if _EPOCH_NEAR.match(s) else None


def _after_ts(s: str, pos: int, ts: datetime | None, zoned: bool, layout: str) -> ParsedLine:
    """Parse what follows a timestamp: a level and its company, or a syslog/pipe/dash header."""
    if (a := _AFTER_TS.match(s, pos)) is not None:
        pid_s = a["lpid"] or a["npid"]
        return ParsedLine(
            s[a.end() :],
            ts,
            _level(a),
            None,
            a["logger"] or a["name"] or None,
            int(pid_s) if pid_s else None,
            layout=layout,
        )
    while pos < len(s) and s[pos] in " ,-":
        pos += 1
    if (p := _PIPE.match(s, pos)) is not None:
        pid = int(p["pid"]) if p["pid"] else None
        return ParsedLine(s[p.end() :], ts, process=p["proc"], pid=pid, layout=layout)
    # rsyslog writes RFC 3339 timestamps before "host tag:"; require a zone or a pid so that
    # "ts word word: text" is not mistaken for a host and a process.
    h = _HOST_TAG.match(s, pos)
    if h is not None and (h["proc"] or h["proc2"]) and (h["pid"] or zoned):
        pid = int(h["pid"]) if h["pid"] else None
        proc = h["proc"] or h["proc2"]
        return ParsedLine(s[h.end() :], ts, None, h["host"], proc, pid, layout="syslog")
    if (p := _PROC_DASH.match(s, pos)) is not None:
        return ParsedLine(s[p.end() :], ts, process=p["proc"], layout=layout)
    return ParsedLine(s[pos:], ts, _plain_level(s[pos:]), layout=layout)


def _epoch(s: str) -> ParsedLine | None:
    """Epoch seconds or milliseconds as one of the first five columns (HPC, BGL, plain epochs).

    An epoch after other columns only counts when the first column is a row id or label ("-",
    digits, CAPS), as in table dumps; otherwise "user 1234567890 logged in" would lose its start.
    After such an inner epoch comes either a run of columns ending in a level word (BGL) or one
    numeric flag column (HPC); both belong to the header.
    """
    toks: list[re.Match[str]] = []
    for t in _TOKEN.finditer(s):
        toks.append(t)
        if len(toks) == 15:
            break
    head = toks[0][0] if toks else ""
    table = head == "-" or head.isdecimal() or (head.isalpha() and head.isupper())
    for i, t in enumerate(toks[: 5 if table else 1]):
        tok = t[0]
        if not _EPOCH.match(tok):
            continue
        secs = float(tok) / (1000 if len(tok) == 13 else 1)
        if not 946684800 <= secs < 4102444800:  # 2000..2100: anything else is just a number
            continue
        k, level = i + 1, None
        for j in range(k, min(k + 9, len(toks) - 1)):
            w = toks[j][0]
            if len(w) > 1 and w.isupper() and w in _LEVELS:
                k, level = j + 1, _LEVELS[w]
                break
        else:
            if i and k + 1 < len(toks) and _FLAG.match(toks[k][0]):
                k += 1
        if k >= len(toks):
            return None
        return ParsedLine(
            s[toks[k].start() :], datetime.fromtimestamp(secs, UTC), level, layout="epoch"
        )
    return None


def _syslog_pri(s: str, year: int | None) -> ParsedLine | None:
    """``<PRI>`` then RFC 5424 (``<34>1 ts host app pid msgid sd msg``) or RFC 3164."""
    end = s.find(">", 1, 5)
    if end < 0 or not s[1:end].isdecimal():
        return None
    level = _SYSLOG_SEVERITY[int(s[1:end]) % 8]
    if (m := _RFC5424.match(s, end + 1)) is not None:
        fields: dict[str, FieldValue] = {}
        if m["msgid"] != "-":
            fields["msgid"] = m["msgid"]
        if m["sd"] != "-":
            fields["structured_data"] = m["sd"]
        pid = m["pid"]
        return ParsedLine(
            s[m.end() :],
            _iso(m["ts"]),
            level,
            _nil(m["host"]),
            _nil(m["app"]),
            int(pid) if pid.isdecimal() else None,
            fields,
            "rfc5424",
        )
    rest = s[end + 1 :].lstrip()
    inner = _dispatch(rest, year) if rest and rest[0] != "<" else None
    if inner is None:
        return ParsedLine(rest, level=level, layout="syslog")  # the PRI is a header too
    return dataclasses.replace(inner, level=level)


def _nil(v: str) -> str | None:
    return None if v == "-" else v


def _json(s: str) -> ParsedLine | None:
    try:
        obj = json.loads(s)
    except ValueError:
        return None  # not JSON after all: plain text
    if not isinstance(obj, dict):
        return None
    flat: dict[str, FieldValue] = {}
    _flatten(obj, "", flat)
    if _UNSTORABLE_ESCAPE.search(s):
        # JSON escapes can bring back what the reader removed or never produced: NUL (PostgreSQL
        # text rejects it) and lone surrogates (not encodable as UTF-8). Both become U+FFFD.
        flat = {_clean(k): _clean(v) if isinstance(v, str) else v for k, v in flat.items()}
    message = ts = level = None
    for key in ("message", "msg", "log", "event", "@message"):
        if key in flat and flat[key] is not None:
            message = str(flat.pop(key)).strip()
            break
    for key in ("@timestamp", "timestamp", "time", "ts"):
        if key in flat:
            v = flat[key]
            if isinstance(v, str):
                ts = _from_epoch(float(v)) if v.isdecimal() else _iso(v)
            elif isinstance(v, int | float) and not isinstance(v, bool):
                ts = _from_epoch(float(v))
            if ts is not None:
                del flat[key]
                break
    for key in ("level", "severity", "lvl", "log.level"):
        v = flat.get(key)
        if isinstance(v, str) and v.upper() in _LEVELS:
            level = _LEVELS[v.upper()]
        elif isinstance(v, int) and v in _NUMERIC_LEVELS:
            level = _NUMERIC_LEVELS[v]
        if level is not None:
            del flat[key]
            break
    if message is None:  # e.g. AWS WAF: every field is a slot for templating
        message = " ".join(f"{k}={v}" for k, v in flat.items())
    host = _pick(flat, ("host", "hostname", "host.name"), str)
    proc = _pick(flat, ("logger", "logger_name", "service", "service.name", "process.name"), str)
    pid = _pick(flat, ("pid", "process.pid"), int)
    return ParsedLine(message, ts, level, host, proc, pid, flat, "json")


_UNSTORABLE_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


def _clean(text: str) -> str:
    text = text.replace("\x00", "\ufffd")
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def _pick(flat: Mapping[str, FieldValue], keys: tuple[str, ...], kind: type[T]) -> T | None:
    """The first of ``keys`` whose value is exactly of ``kind`` (so a bool is not a pid)."""
    return next((v for k in keys if type(v := flat.get(k)) is kind), None)


def _flatten(obj: Mapping[str, object], prefix: str, out: dict[str, FieldValue]) -> None:
    for k, v in obj.items():
        key = prefix + k
        if isinstance(v, dict):
            _flatten(v, key + ".", out)
        elif isinstance(v, list):
            out[key] = json.dumps(v, ensure_ascii=False)
        elif v is None or isinstance(v, str | int | float | bool):
            out[key] = v


def _plain(s: str) -> ParsedLine:
    return ParsedLine(s, level=_plain_level(s))


def _plain_level(s: str) -> str | None:
    # Levels sit near the start; scanning a 10 kB line for one would cost more than it finds.
    m = _PLAIN_LEVEL.search(s, 0, 200)
    return _LEVELS[m[1]] if m else None


def _level(m: re.Match[str]) -> str | None:
    # (``m.re is _AFTER_TS``, not ``"letter" in m.re.groupindex``: that builds a mapping a call)
    word = (m["letter"] if m.re is _AFTER_TS else None) or m["level"] or m["blevel"]
    return _LEVELS.get(word.upper()) if word else None


def _ts(m: re.Match[str], year: int | None) -> datetime | None:
    if m["Y"]:
        ys, ms, ds = m.group("Y", "m", "d")  # one call for three groups
        y, mo, d = int(ys), int(ms), int(ds)
    elif m["Yc"]:
        y, mo, d = int(m["Yc"]), int(m["mc"]), int(m["dc"])
    elif m["y2"]:
        y, mo, d = 2000 + int(m["y2"]), int(m["m2"]), int(m["d2"])
    else:
        mo, d = int(m["m3"]), int(m["d3"])
        y = _year(year, mo)
    return _dt(y, mo, d, m, m["tz"], m["fs"] == ":")


def _dt(
    y: int, mo: int, d: int, m: re.Match[str], tz: str | None = None, millis: bool = False
) -> datetime | None:
    """Build a datetime from regex groups H M S f; None when the fields are not a real date."""
    f, hh, mm, ss = m.group("f", "H", "M", "S")
    # "12:34:56.5" is a decimal fraction; HealthApp's "22:15:29:83" counts milliseconds.
    us = (int(f) * 1000 if millis else int(f[:6].ljust(6, "0"))) if f else 0
    tzinfo = None
    if tz:
        tzinfo = _TZ_CACHE.get(tz)
        if tzinfo is None:
            sign = -1 if tz[0] == "-" else 1
            off = tz[1:].replace(":", "")
            delta = timedelta(hours=int(off[:2]), minutes=int(off[2:]))
            tzinfo = _TZ_CACHE.setdefault(tz, timezone(sign * delta))
    try:
        return datetime(y, mo, d, int(hh), int(mm), int(ss), us, tzinfo)
    except ValueError:
        return None


def _year(default_year: int | None, month: int) -> int:
    if default_year is not None:
        return default_year
    now = time.localtime()
    return now.tm_year - 1 if month > now.tm_mon else now.tm_year


def _iso(v: str) -> datetime | None:
    try:
        return datetime.fromisoformat(v)
    except ValueError:
        m = _TS.fullmatch(v.strip())
        return _ts(m, None) if m and m["Y"] else None


def _from_epoch(v: float) -> datetime | None:
    while v > 1e11:  # milli-, micro- or nanoseconds: seconds this large are past the year 5000
        v /= 1000
    try:
        return datetime.fromtimestamp(v, UTC)
    except (ValueError, OverflowError, OSError):
        return None


# A line that continues the event above it: indented (stack frames, wrapped text), Java's
# "Caused by:" and "... 12 more", Python's traceback banners, or an exception-class line
# ("java.lang.NullPointerException: x", "ValueError: bad").
_EXC = (
    r"(?:[A-Za-z_$][\w$]*\.)*[A-Z][\w$]*(?:Exception|Error|Throwable|Fault|Warning)"
    r"(?:\$[\w$]+)*(?::|$)"
)
_CONT = re.compile(
    r"\s|Caused by:|Suppressed:|\.\.\. \d+ (?:more|common frames omitted)"
    r"|Traceback \(most recent call last\):|During handling of the above exception"
    r"|The above exception was the direct cause|" + _EXC
)
_EXC_LINE = re.compile(r"(?:Caused by: )?" + _EXC)
_FRAME = re.compile(r'at |File "|\.\.\. \d|Traceback |During handling |The above exception ')


def group_events(
    lines: Sequence[RawLine],
    *,
    final: bool,
    max_event_lines: int = 200,
    default_year: int | None = None,
) -> tuple[list[Event], int]:
    """Join continuation lines to their event; return ``(events, consumed)``.

    A line continues the event above when it looks like a continuation (``_CONT``) and has no
    header of its own, and the event's first line had a recognised layout: plain-text logs are
    never merged, since an indented line there is as likely to be an event of its own. Blank
    lines are dropped. An event holds at most ``max_event_lines`` lines; the rest of a long trace
    starts a new event that may keep growing. Unless ``final``, the last event is held back while
    it can still grow (more of its trace may arrive with the next read): ``lines[consumed:]`` are
    the held-back lines, to be passed again with the next batch.

    ``end_offset`` is the last line's offset plus its UTF-8 length plus one for the newline. It is
    approximate when the reader replaced undecodable bytes, stripped a '\\r', or truncated the line
    (``Event.truncated`` says so); commit ``ReadResult.end_offset``, not this.
    """
    events: list[Event] = []
    cur: list[RawLine] = []  # lines of the open event
    first = ParsedLine("")  # parse of the open event's first line
    mergeable = False  # whether continuation lines may join the open event
    start = 0  # index in ``lines`` of the open event's first line
    for i, line in enumerate(lines):
        text = line.text
        if not text or text.isspace():
            continue
        parsed = parse_line(text, default_year=default_year)
        if mergeable and parsed.layout == "plain" and _CONT.match(text):
            if len(cur) < max_event_lines:
                cur.append(line)
                continue
            # Over the cap: the rest of the trace starts a new event that stays mergeable.
            events.append(_event(cur, first))
            cur, first, start = [line], parsed, i
            continue
        if cur:
            events.append(_event(cur, first))
        cur, first, start, mergeable = [line], parsed, i, parsed.layout != "plain"
    if cur and (final or not mergeable):
        events.append(_event(cur, first))
        cur = []
    return events, (start if cur else len(lines))


def _event(lines: list[RawLine], parsed: ParsedLine) -> Event:
    if len(lines) == 1:  # most events: no joins, and an ASCII line's length is its byte count
        line = lines[0]
        text = line.text
        size = len(text) if text.isascii() else len(text.encode())
        return Event(
            line.offset, line.line_no, line.offset + size + 1, 1, text, parsed, bool(line.truncated)
        )
    if len(lines) > 1:
        # The exception type takes part in templating: "Request failed NullPointerException: x".
        rest = [ln.text.strip() for ln in lines[1:]]
        extra = next((t for t in rest if _EXC_LINE.match(t)), None)
        if extra is None:
            extra = next((t for t in rest if t and not _FRAME.match(t)), None)
        if extra:
            parsed = dataclasses.replace(parsed, message=f"{parsed.message} {extra}")
    last = lines[-1]
    return Event(
        offset=lines[0].offset,
        line_no=lines[0].line_no,
        end_offset=last.offset + len(last.text.encode()) + 1,
        n_lines=len(lines),
        text="\n".join(ln.text for ln in lines),
        parsed=parsed,
        truncated=any(ln.truncated for ln in lines),
    )
