"""Realistic large log inputs from the loghub samples, for the throughput and memory benches.

Usage: python bench/generate.py OUT_DIR --lines N [--systems all|HDFS,Apache,...] [--files K]
       [--seed S] [--loghub DIR]

Lines are drawn from ``<Sys>/<Sys>_2k.log`` (runs of 1-40 consecutive lines from a random place, so
bursts look like the real log). The variable parts of each line, as located by loghub's own
structured CSV (``EventTemplate`` ``<*>`` slots; every digit/hex run when a line does not match its
template), are re-randomised: numbers keep their length, hex ids, UUIDs, block ids and addresses get
fresh digits, IPs fresh octets. Constant words stay, so templates stay the real ones while almost no
line repeats exactly. Timestamps move forward in each file, in the system's own format.

Without ``--files`` there is one file per system (``OUT_DIR/<sys>/<Sys>.log``); with ``--files K``
there are K files ``OUT_DIR/fNNNNN/<Sys>.log``, systems assigned round-robin, each its own stream.
``--systems Apache`` gives a single-system set. Output is streamed (constant memory) and the same
seed gives the same bytes.
"""

from __future__ import annotations

import argparse
import csv
import random
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

DEFAULT_LOGHUB = Path(__file__).resolve().parents[2] / "shared" / "data" / "loghub"

# A part of a line: a literal string, or a variable to draw afresh: (kind, length).
#   "d": digits, first one non-zero; "z": digits, any; "x"/"X": lower/upper hex; "ip": an IPv4.
Part = str | tuple[str, int]

_MON = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
_DAY = "Mon Tue Wed Thu Fri Sat Sun".split()


def _ms(t: datetime) -> str:
    return f"{t.microsecond // 1000:03d}"


@dataclass(frozen=True)
class TimeFormat:
    """Where a system's timestamp sits (``pattern`` matches it at the start of the line, or in
    group 1 when the line starts with something else) and how to write a new one."""

    pattern: re.Pattern[str]
    render: Callable[[datetime], str]


TIME_FORMATS: dict[str, TimeFormat] = {
    "Android": TimeFormat(
        re.compile(r"\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}"),
        lambda t: f"{t:%m-%d %H:%M:%S}.{_ms(t)}",
    ),
    "Apache": TimeFormat(
        re.compile(r"\[\w{3} \w{3} \d\d \d\d:\d\d:\d\d \d{4}\]"),
        lambda t: f"[{_DAY[t.weekday()]} {_MON[t.month - 1]} {t:%d %H:%M:%S %Y}]",
    ),
    "HPC": TimeFormat(  # "<logid> <node> <component> <state> <epoch> ...": the epoch is field 5
        re.compile(r"\S+ \S+ \S+ \S+ (\d{9,10})(?= )"),
        lambda t: str(int(t.timestamp())),
    ),
    "Hadoop": TimeFormat(
        re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"),
        lambda t: f"{t:%Y-%m-%d %H:%M:%S},{_ms(t)}",
    ),
    "HDFS": TimeFormat(
        re.compile(r"\d{6} \d{6}"),
        lambda t: f"{t:%y%m%d %H%M%S}",
    ),
    "HealthApp": TimeFormat(
        re.compile(r"\d{8}-\d\d?:\d\d?:\d\d?:\d{1,3}"),
        lambda t: f"{t:%Y%m%d}-{t.hour}:{t.minute}:{t.second}:{t.microsecond // 1000}",
    ),
    "Linux": TimeFormat(
        re.compile(r"\w{3} [ \d]\d \d\d:\d\d:\d\d"),
        lambda t: f"{_MON[t.month - 1]} {t.day:2d} {t:%H:%M:%S}",
    ),
    "Mac": TimeFormat(
        re.compile(r"\w{3} [ \d]\d \d\d:\d\d:\d\d"),
        lambda t: f"{_MON[t.month - 1]} {t.day:2d} {t:%H:%M:%S}",
    ),
    "OpenSSH": TimeFormat(
        re.compile(r"\w{3} [ \d]\d \d\d:\d\d:\d\d"),
        lambda t: f"{_MON[t.month - 1]} {t.day:2d} {t:%H:%M:%S}",
    ),
    "Proxifier": TimeFormat(
        re.compile(r"\[\d\d\.\d\d \d\d:\d\d:\d\d\]"),
        lambda t: f"[{t:%m.%d %H:%M:%S}]",
    ),
    "Spark": TimeFormat(
        re.compile(r"\d\d/\d\d/\d\d \d\d:\d\d:\d\d"),
        lambda t: f"{t:%y/%m/%d %H:%M:%S}",
    ),
    "Windows": TimeFormat(
        re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"),
        lambda t: f"{t:%Y-%m-%d %H:%M:%S}",
    ),
    "Zookeeper": TimeFormat(
        re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"),
        lambda t: f"{t:%Y-%m-%d %H:%M:%S},{_ms(t)}",
    ),
}

_IP_RE = re.compile(r"(?<![\d.])\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?![\d.])")
_HMS_RE = re.compile(r"(?<!\d)\d\d:\d\d:\d\d(?!\d)")
_RUN_RE = re.compile(r"0x[0-9A-Fa-f]+|[0-9A-Fa-f]+")


def _variable_parts(text: str) -> list[Part]:
    """Split a variable's text into literals and fresh-value slots (IPs, numbers, hex ids)."""
    parts: list[Part] = []
    pos = 0
    for m in _IP_RE.finditer(text):
        parts.extend(_hms_parts(text[pos : m.start()]))
        parts.append(("ip", 4))
        pos = m.end()
    parts.extend(_hms_parts(text[pos:]))
    return parts


def _hms_parts(text: str) -> list[Part]:
    """A clock time inside a message (``at Sat Jul  9 22:14:03``) gets a valid fresh one."""
    parts: list[Part] = []
    pos = 0
    for m in _HMS_RE.finditer(text):
        parts.extend(_run_parts(text[pos : m.start()]))
        parts.append(("hms", 8))
        pos = m.end()
    parts.extend(_run_parts(text[pos:]))
    return parts


def _run_parts(text: str) -> list[Part]:
    parts: list[Part] = []
    pos = 0
    for m in _RUN_RE.finditer(text):
        run = m.group()
        if run.startswith("0x") and len(run) > 2:
            parts.append(text[pos : m.start()] + "0x")
            parts.append(("X" if run[2:].upper() == run[2:] else "x", len(run) - 2))
            pos = m.end()
            continue
        if run.isdigit():
            kind = "d" if run[0] != "0" and len(run) > 1 else "z"
        elif any(c.isdigit() for c in run) and len(run) >= 4:
            kind = "X" if run.upper() == run else "x"
        else:
            continue  # a word that happens to be made of a-f letters: keep it
        # Word-internal runs (``node-246``, ``blk_-12``, ``0x1f``) are ids too, but not a letter
        # glued on both sides (``v6``, ``md5sum``): those are names.
        glued = (m.start() > 0 and text[m.start() - 1].isalpha()) and (
            m.end() < len(text) and text[m.end()].isalpha()
        )
        if glued:
            continue
        parts.append(text[pos : m.start()])
        parts.append((kind, len(run)))
        pos = m.end()
    parts.append(text[pos:])
    return [p for p in parts if p != ""]


def _template_regex(template: str) -> re.Pattern[str] | None:
    pieces = [re.escape(p) for p in template.split("<*>")]
    if len(pieces) > 40:
        return None
    try:
        return re.compile("(.*?)".join(pieces), re.DOTALL)
    except re.error:
        return None


@dataclass(frozen=True)
class LinePlan:
    """A sample line cut into what stays and what is drawn afresh; ``content`` is the index of
    the first part of the message (after the header), used to build marker lines."""

    head: tuple[Part, ...]  # parts before the timestamp
    tail: tuple[Part, ...]  # parts after the timestamp
    content: int  # index into tail where the message starts
    stamped: bool = True  # the line has a timestamp between head and tail


def _plan_line(raw: str, content: str | None, template: str | None, fmt: TimeFormat) -> LinePlan:
    m = fmt.pattern.match(raw)
    if m is None:
        ts_start = ts_end = 0
    elif m.groups():
        ts_start, ts_end = m.span(1)
    else:
        ts_start, ts_end = m.span()
    head_text, rest = raw[:ts_start], raw[ts_end:]
    head = _run_parts(head_text) if m is not None else []
    c_at = rest.rfind(content) if content else -1
    if content is None or c_at < 0:
        tail = _run_parts(rest)
        return LinePlan(tuple(head), tuple(tail), 0, m is not None)
    header_parts = _run_parts(rest[:c_at])
    body: list[Part] = []
    rx = _template_regex(template) if template and "<*>" in template else None
    tm = rx.fullmatch(content) if rx is not None else None
    if template and "<*>" not in template and template == content:
        body = [content]
    elif tm is None:
        body = _run_parts(content)
    else:
        pos = 0
        for i in range(1, (tm.lastindex or 0) + 1):
            s, e = tm.span(i)
            if s > pos:
                body.append(content[pos:s])
            body.extend(_variable_parts(content[s:e]))
            pos = e
        if pos < len(content):
            body.append(content[pos:])
    trailer = rest[c_at + len(content) :]
    tail = header_parts + body + ([trailer] if trailer else [])
    return LinePlan(tuple(head), tuple(tail), len(header_parts), m is not None)


@dataclass
class System:
    name: str
    plans: list[LinePlan]
    fmt: TimeFormat
    start: datetime
    mean_gap: float  # seconds between lines, on average


def available_systems(loghub: Path = DEFAULT_LOGHUB) -> list[str]:
    return sorted(p.name for p in loghub.iterdir() if (p / f"{p.name}_2k.log").is_file())


def load_system(name: str, loghub: Path = DEFAULT_LOGHUB) -> System:
    folder = loghub / name
    raw = (folder / f"{name}_2k.log").read_text(encoding="utf-8", errors="replace").splitlines()
    rows: list[dict[str, str]] = []
    structured = folder / f"{name}_2k.log_structured.csv"
    if structured.is_file():
        with open(structured, newline="", encoding="utf-8", errors="replace") as f:
            rows = list(csv.DictReader(f))
    if len(rows) != len(raw):
        rows = []
    fmt = TIME_FORMATS.get(name) or TimeFormat(re.compile(r"(?!)"), lambda t: "")
    plans = []
    for i, line in enumerate(raw):
        row = rows[i] if rows else None
        content = row["Content"].rstrip() if row and row.get("Content") else None
        template = row.get("EventTemplate") if row else None
        plans.append(_plan_line(line.rstrip("\r"), content, template, fmt))
    start = datetime(2026, 3, 1, 0, 0, 0)
    return System(name, plans, fmt, start, mean_gap=0.02)


class LineSource:
    """An endless, deterministic stream of fresh lines of one system."""

    def __init__(self, system: System, seed: int) -> None:
        self.system = system
        self.rng = random.Random(seed)
        self.now = system.start + timedelta(seconds=self.rng.randrange(3600))
        self._run: Iterator[int] = iter(())

    def _next_index(self) -> int:
        try:
            return next(self._run)
        except StopIteration:
            n = len(self.system.plans)
            start = self.rng.randrange(n)
            length = self.rng.randint(1, 40)
            self._run = iter([(start + k) % n for k in range(1, length)])
            return start

    def _value(self, kind: str, length: int) -> str:
        rng = self.rng
        if kind == "d":
            return str(rng.randrange(10 ** (length - 1), 10**length))
        if kind == "z":
            return f"{rng.randrange(10**length):0{length}d}"
        if kind == "x":
            return f"{rng.getrandbits(4 * length):0{length}x}"
        if kind == "X":
            return f"{rng.getrandbits(4 * length):0{length}X}"
        if kind == "hms":
            r = rng.randrange(86400)
            return f"{r // 3600:02d}:{r // 60 % 60:02d}:{r % 60:02d}"
        if kind == "ip":
            r = rng.getrandbits(32)
            return f"{10 + r % 200}.{(r >> 8) & 255}.{(r >> 16) & 255}.{1 + (r >> 24) % 254}"
        raise ValueError(kind)

    def _render(self, parts: Sequence[Part]) -> list[str]:
        return [p if isinstance(p, str) else self._value(*p) for p in parts]

    def line(self) -> str:
        """The next line (no newline)."""
        plan = self.system.plans[self._next_index()]
        self.now += timedelta(seconds=self.rng.expovariate(1.0 / self.system.mean_gap))
        out = self._render(plan.head)
        if plan.stamped:
            out.append(self.system.fmt.render(self.now))
        out.extend(self._render(plan.tail))
        return "".join(out)

    def marker(self, message: str) -> str:
        """A line in this system's format whose message is ``message`` (for latency markers)."""
        plan = self.system.plans[self._next_index()]
        self.now += timedelta(seconds=self.rng.expovariate(1.0 / self.system.mean_gap))
        out = self._render(plan.head)
        if plan.stamped:
            out.append(self.system.fmt.render(self.now))
        out.extend(self._render(plan.tail[: plan.content]))
        out.append(message)
        return "".join(out)


def parse_systems(spec: str, loghub: Path = DEFAULT_LOGHUB) -> list[str]:
    have = available_systems(loghub)
    if spec == "all":
        return have
    wanted = [s.strip() for s in spec.split(",") if s.strip()]
    lower = {h.lower(): h for h in have}
    missing = [s for s in wanted if s.lower() not in lower]
    if missing:
        raise SystemExit(f"no loghub sample for {', '.join(missing)} in {loghub} (have: {have})")
    return [lower[s.lower()] for s in wanted]


def layout(out: Path, systems: Sequence[str], files: int | None) -> list[tuple[Path, str]]:
    """(path, system) of every file to write."""
    if files is None:
        return [(out / s.lower() / f"{s}.log", s) for s in systems]
    return [
        (out / f"f{i:05d}" / f"{systems[i % len(systems)]}.log", systems[i % len(systems)])
        for i in range(files)
    ]


def generate(
    out: Path,
    lines: int,
    systems: Sequence[str],
    files: int | None = None,
    seed: int = 1,
    loghub: Path = DEFAULT_LOGHUB,
) -> list[Path]:
    """Write ``lines`` lines spread evenly over the files; returns the paths written."""
    loaded = {s: load_system(s, loghub) for s in systems}
    targets = layout(out, systems, files)
    written = []
    for i, (path, sysname) in enumerate(targets):
        n = lines // len(targets) + (1 if i < lines % len(targets) else 0)
        path.parent.mkdir(parents=True, exist_ok=True)
        src = LineSource(loaded[sysname], seed * 1_000_003 + i)
        with open(path, "w", encoding="utf-8", newline="\n", buffering=1 << 20) as f:
            chunk: list[str] = []
            for _ in range(n):
                chunk.append(src.line())
                if len(chunk) >= 4096:
                    f.write("\n".join(chunk) + "\n")
                    chunk.clear()
            if chunk:
                f.write("\n".join(chunk) + "\n")
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="output folder (created)")
    ap.add_argument("--lines", type=int, required=True, help="total lines over all files")
    ap.add_argument("--systems", default="all", help="'all' or a comma list, e.g. Apache,HPC")
    ap.add_argument(
        "--files", type=int, help="K files (round-robin systems); default: one per system"
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--loghub", type=Path, default=DEFAULT_LOGHUB)
    args = ap.parse_args(argv)
    paths = generate(
        args.out,
        args.lines,
        parse_systems(args.systems, args.loghub),
        args.files,
        args.seed,
        args.loghub,
    )
    size = sum(p.stat().st_size for p in paths)
    print(f"wrote {args.lines:,} lines in {len(paths):,} files, {size / 1e6:,.1f} MB in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
