"""Stop requests (SIGTERM, SIGINT) as an Event, caught from the first line of the entry points.

A service manager may stop logwatch at any moment, also while it is still importing or upgrading
the schema; the answer is always the same graceful exit 0. Standard library only, so installing it
costs nothing at start-up.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType

log = logging.getLogger(__name__)

STOP = threading.Event()
_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def catch_stop_signals(shutdown_timeout: float | None = None) -> Callable[[], None]:
    """Route SIGTERM/SIGINT to ``STOP``; returns a function that puts the old handlers back.

    With ``shutdown_timeout``, a watchdog ends the process (exit 0) if the work in hand has not
    stopped that long after the request: an open transaction dies with the connection and is
    rolled back, so its batch is simply read again on the next start.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None  # signal handlers can only be set from the main thread

    def watchdog(timeout: float) -> None:
        time.sleep(timeout)
        log.warning("still busy %.0f s after the stop request; exiting now", timeout)
        logging.shutdown()
        os._exit(0)

    def handler(signum: int, _frame: FrameType | None) -> None:
        first = not STOP.is_set()
        STOP.set()
        if first:
            log.info("received %s; stopping after the current batch", signal.Signals(signum).name)
            if shutdown_timeout is not None:
                threading.Thread(
                    target=watchdog, args=(shutdown_timeout,), name="shutdown-watchdog", daemon=True
                ).start()

    previous = {sig: signal.getsignal(sig) for sig in _SIGNALS}
    for sig in _SIGNALS:
        signal.signal(sig, handler)

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore
