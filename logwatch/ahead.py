"""Work done ahead in a forked child process: ``--once`` learns the next stream there while this
process scores the current one, so the two halves of the work use two cores.

The child starts as a copy of this process (fork), computes one value with no database access,
and sends it back pickled through a pipe. Unpickling runs code only of this program: the bytes
come from our own child, never from disk or the network, so this is not persisted state.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

log = logging.getLogger(__name__)

# How often a wait for the child looks at the stop request and at whether the child is alive.
_WAIT_STEP = 0.25


def can_fork() -> bool:
    """Whether children can be forked here (not on Windows or macOS's default spawn)."""
    return "fork" in multiprocessing.get_all_start_methods()


class AheadFailed(Exception):
    """The child did not deliver its value; the caller computes it itself."""


class Ahead:
    """``fn()`` computed in a forked child; ``result()`` waits for it."""

    def __init__(self, fn: Callable[[], Any], label: str) -> None:
        self.label = label
        context = multiprocessing.get_context("fork")
        receive, send = context.Pipe(duplex=False)
        # Objects alive now stay out of the child's collector: it would otherwise touch (and so
        # copy) every page of the parent's heap, and could finalise the parent's garbage there.
        gc.freeze()
        self._process = context.Process(
            target=_child, args=(fn, send), name=f"logwatch-learn {label}", daemon=True
        )
        self._process.start()
        send.close()
        self._receive = receive

    def result(self, stop: threading.Event | None = None) -> Any:
        """The child's value. Raises ``AheadFailed`` if it failed, died, or ``stop`` was set."""
        try:
            while not self._receive.poll(_WAIT_STEP):
                if stop is not None and stop.is_set():
                    raise AheadFailed(f"{self.label}: stopped")
                if not self._process.is_alive() and not self._receive.poll(0):
                    raise AheadFailed(
                        f"{self.label}: learning child exited ({self._process.exitcode})"
                    )
            try:
                status, value = self._receive.recv()
            except (EOFError, OSError) as exc:
                raise AheadFailed(f"{self.label}: {exc}") from exc
            if status != "ok":
                raise AheadFailed(f"{self.label}: {value}")
            return value
        finally:
            self.cancel()

    def cancel(self) -> None:
        """Stop the child if it still runs and release its pipe."""
        if self._process.is_alive():
            self._process.terminate()
        self._process.join(5)
        self._receive.close()


def _child(fn: Callable[[], Any], send: Connection) -> None:
    try:
        send.send(("ok", fn()))  # pickled whole before a byte is sent
    except BaseException as exc:  # reported to the parent, which learns the stream itself
        send.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        send.close()
