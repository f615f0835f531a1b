"""Archive progress: a redrawn bar on a real terminal (a pty), nothing on a pipe or a file."""

from __future__ import annotations

import io
import os
import select
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import pytest

from logwatch.progress import ArchiveProgress, NullProgress, ProgressSink, human_bytes


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def read_all(fd: int) -> str:
    chunks = []
    while select.select([fd], [], [], 0.05)[0]:
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO once the slave side is closed
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks).decode()


@pytest.fixture
def tty() -> Iterator[tuple[TextIO, int]]:
    """A real terminal: the slave end as a text stream, and the master fd to read what it shows."""
    master, slave = os.openpty()
    stream = os.fdopen(slave, "w", encoding="utf-8")
    try:
        yield stream, master
    finally:
        stream.close()
        os.close(master)


def test_bar_on_a_terminal_shows_bytes_and_files(tty: tuple[TextIO, int]) -> None:
    stream, master = tty
    clock = FakeClock()
    with ArchiveProgress(3 * 1024 * 1024, 3, stream, clock=clock) as progress:
        assert progress.enabled
        for _ in range(3):
            clock.now += 1.0  # past the redraw throttle, and 1 MiB/s
            progress.advance(1024 * 1024)
            clock.now += 0.2
            progress.file_done()
            if progress.files_done == 1:
                first = read_all(master)
    final = read_all(master)

    assert first.startswith("\r[")
    assert "1.0 MiB/3.0 MiB" in first
    assert "1/3 files" in first
    assert "33%" in first
    assert "ETA 0:02" in first
    assert max(len(part) for part in first.split("\r")) <= 79  # never wraps an 80-column terminal
    assert "[" + "#" * 20 + "] 100%" in final
    assert "3.0 MiB/3.0 MiB" in final
    assert "3/3 files" in final
    assert final.endswith("\n")  # the prompt does not land on the bar


@pytest.mark.parametrize("kind", ["pipe", "file", "stringio"])
def test_nothing_is_written_when_not_a_terminal(kind: str, tmp_path: Path) -> None:
    if kind == "pipe":
        read_fd, write_fd = os.pipe()
        stream: TextIO = os.fdopen(write_fd, "w")
    elif kind == "file":
        stream = open(tmp_path / "out.txt", "w")  # noqa: SIM115 - closed below
    else:
        stream = io.StringIO()
    with ArchiveProgress(100, 2, stream) as progress:
        assert not progress.enabled
        progress.describe("learning app.log")
        progress.advance(60)
        progress.file_done()
        progress.advance(40)
        progress.file_done()
    # Still counted, so a caller can print a summary from it.
    assert (progress.bytes_done, progress.files_done) == (100, 2)
    if kind == "pipe":
        stream.close()
        assert os.read(read_fd, 100) == b""
        os.close(read_fd)
    elif kind == "file":
        stream.close()
        assert (tmp_path / "out.txt").read_text() == ""
    else:
        assert isinstance(stream, io.StringIO)
        assert stream.getvalue() == ""


def test_redraws_are_throttled(tty: tuple[TextIO, int]) -> None:
    stream, master = tty
    clock = FakeClock()
    with ArchiveProgress(10_000, 1, stream, clock=clock) as progress:
        read_all(master)  # the first draw
        for _ in range(1000):
            progress.advance(10)  # no time passes: no redraw
        assert read_all(master) == ""
        clock.now += 0.2
        progress.advance(0)
        assert "9.8 KiB/9.8 KiB" in read_all(master)


def test_render_clamps_overshoot_and_fits_the_width() -> None:
    clock = FakeClock()
    progress = ArchiveProgress(1000, 1, io.StringIO(), clock=clock)
    with progress:
        clock.now += 1
        progress.advance(5000)  # a .gz file yields more than its size on disk
        line = progress.render(200)
        assert "100%" in line and "1000 B/1000 B" in line
        assert len(progress.render(30)) == 29


def test_describe_text_cannot_inject_terminal_controls() -> None:
    progress = ArchiveProgress(10, 1, io.StringIO())
    progress.describe("learning \x1b[2Jevil\r.log")
    assert "\x1b" not in progress.render(200)
    assert "\r" not in progress.render(200)


def test_no_bytes_to_read_uses_files_for_the_fraction() -> None:
    progress = ArchiveProgress(0, 4, io.StringIO())
    progress.file_done()
    assert " 25%" in progress.render(200)


def test_a_closed_terminal_does_not_fail_the_run() -> None:
    master, slave = os.openpty()
    stream = os.fdopen(slave, "w")
    with ArchiveProgress(10, 1, stream) as progress:
        os.close(master)
        stream.close()
        progress.advance(10)  # ValueError: I/O on closed file -> progress turns itself off
        progress.file_done()
    assert not progress.enabled


@pytest.mark.parametrize(
    ("n", "text"), [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (5 * 1024**3, "5.0 GiB")]
)
def test_human_bytes(n: int, text: str) -> None:
    assert human_bytes(n) == text


def test_null_progress_has_the_same_methods() -> None:
    sinks: list[ProgressSink] = [NullProgress(), ArchiveProgress(1, 1, io.StringIO())]
    for progress in sinks:
        progress.advance(1)
        progress.file_done()
        progress.describe("x")
