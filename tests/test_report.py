"""The HTML report: log text is escaped everywhere and nothing in it executes, proven in real
headless Chromium; the charts are drawn with one bar per data point at the right size; the report
is bounded and written atomically.

Database tests run on SQLite and PostgreSQL (the ``store`` fixture). Chromium comes from Debian's
``chromium`` package (tools/ensure_chromium.sh); without it the browser tests skip, or fail when
CI=true.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import IN_CI

from logwatch.config import Config
from logwatch.pipeline import Pipeline
from logwatch.records import Anomaly
from logwatch.report import (
    CSP,
    TITLE,
    ReportData,
    ReportError,
    TopAnomaly,
    bucket_size,
    collect,
    event_time,
    render_report,
    write_report,
)
from logwatch.storage import FileUpdate, Store, StreamUpdate

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
SCRIPT = "<script>document.title='pwned'</script>"
IMG = "\"><img src=x onerror=\"document.body.setAttribute('data-pwned','1')\">"
PLOT_H = 160  # report.PLOT_H, restated: the test checks the SVG against the number it declares


# ---------------------------------------------------------------- helpers


def write_logs(root: Path) -> Path:
    """Two streams of ordinary lines with the payloads injected, one of them in a file name."""
    logs = root / "logs"
    logs.mkdir()
    app = [
        f"2026-03-03 {10 + i // 120:02d}:{(i // 2) % 60:02d}:{i % 60:02d},000 INFO  [main] "
        f"com.x.Svc - handled request {i} in {i % 7} ms"
        for i in range(400)
    ]
    app.insert(
        150, f"2026-03-03 11:15:00,000 ERROR [main] com.x.Svc - user agent {SCRIPT} rejected"
    )
    app.insert(300, f"2026-03-03 12:30:00,000 WARN  [main] com.x.Svc - bad referer {IMG} dropped")
    (logs / "app.log").write_text("\n".join(app) + "\n")
    pool = [
        f"2026-03-03 10:{i % 60:02d}:00,000 INFO  [w] db.Pool - pool size {i % 5}"
        for i in range(200)
    ]
    pool.insert(100, f"2026-03-03 11:40:00,000 FATAL [w] db.Pool - connection lost to {IMG}")
    # A file name may hold anything but '/': the stream name and the path carry the payload too.
    (logs / f"{IMG}.log").write_text("\n".join(pool) + "\n")
    return logs


def add_crafted(store: Store, gone: Path) -> Anomaly:
    """An anomaly with payloads in the fields the pipeline does not fill yet (closest, reasons),
    whose file no longer exists (so it has no context)."""
    stream = f"{SCRIPT}.log"
    f = store.add_file(
        path=str(gone), stream_id=store.stream_id(stream), dev=1, ino=2, fp_len=1, fp_hash="f" * 64
    )
    crafted = Anomaly(
        stream=stream,
        path=str(gone),
        line=7,
        offset=600,
        timestamp=None,
        detected_at=NOW.isoformat(),
        severity=99,
        score=1.0,
        reasons=(f"new value {IMG} in slot 3", SCRIPT),
        template=f"login from <*> {SCRIPT}",
        text=f"login from {IMG}",
        count=3,
        closest=f"login from [[{SCRIPT}]] as [[{IMG}]]",
    )
    update = FileUpdate(f.id, 0, 700, 8, 700, 1, 1, "a" * 64, 8, 8)
    assert store.commit_batch(update, StreamUpdate(f.stream_id, 8, {}, {}, 0), [crafted]) == 1
    return crafted


def chromium_or_skip() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is not None:
        return exe
    reason = "headless Chromium is not installed (as root, tools/ensure_chromium.sh installs it)"
    if IN_CI:
        pytest.fail(f"{reason}; CI=true: the browser tests may not be skipped")
    print(f"skipping: {reason}")
    pytest.skip(reason)


def dump_dom(page: Path, profile: Path) -> str:
    """The DOM after load, as Chromium serialises it: what a reader's browser would have built."""
    exe = chromium_or_skip()
    result = subprocess.run(
        [
            exe,
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            # A private profile: parallel runs must not share (or lock) the user's profile.
            f"--user-data-dir={profile}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "<html" in result.stdout, result.stderr[-2000:]
    return result.stdout


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    svg: str | None  # id of the enclosing <svg>, if any


@dataclass
class Dom:
    """Just enough of a parsed DOM: elements with attributes, the document title, the text."""

    elements: list[Element] = field(default_factory=list)
    title: str = ""
    text: str = ""

    def find(self, tag: str, svg: str | None = None) -> list[Element]:
        return [e for e in self.elements if e.tag == tag and (svg is None or e.svg == svg)]


class _DomParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.dom = Dom()
        self._svg: str | None = None
        self._in: list[str] = []
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "svg":
            self._svg = values.get("id", "")
        self.dom.elements.append(Element(tag, values, self._svg))
        self._in.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._svg = None
        if tag in self._in:
            del self._in[len(self._in) - 1 - self._in[::-1].index(tag) :]

    def handle_data(self, data: str) -> None:
        if self._in and self._in[-1] == "title" and self._svg is None and not self.dom.title:
            self.dom.title = data
        self._text.append(data)

    def close(self) -> None:
        super().close()
        self.dom.text = "".join(self._text)


def parse(page: str) -> Dom:
    parser = _DomParser()
    parser.feed(page)
    parser.close()
    return parser.dom


def close_to(a: float, b: float) -> bool:
    return abs(a - b) <= 0.01


# ---------------------------------------------------------------- the browser tests


def test_report_of_hostile_logs_is_escaped_runs_nothing_and_draws_its_charts(
    store: Store, tmp_path: Path
) -> None:
    logs = write_logs(tmp_path)
    Pipeline(Config(log_dir=logs, db_url=store.url, once=True), store).run_once(NOW)
    crafted = add_crafted(store, tmp_path / f"gone {IMG}.log")
    found = store.anomalies()
    texts = "\n".join(a.text for a in found)
    assert SCRIPT in texts and IMG in texts and len(found) >= 4, found

    out = tmp_path / "report.html"
    summary = write_report(store, out, since=None, now=NOW, top=50, context=2)
    assert (summary.anomalies, summary.shown, summary.path) == (len(found), len(found), out)
    assert summary.bytes == out.stat().st_size
    raw = out.read_text(encoding="utf-8")

    # The raw file: payloads only ever appear escaped, and nothing is loaded from anywhere.
    assert "<script" not in raw.lower() and "<img" not in raw.lower()
    assert "&lt;script&gt;document.title=&#x27;pwned&#x27;&lt;/script&gt;" in raw
    assert "&quot;&gt;&lt;img src=x onerror=&quot;document.body.setAttribute(" in raw
    assert 'data-stream="&quot;&gt;&lt;img src=x onerror=' in raw  # escaped inside an attribute
    assert f'<meta http-equiv="Content-Security-Policy" content="{CSP}">' in raw
    assert "default-src 'none'; style-src 'unsafe-inline'; img-src data:" in CSP
    assert "://" not in raw

    dom = parse(dump_dom(out, tmp_path / "profile"))

    # Nothing executed, and the payloads were not turned into elements.
    assert dom.title == TITLE
    assert all("data-pwned" not in e.attrs for e in dom.elements)
    assert not dom.find("script") and not dom.find("img")
    assert not [e for e in dom.elements if {"src", "href", "xlink:href", "action"} & e.attrs.keys()]
    assert not [e for e in dom.elements if any(k.startswith("on") for k in e.attrs)]
    # ... and they are visible as the text they are, in the line, the stream, the path, the
    # reasons, the template and the closest normal line (differing tokens marked).
    assert dom.text.count(SCRIPT) >= 5 and dom.text.count(IMG) >= 5
    assert f"user agent {SCRIPT} rejected" in dom.text
    assert f"{IMG}.log" in dom.text
    assert f"new value {IMG} in slot 3" in dom.text
    # One <mark> per [[...]] of every closest line shown (the pipeline may fill some too).
    marked = sum(len(re.findall(r"\[\[.*?\]\]", a.closest or "", re.DOTALL)) for a in found)
    assert len(dom.find("mark")) == marked >= 2
    assert f"login from {SCRIPT} as {IMG}" in dom.text  # the marks hold exactly the tokens

    # Timeline: one segment per (bucket, stream) with anomalies, heights to scale, every anomaly
    # counted once, and the tallest stack fills the plot.
    (timeline,) = [e for e in dom.find("svg") if e.attrs.get("id") == "timeline"]
    assert int(timeline.attrs["data-plot-height"]) == PLOT_H
    peak = int(timeline.attrs["data-peak"])
    bars = dom.find("rect", "timeline")
    assert bars and all(int(b.attrs["data-count"]) > 0 for b in bars)
    for b in bars:
        assert close_to(float(b.attrs["height"]), int(b.attrs["data-count"]) * PLOT_H / peak)
    per_stream: Counter[str] = Counter()
    for b in bars:
        per_stream[b.attrs["data-stream"]] += int(b.attrs["data-count"])
    assert per_stream == Counter(a.stream for a in found)
    totals = [int(g.attrs["data-total"]) for g in dom.find("g", "timeline")]
    assert sum(totals) == len(found) and max(totals) == peak
    assert len(totals) == int(timeline.attrs["data-buckets"])

    # Severity: ten bins, counts from the store, heights to scale.
    sev = dom.find("rect", "severity")
    assert len(sev) == 10
    expected = Counter(min(a.severity // 10, 9) for a in found)
    sev_peak = max(expected.values())
    for i, b in enumerate(sev):
        assert int(b.attrs["data-count"]) == expected[i]
        assert close_to(float(b.attrs["height"]), expected[i] * PLOT_H / sev_peak)
    assert int(sev[9].attrs["data-count"]) >= 1  # the crafted 99

    # Busiest templates: one bar per template, busiest first, widths to scale.
    tpl = dom.find("rect", "templates")
    report = sorted(store.templates_report(), key=lambda t: -t["count"])
    assert [int(b.attrs["data-count"]) for b in tpl] == [t["count"] for t in report[:15]]
    (tsvg,) = [e for e in dom.find("svg") if e.attrs.get("id") == "templates"]
    width, tpeak = int(tsvg.attrs["data-plot-width"]), int(tsvg.attrs["data-peak"])
    for b in tpl:
        assert close_to(float(b.attrs["width"]), int(b.attrs["data-count"]) * width / tpeak)

    # Top anomalies: most severe first, the crafted one (99) on top with no context (file gone).
    shown = [int(e.attrs["data-severity"]) for e in dom.elements if e.tag == "article"]
    assert shown == sorted((a.severity for a in found), reverse=True)
    assert shown[0] == crafted.severity
    assert "No context: the file is gone" in dom.text


def test_the_browser_check_would_see_an_injection(tmp_path: Path) -> None:
    """Control: the same payloads, unescaped and without the policy, do run in this Chromium;
    so the test above proves something."""
    page = tmp_path / "naive.html"
    page.write_text(
        f"<!DOCTYPE html><html><head><title>{TITLE}</title></head><body>"
        f'<p>{SCRIPT}</p><p data-x="{IMG}"></p></body></html>'
    )
    dom = parse(dump_dom(page, tmp_path / "profile"))
    assert dom.title == "pwned"
    assert [e for e in dom.elements if e.tag == "body" and "data-pwned" in e.attrs]


def test_escaping_alone_holds_without_the_policy(store: Store, tmp_path: Path) -> None:
    """The Content-Security-Policy is a second line: with it removed, nothing runs either."""
    add_crafted(store, tmp_path / "gone.log")
    out = tmp_path / "report.html"
    write_report(store, out, since=None, now=NOW)
    raw = out.read_text(encoding="utf-8")
    policy = f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
    assert policy in raw
    out.write_text(raw.replace(policy, ""), encoding="utf-8")
    dom = parse(dump_dom(out, tmp_path / "profile"))
    assert dom.title == TITLE
    assert all("data-pwned" not in e.attrs for e in dom.elements)
    assert SCRIPT in dom.text and IMG in dom.text


# ---------------------------------------------------------------- store-backed, no browser


def test_top_bounds_the_anomalies_shown_highest_severity_first(
    store: Store, tmp_path: Path
) -> None:
    logs = write_logs(tmp_path)
    Pipeline(Config(log_dir=logs, db_url=store.url, once=True), store).run_once(NOW)
    found = store.anomalies()
    data = collect(store, since=None, now=NOW, top=2, context=1)
    assert data.total == len(found) > 2
    assert [t.anomaly.severity for t in data.top] == sorted(
        (a.severity for a in found), reverse=True
    )[:2]
    for item in data.top:
        a = item.anomaly
        # One line either side, read from the file as it is: the event's own line in the middle.
        assert [n for n, _ in item.context] == [a.line - 1, a.line, a.line + 1]
        assert dict(item.context)[a.line] == a.text
    assert not collect(store, since=None, now=NOW, top=2, context=0).top[0].context


def test_since_limits_the_period(store: Store, tmp_path: Path) -> None:
    add_crafted(store, tmp_path / "gone.log")  # detected at NOW
    assert collect(store, since=NOW - timedelta(hours=1), now=NOW).total == 1
    later = collect(store, since=NOW + timedelta(hours=1), now=NOW + timedelta(hours=2))
    assert (later.total, later.top, later.buckets) == (0, (), ())
    page = render_report(later)
    assert "No anomalies in this period." in page
    assert "Anomalies detected from 2026-03-04 13:00 UTC to 2026-03-04 14:00 UTC" in page


def test_unwritable_path_is_a_report_error_and_leaves_nothing(store: Store, tmp_path: Path) -> None:
    target = tmp_path / "missing-dir" / "report.html"
    with pytest.raises(ReportError, match="cannot write the report to .*missing-dir/report.html"):
        write_report(store, target, since=None, now=NOW)
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / "report.html"
    out.write_text("old report")
    write_report(store, out, since=None, now=NOW)
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert [p.name for p in folder.iterdir()] == ["report.html"]  # no temporary file left


# ---------------------------------------------------------------- pure rendering


def anomaly(**kw: object) -> Anomaly:
    values: dict[str, object] = {
        "stream": "app.log",
        "path": "/logs/app.log",
        "line": 3,
        "offset": 40,
        "timestamp": "2026-03-03T10:00:00",
        "detected_at": NOW.isoformat(),
        "severity": 70,
        "score": 0.5,
        "reasons": ("new template",),
        "template": "x <*>",
        "text": "x 1",
    }
    values.update(kw)
    return Anomaly(**values)  # type: ignore[arg-type]


def data_with(*items: TopAnomaly) -> ReportData:
    return ReportData(
        generated_at=NOW,
        since=None,
        total=len(items),
        per_stream=Counter(i.anomaly.stream for i in items),
        streams_total=1,
        files_active=1,
        templates_total=1,
        bucket=timedelta(hours=1),
        buckets=(),
        series=(),
        severity_bins=(0,) * 10,
        templates=(),
        top=items,
    )


def test_closest_line_marks_differing_tokens_and_escapes_them() -> None:
    a = anomaly(closest='user [[<b>"x"</b>]] from [[10.0.0.1]] ok [[unclosed')
    page = render_report(data_with(TopAnomaly(a, ())))
    assert (
        "user <mark>&lt;b&gt;&quot;x&quot;&lt;/b&gt;</mark> from <mark>10.0.0.1</mark> ok "
        "[[unclosed"
    ) in page


def test_controls_and_bidi_overrides_are_shown_not_obeyed() -> None:
    a = anomaly(text="evil \x1b[31mred\x1b[0m \u202egnp.exe\u202c \x00", stream="a\u2066b.log")
    page = render_report(data_with(TopAnomaly(a, ((3, "ctx \x07 line"),))))
    assert "evil \\x1b[31mred\\x1b[0m \\u202egnp.exe\\u202c \\x00" in page
    assert "a\\u2066b.log" in page and "ctx \\x07 line" in page
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]", page)


def test_long_text_is_capped() -> None:
    a = anomaly(text="y" * 10_000)
    page = render_report(data_with(TopAnomaly(a, ())))
    assert "y" * 4000 + "… (6,000 more characters)" in page and "y" * 4001 not in page


def test_event_time_prefers_the_log_and_falls_back_to_detection() -> None:
    assert event_time(anomaly(timestamp="2026-03-03T10:00:00+02:00")) == datetime(2026, 3, 3, 8)
    assert event_time(anomaly(timestamp="2026-03-03T10:00:00")) == datetime(2026, 3, 3, 10)
    for bad in (None, "", "yesterday", "0001-01-01T00:00:00"):
        assert event_time(anomaly(timestamp=bad)) == datetime(2026, 3, 4, 12)


@pytest.mark.parametrize(
    ("span", "step"),
    [
        (timedelta(0), timedelta(hours=1)),
        (timedelta(minutes=47), timedelta(minutes=1)),
        (timedelta(hours=3), timedelta(minutes=5)),
        (timedelta(hours=47), timedelta(hours=1)),
        (timedelta(days=30), timedelta(days=1)),
        (timedelta(days=300), timedelta(weeks=1)),
    ],
)
def test_bucket_size_keeps_the_timeline_readable(span: timedelta, step: timedelta) -> None:
    first = datetime(2026, 3, 3)
    assert bucket_size(first, first + span) == step
    assert span // step < 48


def test_bucket_size_is_bounded_for_absurd_spans() -> None:
    first = datetime(1970, 1, 1)
    step = bucket_size(first, datetime(2199, 1, 1))
    assert (datetime(2199, 1, 1) - first) // step < 48
