"""The one mapping from transport exceptions (httpx, OS) to ``core.classification`` kinds.

Nothing else in the package names an httpx exception class. Order matters: the first matching
type wins, so subclasses come before their bases.
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


def kind_of(exc: BaseException) -> TransportKind:
    for exc_type, kind in EXCEPTION_KINDS:
        if isinstance(exc, exc_type):
            return kind
    return K.DROPPED
