"""The one mapping from transport exceptions (httpx, OS) to ``core.classification`` kinds.

Nothing else in the package names an httpx exception class. Order matters: the first matching
type wins, so subclasses come before their bases. httpx reports a peer's reset (RST) or a broken
pipe as a ``ReadError`` / ``WriteError`` whose cause chain ends in ``ConnectionResetError`` /
``BrokenPipeError``: that is a reset, not a broken exchange, so the chain is looked at first.
"""

from __future__ import annotations

import httpx

from shepherd.core.classification import TransportKind

K = TransportKind

EXCEPTION_KINDS: tuple[tuple[type[BaseException], TransportKind], ...] = (
    (httpx.ConnectTimeout, K.CONNECT_TIMEOUT),
    (httpx.ConnectError, K.CONNECT_FAILED),
    (httpx.TimeoutException, K.OTHER_TIMEOUT),  # read, write, pool
    (httpx.RemoteProtocolError, K.DROPPED),
    (httpx.ReadError, K.DROPPED),
    (httpx.WriteError, K.DROPPED),
    (BrokenPipeError, K.RESET),
    (ConnectionResetError, K.RESET),
    (httpx.NetworkError, K.DROPPED),
)

# What callers catch to hand an exception to ``kind_of``.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    httpx.TransportError, BrokenPipeError, ConnectionResetError,
)


RESET_CAUSES: tuple[type[BaseException], ...] = (ConnectionResetError, BrokenPipeError)
# Wrappers that may carry a reset underneath (a refused connect is a ConnectError, never this).
RESET_CARRIERS: tuple[type[BaseException], ...] = (httpx.ReadError, httpx.WriteError)
# httpx -> httpcore -> anyio -> OSError: a few links at most.
MAX_CAUSE_DEPTH = 8


def kind_of(exc: BaseException) -> TransportKind:
    if isinstance(exc, RESET_CARRIERS) and _caused_by(exc, RESET_CAUSES):
        return K.RESET
    for exc_type, kind in EXCEPTION_KINDS:
        if isinstance(exc, exc_type):
            return kind
    return K.DROPPED


def _caused_by(exc: BaseException, causes: tuple[type[BaseException], ...]) -> bool:
    current: BaseException | None = exc
    for _ in range(MAX_CAUSE_DEPTH):
        if current is None:
            return False
        if isinstance(current, causes):
            return True
        current = current.__cause__ or current.__context__
    return False
