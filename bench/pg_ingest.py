"""How many rows per second one PostgreSQL absorbs from logwatch (docs/scaling.md).

Usage: python bench/pg_ingest.py [--url postgresql+psycopg2://postgres@127.0.0.1:5432/test]
                                 [--seconds 5] [--writers 1,2,4] [--anomalies 0,10,100,1000]

Each writer is a process standing for one daemon (its own node, file and stream) calling
``Store.commit_batch`` in a loop: one transaction per batch, advancing the file's offset (guarded
by the expected offset), rewriting the stream row and inserting ``--anomalies`` anomaly rows, as the
pipeline does for every file batch. Reported per configuration: commits/s (= file-offset updates/s)
and anomaly rows/s, summed over writers, and the p50/p95 commit latency. Runs in a private schema,
dropped at the end; the server is used as configured (fsync on).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import _common as c
from sqlalchemy import create_engine, text

from logwatch.records import Anomaly
from logwatch.storage import FileUpdate, Store, StreamUpdate

DEFAULT_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


def _anomaly(offset: int, now: str) -> Anomaly:
    return Anomaly(
        stream="app.log",
        path="/var/log/app.log",
        line=offset // 120 + 1,
        offset=offset,
        timestamp="2026-03-01T10:00:00",
        detected_at=now,
        severity=72,
        score=0.41,
        reasons=("new template, 0.71 from nearest known line", "level ERROR in a stream 99% INFO"),
        template="ERROR <*> failed to connect to <*> after <*> ms",
        text=f"2026-03-01 10:00:00 ERROR db-{offset} failed to connect to 10.0.3.7 after 3000 ms",
        level="ERROR",
        template_id=17,
        host="web-1",
        process="app",
        pid=4242,
    )


def writer(url: str, node: str, per_batch: int, seconds: float, out: Any) -> None:
    store = Store(url, node=node)
    f = store.add_file(
        path="/var/log/app.log",
        stream_id=store.stream_id("app.log"),
        dev=1,
        ino=1,
        fp_len=0,
        fp_hash="",
    )
    now = datetime.now(UTC).isoformat()
    offset = lines = 0
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        batch_bytes = 120 * max(per_batch, 1) * 10  # one anomaly in ten lines
        found = [_anomaly(offset + i * 1200, now) for i in range(per_batch)]
        update = FileUpdate(
            file_id=f.id,
            expected_offset=offset,
            offset=offset + batch_bytes,
            line_no=lines + batch_bytes // 120,
            size=offset + batch_bytes,
            mtime_ns=0,
            ctime_ns=0,
            attr_hash="a" * 64,
            lines_read=batch_bytes // 120,
            events_read=batch_bytes // 120,
        )
        lines += batch_bytes // 120
        stream = StreamUpdate(f.stream_id, lines, {"INFO": lines}, {}, 0)
        t0 = time.perf_counter()
        store.commit_batch(update, stream, found)
        latencies.append(time.perf_counter() - t0)
        offset += batch_bytes
    store.close()
    out.put(latencies)


def run(url: str, writers: int, per_batch: int, seconds: float) -> dict[str, Any]:
    ctx = mp.get_context("fork")
    q: Any = ctx.Queue()
    procs = [
        ctx.Process(
            target=writer, args=(url, f"node-{uuid.uuid4().hex[:6]}", per_batch, seconds, q)
        )
        for _ in range(writers)
    ]
    for p in procs:
        p.start()
    results = [q.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join()
    commits = sum(len(r) for r in results)
    every = sorted(x for r in results for x in r)
    return {
        "writers": writers,
        "anomalies_per_commit": per_batch,
        "commits_per_s": round(commits / seconds),
        "anomaly_rows_per_s": round(commits * per_batch / seconds),
        "p50_ms": round(statistics.median(every) * 1000, 1),
        "p95_ms": round(statistics.quantiles(every, n=20)[-1] * 1000, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--url", default=DEFAULT_URL)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--writers", default="1,2,4")
    ap.add_argument("--anomalies", default="0,10,100,1000")
    args = ap.parse_args()
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(args.url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in args.url else "?"
    url = f"{args.url}{sep}options={quote(f'-csearch_path={schema}')}"
    try:
        store = Store(url)
        store.upgrade()
        store.close()
        print(c.machine_line())
        rows = []
        for w in (int(x) for x in args.writers.split(",")):
            for k in (int(x) for x in args.anomalies.split(",")):
                rows.append(run(url, w, k, args.seconds))
                print(rows[-1], flush=True)
        c.table(
            ("writers", "anomalies/commit", "commits/s", "anomaly rows/s", "p50 ms", "p95 ms"),
            [
                (
                    r["writers"],
                    r["anomalies_per_commit"],
                    r["commits_per_s"],
                    r["anomaly_rows_per_s"],
                    r["p50_ms"],
                    r["p95_ms"],
                )
                for r in rows
            ],
        )
        c.emit("pg_ingest", {"results": rows})
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
