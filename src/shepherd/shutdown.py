"""Serving until SIGTERM/SIGINT, then cleaning up — in that order.

uvicorn captures SIGTERM/SIGINT while it serves and, once stopped, re-raises the signal against
the handler that was installed before it. With Python's default handlers that kills the process
(or raises KeyboardInterrupt) before our own shutdown — terminating children, closing stores —
has run. ``signals_absorbed`` installs handlers that only remember the signal, so the re-raise is
harmless and the ``finally`` blocks after ``serve()`` do their work.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def signals_absorbed() -> Iterator[list[int]]:
    """Yield the list of signals received meanwhile; restore the old handlers after."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def remember(sig: int, _frame: FrameType | None) -> None:
        received.append(sig)

    previous = {sig: signal.signal(sig, remember) for sig in SIGNALS}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
