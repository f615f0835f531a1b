"""Speed of discovery (``watcher.scan``) and of reading (``reader.read_lines``).

Usage: python bench/read_speed.py [--files 10000] [--lines 1000000] [--repeat 5] [--dir DIR]

Builds a scratch tree in a temporary directory (or DIR): ``--files`` small log files in 100
subdirectories, then times a scan of the unchanged tree; and a plain, a non-ASCII, a CRLF and a
gzip file of ``--lines`` lines, then times reading each from offset 0 to EOF the way the pipeline
does (resuming at end_offset). Best of ``--repeat`` runs; prints one line per measurement.
"""

from __future__ import annotations

import argparse
import gzip
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from logwatch.reader import read_lines  # noqa: E402
from logwatch.watcher import scan  # noqa: E402

LINE = b"2026-03-01T12:00:00.123Z INFO [worker-3] GET /api/v1/items id=123456 took 12ms status=200"


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def make_tree(root: Path, n_files: int) -> None:
    for i in range(n_files):
        d = root / f"svc{i % 100:02d}"
        d.mkdir(exist_ok=True)
        name = f"app{i // 100}.log" if i % 10 else f"app{i // 100}.log.1.gz"
        (d / name).write_bytes(b"x\n")
        if i % 50 == 0:
            (d / f"notes{i}.md").write_bytes(b"not a log\n")


def drain(path: str, compressed: bool) -> int:
    offset = line_no = 0
    while True:
        r = read_lines(path, offset, line_no, compressed=compressed)
        offset, line_no = r.end_offset, r.end_line_no
        if r.at_eof:
            return line_no


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5, help="timing runs; the best counts")
    ap.add_argument("--dir", type=Path, help="scratch directory (default: a temporary one)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp) / "tree"
        root.mkdir()
        make_tree(root, args.files)
        n = len(scan(root).files)
        t = best_of(args.repeat, lambda: scan(root))
        print(f"scan      {n:>9,} files    {t * 1e3:8.1f} ms   ({t / n * 1e6:.2f} us/file)")

        body = LINE + b"\n"
        variants = {
            "plain": body * args.lines,
            "utf8": ("é ".encode() + body) * args.lines,  # non-ASCII: per-line decode path
            "crlf": body.replace(b"\n", b"\r\n") * args.lines,
        }
        files: dict[str, tuple[Path, bool]] = {}
        for name, data in variants.items():
            p = Path(tmp) / f"{name}.log"
            p.write_bytes(data)
            files[name] = (p, False)
        gz = Path(tmp) / "gzip.log.gz"
        gz.write_bytes(gzip.compress(body * args.lines, compresslevel=6))
        files["gzip"] = (gz, True)
        for name, (p, comp) in files.items():
            size = p.stat().st_size if not comp else len(body) * args.lines
            assert drain(str(p), comp) == args.lines

            def run(path: str = str(p), comp: bool = comp) -> None:
                drain(path, comp)

            t = best_of(args.repeat, run)
            print(
                f"read {name:<6} {args.lines:>9,} lines    {t * 1e3:8.1f} ms   "
                f"{args.lines / t / 1e6:5.2f} M lines/s  {size / t / 1e6:6.0f} MB/s"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
