"""Completion webhooks: the outbox message a terminal transition carries for an agent with a URL.

The body is a JSON summary of the finished execution; the idempotency key is
``<execution id>:<attempt>`` (header ``Idempotency-Key``), the same on every retry, so a receiver
can drop the duplicates that at-least-once delivery may bring. The message names its destination
(``completion:<agent>``), never the URL: the outbox sender resolves it from the agent when it
sends. Nothing here sends anything.
"""

from __future__ import annotations

from dataclasses import replace

from shepherd.core.models import Agent, Execution, TransitionFields
from shepherd.core.outbox import OutboxMessage, SinkKind
from shepherd.core.status import ExecutionStatus

TOPIC = "completion"
DESTINATION_PREFIX = "completion:"


def completion_destination(agent: str) -> str:
    return f"{DESTINATION_PREFIX}{agent}"


def webhook_body(execution: Execution) -> dict[str, object]:
    return {
        "execution_id": execution.id,
        "agent": execution.agent,
        "schedule_id": execution.schedule_id,
        "attempt": execution.attempt,
        "status": execution.status.value,
        "exit_code": execution.exit_code,
        "error_class": execution.error_class,
        "finished_at_ms": execution.finished_at_ms,
        "completed_at_ms": execution.completed_at_ms,
    }


def completion_messages(
    agent: Agent | None, row: Execution, to: ExecutionStatus, fields: TransitionFields,
    now_ms: int, max_age_s: int,
) -> tuple[OutboxMessage, ...]:
    """The webhook that ``row``'s terminal transition to ``to`` carries: none without a URL."""
    if agent is None or not agent.completion_webhook_url:
        return ()
    final = replace(
        row, status=to, completed_at_ms=fields.completed_at_ms or now_ms,
        exit_code=fields.exit_code if fields.exit_code is not None else row.exit_code,
        error_class=fields.error_class or row.error_class,
        finished_at_ms=fields.finished_at_ms or row.finished_at_ms,
    )
    return (OutboxMessage(
        destination=completion_destination(row.agent), sink=SinkKind.COMPLETION, topic=TOPIC,
        subject=row.id, idempotency_key=f"{row.id}:{row.attempt}",
        payload=webhook_body(final), max_age_s=max_age_s,
    ),)
