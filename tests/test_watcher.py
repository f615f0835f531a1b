"""Watcher: discovery without opening, streams, identity hashes (RELIABILITY rows 32-34, 36, 41)."""

from __future__ import annotations

import bz2
import gzip
import os
import socket
import threading
from pathlib import Path

import pytest

from logwatch.errors import SourceError
from logwatch.watcher import ScanResult, fingerprint, marker, scan, stream_name


@pytest.mark.parametrize(
    ("rel", "stream"),
    [
        ("app.log", "app.log"),
        ("app.log.1", "app.log"),
        ("app.log.12", "app.log"),
        ("nginx/access.log.2.gz", "nginx/access.log"),
        ("nginx/access.log.gz", "nginx/access.log"),
        ("app.log.3.bz2", "app.log"),
        ("syslog", "syslog"),
        ("syslog.3", "syslog"),
        ("messages-20260301", "messages"),
        ("app.log-20260301", "app.log"),
        ("app.log-20260301.gz", "app.log"),
        ("app.log-2026030112", "app.log"),
        ("app.log.20260301", "app.log"),
        ("app.log.2026-03-01", "app.log"),
        ("app.log.2026-03-01_12-00", "app.log"),
        ("server.out.1", "server.out"),
        ("events.jsonl.1.gz", "events.jsonl"),
        # A date inside the name is not a rotation suffix: such a file is its own stream.
        ("app-2026-03-01.log", "app-2026-03-01.log"),
        ("python3.11.log", "python3.11.log"),
        ("a/b.1/c.log", "a/b.1/c.log"),  # directories are never rewritten
        (".1", ".1"),  # nothing left to be a name: kept
    ],
)
def test_stream_name(rel: str, stream: str) -> None:
    assert stream_name(rel) == stream


def touch(path: Path, data: bytes = b"x\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def rels(result: ScanResult) -> list[str]:
    return [f.rel_path for f in result.files]


def reasons(result: ScanResult, root: Path) -> dict[str, str]:
    return {os.path.relpath(p, root): r for p, r in result.skipped}


def test_default_include_recursion_and_sorting(tmp_path: Path) -> None:
    for name in [
        "b/app.log",
        "a/deep/er/x.log.1",
        "a/x.log.2.gz",
        "syslog",
        "syslog.1",
        "messages-20260301",
        "out.jsonl",
        "svc.err",
        "notes.md",
        "image.png",
        "a/data.csv",
    ]:
        touch(tmp_path / name)
    r = scan(tmp_path)
    assert rels(r) == [
        "a/deep/er/x.log.1",
        "a/x.log.2.gz",
        "b/app.log",
        "messages-20260301",
        "out.jsonl",
        "svc.err",
        "syslog",
        "syslog.1",
    ]
    assert r.skipped == ()  # not matching the globs is not "skipped"
    f = {x.rel_path: x for x in r.files}
    assert f["a/x.log.2.gz"].compressed and not f["b/app.log"].compressed
    assert f["a/x.log.2.gz"].stream == "a/x.log"
    assert f["b/app.log"].path == str(tmp_path / "b/app.log")
    assert f["b/app.log"].size == 2


def test_include_exclude_on_name_and_relative_path(tmp_path: Path) -> None:
    for name in ["a/one.log", "a/two.log", "b/one.log", "b/keep.txt", "old/x.log"]:
        touch(tmp_path / name)
    r = scan(tmp_path, include=["*.log", "b/*.txt"], exclude=["two.log", "old"])
    assert rels(r) == ["a/one.log", "b/keep.txt", "b/one.log"]
    r = scan(tmp_path, include=["a/*"], exclude=["*.txt"])
    assert rels(r) == ["a/one.log", "a/two.log"]
    r = scan(tmp_path, include=["*.log"], exclude=["b/*"])  # exclude wins over include
    assert rels(r) == ["a/one.log", "a/two.log", "old/x.log"]


def test_root_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="missing"):
        scan(tmp_path / "missing")
    with pytest.raises(SourceError, match="not a directory"):
        scan(touch(tmp_path / "f.log"))


def scan_with_timeout(root: Path, timeout: float = 10.0) -> ScanResult:
    """Scan in a thread: had it opened a FIFO it would block; the test then fails, not hangs."""
    out: list[ScanResult] = []
    t = threading.Thread(target=lambda: out.append(scan(root)), daemon=True)
    t.start()
    t.join(timeout)
    assert out, "scan blocked: it must never open a non-regular file"
    return out[0]


def test_non_regular_files_skipped_with_reason_never_opened(tmp_path: Path) -> None:
    touch(tmp_path / "sentinel.log")
    os.mkfifo(tmp_path / "q.log")
    (tmp_path / "d.log").mkdir()
    touch(tmp_path / "d.log" / "inner.log")  # a log-named directory is still walked
    os.symlink("/dev/zero", tmp_path / "z.log")
    os.symlink(tmp_path / "gone.log", tmp_path / "broken.log")
    os.symlink(tmp_path / "d.log", tmp_path / "dirlink.log")
    touch(tmp_path / "archive.log.xz")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tmp_path / "s.log"))
        r = scan_with_timeout(tmp_path)
    finally:
        sock.close()
    assert rels(r) == ["d.log/inner.log", "sentinel.log"]
    assert reasons(r, tmp_path) == {
        "q.log": "FIFO",
        "s.log": "socket",
        "d.log": "is a directory",
        "z.log": "symlink to a character device",
        "broken.log": "broken symlink",
        "dirlink.log": "symlink to a directory",
        "archive.log.xz": "unsupported compression",
    }


def test_symlink_and_hard_link_taken_once(tmp_path: Path) -> None:
    real = touch(tmp_path / "real.log")
    os.link(real, tmp_path / "z-hard.log")
    os.symlink(real, tmp_path / "a-link.log")
    outside = touch(tmp_path.parent / f"{tmp_path.name}-outside" / "target.txt")
    os.symlink(outside, tmp_path / "ext.log")
    r = scan(tmp_path)
    # the real entry beats a symlink though 'a-link.log' sorts first; hard links: first path
    assert rels(r) == ["ext.log", "real.log"]
    assert reasons(r, tmp_path) == {
        "a-link.log": f"same file as {real}",
        "z-hard.log": f"same file as {real}",
    }
    ext = r.files[0]
    assert (ext.dev, ext.ino) == (os.stat(outside).st_dev, os.stat(outside).st_ino)
    assert ext.path == str(tmp_path / "ext.log")  # the link path; the reader follows it


def test_symlinked_directories_followed_once_and_loops_cut(tmp_path: Path) -> None:
    touch(tmp_path / "real" / "a.log")
    os.symlink(tmp_path / "real", tmp_path / "alias")
    os.symlink("..", tmp_path / "real" / "loop")
    elsewhere = tmp_path.parent / f"{tmp_path.name}-elsewhere"
    touch(elsewhere / "b.log")
    os.symlink(elsewhere, tmp_path / "ext")
    os.symlink(elsewhere, tmp_path / "ext2")
    r = scan_with_timeout(tmp_path)
    assert rels(r) == ["ext/b.log", "real/a.log"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_unreadable_directory_reported(tmp_path: Path) -> None:
    touch(tmp_path / "locked" / "a.log")
    touch(tmp_path / "ok.log")
    os.chmod(tmp_path / "locked", 0)
    try:
        r = scan(tmp_path)
    finally:
        os.chmod(tmp_path / "locked", 0o755)
    assert rels(r) == ["ok.log"]
    assert reasons(r, tmp_path) == {"locked": "cannot list directory: Permission denied"}


def test_weird_names_kept_losslessly(tmp_path: Path) -> None:
    name = os.fsdecode(b"bad\xff na\nme.log")
    touch(tmp_path / name)
    touch(tmp_path / ("L" * 250 + ".log"))
    r = scan(tmp_path)
    assert len(r.files) == 2
    assert any(os.fsencode(f.path).endswith(b"bad\xff na\nme.log") for f in r.files)


def test_attr_hash_changes_on_append_not_on_rescan(tmp_path: Path) -> None:
    p = touch(tmp_path / "a.log")
    first = scan(tmp_path).files[0]
    h1 = first.attr_hash
    assert scan(tmp_path).files[0] is first and len(h1) == 16  # unchanged: the same snapshot back
    with open(p, "ab") as f:
        f.write(b"y\n")
    assert scan(tmp_path).files[0].attr_hash != h1
    h2 = scan(tmp_path).files[0].attr_hash
    os.utime(p, ns=(0, 0))  # touch-only changes are seen too (cheap re-check, row 34)
    assert scan(tmp_path).files[0].attr_hash != h2


def test_fingerprint_of_compressed_equals_decompressed(tmp_path: Path) -> None:
    data = b"".join(b"line %d\n" % i for i in range(500))
    plain = touch(tmp_path / "app.log.1", data)
    gz = touch(tmp_path / "app.log.1.gz", gzip.compress(data))
    bz = touch(tmp_path / "app.log.2.bz2", bz2.compress(data))
    fp = fingerprint(str(plain), compressed=False)
    assert fp[0] == 1024
    assert fingerprint(str(gz), compressed=True) == fp
    assert fingerprint(str(bz), compressed=True) == fp
    assert fingerprint(str(gz), compressed=False) != fp
    small = touch(tmp_path / "small.log", b"abc\n")
    assert fingerprint(str(small), compressed=False)[0] == 4
    prefix = touch(tmp_path / "p.log", b"line")  # a prefix compare at a stored fp_len
    assert fingerprint(str(plain), compressed=False, length=4) == fingerprint(
        str(prefix), compressed=False
    )


def test_fingerprint_truncated_gzip_hashes_what_decodes(tmp_path: Path) -> None:
    data = os.urandom(4000).hex().encode()
    gz = touch(tmp_path / "a.log.gz", gzip.compress(data)[:-50])
    n, digest = fingerprint(str(gz), compressed=True, length=1024)
    assert (
        n == 1024 and digest == fingerprint(str(touch(tmp_path / "p", data)), compressed=False)[1]
    )


def test_marker(tmp_path: Path) -> None:
    data = b"".join(b"line %d\n" % i for i in range(100))
    plain = touch(tmp_path / "a.log", data)
    gz = touch(tmp_path / "a.log.gz", gzip.compress(data))
    ref = touch(tmp_path / "ref", data[68:100])
    m = marker(str(plain), 100, compressed=False)
    assert m == (32, fingerprint(str(ref), compressed=False)[1])
    assert marker(str(gz), 100, compressed=True) == m
    assert marker(str(plain), 10, compressed=False)[0] == 10
    assert marker(str(plain), 0, compressed=False)[0] == 0
    # truncated and refilled past the old offset: same size story, different marker (row 10/11)
    touch(plain, b"X" * len(data))
    assert marker(str(plain), 100, compressed=False) != m
    # shorter than the offset: fewer bytes hashed
    touch(plain, data[:90])
    assert marker(str(plain), 100, compressed=False)[0] == 22


def test_identity_checks_refuse_non_regular(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "q.log")
    with pytest.raises(SourceError, match="not a regular file"):
        fingerprint(str(tmp_path / "q.log"), compressed=False)
    with pytest.raises(SourceError):
        marker(str(tmp_path / "missing.log"), 10, compressed=False)
