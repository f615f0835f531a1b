"""Reader: complete lines only, exact offsets, bounded memory (RELIABILITY rows 15-19, 36)."""

from __future__ import annotations

import bz2
import gzip
import os
import subprocess
import sys
import textwrap
import tracemalloc
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logwatch.errors import SourceError
from logwatch.reader import _cut_utf8, read_lines
from logwatch.records import RawLine, ReadResult

BOM = b"\xef\xbb\xbf"


def write(path: Path, data: bytes, mode: str = "wb") -> str:
    with open(path, mode) as f:
        f.write(data)
    return str(path)


def texts(result: ReadResult) -> list[str]:
    return [line.text for line in result.lines]


def read_all(path: str, *, final: bool = False, **kw: object) -> list[RawLine]:
    """Read from 0 to the end the way the pipeline does: resume at (end_offset, end_line_no)."""
    out: list[RawLine] = []
    offset, line_no = 0, 0
    while True:
        r = read_lines(path, offset, line_no, final=final, **kw)  # type: ignore[arg-type]
        assert r.bytes_read == r.end_offset - offset
        out.extend(r.lines)
        offset, line_no = r.end_offset, r.end_line_no
        if r.at_eof:
            return out


def test_complete_lines_only(tmp_path: Path) -> None:
    p = write(tmp_path / "a.log", b"one\ntwo\nthr")
    r = read_lines(p, 0, 0)
    assert texts(r) == ["one", "two"]
    assert [(x.offset, x.line_no) for x in r.lines] == [(0, 1), (4, 2)]
    assert (r.end_offset, r.end_line_no, r.at_eof, r.bytes_read) == (8, 2, True, 8)


def test_partial_line_held_then_completed_once(tmp_path: Path) -> None:
    p = write(tmp_path / "a.log", b"first\nsec")
    r1 = read_lines(p, 0, 0)
    assert texts(r1) == ["first"] and r1.end_offset == 6
    for _ in range(3):  # polls with no new bytes: nothing, offset unchanged
        r = read_lines(p, r1.end_offset, r1.end_line_no)
        assert r.lines == () and r.end_offset == 6 and r.at_eof
    write(tmp_path / "a.log", b"ond\nthird\n", "ab")
    r2 = read_lines(p, r1.end_offset, r1.end_line_no)
    assert r2.lines == (RawLine(6, 2, "second"), RawLine(13, 3, "third"))
    assert r2.end_offset == os.path.getsize(p)


def test_blank_lines_keep_numbering(tmp_path: Path) -> None:
    p = write(tmp_path / "a.log", b"a\n\n\nb\n")
    r = read_lines(p, 0, 10)
    assert [(x.line_no, x.text) for x in r.lines] == [(11, "a"), (12, ""), (13, ""), (14, "b")]


def test_crlf_strips_one_cr(tmp_path: Path) -> None:
    p = write(tmp_path / "a.log", b"a\r\nb\r\r\n\r\n")
    r = read_lines(p, 0, 0)
    assert texts(r) == ["a", "b\r", ""]
    assert [x.offset for x in r.lines] == [0, 3, 7]


def test_bom_stripped_only_at_offset_zero(tmp_path: Path) -> None:
    p = write(tmp_path / "a.log", BOM + b"x\n" + BOM + b"y\n")
    r = read_lines(p, 0, 0)
    assert texts(r) == ["x", "\ufeffy"]
    assert r.lines[1].offset == 5
    # resuming mid-file never strips: only the file's first bytes can be a BOM
    assert texts(read_lines(p, 5, 1)) == ["\ufeffy"]


def test_invalid_utf8_replaced_neighbours_intact(tmp_path: Path) -> None:
    p = write(tmp_path / "a.log", b"ok1\n\xff\xfe\xc3\x28 bad\nok2 \xc3\xa9\n")
    r = read_lines(p, 0, 0)
    assert texts(r) == ["ok1", "\ufffd\ufffd\ufffd( bad", "ok2 é"]
    assert [x.offset for x in r.lines] == [0, 4, 13]


def test_nul_replaced(tmp_path: Path) -> None:
    p = write(tmp_path / "a.log", b"a\x00b\n\x00\xc3\xa9\n")
    assert texts(read_lines(p, 0, 0)) == ["a\ufffdb", "\ufffdé"]


def test_long_line_truncated_next_line_intact(tmp_path: Path) -> None:
    p = write(tmp_path / "a.log", b"before\n" + "é".encode() * 100 + b"\nafter\n")
    got = read_all(p, max_line_bytes=11, chunk_bytes=16)
    assert [(x.offset, x.line_no, x.text, x.truncated) for x in got] == [
        (0, 1, "before", False),
        (7, 2, "é" * 5, True),  # 11 bytes would split a 2-byte char: cut at 10
        (208, 3, "after", False),
    ]


def test_long_line_without_newline_waits_at_its_start(tmp_path: Path) -> None:
    p = write(tmp_path / "a.log", b"ok\n" + b"x" * 5000)
    r = read_lines(p, 0, 0, max_line_bytes=100, chunk_bytes=256)
    assert texts(r) == ["ok"] and r.end_offset == 3 and r.at_eof
    write(tmp_path / "a.log", b"x\nnext\n", "ab")
    r = read_lines(p, 3, 1, max_line_bytes=100, chunk_bytes=256)
    assert [(x.offset, x.truncated, len(x.text)) for x in r.lines] == [
        (3, True, 100),
        (5005, False, 4),
    ]
    r = read_lines(p, 0, 0, max_line_bytes=100, final=True)
    assert r.end_offset == os.path.getsize(p)


def test_cut_utf8() -> None:
    euro = "€".encode()  # 3 bytes
    assert _cut_utf8(b"ab" + euro, 4) == b"ab"
    assert _cut_utf8(b"ab" + euro, 5) == b"ab" + euro
    assert _cut_utf8(b"a\x80\x80\x80\x80", 2) == b"a\x80"  # stray continuation bytes: plain cut
    assert _cut_utf8(b"abc", 2) == b"ab"


def test_final_returns_trailing_partial(tmp_path: Path) -> None:
    p = write(tmp_path / "a.log", b"a\nb\r")
    r = read_lines(p, 0, 0, final=True)
    assert texts(r) == ["a", "b"] and r.end_offset == 4 and r.end_line_no == 2 and r.at_eof
    p2 = write(tmp_path / "b.log", b"a\n")
    assert texts(read_lines(p2, 0, 0, final=True)) == ["a"]  # no phantom empty last line


def test_chunk_bound_and_resume(tmp_path: Path) -> None:
    lines = [f"line {i:05d}" for i in range(5000)]
    p = write(tmp_path / "a.log", "\n".join(lines).encode() + b"\n")
    r = read_lines(p, 0, 0, chunk_bytes=1000)
    assert 1000 <= r.bytes_read < 1000 + 65536 + 100 and not r.at_eof
    got = read_all(p, chunk_bytes=1000)
    assert [x.text for x in got] == lines
    assert [x.line_no for x in got] == list(range(1, 5001))


def test_short_lines_capped_by_count(tmp_path: Path) -> None:
    p = write(tmp_path / "a.log", b"\n" * 200_000)
    r = read_lines(p, 0, 0, chunk_bytes=1 << 20)
    assert len(r.lines) == 32768 and not r.at_eof and r.end_offset == 32768
    assert len(read_all(p)) == 200_000


def test_missing_and_unreadable_raise_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="nope.log"):
        read_lines(str(tmp_path / "nope.log"), 0, 0)
    with pytest.raises(SourceError, match="not a regular file"):
        read_lines(str(tmp_path), 0, 0)
    if os.geteuid() != 0:  # root reads anything
        p = write(tmp_path / "locked.log", b"x\n")
        os.chmod(p, 0)
        with pytest.raises(SourceError, match="permission denied"):
            read_lines(p, 0, 0)


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "q.log"
    os.mkfifo(fifo)
    with pytest.raises(SourceError, match="not a regular file"):
        read_lines(str(fifo), 0, 0)


def test_offset_past_end(tmp_path: Path) -> None:
    p = write(tmp_path / "a.log", b"a\n")
    r = read_lines(p, 100, 7)
    assert r.lines == () and r.end_offset == 100 and r.end_line_no == 7 and r.at_eof


# --- compressed -----------------------------------------------------------------------------------

CONTENT = b"".join(f"event {i} \xc3\xa9\n".encode("latin-1") for i in range(3000))


@pytest.mark.parametrize("suffix", [".gz", ".bz2"])
def test_compressed_matches_plain(tmp_path: Path, suffix: str) -> None:
    plain = write(tmp_path / "a.log", CONTENT)
    comp = gzip.compress(CONTENT) if suffix == ".gz" else bz2.compress(CONTENT)
    cp = write(tmp_path / f"a.log.1{suffix}", comp)
    want = read_all(plain, chunk_bytes=777)
    assert read_all(cp, compressed=True, chunk_bytes=777) == want
    # resuming at an arbitrary committed offset (fresh open + skip) gives the same lines
    mid = want[1234]
    r = read_lines(cp, mid.offset, mid.line_no - 1, compressed=True)
    assert r.lines[0] == mid


def test_gzip_multi_member(tmp_path: Path) -> None:
    p = write(tmp_path / "a.log.gz", gzip.compress(b"a\nb") + gzip.compress(b"c\nd\n"))
    assert [x.text for x in read_all(p, compressed=True)] == ["a", "bc", "d"]


def test_gzip_truncated_returns_lines_and_problem(tmp_path: Path) -> None:
    whole = gzip.compress(CONTENT)
    p = write(tmp_path / "a.log.gz", whole[:-100])
    r = read_lines(p, 0, 0, compressed=True, chunk_bytes=1 << 22, final=True)
    assert (
        r.at_eof and r.problem is not None and r.problem.startswith("truncated gzip stream after")
    )
    assert 0 < len(r.lines) < 3000
    assert b"".join(x.text.encode() + b"\n" for x in r.lines) == CONTENT[: r.end_offset]
    # the partial last line is held back even with final=True: the archive may be completed later
    write(tmp_path / "a.log.gz", whole)
    rest = read_lines(p, r.end_offset, r.end_line_no, compressed=True, chunk_bytes=1 << 22)
    assert len(r.lines) + len(rest.lines) == 3000 and rest.problem is None


def test_gzip_corrupt_reports_problem(tmp_path: Path) -> None:
    data = bytearray(gzip.compress(CONTENT))
    data[len(data) // 2] ^= 0xFF
    p = write(tmp_path / "a.log.gz", bytes(data))
    r = read_lines(p, 0, 0, compressed=True, chunk_bytes=1 << 22)
    assert r.problem is not None and r.at_eof
    p2 = write(tmp_path / "b.log.gz", b"not gzip at all\n")
    r2 = read_lines(p2, 0, 0, compressed=True)
    assert r2.lines == () and r2.problem is not None and "gzip" in r2.problem


def _bomb(path: Path, unit: bytes, total: int) -> str:
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: gzip container
    with open(path, "wb") as f:
        block = unit * ((1 << 20) // len(unit))
        for _ in range(total // len(block)):
            f.write(comp.compress(block))
        f.write(comp.flush())
    return str(path)


def test_gzip_bomb_bounded_memory(tmp_path: Path) -> None:
    zeros = _bomb(tmp_path / "z.log.gz", b"\0", 50 << 20)  # 50 MB of zeros, one endless "line"
    lines = _bomb(tmp_path / "l.log.gz", b"ab\n", 50 << 20)
    assert os.path.getsize(zeros) < 200_000
    tracemalloc.start()
    try:
        r = read_lines(zeros, 0, 0, compressed=True, max_line_bytes=1024)
        assert r.lines == () and r.end_offset == 0 and r.at_eof
        r = read_lines(lines, 0, 0, compressed=True)
        assert 0 < r.bytes_read < 2 << 20 and not r.at_eof
        del r
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 12 << 20, peak


HUGE_LINE_SCRIPT = textwrap.dedent(
    """
    import resource, sys
    from logwatch.reader import read_lines
    path, size = sys.argv[1], int(sys.argv[2])
    with open(path, "wb") as f:
        f.write(b"before\\n")
        block = b"x" * (1 << 20)
        for _ in range(size >> 20):
            f.write(block)
        f.write(b"\\nafter\\n")
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    r = read_lines(path, 0, 0)
    grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
    print(len(r.lines), r.lines[1].truncated, len(r.lines[1].text), r.lines[2].text, grew)
    """
)


def _huge_line(tmp_path: Path, mb: int) -> None:
    out = subprocess.run(
        [sys.executable, "-c", HUGE_LINE_SCRIPT, str(tmp_path / "huge.log"), str(mb << 20)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.split()
    assert out[:4] == ["3", "True", "65536", "after"]
    assert int(out[4]) < 32 * 1024, f"max RSS grew by {out[4]} KiB"  # chunk + max line + slack


def test_20mb_line_bounded_memory(tmp_path: Path) -> None:
    _huge_line(tmp_path, 20)


@pytest.mark.slow
def test_200mb_line_bounded_memory(tmp_path: Path) -> None:
    _huge_line(tmp_path, 200)


# --- property: arbitrary content, arbitrary appends -----------------------------------------------

PIECES = [b"a", b"bc", b"\n", b"\r", b"\r\n", b"\x00", b"\xc3\xa9", b"\xe2\x82\xac", b"\xff", BOM]
content_st = st.one_of(
    st.binary(max_size=300),
    st.lists(st.sampled_from(PIECES), max_size=200).map(b"".join),
    st.lists(st.sampled_from([b"x" * 50, b"\n", b"y"]), max_size=20).map(b"".join),
)


def reference(content: bytes, max_len: int) -> list[RawLine]:
    """What an exact reader must produce for the complete lines of ``content``."""
    out, offset = [], 0
    for i, b in enumerate(content.split(b"\n")[:-1]):
        size = len(b)
        if offset == 0 and b.startswith(BOM):
            b = b[3:]
        if b.endswith(b"\r"):
            b = b[:-1]
        cut = len(b) > max_len
        text = _cut_utf8(b, max_len).decode("utf-8", "replace").replace("\x00", "\ufffd")
        out.append(RawLine(offset, i + 1, text, cut))
        offset += size + 1
    return out


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    content=content_st,
    cuts=st.lists(st.integers(0, 300), max_size=6),
    chunk=st.integers(1, 64),
    max_len=st.integers(1, 40),
)
def test_property_appends_yield_each_line_once(
    tmp_path: Path, content: bytes, cuts: list[int], chunk: int, max_len: int
) -> None:
    path = tmp_path / "prop.log"
    path.write_bytes(b"")
    got: list[RawLine] = []
    offset = line_no = 0
    prev = 0
    for cut in [*sorted(c for c in cuts if c <= len(content)), len(content)]:
        write(path, content[prev:cut], "ab")
        prev = cut
        while True:  # one poll: read until nothing complete remains
            r = read_lines(str(path), offset, line_no, chunk_bytes=chunk, max_line_bytes=max_len)
            got.extend(r.lines)
            assert r.end_offset >= offset and r.bytes_read == r.end_offset - offset
            offset, line_no = r.end_offset, r.end_line_no
            if r.at_eof:
                break
    want = reference(content, max_len)
    assert got == want
    assert offset == (content.rfind(b"\n") + 1) and line_no == len(want)
    last = read_lines(str(path), offset, line_no, max_line_bytes=max_len, final=True)
    tail = content[offset:]
    assert last.end_offset == len(content) and len(last.lines) == (1 if tail else 0)
    if tail:  # final=True: the unterminated last line, as if it had its '\n'
        assert last.lines[0] == reference(content + b"\n", max_len)[-1]


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(content=content_st, chunk=st.integers(1, 64), max_len=st.integers(1, 40))
def test_property_gzip_equals_plain(
    tmp_path: Path, content: bytes, chunk: int, max_len: int
) -> None:
    path = write(tmp_path / "prop.log.gz", gzip.compress(content))
    got = read_all(path, compressed=True, chunk_bytes=chunk, max_line_bytes=max_len)
    assert got == reference(content, max_len)
