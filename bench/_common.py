"""Shared helpers of the issue-7 benchmarks: machine description, running logwatch as a child
process (with its peak RSS), the Drain3-with-masks baseline, and result printing."""

from __future__ import annotations

import json
import os
import platform
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))


def machine() -> dict[str, Any]:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "load1": round(load, 2),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }


def machine_line() -> str:
    m = machine()
    return (
        f"machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, "
        f"load average {m['load1']} at {m['date']}"
    )


def emit(bench: str, result: dict[str, Any]) -> None:
    """The JSON line every benchmark ends with."""
    print(json.dumps({"bench": bench, "machine": machine(), **result}, sort_keys=True))


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for n, r in enumerate(cells):
        print(
            "  ".join(
                c.rjust(w) if i else c.ljust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )
        if n == 0:
            print("  ".join("-" * w for w in widths))


def _fmt(c: object) -> str:
    if isinstance(c, float):
        return f"{c:,.2f}" if abs(c) < 100 else f"{c:,.0f}"
    if isinstance(c, int):
        return f"{c:,}"
    return str(c)


# ---------------------------------------------------------------------------- child processes


def scratch_dir(prefix: str, parent: Path | None) -> Path:
    """A fresh scratch directory, inside ``parent`` (created when missing) when one is given."""
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=parent))


def daemon_cmd(logs: Path, db: Path, poll_interval: float) -> list[str]:
    """The daemon on a SQLite database, as the live and memory benches run it (node "bench")."""
    return logwatch_cmd(
        "run",
        "--log-dir",
        str(logs),
        "--db-url",
        f"sqlite:///{db}",
        "--poll-interval",
        f"{poll_interval:g}",
        "--node",
        "bench",
    )


def logwatch_cmd(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "main.py"), *args]


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM (kB) of a live process; empty once it is gone."""
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":", 1)
                out[key] = int(value.split()[0])
    except (OSError, ValueError):
        pass
    return out


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process and its reaped children (0.0 once it is gone)."""
    try:
        # Fields after the command name, which may hold spaces: utime, stime, cutime, cstime are
        # the 12th to 15th of them.
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        ticks = sum(int(f) for f in fields[11:15])
    except (OSError, ValueError, IndexError):
        return 0.0
    return ticks / os.sysconf("SC_CLK_TCK")


def _pss_kb(pid: int) -> int:
    """Proportional set size (kB): pages shared with another process count half in each."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return proc_status(pid).get("VmRSS", 0)


def tree_pss_kb(pid: int) -> int:
    """Memory (kB) of a process and its children together (--once learns streams in forked
    children): the sum of their PSS, since a forked child shares its parent's pages until either
    writes them, and summing RSS would count those twice."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return _pss_kb(pid) + sum(_pss_kb(int(child)) for child in children)


@dataclass
class ChildRun:
    seconds: float
    returncode: int
    stdout: str
    stderr: str
    peak_rss_mb: float  # VmHWM as last read before the process ended
    cpu_seconds: float = 0.0  # user + system time of the child (robust on a busy machine)
    rss_timeline_mb: list[tuple[float, float]] = field(default_factory=list)  # (s, VmRSS MB)
    # Largest sampled PSS sum of the process and its children (sampled, so a lower bound).
    peak_tree_pss_mb: float = 0.0


def run_child(
    cmd: Sequence[str], sample_every: float = 0.25, env: dict[str, str] | None = None
) -> ChildRun:
    """Run ``cmd`` to completion, sampling its RSS; wall time includes interpreter start-up."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env
    )
    hwm = tree_peak = 0
    timeline: list[tuple[float, float]] = []
    import threading

    out: dict[str, str] = {}

    def pump() -> None:
        o, e = proc.communicate()
        out["o"], out["e"] = o, e

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    while t.is_alive():
        st = proc_status(proc.pid)
        if st:
            hwm = max(hwm, st.get("VmHWM", 0))
            timeline.append((time.perf_counter() - start, st.get("VmRSS", 0) / 1024))
            tree_peak = max(tree_peak, tree_pss_kb(proc.pid))
        t.join(sample_every)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return ChildRun(
        seconds,
        proc.returncode,
        out.get("o", ""),
        out.get("e", ""),
        peak_rss_mb=hwm / 1024,
        cpu_seconds=cpu,
        rss_timeline_mb=timeline,
        peak_tree_pss_mb=tree_peak / 1024,
    )


def run_once(log_dir: Path, db: Path, *extra: str, fresh: bool = True) -> ChildRun:
    """``run --once`` as a child on the SQLite database ``db``: a new one unless not ``fresh``."""
    if fresh and db.exists():
        db.unlink()
    cmd = logwatch_cmd(
        "run", "--once", "--log-dir", str(log_dir), "--db-url", f"sqlite:///{db}", *extra
    )
    r = run_child(cmd)
    if r.returncode != 0:
        raise SystemExit(f"logwatch failed ({r.returncode}): {r.stderr[-2000:]}")
    return r


def startup_seconds(scratch: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of ``run --once`` on an empty folder: interpreter, imports, schema;
    best of 2."""
    empty = scratch / "empty"
    empty.mkdir(parents=True, exist_ok=True)
    runs = [run_once(empty, scratch / "empty.db") for _ in range(2)]
    return min(r.seconds for r in runs), min(r.cpu_seconds for r in runs)


def count_lines(paths: Iterable[Path]) -> int:
    n = 0
    for p in paths:
        with open(p, "rb") as f:
            while chunk := f.read(1 << 22):
                n += chunk.count(b"\n")
    return n


def log_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.log") if p.is_file())


def db_query(db: Path, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
    """A short read-only query on the SQLite database a logwatch child is writing."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


# ---------------------------------------------------------------------------- Drain3 baseline


def drain3_seconds(paths: Sequence[Path]) -> tuple[float, float, int]:
    """Drain3's TemplateMiner with the masking of drain3's examples (IP, numbers, hex, ids, ...),
    one miner per file (logwatch keeps one template tree per stream), fed whole raw lines as a
    plain Drain3 deployment would be; reading the files is included. Same sim_th/depth as
    logwatch's defaults. Returns (wall seconds, CPU seconds, lines)."""
    from grouping import drain3_miner

    from logwatch.config import Config

    cfg = Config()
    lines = 0
    start, cpu = time.perf_counter(), time.process_time()
    for p in paths:
        miner: Any = drain3_miner(cfg.template_sim_th, cfg.template_depth)
        with open(p, encoding="utf-8", errors="replace") as f:
            for line in f:
                miner.add_log_message(line.rstrip("\n"))
                lines += 1
    return time.perf_counter() - start, time.process_time() - cpu, lines
