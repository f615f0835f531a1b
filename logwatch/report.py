"""The HTML report for ``logwatch report``: one self-contained file, charts and top anomalies.

The file works offline and is safe to open from a mail attachment: it loads nothing (no URL of any
kind), draws its charts as inline SVG on the server side, and carries a Content-Security-Policy that
forbids every script. That policy is a second line only: every piece of log text (lines, templates,
stream names, paths, reasons) is attacker-controlled and escaped wherever it is written, in element
text, attributes and SVG tooltips alike.

``collect`` reads the store into a ``ReportData``; ``render_report`` is a pure function of that data
(tests render without a database); ``write_report`` does both and writes the file atomically.
"""

from __future__ import annotations

import heapq
import html
import math
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from logwatch.context import lines_around
from logwatch.errors import LogwatchError
from logwatch.records import Anomaly
from logwatch.storage import Store

# Scripts are never needed (the charts are SVG drawn here); forbidding them means that text which
# escaped escaping still cannot run. base-uri and form-action are not covered by default-src.
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'"
)
TITLE = "logwatch report"

MAX_SERIES = 8  # streams drawn in their own colour; the rest are stacked as one "other" series
MAX_BUCKETS = 48  # bars in the timeline, whatever the period
TOP_TEMPLATES = 15
MAX_TEXT_CHARS = 4000  # an anomaly's text (a multi-line event can be long); the rest is counted
MAX_LABEL_CHARS = 100  # a template's label in the chart

# Timeline bucket sizes, smallest first: the first that gives at most MAX_BUCKETS bars is used.
_STEPS = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(hours=1),
    timedelta(hours=6),
    timedelta(days=1),
    timedelta(weeks=1),
)
# Buckets are aligned to this instant (a Monday 00:00), so hours, days and weeks start where a
# reader expects them to.
_ORIGIN = datetime(2000, 1, 3)
_EARLIEST, _LATEST = datetime(1970, 1, 1), datetime(2200, 1, 1)

_PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f")
_OTHER_COLOUR = "#bab0ac"

# Log text may carry terminal escapes and other C0/C1 controls, which render as nothing or garble
# the page, and Unicode bidi controls, which can make a line read differently from what it is
# ("Trojan Source"). All are shown as visible escapes instead.
_CONTROLS = {
    c: f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"
    for c in (
        *range(0x00, 0x09),
        *range(0x0B, 0x20),
        *range(0x7F, 0xA0),
        *range(0x202A, 0x202F),
        *range(0x2066, 0x206A),
    )
}
_MARKED = re.compile(r"\[\[(.*?)\]\]", re.DOTALL)


class ReportError(LogwatchError):
    """The report file cannot be written."""


@dataclass(frozen=True, slots=True)
class Series:
    """One stream's anomalies per timeline bucket (or the streams beyond MAX_SERIES, together)."""

    name: str
    counts: tuple[int, ...]
    other: bool = False


@dataclass(frozen=True, slots=True)
class TemplateCount:
    """A busy template: events it matched (all time) and anomalies of it in the period."""

    stream: str
    template_id: int
    template: str
    count: int
    anomalies: int


@dataclass(frozen=True, slots=True)
class TopAnomaly:
    """An anomaly to show in full, with the lines around it as they are in its file now."""

    anomaly: Anomaly
    context: tuple[tuple[int, str], ...]


@dataclass(frozen=True, slots=True)
class ReportData:
    """Everything the report shows; ``render_report`` needs nothing else."""

    generated_at: datetime
    since: datetime | None
    total: int  # anomalies in the period
    per_stream: Mapping[str, int]  # anomalies in the period per stream, busiest first
    streams_total: int
    files_active: int
    templates_total: int
    bucket: timedelta
    buckets: tuple[datetime, ...]  # start of each timeline bucket, oldest first, contiguous
    series: tuple[Series, ...]
    severity_bins: tuple[int, ...]  # ten bins: 0-9, 10-19, ..., 90-100
    templates: tuple[TemplateCount, ...]
    top: tuple[TopAnomaly, ...]


@dataclass(frozen=True, slots=True)
class ReportSummary:
    """What ``write_report`` wrote, for the CLI to print."""

    path: Path
    anomalies: int  # in the period
    shown: int  # shown in full (at most ``top``)
    streams: int  # streams with anomalies in the period
    bytes: int


# ---------------------------------------------------------------- collecting


def event_time(a: Anomaly) -> datetime:
    """When an anomaly happened: the log's own time when parsed, else when it was detected.

    Aware times are converted to UTC and naive ones taken as written (the log did not say its
    zone); the result is naive so that both kinds can share one axis."""
    for value in (a.timestamp, a.detected_at):
        if not value:
            continue
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            continue
        if when.tzinfo:
            when = when.astimezone(UTC).replace(tzinfo=None)
        # A misparsed year (0001, 9999) would stretch the axis over centuries and overflow
        # datetime arithmetic; such a line is placed at its detection time instead.
        if _EARLIEST <= when <= _LATEST:
            return when
    return _ORIGIN


def bucket_size(first: datetime, last: datetime) -> timedelta:
    """The smallest step in _STEPS that draws ``first``..``last`` in at most MAX_BUCKETS bars."""
    span = last - first
    if span <= timedelta(0):
        return timedelta(hours=1)
    for step in _STEPS:
        if span // step < MAX_BUCKETS:
            return step
    # Timestamps decades apart (a broken clock, a misparsed year): whole days, still bounded.
    return timedelta(days=math.ceil(span / timedelta(days=1) / (MAX_BUCKETS - 1)))


def _timeline(
    rows: Sequence[Anomaly], streams: Sequence[str]
) -> tuple[timedelta, tuple[datetime, ...], tuple[Series, ...]]:
    if not rows:
        return timedelta(hours=1), (), ()
    times = [event_time(a) for a in rows]
    step = bucket_size(min(times), max(times))
    first = (min(times) - _ORIGIN) // step
    n = (max(times) - _ORIGIN) // step - first + 1
    starts = tuple(_ORIGIN + (first + i) * step for i in range(n))
    own = set(streams[:MAX_SERIES])
    counts: dict[str, list[int]] = {s: [0] * n for s in streams[:MAX_SERIES]}
    other = [0] * n
    for a, when in zip(rows, times, strict=True):
        i = (when - _ORIGIN) // step - first
        (counts[a.stream] if a.stream in own else other)[i] += 1
    series = [Series(s, tuple(c)) for s, c in counts.items()]
    if any(other):
        series.append(Series(f"{len(streams) - MAX_SERIES} other streams", tuple(other), True))
    return step, starts, tuple(series)


def collect(
    store: Store, *, since: datetime | None, now: datetime, top: int = 50, context: int = 2
) -> ReportData:
    """Read what the report shows. Aggregates are computed here over the period's rows; only the
    ``top`` anomalies get context, read from their files a window at a time."""
    rows = store.anomalies(since=since)
    per_stream = Counter(a.stream for a in rows)
    streams = [s for s, _ in per_stream.most_common()]
    step, starts, series = _timeline(rows, streams)
    bins = [0] * 10
    for a in rows:
        bins[min(max(a.severity, 0) // 10, 9)] += 1
    by_template = Counter((a.stream, a.template_id) for a in rows if a.template_id is not None)
    busiest = heapq.nlargest(
        TOP_TEMPLATES, store.templates_report(), key=lambda t: (t["count"], -t["template_id"])
    )
    chosen = heapq.nsmallest(max(top, 0), rows, key=lambda a: (-a.severity, -a.score, a.id or 0))
    status = store.status_report()
    return ReportData(
        generated_at=now,
        since=since,
        total=len(rows),
        per_stream=dict(per_stream.most_common()),
        streams_total=int(status["streams"]),
        files_active=int(status["files_active"]),
        templates_total=int(status["templates"]),
        bucket=step,
        buckets=starts,
        series=series,
        severity_bins=tuple(bins),
        templates=tuple(
            TemplateCount(
                stream=t["stream"],
                template_id=t["template_id"],
                template=t["template"],
                count=t["count"],
                anomalies=by_template[(t["stream"], t["template_id"])],
            )
            for t in busiest
        ),
        top=tuple(
            TopAnomaly(a, tuple(lines_around(a.path, a.line, context)) if context > 0 else ())
            for a in chosen
        ),
    )


def write_report(
    store: Store,
    path: Path,
    *,
    since: datetime | None,
    now: datetime,
    top: int = 50,
    context: int = 2,
) -> ReportSummary:
    """Write the report for anomalies detected since ``since`` (all when None) to ``path``.

    The file is written next to ``path`` and renamed into place, so a reader never sees half a
    report. Raises ReportError when it cannot be written."""
    data = collect(store, since=since, now=now, top=top, context=context)
    body = render_report(data).encode("utf-8", errors="replace")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(body)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ReportError(f"cannot write the report to {str(path)!r}: {exc.strerror}") from exc
    return ReportSummary(
        path=path,
        anomalies=data.total,
        shown=len(data.top),
        streams=len(data.per_stream),
        bytes=len(body),
    )


# ---------------------------------------------------------------- rendering


def esc(text: object) -> str:
    """Text for HTML element content or a double-quoted attribute, controls made visible."""
    return html.escape(str(text).translate(_CONTROLS), quote=True)


def _cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters)"


def marked(closest: str) -> str:
    """The closest normal line with its differing tokens, written ``[[...]]``, as <mark>."""
    out: list[str] = []
    pos = 0
    for m in _MARKED.finditer(closest):
        out.append(f"{esc(closest[pos : m.start()])}<mark>{esc(m.group(1))}</mark>")
        pos = m.end()
    out.append(esc(closest[pos:]))
    return "".join(out)


def _utc(when: datetime) -> str:
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%d %H:%M UTC")


def _bucket_label(start: datetime, step: timedelta) -> str:
    if step >= timedelta(days=1):
        return start.strftime("%Y-%m-%d")
    return start.strftime("%m-%d %H:%M")


def _severity_class(severity: int) -> str:
    return "high" if severity >= 80 else "medium" if severity >= 50 else "low"


def _n(value: float) -> str:
    # Two decimals keep bar heights exact enough to check and the file small.
    return f"{value:.2f}".rstrip("0").rstrip(".")


# Chart geometry (SVG user units): a plot area of PLOT_H between a left axis and labels below.
CHART_W, PLOT_H, LEFT, TOP_PAD, BOTTOM = 760, 160, 44, 10, 34


def _axis(top_value: int) -> str:
    base = TOP_PAD + PLOT_H
    return (
        f'<line x1="{LEFT}" y1="{TOP_PAD}" x2="{LEFT}" y2="{base}" class="axis"/>'
        f'<line x1="{LEFT}" y1="{base}" x2="{CHART_W}" y2="{base}" class="axis"/>'
        f'<text x="{LEFT - 4}" y="{TOP_PAD + 4}" class="tick" text-anchor="end">{top_value}</text>'
        f'<text x="{LEFT - 4}" y="{base}" class="tick" text-anchor="end">0</text>'
    )


def timeline_svg(data: ReportData) -> str:
    """Anomalies per time bucket, one stacked bar segment per stream with any in that bucket."""
    if not data.buckets:
        return '<p class="empty">No anomalies in this period.</p>'
    n = len(data.buckets)
    totals = [sum(s.counts[i] for s in data.series) for i in range(n)]
    peak = max(totals)
    scale = PLOT_H / peak
    slot = (CHART_W - LEFT - 4) / n
    width = max(slot * 0.8, 1.0)
    parts = [
        f'<svg class="chart" id="timeline" viewBox="0 0 {CHART_W} {TOP_PAD + PLOT_H + BOTTOM}" '
        f'role="img" aria-label="Anomalies over time per stream" data-plot-height="{PLOT_H}" '
        f'data-peak="{peak}" data-buckets="{n}">',
        _axis(peak),
    ]
    label_every = math.ceil(n / 8)
    for i, start in enumerate(data.buckets):
        x = LEFT + 2 + i * slot
        y = float(TOP_PAD + PLOT_H)
        label = _bucket_label(start, data.bucket)
        parts.append(
            f'<g class="bucket" data-start="{start.isoformat()}" data-total="{totals[i]}">'
        )
        for k, s in enumerate(data.series):
            count = s.counts[i]
            if not count:
                continue
            h = count * scale
            y -= h
            colour = _OTHER_COLOUR if s.other else _PALETTE[k % len(_PALETTE)]
            parts.append(
                f'<rect class="bar" x="{_n(x)}" y="{_n(y)}" width="{_n(width)}" height="{_n(h)}" '
                f'fill="{colour}" data-stream="{esc(s.name)}" data-count="{count}">'
                f"<title>{esc(s.name)}: {count} at {esc(label)}</title></rect>"
            )
        parts.append("</g>")
        if i % label_every == 0:
            parts.append(
                f'<text x="{_n(x + width / 2)}" y="{TOP_PAD + PLOT_H + 14}" class="tick" '
                f'text-anchor="middle">{esc(label)}</text>'
            )
    parts.append("</svg>")
    legend = "".join(
        f'<li><span class="swatch" style="background:'
        f'{_OTHER_COLOUR if s.other else _PALETTE[k % len(_PALETTE)]}"></span>{esc(s.name)}</li>'
        for k, s in enumerate(data.series)
    )
    return "".join(parts) + f'<ul class="legend">{legend}</ul>'


def severity_svg(data: ReportData) -> str:
    """How many anomalies fall in each tenth of the severity scale."""
    peak = max(data.severity_bins, default=0)
    if not peak:
        return '<p class="empty">No anomalies in this period.</p>'
    scale = PLOT_H / peak
    slot = (CHART_W - LEFT - 4) / len(data.severity_bins)
    parts = [
        f'<svg class="chart" id="severity" viewBox="0 0 {CHART_W} {TOP_PAD + PLOT_H + BOTTOM}" '
        f'role="img" aria-label="Severity distribution" data-plot-height="{PLOT_H}" '
        f'data-peak="{peak}">',
        _axis(peak),
    ]
    for i, count in enumerate(data.severity_bins):
        low, high = i * 10, 100 if i == 9 else i * 10 + 9
        x = LEFT + 2 + i * slot + slot * 0.1
        h = count * scale
        parts.append(
            f'<rect class="bar sev-{_severity_class(low)}" x="{_n(x)}" '
            f'y="{_n(TOP_PAD + PLOT_H - h)}" width="{_n(slot * 0.8)}" height="{_n(h)}" '
            f'data-low="{low}" data-high="{high}" data-count="{count}">'
            f"<title>severity {low}-{high}: {count}</title></rect>"
            f'<text x="{_n(x + slot * 0.4)}" y="{TOP_PAD + PLOT_H + 14}" class="tick" '
            f'text-anchor="middle">{low}-{high}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def templates_svg(data: ReportData) -> str:
    """The templates that matched the most events, a label line above each bar."""
    if not data.templates:
        return '<p class="empty">No templates yet.</p>'
    peak = max(t.count for t in data.templates) or 1
    row, bar_w = 34, CHART_W - 80
    parts = [
        f'<svg class="chart" id="templates" viewBox="0 0 {CHART_W} {row * len(data.templates)}" '
        f'role="img" aria-label="Busiest templates" data-plot-width="{bar_w}" data-peak="{peak}">'
    ]
    for i, t in enumerate(data.templates):
        y = i * row
        w = t.count * bar_w / peak
        tip = (
            f"{t.stream} #{t.template_id}: {t.count:,} events, {t.anomalies} anomalies in the "
            f"period\n{t.template}"
        )
        parts.append(
            f'<text x="0" y="{y + 11}" class="label">{esc(t.stream)} · '
            f"{esc(_cap(t.template, MAX_LABEL_CHARS))}</text>"
            f'<rect class="bar" x="0" y="{y + 15}" width="{_n(w)}" height="12" '
            f'data-stream="{esc(t.stream)}" data-template-id="{t.template_id}" '
            f'data-count="{t.count}"><title>{esc(_cap(tip, 2 * MAX_LABEL_CHARS))}</title></rect>'
            f'<text x="{_n(w + 4)}" y="{y + 25}" class="tick">{t.count:,}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _context(item: TopAnomaly) -> str:
    a = item.anomaly
    if not item.context:
        return '<p class="note">No context: the file is gone or no longer has this line.</p>'
    last = a.line + a.text.count("\n")
    lines = "".join(
        f'<span class="{"hit" if a.line <= number <= last else "ctx"}">'
        f'<span class="ln">{number}</span>{esc(text)}</span>\n'
        for number, text in item.context
    )
    note = ""
    now_there = dict(item.context).get(a.line)
    if now_there is not None and not a.text.split("\n", 1)[0].startswith(now_there):
        note = '<p class="note">The file has changed since: this line now reads differently.</p>'
    return f'{note}<pre class="context">{lines}</pre>'


def _anomaly_html(rank: int, item: TopAnomaly) -> str:
    a = item.anomaly
    band = _severity_class(a.severity)
    when = a.timestamp or f"detected {a.detected_at}"
    repeated = f' <span class="count">×{a.count}</span>' if a.count > 1 else ""
    reasons = "".join(f"<li>{esc(r)}</li>" for r in a.reasons) or "<li>(none recorded)</li>"
    closest = (
        f'<p class="closest">Closest normal line: <code>{marked(_cap(a.closest, MAX_TEXT_CHARS))}'
        "</code></p>"
        if a.closest
        else ""
    )
    return (
        f'<article class="anomaly {band}" data-severity="{a.severity}">'
        f'<h3><span class="sev {band}">{a.severity}</span> #{rank} '
        f'<span class="stream">{esc(a.stream)}</span> '
        f'<span class="where">{esc(a.path)}:{a.line}</span> '
        f'<span class="when">{esc(when)}</span>{repeated}</h3>'
        f'<ul class="reasons">{reasons}</ul>'
        f'<pre class="text">{esc(_cap(a.text, MAX_TEXT_CHARS))}</pre>'
        f'<p class="template">Template: <code>{esc(_cap(a.template, MAX_TEXT_CHARS))}</code></p>'
        f"{closest}{_context(item)}</article>"
    )


_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:64em;padding:0 1em;color:#222}
h1{margin-bottom:.2em}h2{margin-top:2em;border-bottom:1px solid #ddd}
.meta{color:#555}table{border-collapse:collapse}td,th{padding:.2em .8em;text-align:left}
td.num{text-align:right}.chart{width:100%;height:auto;font:11px monospace}
.axis{stroke:#888}.tick{fill:#555}.label{fill:#222}#templates .bar{fill:#4e79a7}
.sev-high{fill:#d62728}.sev-medium{fill:#ff9f1c}.sev-low{fill:#7f9fbf}
.legend{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:1em}
.swatch{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:-.1em}
.anomaly{border-left:4px solid #7f9fbf;padding:.2em 1em;margin:1em 0;background:#fafafa}
.anomaly.high{border-color:#d62728}.anomaly.medium{border-color:#ff9f1c}
.sev{display:inline-block;min-width:2em;text-align:center;color:#fff;border-radius:3px}
.sev.high{background:#d62728}.sev.medium{background:#ff9f1c}.sev.low{background:#7f9fbf}
.where,.when{font:12px monospace;color:#555}
pre{white-space:pre-wrap;word-break:break-all;background:#fff;border:1px solid #eee;padding:.4em}
pre,code{unicode-bidi:isolate}.context .hit{background:#fff3bf}
.ln{display:inline-block;min-width:4em;color:#999;user-select:none}
mark{background:#ffd43b}.note,.empty{color:#777;font-style:italic}
"""


def render_report(data: ReportData) -> str:
    """The whole report as one HTML document (pure: no I/O, no clock)."""
    period = (
        f"Anomalies detected from {esc(_utc(data.since))} to {esc(_utc(data.generated_at))}"
        if data.since is not None
        else f"All anomalies detected up to {esc(_utc(data.generated_at))}"
    )
    high = sum(data.severity_bins[8:])
    streams = "".join(
        f'<tr><td>{esc(name)}</td><td class="num">{count:,}</td></tr>'
        for name, count in data.per_stream.items()
    )
    totals = (
        f'<table class="totals"><tr><th>Anomalies</th><td class="num">{data.total:,}</td></tr>'
        f'<tr><th>Severity 80 or more</th><td class="num">{high:,}</td></tr>'
        f'<tr><th>Streams with anomalies</th><td class="num">{len(data.per_stream):,}</td></tr>'
        f'<tr><th>Streams watched</th><td class="num">{data.streams_total:,}</td></tr>'
        f'<tr><th>Active files</th><td class="num">{data.files_active:,}</td></tr>'
        f'<tr><th>Templates learned</th><td class="num">{data.templates_total:,}</td></tr></table>'
    )
    top = "".join(_anomaly_html(i, item) for i, item in enumerate(data.top, start=1))
    shown = (
        f'<p class="meta">The {len(data.top)} most severe of {data.total:,}, '
        "with the lines around each as the file reads now.</p>"
        if data.top
        else '<p class="empty">No anomalies in this period.</p>'
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="referrer" content="no-referrer">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{TITLE}</title><style>{_STYLE}</style></head>\n<body>"
        f'<header><h1>{TITLE}</h1><p class="meta" id="period">{period}. '
        f"Generated {esc(_utc(data.generated_at))}.</p>{totals}"
        + (
            f'<table class="streams"><tr><th>Stream</th><th>Anomalies</th></tr>{streams}</table>'
            if streams
            else ""
        )
        + "</header>\n<section><h2>Anomalies over time</h2>"
        '<p class="meta">Per stream, by the time in the log line (detection time when the line has '
        f"none); one bar per {esc(_step_words(data.bucket))}.</p>{timeline_svg(data)}</section>\n"
        f"<section><h2>Severity</h2>{severity_svg(data)}</section>\n"
        '<section><h2>Busiest templates</h2><p class="meta">Events matched, all time.</p>'
        f"{templates_svg(data)}</section>\n"
        f'<section id="top"><h2>Top anomalies</h2>{shown}{top}</section>\n'
        "</body></html>\n"
    )


def _step_words(step: timedelta) -> str:
    seconds = int(step.total_seconds())
    for unit, size in (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            count = seconds // size
            return unit if count == 1 else f"{count} {unit}s"
    return f"{seconds} seconds"
