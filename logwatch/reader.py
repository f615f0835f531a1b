"""Byte-exact incremental reads of complete lines (RELIABILITY §0.5, §4 "Reader").

A read starts at a committed offset and returns only complete lines, so the pipeline never commits
an offset past the last ``\\n``. Memory stays near ``chunk_bytes + max_line_bytes`` whatever the
input: a 200 MB line is skipped in chunk-sized reads, and a compressed file is decompressed one
bounded chunk at a time (so a decompression bomb costs time, never memory).
"""

from __future__ import annotations

import bz2
import gc
import gzip
import io
import os
import stat
import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import accumulate

from logwatch.errors import SourceError
from logwatch.records import RawLine, ReadResult

_BOM = b"\xef\xbb\xbf"
_MIN_READ = 1 << 16  # smallest follow-up read: finishing a partial line should not take many reads


def _open_regular(path: str) -> io.FileIO:
    # O_NONBLOCK: if the path became a FIFO since the scan, open() must not block (it has no effect
    # on a regular file). The type is checked on the descriptor, so nothing else is ever read.
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
    try:
        fd = os.open(path, flags)
    except FileNotFoundError as exc:
        raise SourceError(f"{path!r}: file not found") from exc
    except PermissionError as exc:
        raise SourceError(f"{path!r}: permission denied") from exc
    except OSError as exc:  # EMFILE, EIO, ...: __cause__ keeps the errno for the pipeline
        raise SourceError(f"{path!r}: cannot open: {exc.strerror}") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise SourceError(f"{path!r}: not a regular file")
    return io.FileIO(fd, "rb", closefd=True)


class _PlainSource:
    """Sequential reads with ``os.pread`` from a byte offset."""

    def __init__(self, raw: io.FileIO, offset: int) -> None:
        self.raw = raw
        self.pos = offset
        self.problem: str | None = None

    def read(self, n: int) -> bytes:
        try:
            data = os.pread(self.raw.fileno(), n, self.pos)
        except OSError as exc:
            raise SourceError(f"{self.raw.name!r}: read failed: {exc.strerror}") from exc
        self.pos += len(data)
        return data

    def close(self) -> None:
        self.raw.close()


class _CompressedSource:
    """Sequential reads of the decompressed stream; ``pos`` counts decompressed bytes.

    A truncated or corrupt stream ends the data and sets ``problem``: the lines before the damage
    are still returned (RELIABILITY row 36), and a later, completed file can resume at the offset.
    """

    def __init__(self, path: str, raw: io.FileIO) -> None:
        self.path = path
        self.kind = "bz2" if path.lower().endswith(".bz2") else "gzip"
        self.f: gzip.GzipFile | bz2.BZ2File = (
            bz2.BZ2File(raw) if self.kind == "bz2" else gzip.GzipFile(fileobj=raw, mode="rb")
        )
        self.raw = raw
        self.pos = 0
        self.back = b""  # bytes handed back by unread(): served before decompressing more
        self.problem: str | None = None
        st = os.fstat(raw.fileno())
        self.identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def read(self, n: int) -> bytes:
        if self.back:
            data, self.back = self.back[:n], self.back[n:]
            self.pos += len(data)
            return data
        if self.problem is not None:
            return b""
        parts: list[bytes] = []
        got = 0
        try:
            while got < n:
                # read1 returns what one bounded decompression step produced, so the pieces
                # already decoded survive an error raised by a later step.
                piece = self.f.read1(min(n - got, 1 << 18))
                if not piece:
                    break
                parts.append(piece)
                got += len(piece)
        except EOFError:
            self.problem = f"truncated {self.kind} stream after {self.pos + got} bytes"
        except (OSError, zlib.error, ValueError) as exc:  # BadGzipFile is an OSError
            self.problem = f"corrupt {self.kind} stream after {self.pos + got} bytes: {exc}"
        self.pos += got
        return b"".join(parts)

    def unread(self, data: bytes) -> None:
        # A read stops with a partial line in hand; giving it back leaves the stream exactly at
        # end_offset, so the next call can continue here instead of decompressing from the start.
        self.back = data + self.back
        self.pos -= len(data)

    def skip_to(self, offset: int) -> None:
        while self.pos < offset:  # chunked so memory stays bounded however far the offset is
            if not self.read(min(offset - self.pos, 1 << 20)):
                return

    def close(self) -> None:
        self.f.close()
        self.raw.close()


# Seeking in a compressed stream means decompressing everything before the offset, so reading a big
# archive chunk by chunk would cost O(n^2). The last few compressed sources are kept open at their
# position and reused when the next call starts exactly there on the same, unchanged file. A source
# is closed as soon as it reaches the end, so no descriptor to a drained (maybe deleted) file stays.
_CACHE_SIZE = 4
_cache: OrderedDict[str, _CompressedSource] = OrderedDict()
_cache_lock = threading.Lock()


def _compressed_source(path: str, offset: int) -> _CompressedSource:
    with _cache_lock:
        src = _cache.pop(path, None)
    if src is not None:
        try:
            st = os.stat(path)
            same = src.identity == (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        except OSError:
            same = False
        if same and src.pos == offset:
            return src
        src.close()
    src = _CompressedSource(path, _open_regular(path))
    src.skip_to(offset)
    return src


def _release(path: str, src: _CompressedSource, keep: bool) -> None:
    if not keep:
        src.close()
        return
    with _cache_lock:
        _cache[path] = src
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)[1].close()


def _cut_utf8(data: bytes, n: int) -> bytes:
    """The first <= n bytes of ``data``, not splitting a UTF-8 sequence."""
    if len(data) <= n:
        return data
    i = n
    # data[n] is the first byte dropped; if it continues a sequence, drop that sequence's lead too.
    while i > 0 and n - i < 3 and data[i] & 0xC0 == 0x80:
        i -= 1
    return data[:i] if i < n and data[i] >= 0xC0 else data[:n]


def _text(data: bytes) -> str:
    text = data.decode("utf-8", "replace")
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def _emit(out: list[RawLine], block: bytes, offset: int, line_no: int, max_len: int) -> int:
    """Append the lines of ``block`` (complete lines, final '\\n' removed); return the last line_no.

    Per-line work runs in C (split, map, accumulate); Python only builds lists. An all-ASCII block
    is decoded once: its character counts equal byte counts, so offsets stay exact.
    """
    texts: list[str]
    flags: list[bool] | None = None
    if block.isascii():
        text = block.decode("ascii")
        if "\x00" in text:
            text = text.replace("\x00", "\ufffd")  # same length: offsets unchanged
        texts = text.split("\n")
        sizes = list(map(len, texts))
        if "\r" in text:
            texts = [t[:-1] if t[-1:] == "\r" else t for t in texts]
        if max(sizes) > max_len:  # sizes include a '\r'; exact check is per line below
            flags = [len(t) > max_len for t in texts]
            texts = [t[:max_len] for t in texts]
    else:
        parts = block.split(b"\n")
        sizes = list(map(len, parts))
        if offset == 0 and parts[0][:3] == _BOM:  # BOM only at the start of the file
            parts[0] = parts[0][3:]
        if b"\r" in block:
            parts = [b[:-1] if b[-1:] == b"\r" else b for b in parts]
        if max(sizes) > max_len:
            flags = [len(b) > max_len for b in parts]
            parts = [_cut_utf8(b, max_len) for b in parts]
        texts = [b.decode("utf-8", "replace") for b in parts]
        if b"\x00" in block:  # PostgreSQL text rejects NUL; U+FFFD keeps the spot visible
            texts = [t.replace("\x00", "\ufffd") for t in texts]
    # offsets: running sum of (size + 1) from `offset`; accumulate yields one extra, map stops early
    offsets = accumulate(map(_plus_one, sizes), initial=offset)
    numbers = range(line_no + 1, line_no + 1 + len(texts))
    # Creating ~10^4 objects per chunk triggers repeated cyclic-GC passes over the growing list,
    # which halves throughput; RawLines cannot form cycles, so the collector is paused meanwhile.
    with collector_paused():
        if flags is None:
            out.extend(map(RawLine, offsets, numbers, texts))
        else:
            out.extend(map(RawLine, offsets, numbers, texts, flags))
    return line_no + len(texts)


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector paused (and resumed only if it was on): for per-line and
    per-event work, which makes many objects and no cycles, so its passes would only walk them."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


_plus_one = (1).__add__


def read_lines(
    path: str,
    start_offset: int,
    start_line_no: int,
    *,
    compressed: bool = False,
    chunk_bytes: int = 1 << 20,
    max_line_bytes: int = 65536,
    final: bool = False,
    fd: int | None = None,
) -> ReadResult:
    """Read the complete lines after ``start_offset`` (about ``chunk_bytes`` of them, at least one).

    ``final=True`` (one-shot mode, or a rotated/deleted file being drained) also returns a trailing
    line that has no '\\n'. A line longer than ``max_line_bytes`` is cut at a UTF-8 boundary and
    flagged; the rest of it is skipped without being held in memory. Raises ``SourceError`` when the
    file cannot be opened or read; never for a damaged compressed stream (see ``problem``).
    ``fd``: read this open descriptor of a plain file instead of opening ``path`` (a file deleted
    or moved away since; the caller keeps the descriptor, the reader reads through a duplicate).
    """
    if start_offset < 0 or start_line_no < 0 or chunk_bytes < 1 or max_line_bytes < 1:
        raise ValueError("offsets and line numbers must be >= 0, sizes >= 1")
    src: _PlainSource | _CompressedSource
    if compressed:
        src = _compressed_source(path, start_offset)
    elif fd is not None:
        src = _PlainSource(io.FileIO(os.dup(fd), "rb", closefd=True), start_offset)
    else:
        src = _PlainSource(_open_regular(path), start_offset)
    try:
        result = _read(src, start_offset, start_line_no, chunk_bytes, max_line_bytes, final)
    except BaseException:
        src.close()
        raise
    if isinstance(src, _CompressedSource):
        # Reusable only if positioned exactly at end_offset, i.e. nothing read beyond it and held.
        keep = not result.at_eof and src.pos == result.end_offset
        _release(path, src, keep)
    else:
        src.close()
    return result


def _read(
    src: _PlainSource | _CompressedSource,
    start_offset: int,
    start_line_no: int,
    chunk_bytes: int,
    max_len: int,
    final: bool,
) -> ReadResult:
    lines: list[RawLine] = []
    consumed = start_offset  # just past the last '\n' consumed; where `pending` starts
    line_no = start_line_no
    pending = b""  # bytes read but not consumed: never contains '\n' between steps
    at_eof = False
    if src.pos != start_offset:  # a compressed stream that ended before start_offset
        return ReadResult((), start_offset, start_line_no, True, 0, src.problem)
    # Each RawLine costs ~100 bytes beyond its text, so very short lines are capped by count too.
    max_lines = max(1024, chunk_bytes // 32)
    while True:
        cut = pending.rfind(b"\n")
        if cut >= 0:
            room = max_lines - len(lines)
            if pending.count(b"\n", 0, cut) >= room:  # cut after the room-th line instead
                cut = len(pending) - len(pending.split(b"\n", room)[-1]) - 1
            line_no = _emit(lines, pending[:cut], consumed, line_no, max_len)
            consumed += cut + 1
            pending = pending[cut + 1 :]
            if len(lines) >= max_lines:
                break
        bom = 3 if consumed == 0 and pending[:3] == _BOM else 0
        # More than max_len + '\r' (+ BOM) without '\n': certainly too long, so stop holding it.
        if len(pending) > max_len + 1 + bom:
            head = _cut_utf8(pending[bom:], max_len)
            skipped = len(pending)
            rest: bytes | None = None
            while rest is None:
                data = src.read(chunk_bytes)
                if not data:
                    break
                nl = data.find(b"\n")
                if nl < 0:
                    skipped += len(data)
                else:
                    skipped += nl + 1
                    rest = data[nl + 1 :]
            if rest is None:  # end of data inside the long line
                at_eof = True
                if final and src.problem is None:
                    line_no += 1
                    lines.append(RawLine(consumed, line_no, _text(head), True))
                    consumed += skipped
                # else: end_offset stays at the line's start; it is re-scanned once it ends
                break
            line_no += 1
            lines.append(RawLine(consumed, line_no, _text(head), True))
            consumed += skipped
            pending = rest
            continue
        done = consumed - start_offset
        if done >= chunk_bytes and lines:
            break
        data = src.read(max(chunk_bytes - done - len(pending), min(chunk_bytes, _MIN_READ)))
        if not data:
            at_eof = True
            if final and pending and src.problem is None:
                # A drained file's last line has no '\n'; a damaged stream's might be cut short,
                # so that one is held back: the file can be completed and resumed later.
                line_no = _emit(lines, pending, consumed, line_no, max_len)
                consumed += len(pending)
            break
        pending = pending + data if pending else data
    if pending and isinstance(src, _CompressedSource) and not at_eof:
        src.unread(pending)
    return ReadResult(
        lines=tuple(lines),
        end_offset=consumed,
        end_line_no=line_no,
        at_eof=at_eof,
        bytes_read=consumed - start_offset,
        problem=src.problem,
    )
