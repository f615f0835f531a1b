"""A generated multi-stream log folder with known ground truth, for the bird's-eye view (issue 5).

Four streams, ISO timestamps, seeded:

- ``hdfs.log``: HDFS-style block lifecycles, interleaved over the whole span: allocate -> receive x3
  -> addStoredBlock x3 -> 0-2 reads -> delete, per ``blk_`` id. A few blocks break only at session
  level (writes stop half way, the acks or the delete skipped): every one of their lines is a line
  that normal blocks write too.
- ``app.log``, ``db.log``, ``web.log``: steady per-minute volume of ordinary INFO lines plus a few
  WARN lines of common templates. Now and then one stream alone dips (up to a quarter below usual);
  at the degraded minutes all three dip together a little and write a few more of their usual WARNs:
  an anomaly that exists only across streams.
- For contrast, ordinary line-level anomalies: single rare ERRORs, and one outage minute of
  ERRORs in app.log and db.log together.

``generate`` writes the folder and returns the ground truth. Used by ``tests/test_overview.py`` and
``bench/incidents.py``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

START = datetime(2026, 3, 3, 6, 0, tzinfo=UTC).timestamp()
HDFS = "hdfs.log"
SERVICES = ("app.log", "db.log", "web.log")
# The template word each kind of broken block lacks (what "missing ..." must name).
ACK = "addStoredBlock"
DELETE = "Deleting"
FAULTS = ("stops half way", "skips ack", "skips delete")
MISSING_WORDS = {"stops half way": (ACK, DELETE), "skips ack": (ACK,), "skips delete": (DELETE,)}
BASE_PER_MINUTE = {"app.log": 14, "db.log": 10, "web.log": 18}
WARN_SHARE = 0.05  # ordinary WARN lines, of two common templates per stream
SOLO_DIP_SHARE = 0.015  # minutes in which one stream alone dips (independently per stream)
DEGRADED_FACTOR = 0.78  # volume in a degraded minute, against usual
DEGRADED_EXTRA_WARNS = 2  # more WARN lines (of the stream's common templates) in it


@dataclass(frozen=True)
class Truth:
    """What is anomalous in a generated folder."""

    root: Path
    start: float  # epoch seconds of the first minute
    minutes: int
    # (stream, block id) -> fault; the template words its session lacks are MISSING_WORDS[fault]
    sessions: dict[tuple[str, str], str]
    windows: tuple[float, ...]  # start (epoch seconds) of each degraded minute
    lines: frozenset[tuple[str, int]]  # (file name, 1-based line) of every injected ERROR line
    line_times: dict[tuple[str, int], float]  # their log times
    burst: tuple[float, float]  # the outage burst's first and last time
    blocks: int  # all sessions of hdfs.log

    def window_of(self, at: float) -> float | None:
        """The degraded minute containing log time ``at``, if any."""
        for start in self.windows:
            if start <= at < start + 60:
                return start
        return None


def _iso(at: float) -> str:
    t = datetime.fromtimestamp(at, UTC)
    return f"{t:%Y-%m-%dT%H:%M:%S}.{t.microsecond // 1000:03d}Z"


def _hadoop(at: float) -> str:
    t = datetime.fromtimestamp(at, UTC)
    return f"{t:%Y-%m-%d %H:%M:%S},{t.microsecond // 1000:03d}"


def _service_line(stream: str, level: str, rng: random.Random) -> str:
    r = rng.randint
    if stream == "app.log":
        thread = f"[http-nio-8080-exec-{r(1, 40)}]"
        if level == "WARN":
            return rng.choice(
                [
                    f"WARN {thread} com.shop.OrderService - slow call to inventory took "
                    f"{r(800, 3000)} ms",
                    f"WARN {thread} com.shop.PaymentClient - retrying payment {r(10000, 99999)} "
                    f"attempt {r(1, 3)}",
                ]
            )
        return rng.choice(
            [
                f"INFO {thread} com.shop.OrderController - GET /api/orders/{r(1000, 99999)} 200 "
                f"in {r(2, 90)} ms",
                f"INFO {thread} com.shop.OrderService - order {r(100000, 999999)} created for "
                f"customer {r(1000, 9999)} total {r(5, 900)}.{r(0, 99):02d} EUR",
                f"INFO {thread} com.shop.CartController - POST /api/cart/{r(1000, 99999)}/items "
                f"201 in {r(3, 60)} ms",
            ]
        )
    if stream == "db.log":
        pool = f"[pool-{r(1, 4)}-thread-{r(1, 16)}]"
        if level == "WARN":
            return rng.choice(
                [
                    f"WARN {pool} db.LockMonitor - lock wait on table orders for {r(200, 900)} ms",
                    f"WARN {pool} db.ConnectionPool - pool usage {r(80, 95)}% of {r(50, 60)} "
                    f"connections",
                ]
            )
        return rng.choice(
            [
                f"INFO {pool} db.Executor - statement executed rows={r(0, 500)} in {r(1, 40)} ms",
                f"INFO {pool} db.ConnectionPool - checkout connection {r(1, 50)} in {r(0, 5)} ms",
                f"INFO {pool} db.Checkpoint - wrote {r(10, 900)} buffers in {r(5, 200)} ms",
            ]
        )
    worker = f"[worker-{r(1, 8)}]"
    ip = f"10.0.{r(0, 20)}.{r(1, 254)}"
    if level == "WARN":
        return rng.choice(
            [
                f"WARN {worker} web.Upstream - upstream response time {r(900, 2500)} ms over "
                f"threshold for {ip}",
                f"WARN {worker} web.RateLimiter - client {ip} near rate limit {r(80, 99)} of 100",
            ]
        )
    return rng.choice(
        [
            f"INFO {worker} web.Access - {ip} GET /static/app.{r(100, 999)}.js 200 "
            f"{r(1000, 90000)} bytes",
            f"INFO {worker} web.Access - {ip} GET /products/{r(1, 5000)} 200 {r(3000, 60000)} "
            f"bytes",
            f"INFO {worker} web.Access - {ip} POST /api/checkout 200 {r(200, 2000)} bytes",
        ]
    )


_ERRORS: dict[str, Callable[[random.Random], str]] = {
    "app.log": lambda rng: (
        f"ERROR [http-nio-8080-exec-{rng.randint(1, 40)}] com.shop.OrderService - "
        "java.lang.OutOfMemoryError: Java heap space while rendering invoice"
    ),
    "db.log": lambda rng: (
        f"ERROR [pool-1-thread-{rng.randint(1, 16)}] db.Checkpoint - could not extend file "
        f"base/16384/{rng.randint(10000, 99999)}: No space left on device"
    ),
    "web.log": lambda rng: (
        f"ERROR [worker-{rng.randint(1, 8)}] web.Upstream - upstream prematurely closed "
        "connection while reading response header"
    ),
}
_BURST: dict[str, Callable[[random.Random], str]] = {
    "app.log": lambda rng: (
        f"ERROR [http-nio-8080-exec-{rng.randint(1, 40)}] com.shop.OrderRepository - "
        f"could not open JDBC connection for order {rng.randint(100000, 999999)}: "
        "Connection refused"
    ),
    "db.log": lambda rng: (
        f"ERROR [pool-2-thread-{rng.randint(1, 16)}] db.Server - could not accept connection: "
        "too many clients already"
    ),
}


def _hdfs_lines(
    rng: random.Random, minutes: int, blocks: int, broken: int
) -> tuple[list[tuple[float, str]], dict[tuple[str, str], str]]:
    out: list[tuple[float, str]] = []
    span = minutes * 60.0 - 400.0  # every lifecycle ends inside the span

    def ip() -> str:
        return f"10.251.{rng.randint(1, 250)}.{rng.randint(1, 250)}"

    ids = [f"blk_{rng.randint(10**17, 10**18)}" for _ in range(blocks)]
    faults = {blk: FAULTS[i % len(FAULTS)] for i, blk in enumerate(rng.sample(ids, broken))}
    state = "org.apache.hadoop.hdfs.StateChange"
    node = "org.apache.hadoop.hdfs.server.datanode.DataNode"
    for i, blk in enumerate(ids):
        t = START + rng.uniform(5.0, span)
        fault = faults.get(blk)
        steps: list[tuple[float, str]] = [
            (
                t,
                f"INFO {state}: BLOCK* NameSystem.allocateBlock: /user/root/rand/_temporary/"
                f"_task_{i:06d}_0/part-{i:05d}. {blk}",
            )
        ]
        t += rng.uniform(0.05, 0.5)
        steps += [
            (
                t + 0.3 * k,
                f"INFO {node}: Receiving block {blk} src: /{ip()}:{rng.randint(30000, 60000)} "
                f"dest: /{ip()}:50010",
            )
            for k in range(3)
        ]
        if fault == "stops half way":
            steps = steps[: 1 + rng.randint(1, 2)]
        else:
            t += rng.uniform(2.0, 6.0)
            if fault != "skips ack":
                steps += [
                    (
                        t + 0.2 * k,
                        f"INFO {state}: BLOCK* NameSystem.addStoredBlock: blockMap updated: "
                        f"{ip()}:50010 is added to {blk} size {rng.randint(2**20, 2**26)}",
                    )
                    for k in range(3)
                ]
            steps += [
                (
                    t + rng.uniform(10.0, 120.0),
                    f"INFO {node}: {ip()}:50010 Served block {blk} to /{ip()}",
                )
                for _ in range(rng.randint(0, 2))
            ]
            if fault != "skips delete":
                steps.append(
                    (
                        t + rng.uniform(150.0, 360.0),
                        f"INFO {node}: Deleting block {blk} file /mnt/hadoop/dfs/data/current/"
                        f"subdir{rng.randint(0, 63)}/{blk}",
                    )
                )
        out += steps
    return out, {(HDFS, blk): fault for blk, fault in faults.items()}


def generate(
    root: Path,
    seed: int = 0,
    *,
    minutes: int = 720,
    blocks: int = 300,
    broken: int = 6,
    degraded: int = 1,
    errors: int = 2,
    burst: bool = True,
    scale: float = 0.6,
) -> Truth:
    """Write the four logs into ``root`` (created) and return their ground truth.

    ``minutes`` of log time from START; ``blocks`` HDFS blocks of which ``broken`` break at session
    level; ``degraded`` minutes in which the three services degrade together; ``errors`` single
    rare ERRORs; ``burst`` a one-minute outage of ERRORs in app.log and db.log; ``scale``
    multiplies the services' per-minute volume.
    """
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    # Special minutes keep 30 minutes from each other and from the edges, so that nothing the
    # truth names shares a time window with another truth.
    taken: list[int] = []

    def pick(lo: int, hi: int) -> int:
        for _ in range(10_000):
            m = rng.randint(lo, hi)
            if all(abs(m - o) >= 30 for o in taken):
                taken.append(m)
                return m
        raise ValueError("too many special minutes for the span")

    # The master model needs a history of its own before a window can stand out: after 2 hours.
    bad_minutes = sorted(pick(120, minutes - 30) for _ in range(degraded))
    error_minutes = [pick(30, minutes - 30) for _ in range(errors)]
    burst_minute = pick(30, minutes - 30) if burst else None

    hdfs, sessions = _hdfs_lines(rng, minutes, blocks, broken)
    timed: dict[str, list[tuple[float, str, bool]]] = {HDFS: [(t, s, False) for t, s in hdfs]}
    for stream in SERVICES:
        rows = timed.setdefault(stream, [])
        base = BASE_PER_MINUTE[stream] * scale
        for m in range(minutes):
            factor = 1.0 + rng.uniform(-0.08, 0.08)
            if rng.random() < SOLO_DIP_SHARE:
                factor = rng.uniform(0.70, 0.85)  # this stream alone, for a reason of its own
            warns = sum(rng.random() < WARN_SHARE for _ in range(round(base)))
            if m in bad_minutes:
                factor = DEGRADED_FACTOR + rng.uniform(-0.03, 0.03)
                warns += DEGRADED_EXTRA_WARNS
            n = max(1, round(base * factor))
            warns = min(warns, n)
            levels = ["WARN"] * warns + ["INFO"] * (n - warns)
            rng.shuffle(levels)
            at0 = START + 60.0 * m
            for level in levels:
                rows.append(
                    (at0 + rng.uniform(0.0, 59.9), _service_line(stream, level, rng), False)
                )
    for i, m in enumerate(error_minutes):
        stream = SERVICES[i % len(SERVICES)]
        timed[stream].append((START + 60.0 * m + rng.uniform(5, 55), _ERRORS[stream](rng), True))
    burst_span = (0.0, 0.0)
    if burst_minute is not None:
        at0 = START + 60.0 * burst_minute
        times: list[float] = []
        for stream, n in (("app.log", 8), ("db.log", 5)):
            for _ in range(n):
                at = at0 + rng.uniform(5.0, 55.0)
                times.append(at)
                timed[stream].append((at, _BURST[stream](rng), True))
        burst_span = (min(times), max(times))

    lines: set[tuple[str, int]] = set()
    line_times: dict[tuple[str, int], float] = {}
    for stream, rows in timed.items():
        rows.sort(key=lambda r: r[0])
        stamp = _hadoop if stream == HDFS else _iso
        with (root / stream).open("w", encoding="utf-8") as fh:
            for n, (at, text, injected) in enumerate(rows, 1):
                fh.write(f"{stamp(at)} {text}\n")
                if injected:
                    lines.add((stream, n))
                    line_times[(stream, n)] = at
    return Truth(
        root=root,
        start=START,
        minutes=minutes,
        sessions=sessions,
        windows=tuple(START + 60.0 * m for m in bad_minutes),
        lines=frozenset(lines),
        line_times=line_times,
        burst=burst_span,
        blocks=blocks,
    )


# ---------------------------------------------------------------------------------------------
# Judging what logwatch found against the truth


def _epoch(iso: str) -> float:
    t = datetime.fromisoformat(iso)
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()


@dataclass
class Judgement:
    """Incidents, sessions and windows matched against a Truth."""

    incidents: int = 0
    incidents_true: int = 0  # incidents covering at least one true anomaly
    truths: int = 0  # true anomalies: broken sessions + degraded minutes + injected lines
    truths_covered: int = 0  # ... covered by some incident
    sessions_found: int = 0
    sessions_true: int = 0
    sessions_truth: int = 0
    windows_found: int = 0
    windows_true: int = 0  # flagged windows that are a degraded minute or hold an injected line
    windows_hit: int = 0  # degraded minutes flagged
    windows_truth: int = 0
    missed: list[str] = field(default_factory=list)
    false: list[str] = field(default_factory=list)  # titles of incidents covering nothing true

    def add(self, other: Judgement) -> None:
        for name, value in vars(other).items():
            if isinstance(value, int):
                setattr(self, name, getattr(self, name) + value)
            else:
                getattr(self, name).extend(value)


def covers(incident: Mapping[str, Any], truth: Truth) -> set[str]:
    """The true anomalies an incident (a row of ``incident_store.incidents``) covers, by name:
    ``session:<key>``, ``window:<start>``, ``line:<file>:<n>``."""
    first, last = _epoch(str(incident["first"])), _epoch(str(incident["last"]))
    keys = set(incident["sessions"])
    streams = {s["stream"] for s in incident["streams"]}
    shown = {(Path(ln["path"]).name, ln["line"]) for ln in incident["lines"]}
    out = {
        f"session:{key}" for (stream, key) in truth.sessions if key in keys and stream in streams
    }
    out |= {f"window:{w:.0f}" for w in truth.windows if first < w + 60 and last >= w}
    out |= {
        f"line:{name}:{n}"
        for (name, n), at in truth.line_times.items()
        if (name, n) in shown or first <= at <= last
    }
    return out


def judge(
    truth: Truth,
    incidents: Sequence[Mapping[str, Any]],
    sessions: set[tuple[str, str]],
    windows: list[float],
) -> Judgement:
    """Match stored incidents, anomalous sessions (stream, key) and flagged window starts."""
    j = Judgement()
    every = (
        {f"session:{key}" for _, key in truth.sessions}
        | {f"window:{w:.0f}" for w in truth.windows}
        | {f"line:{name}:{n}" for name, n in truth.lines}
    )
    covered: set[str] = set()
    for incident in incidents:
        hit = covers(incident, truth)
        covered |= hit
        j.incidents += 1
        j.incidents_true += bool(hit)
        if not hit:
            j.false.append(str(incident["title"]))
    j.truths, j.truths_covered = len(every), len(every & covered)
    j.missed = sorted(every - covered)
    j.sessions_found, j.sessions_truth = len(sessions), len(truth.sessions)
    j.sessions_true = len(sessions & set(truth.sessions))
    line_minutes = {math.floor((at - truth.start) / 60) for at in truth.line_times.values()}
    j.windows_found, j.windows_truth = len(windows), len(truth.windows)
    j.windows_true = sum(
        w in truth.windows or math.floor((w - truth.start) / 60) in line_minutes for w in windows
    )
    j.windows_hit = len(set(windows) & set(truth.windows))
    return j
