"""Lines around a stored anomaly, read back from its file (for ``--context`` and the report).

The file may have grown, rotated or been compressed since; what is read is what is there now,
and a file that is gone gives nothing rather than an error.
"""

from __future__ import annotations

import bz2
import gzip
from collections import deque
from typing import IO, cast

# A context line is for a person to read; a 1 MB line is cut to this.
MAX_CONTEXT_CHARS = 500


def _open(path: str) -> IO[bytes]:
    lower = path.lower()
    if lower.endswith(".gz"):
        return cast(IO[bytes], gzip.open(path, "rb"))
    if lower.endswith(".bz2"):
        return cast(IO[bytes], bz2.open(path, "rb"))
    return open(path, "rb")


def lines_around(path: str, line: int, n: int) -> list[tuple[int, str]]:
    """Up to ``n`` lines before and after 1-based ``line``, as (line number, text) pairs.

    Reads sequentially and keeps at most ``2n + 1`` lines, so memory does not grow with the file.
    Returns [] when the file cannot be read."""
    if n < 0 or line < 1:
        return []
    first, last = max(1, line - n), line + n
    window: deque[tuple[int, str]] = deque(maxlen=last - first + 1)
    try:
        with _open(path) as fh:
            for number, raw in enumerate(fh, start=1):
                if number < first:
                    continue
                text = raw.rstrip(b"\r\n").decode("utf-8", errors="replace")
                window.append((number, text[:MAX_CONTEXT_CHARS]))
                if number >= last:
                    break
    except (OSError, EOFError, ValueError):
        return []
    return list(window)
