"""The one error tree of Shepherd.

Every error Shepherd raises on purpose is a ``ShepherdError``. Third-party exceptions are translated
once, at the boundary that meets them (``raise ... from exc``); nothing above that boundary catches
an ``httpx``, ``redis`` or ``sqlalchemy`` exception. Whether an error is retryable or counts toward
the circuit breaker is decided by the classification table in ``shepherd.core``, not here.

    ShepherdError
    ├── ConfigError                 bad settings, manifest or CLI input (exit 2 / HTTP 422)
    │   ├── ManifestError           a fleet manifest that does not validate
    │   ├── PayloadTooLarge         a request body over the limit (HTTP 413)
    │   └── AmbiguousId             a short id that matches more than one thing
    ├── StoreError                  a store failed or disagrees with itself
    │   ├── SqlStoreError
    │   ├── RedisStoreError
    │   │   └── EmbeddedRedisError  the private redis-server could not be started
    │   └── InstanceMismatch        SQL and Redis carry different instance ids
    ├── NotFound                    a named thing does not exist (HTTP 404)
    │   ├── AgentNotFound
    │   ├── ScheduleNotFound
    │   └── ExecutionNotFound
    ├── Conflict                    the request is valid but the state forbids it (HTTP 409)
    │   ├── AlreadyExists
    │   └── InvalidTransition       the state machine forbids this status change
    ├── AgentError                  talking to an agent runtime
    │   ├── AgentUnreachable        no HTTP response at all
    │   │   ├── AgentConnectionDropped  connection dropped mid-flight; neutral for the breaker
    │   │   └── CircuitOpen     the agent's circuit is open: the call was not made
    │   ├── AgentProtocolError      a response that breaks the protocol
    │   └── AgentRejected           the runtime answered 4xx to a well-formed call
    ├── ExecutionError              the child process failed in a way that is not its exit code
    │   └── ChildExitedEarly        the child exited before reading its input
    └── AuthError
        ├── Unauthenticated         no or unknown credentials (HTTP 401)
        └── Forbidden               known credentials, not enough role (HTTP 403)
"""

from __future__ import annotations


class ShepherdError(Exception):
    """Root of every error Shepherd raises on purpose. ``code`` is stable and machine-readable."""

    code = "shepherd_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(ShepherdError):
    code = "invalid_config"


class ManifestError(ConfigError):
    code = "invalid_manifest"


class PayloadTooLarge(ConfigError):
    code = "payload_too_large"


class AmbiguousId(ConfigError):
    code = "ambiguous_id"


class StoreError(ShepherdError):
    code = "store_error"


class SqlStoreError(StoreError):
    code = "sql_store_error"


class RedisStoreError(StoreError):
    code = "redis_store_error"


class EmbeddedRedisError(RedisStoreError):
    code = "embedded_redis_error"


class InstanceMismatch(StoreError):
    code = "instance_mismatch"


class NotFound(ShepherdError):
    code = "not_found"


class AgentNotFound(NotFound):
    code = "agent_not_found"


class ScheduleNotFound(NotFound):
    code = "schedule_not_found"


class ExecutionNotFound(NotFound):
    code = "execution_not_found"


class Conflict(ShepherdError):
    code = "conflict"


class AlreadyExists(Conflict):
    code = "already_exists"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class AgentError(ShepherdError):
    code = "agent_error"


class AgentUnreachable(AgentError):
    code = "agent_unreachable"


class AgentConnectionDropped(AgentUnreachable):
    code = "agent_connection_dropped"


class CircuitOpen(AgentUnreachable):
    """Refused without calling: the agent failed often enough that its circuit is open (or a
    probe is checking on it). Callers that treat the agent as unreachable need nothing new."""

    code = "circuit_open"


class AgentProtocolError(AgentError):
    code = "agent_protocol_error"


class AgentRejected(AgentError):
    code = "agent_rejected"

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


class ExecutionError(ShepherdError):
    code = "execution_error"


class ChildExitedEarly(ExecutionError):
    code = "child_exited_early"


class AuthError(ShepherdError):
    code = "auth_error"


class Unauthenticated(AuthError):
    code = "unauthenticated"


class Forbidden(AuthError):
    code = "forbidden"
