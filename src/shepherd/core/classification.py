"""How a call to an agent runtime ended, and what that means for the circuit breaker.

One table (DESIGN.md section 7): any HTTP response proves the agent alive; a refused or timed-out
connect counts against it, unless the URL just dropped a connection (then it is the network
settling, neutral); a dropped connection is neutral; other timeouts are neutral. The ``/health``
probe is stricter: a timeout or a broken read is a failure there, because liveness is what it
measures. Pure: ``agent_client.transport`` maps exceptions to kinds; nothing here does I/O.
"""

from __future__ import annotations

from enum import StrEnum


class TransportKind(StrEnum):
    RESPONSE = "response"  # any HTTP response, whatever its status
    CONNECT_FAILED = "connect_failed"  # refused, unreachable, DNS
    CONNECT_TIMEOUT = "connect_timeout"
    DROPPED = "dropped"  # read/write/protocol error mid-exchange
    RESET = "reset"  # broken pipe / connection reset
    OTHER_TIMEOUT = "other_timeout"  # read, write or pool timeout


class Verdict(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    NEUTRAL = "neutral"


V = Verdict
K = TransportKind

# (kind, is_health_probe, within_drop_grace) -> verdict
CLASSIFICATION: dict[tuple[TransportKind, bool, bool], Verdict] = {
    **{(K.RESPONSE, probe, grace): V.SUCCESS for probe in (False, True) for grace in (False, True)},
    **{(kind, probe, False): V.FAILURE
       for kind in (K.CONNECT_FAILED, K.CONNECT_TIMEOUT) for probe in (False, True)},
    **{(kind, probe, True): V.NEUTRAL
       for kind in (K.CONNECT_FAILED, K.CONNECT_TIMEOUT) for probe in (False, True)},
    **{(K.DROPPED, False, grace): V.NEUTRAL for grace in (False, True)},
    **{(K.DROPPED, True, grace): V.FAILURE for grace in (False, True)},
    **{(K.RESET, probe, grace): V.NEUTRAL for probe in (False, True) for grace in (False, True)},
    **{(K.OTHER_TIMEOUT, False, grace): V.NEUTRAL for grace in (False, True)},
    **{(K.OTHER_TIMEOUT, True, grace): V.FAILURE for grace in (False, True)},
}


def classify(kind: TransportKind, probe: bool, within_drop_grace: bool) -> Verdict:
    return CLASSIFICATION[(kind, probe, within_drop_grace)]


def is_drop(kind: TransportKind) -> bool:
    """A connection that broke mid-exchange: stamp the URL's drop-grace, evict its client."""
    return kind in (TransportKind.DROPPED, TransportKind.RESET)


def surfaces_as_dropped(kind: TransportKind, within_drop_grace: bool) -> bool:
    """Raise ``AgentConnectionDropped`` (not plain ``AgentUnreachable``) for this outcome."""
    connect = kind in (TransportKind.CONNECT_FAILED, TransportKind.CONNECT_TIMEOUT)
    return is_drop(kind) or (connect and within_drop_grace)
