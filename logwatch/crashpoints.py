"""Named crash points for fault tests: ``LOGWATCH_CRASH_AT=<name>[:<n>]`` makes the process die
(``os._exit(137)``, as if killed with SIGKILL) the n-th time (default 1st) it passes ``<name>``.

Names, in the order one batch passes them:

- ``batch:read``            events parsed and scored, nothing written yet
- ``commit:begin``          inside the transaction, before any write
- ``commit:offset``         the file's offset updated, stream and anomalies not yet
- ``commit:anomalies``      everything written, COMMIT not yet issued
- ``commit:after``          COMMIT returned (the connection "lost" right after it), the in-memory
                            state not yet updated

Unset (the normal case) this costs one dictionary lookup per call.
"""

from __future__ import annotations

import os
import sys

_SPEC = os.environ.get("LOGWATCH_CRASH_AT", "")
# Names contain colons themselves; only a trailing number is a count ("commit:offset:3").
_HEAD, _, _TAIL = _SPEC.rpartition(":")
_NAME, _TARGET = (_HEAD, int(_TAIL)) if _HEAD and _TAIL.isdigit() else (_SPEC, 1)
_seen = 0


def crash_point(name: str) -> None:
    global _seen
    if not _NAME or name != _NAME:
        return
    _seen += 1
    if _seen >= _TARGET:
        sys.stderr.write(f"logwatch: crash point {name} reached ({_seen}); exiting 137\n")
        sys.stderr.flush()
        os._exit(137)
