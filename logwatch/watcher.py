"""Discovery of log files under a root, and the cheap identity checks the pipeline runs on them.

``scan`` only lists directories and stats entries: it never opens a file, because opening a FIFO
blocks forever and ``/dev/zero`` never ends (RELIABILITY §0.7, row 33). Everything that matched the
include globs but was not taken is reported in ``ScanResult.skipped``: nothing vanishes silently.

``fingerprint`` and ``marker`` do open files; the pipeline calls them only for files whose
``attr_hash`` changed (RELIABILITY §4, identity decision steps 2-3).
"""

from __future__ import annotations

import bz2
import fnmatch
import gzip
import hashlib
import io
import os
import re
import stat
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from operator import attrgetter
from pathlib import Path

from logwatch.errors import SourceError
from logwatch.records import FileSnapshot

# Log-ish names. Rotated siblings (app.log.1, app.log.2.gz, app.log-20260301) are included so that a
# file rotated away before it was drained is still found and finished (RELIABILITY row 22).
DEFAULT_INCLUDE: tuple[str, ...] = (
    "*.log",
    "*.log.*",  # app.log.1, app.log.2.gz, app.log.2026-03-01 (TimedRotatingFileHandler)
    "*.log-*",  # logrotate dateext: app.log-20260301(.gz)
    "*.jsonl",
    "*.jsonl.*",
    "*.ndjson",
    "*.json",
    "*.out",
    "*.out.*",
    "*.err",
    "*.err.*",
    "*.txt",
    "syslog",
    "syslog.*",
    "syslog-*",
    "messages",
    "messages.*",
    "messages-*",
    "secure",
    "secure.*",
    "secure-*",
    "maillog",
    "maillog.*",
    "maillog-*",
    "cron",
    "cron.*",
    "cron-*",
    "dmesg",
    "dmesg.*",
)

COMPRESSED_SUFFIXES: tuple[str, ...] = (".gz", ".bz2")
# Matched by "*.log.*" but not readable by the reader: reported instead of read as binary garbage.
_UNSUPPORTED_SUFFIXES = (
    ".xz",
    ".zst",
    ".lz4",
    ".lzma",
    ".lzo",
    ".z",
    ".zip",
    ".7z",
    ".tar",
    ".tgz",
)

_COMPRESSION_RE = re.compile(r"\.(?:gz|bz2)$", re.IGNORECASE)
_ROTATION_RE = re.compile(
    r"""(?:
        \.\d{1,6}                                           # app.log.1
      | [.-]\d{8}(?:[-_.]?\d{2,6})?                         # dateext: -20260301, -2026030112, -%s
      | \.\d{4}-\d{2}-\d{2}(?:[_T.-]\d{2}(?:[-:.]?\d{2}){0,2})?  # app.log.2026-03-01_12-00
    )$""",
    re.VERBOSE,
)


@lru_cache(maxsize=65536)  # polls rescan the same names; the regexes are the bulk of scan cost
def stream_name(rel_path: str) -> str:
    """The logical log a file belongs to: rotated and compressed siblings share one stream.

    Only a rotation suffix *after* the log's own name is removed, once, after a .gz/.bz2 suffix:
    ``nginx/access.log.2.gz`` -> ``nginx/access.log``, ``syslog.3`` -> ``syslog``,
    ``app.log-20260301.gz`` -> ``app.log``, ``app.log.2026-03-01`` -> ``app.log``.
    A date inside the name (``app-2026-03-01.log``) is left alone: such a file is its own stream,
    because there is no reliable way to tell a date-named file from a differently named log.
    """
    head, sep, name = rel_path.rpartition("/")
    base = _COMPRESSION_RE.sub("", name) or name
    stripped = _ROTATION_RE.sub("", base)
    if stripped and not stripped.startswith("."):
        base = stripped
    return head + sep + base


@dataclass(frozen=True, slots=True)
class ScanResult:
    """One scan of the log root: the regular files taken, and what matched but was not taken."""

    files: tuple[FileSnapshot, ...]  # sorted by path
    skipped: tuple[tuple[str, str], ...]  # (path, reason), sorted by path


def attr_hash(st: os.stat_result) -> str:
    """Short stable hash of the attributes that change when a file is written, replaced, touched."""
    packed = struct.pack("<QQQqq", st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    return hashlib.blake2b(packed, digest_size=8).hexdigest()


def _matcher(patterns: Sequence[str]) -> Callable[[str], object] | None:
    # One combined regex instead of a Python loop over fnmatch calls: scan cost is per file.
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{_translate(p)})" for p in patterns)).match


@lru_cache(maxsize=256)
def _translate(pattern: str) -> str:
    return fnmatch.translate(pattern)


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    if stat.S_ISDIR(mode):
        return "directory"
    return "not a regular file"


_BY_PATH = attrgetter("path")

# (path, rel_path, stat, reached through a symlink): tuples, because scan cost is per file.
_Candidate = tuple[str, str, os.stat_result, bool]

# The previous scan's snapshots per root: an unchanged file gets the same FileSnapshot object back,
# which skips hashing and building a 10-field frozen dataclass (the bulk of a no-change scan).
_previous: dict[str, dict[str, FileSnapshot]] = {}


def scan(
    root: Path, include: Sequence[str] = DEFAULT_INCLUDE, exclude: Sequence[str] = ()
) -> ScanResult:
    """Walk ``root`` recursively; stat (never open) every file whose name or relative path matches.

    Globs are fnmatch patterns tried against the file name and against the '/'-separated path
    relative to root; ``exclude`` wins, and an excluded directory is not descended into.
    Symlinks to regular files are followed; symlinked directories are followed once each (a loop
    is cut by remembering directory (dev, ino)). The same (dev, ino) is taken once: the entry not
    reached through a symlink is preferred, then the smallest relative path; the others are
    reported as skipped. A file that exists but is not readable is still taken: the reader raises
    SourceError for it, so the pipeline keeps its state and retries instead of seeing it vanish.
    """
    root_s = os.path.abspath(os.fspath(root))
    try:
        root_st = os.stat(root_s)
    except OSError as exc:
        raise SourceError(f"log root {root_s!r}: {exc.strerror}") from exc
    if not stat.S_ISDIR(root_st.st_mode):
        raise SourceError(f"log root {root_s!r} is not a directory")
    inc = _matcher(include)
    excl = _matcher(exclude)
    seen_dirs = {(root_st.st_dev, root_st.st_ino)}
    stack: list[tuple[str, str, bool]] = [(root_s, "", False)]
    link_dirs: list[tuple[str, str, os.stat_result]] = []  # walked after the real tree: determinism
    found: dict[tuple[int, int], _Candidate] = {}
    dups: dict[tuple[int, int], list[_Candidate]] = {}  # same (dev, ino) seen again: rare
    skipped: list[tuple[str, str]] = []

    def take(path: str, rel: str, st: os.stat_result, via_link: bool) -> None:
        if path.lower().endswith(_UNSUPPORTED_SUFFIXES):
            skipped.append((path, "unsupported compression"))
            return
        key = (st.st_dev, st.st_ino)
        if key in found:
            dups.setdefault(key, []).append((path, rel, st, via_link))
        else:
            found[key] = (path, rel, st, via_link)

    while stack or link_dirs:
        if not stack:
            link_dirs.sort(key=lambda t: t[1], reverse=True)
            path, rel, st = link_dirs.pop()
            if (st.st_dev, st.st_ino) not in seen_dirs:
                seen_dirs.add((st.st_dev, st.st_ino))
                stack.append((path, rel + "/", True))
            continue
        dir_path, prefix, via_link = stack.pop()
        try:
            entries = list(os.scandir(dir_path))
        except FileNotFoundError:
            continue  # removed since it was listed: nothing there to report
        except OSError as e:
            skipped.append((dir_path, f"cannot list directory: {e.strerror}"))
            continue
        for entry in entries:
            name = entry.name
            rel = prefix + name
            if excl is not None and (excl(name) or excl(rel)):
                continue
            matched = inc is not None and (inc(name) or inc(rel))
            try:
                # is_file/is_dir/is_symlink with follow_symlinks=False use d_type: no syscall.
                if entry.is_file(follow_symlinks=False):
                    if matched:
                        take(entry.path, rel, entry.stat(follow_symlinks=False), via_link)
                elif entry.is_dir(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    if (st.st_dev, st.st_ino) not in seen_dirs:
                        seen_dirs.add((st.st_dev, st.st_ino))
                        stack.append((entry.path, rel + "/", via_link))
                    if matched:
                        skipped.append((entry.path, "is a directory"))
                elif entry.is_symlink():
                    try:
                        st = os.stat(entry.path)  # follows the link; does not open the target
                    except FileNotFoundError:
                        if matched:
                            skipped.append((entry.path, "broken symlink"))
                        continue
                    if stat.S_ISDIR(st.st_mode):
                        link_dirs.append((entry.path, rel, st))
                        if matched:
                            skipped.append((entry.path, "symlink to a directory"))
                    elif not matched:
                        pass
                    elif stat.S_ISREG(st.st_mode):
                        take(entry.path, rel, st, True)
                    else:
                        skipped.append((entry.path, f"symlink to a {_kind(st.st_mode)}"))
                elif matched:
                    skipped.append((entry.path, _kind(entry.stat(follow_symlinks=False).st_mode)))
            except FileNotFoundError:
                continue  # vanished between listing and stat: it is simply not there any more
            except OSError as e:
                if matched:
                    skipped.append((entry.path, f"cannot stat: {e.strerror}"))

    for key, others in dups.items():
        # Deterministic whatever the listing order: the entry not reached through a symlink wins,
        # then the smallest relative path.
        cands = sorted([found[key], *others], key=lambda c: (c[3], c[1]))
        found[key] = cands[0]
        skipped.extend((c[0], f"same file as {cands[0][0]}") for c in cands[1:])

    previous = _previous.get(root_s, {})
    files: list[FileSnapshot] = []
    reused = 0
    for path, rel, st, _ in found.values():
        snap = previous.get(path)
        if (
            snap is None
            or snap.rel_path != rel
            or snap.ino != st.st_ino
            or snap.size != st.st_size
            or snap.mtime_ns != st.st_mtime_ns
            or snap.ctime_ns != st.st_ctime_ns
            or snap.dev != st.st_dev
        ):
            snap = FileSnapshot(
                path=path,
                rel_path=rel,
                stream=stream_name(rel),
                dev=st.st_dev,
                ino=st.st_ino,
                size=st.st_size,
                mtime_ns=st.st_mtime_ns,
                ctime_ns=st.st_ctime_ns,
                attr_hash=attr_hash(st),
                compressed=rel.lower().endswith(COMPRESSED_SUFFIXES),
            )
        else:
            reused += 1
        files.append(snap)
    if reused != len(files) or len(files) != len(previous):  # (unchanged tree: map stands)
        _previous[root_s] = {f.path: f for f in files}  # only what exists now: bounded
    files.sort(key=_BY_PATH)
    skipped.sort()
    return ScanResult(files=tuple(files), skipped=tuple(skipped))


# --- identity checks (these open the file) --------------------------------------------------------


def _open(path: str) -> io.FileIO:
    """Open a regular file for reading, refusing anything else before a read can block."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY  # O_NONBLOCK: FIFO race
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise SourceError(f"cannot open {path!r}: {exc.strerror}") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise SourceError(f"{path!r} is not a regular file")
    return io.FileIO(fd, "rb", closefd=True)


def _decompressor(path: str, raw: io.FileIO) -> gzip.GzipFile | bz2.BZ2File:
    if path.lower().endswith(".bz2"):
        return bz2.BZ2File(raw)
    return gzip.GzipFile(fileobj=raw, mode="rb")


def _read_upto(f: gzip.GzipFile | bz2.BZ2File, n: int) -> bytes:
    """Up to ``n`` decompressed bytes; for a truncated or corrupt stream, what decoded before it."""
    parts: list[bytes] = []
    got = 0
    try:
        while got < n:
            piece = f.read1(min(n - got, 1 << 16))  # read1: bounded, and keeps earlier pieces
            if not piece:
                break
            parts.append(piece)
            got += len(piece)
    except (EOFError, OSError, zlib.error):
        pass  # identity is judged on the bytes that exist; the reader reports the damage
    return b"".join(parts)


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def fingerprint(path: str, *, compressed: bool, length: int = 1024) -> tuple[int, str]:
    """(bytes hashed, hex digest) of the first <= ``length`` bytes, decompressed for .gz/.bz2.

    Hashing decompressed bytes makes ``app.log.1.gz`` match the already-read ``app.log.1``.
    A short file gives a short count: the pipeline stores the count and compares prefixes.
    """
    with _open(path) as raw:
        if not compressed:
            data = os.pread(raw.fileno(), length, 0)
        else:
            with _decompressor(path, raw) as f:
                data = _read_upto(f, length)
    return len(data), _digest(data)


def marker(path: str, offset: int, *, compressed: bool, length: int = 32) -> tuple[int, str]:
    """(bytes hashed, hex digest) of the <= ``length`` bytes just before ``offset``.

    Checked before resuming at ``offset``: a file truncated and refilled past the old offset has
    the same size story as growth but a different marker (RELIABILITY §0.4). Fewer bytes than
    asked (count < min(length, offset)) means the file is now shorter than ``offset``.
    """
    start = max(0, offset - length)
    with _open(path) as raw:
        if not compressed:
            data = os.pread(raw.fileno(), offset - start, start)
            return len(data), _digest(data)
        with _decompressor(path, raw) as f:
            skipped = 0
            while skipped < start:  # bounded-memory forward skip on the decompressed stream
                piece = _read_upto(f, min(start - skipped, 1 << 20))
                if not piece:
                    return 0, _digest(b"")
                skipped += len(piece)
            data = _read_upto(f, offset - start)
    return len(data), _digest(data)
