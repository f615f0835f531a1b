"""Progress of an archive run (``--once``): bytes and files, one redrawn line on a terminal.

Written by hand rather than with click.progressbar: click counts one quantity, prints its label even
when the output is not a terminal, and shows bytes as raw integers; tqdm would do it but is a new
dependency for one line of output. When the stream is not a TTY (a pipe, a file, journald) nothing
at all is written, so logs and captured output stay clean.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Protocol, TextIO

_BAR_WIDTH = 20
_REDRAW_SECONDS = 0.1  # a redraw per batch would cost more than the batch on small files
_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def human_bytes(n: float) -> str:
    """``1536`` -> ``'1.5 KiB'``; whole bytes below 1 KiB."""
    for unit in _UNITS:
        if abs(n) < 1024 or unit == _UNITS[-1]:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or already closed
        return False


class ProgressSink(Protocol):
    """What a long run reports to; ``ArchiveProgress`` and ``NullProgress`` both provide it."""

    def advance(self, nbytes: int) -> None: ...

    def file_done(self) -> None: ...

    def describe(self, text: str) -> None: ...


class NullProgress:
    """No progress shown (daemon mode, ``-q``): same methods, nothing written."""

    def __enter__(self) -> NullProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass

    def file_done(self) -> None:
        pass

    def describe(self, text: str) -> None:
        pass


class ArchiveProgress:
    """A progress line for ``total_bytes`` over ``total_files``; silent unless ``stream`` is a TTY.

    Use as a context manager: the line is drawn on entry, redrawn at most every 0.1 s while
    ``advance`` and ``file_done`` are called, and finished with a newline on exit (also on an
    exception or Ctrl-C, so the shell prompt does not land on the bar)::

        with ArchiveProgress(total_bytes, len(files)) as progress:
            for path in files:
                for chunk in read(path):
                    progress.advance(len(chunk))
                progress.file_done()

    Bytes past ``total_bytes`` (a compressed file yields more than its size on disk) are counted
    but the bar stops at 100 %.
    """

    def __init__(
        self,
        total_bytes: int,
        total_files: int,
        stream: TextIO | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total_bytes = max(int(total_bytes), 0)
        self.total_files = max(int(total_files), 0)
        self.stream = sys.stderr if stream is None else stream
        self.bytes_done = 0
        self.files_done = 0
        self.text = ""
        self._clock = clock
        self._enabled = _is_tty(self.stream)
        self._started = 0.0
        self._last_draw: float | None = None
        self._last_len = 0

    @property
    def enabled(self) -> bool:
        """Whether anything is written (the stream is a terminal)."""
        return self._enabled

    def __enter__(self) -> ArchiveProgress:
        self._started = self._clock()
        self._draw(force=True)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._enabled:
            self._draw(force=True)
            self._write("\n")

    def advance(self, nbytes: int) -> None:
        """``nbytes`` more bytes processed."""
        self.bytes_done += max(int(nbytes), 0)
        self._draw()

    def file_done(self) -> None:
        """One more file finished."""
        self.files_done += 1
        self._draw()

    def describe(self, text: str) -> None:
        """A short note after the counts, e.g. ``'learning app.log'``."""
        self.text = text
        self._draw()

    # ------------------------------------------------------------------ rendering

    def render(self, width: int = 80) -> str:
        """The progress line (no carriage return), at most ``width - 1`` characters."""
        fraction = self.bytes_done / self.total_bytes if self.total_bytes else 1.0
        if not self.total_bytes and self.total_files:
            fraction = self.files_done / self.total_files
        fraction = min(max(fraction, 0.0), 1.0)
        filled = int(fraction * _BAR_WIDTH)
        bar = "#" * filled + "-" * (_BAR_WIDTH - filled)
        done = min(self.bytes_done, self.total_bytes) if self.total_bytes else self.bytes_done
        line = (
            f"[{bar}] {fraction * 100:3.0f}%  {human_bytes(done)}/{human_bytes(self.total_bytes)}"
            f"  {self.files_done}/{self.total_files} files"
        )
        extras = []
        elapsed = self._clock() - self._started
        if elapsed > 0 and self.bytes_done:
            rate = self.bytes_done / elapsed
            extras.append(f"{human_bytes(rate)}/s")
            if 0 < fraction < 1:
                extras.append(f"ETA {_clock_time(elapsed * (1 - fraction) / fraction)}")
        if self.text:
            # Log-derived text (a stream name) must not move the cursor or recolour the terminal.
            extras.append("".join(c if c.isprintable() else "?" for c in self.text))
        # On a narrow terminal the extras are dropped whole rather than cut mid-word; a line that
        # wraps would break the carriage-return redraw.
        for extra in extras:
            if len(line) + 2 + len(extra) > width - 1:
                break
            line += "  " + extra
        return line[: max(width - 1, 0)]

    def _draw(self, *, force: bool = False) -> None:
        if not self._enabled:
            return
        now = self._clock()
        if not force and self._last_draw is not None and now - self._last_draw < _REDRAW_SECONDS:
            return
        self._last_draw = now
        line = self.render(self._width())
        # Pad over the previous, longer line instead of an ANSI erase: works on dumb terminals too.
        self._write("\r" + line + " " * max(self._last_len - len(line), 0))
        self._last_len = len(line)

    def _width(self) -> int:
        try:
            return os.get_terminal_size(self.stream.fileno()).columns or 80
        except (AttributeError, ValueError, OSError):
            return 80

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            # The terminal went away (closed ssh session): progress is cosmetic, the run goes on.
            self._enabled = False


def _clock_time(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
