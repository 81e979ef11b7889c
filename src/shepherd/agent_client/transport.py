"""The one mapping from transport exceptions (``wire``, OS) to ``core.classification`` kinds.

Order matters: the first matching type wins, so subclasses come before their bases. ``wire``
reports a peer's reset (RST) or a broken pipe as ``Dropped`` whose cause chain ends in
``ConnectionResetError`` / ``BrokenPipeError``: that is a reset, not a broken exchange, so the
chain is looked at first.
"""

from __future__ import annotations

from shepherd.agent_client import wire
from shepherd.core.classification import TransportKind

K = TransportKind

EXCEPTION_KINDS: tuple[tuple[type[BaseException], TransportKind], ...] = (
    (wire.ConnectTimeout, K.CONNECT_TIMEOUT),
    (wire.ConnectFailed, K.CONNECT_FAILED),
    (wire.ExchangeTimeout, K.OTHER_TIMEOUT),  # read, write, or waiting for a connection
    (wire.Dropped, K.DROPPED),
    (BrokenPipeError, K.RESET),
    (ConnectionResetError, K.RESET),
)

# What callers catch to hand an exception to ``kind_of``.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    wire.WireError, BrokenPipeError, ConnectionResetError,
)


RESET_CAUSES: tuple[type[BaseException], ...] = (ConnectionResetError, BrokenPipeError)
# What may carry a reset underneath (a refused connect is ``ConnectFailed``, never this).
RESET_CARRIERS: tuple[type[BaseException], ...] = (wire.Dropped,)
# wire -> OSError: a few links at most.
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
