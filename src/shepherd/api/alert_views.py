"""Request and response shapes of ``/api/alerts``: incidents, deliveries, sinks, signals.

Sink URLs are secrets: viewers see a sink's name, kind and state; admins also see the URL masked
to its scheme and host. No response carries a full URL.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from shepherd.alerts.service import Evaluation
from shepherd.alerts.sinks import SinkConfig, mask_url
from shepherd.api.instants import to_iso
from shepherd.api.outbox_views import DeliveryView, DestinationView
from shepherd.core.signals import KEY_PART_PATTERN, Severity
from shepherd.stores.sql.alerts import StoredAlert

KeyPart = Annotated[str, Field(pattern=KEY_PART_PATTERN)]


class IncidentView(BaseModel):
    source: str
    kind: str
    entity: str
    phase: str
    severity: Severity
    summary: str
    forensics: list[str]
    forensic_total: int
    runbook: str | None
    incident: int
    since: str | None
    since_ms: int
    last_sent_at: str | None
    last_sent_at_ms: int | None

    @classmethod
    def of(cls, a: StoredAlert) -> IncidentView:
        return cls(
            source=a.key.source, kind=a.key.kind, entity=a.key.entity, phase=a.state.phase.value,
            severity=a.severity, summary=a.summary, forensics=list(a.forensics),
            forensic_total=a.forensic_total, runbook=a.runbook, incident=a.state.incidents,
            since=to_iso(a.state.since_ms), since_ms=a.state.since_ms,
            last_sent_at=to_iso(a.state.last_sent_ms), last_sent_at_ms=a.state.last_sent_ms,
        )


class SinkView(BaseModel):
    name: str
    kind: str
    destination: str
    state: str  # ok, blocked (rate-limited) or fatal (stopped until its URL changes)
    reason: str | None

    @classmethod
    def of(cls, sink: SinkConfig, state: DestinationView | None) -> SinkView:
        return cls(name=sink.name, kind=sink.kind.value, destination=sink.destination,
                   state=state.state if state else "ok", reason=state.reason if state else None)


class SinkAdminView(SinkView):
    url: str  # masked: scheme and host only

    @classmethod
    def masked(cls, sink: SinkConfig, state: DestinationView | None) -> SinkAdminView:
        return cls(**SinkView.of(sink, state).model_dump(), url=mask_url(sink.url))


class AlertsView(BaseModel):
    open: list[IncidentView]
    recent: list[DeliveryView]
    undelivered: list[DeliveryView]
    sinks: list[SinkView]


class SignalBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: KeyPart
    entity: KeyPart
    severity: Severity = Severity.MAJOR
    summary: Annotated[str, Field(min_length=1, max_length=2000)]
    forensics: Annotated[list[Annotated[str, Field(max_length=2000)]],
                         Field(max_length=1000)] = []
    forensic_total: Annotated[int, Field(ge=0)] | None = None
    runbook: Annotated[str, Field(max_length=2000)] | None = None


class PolicyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pending_s: Annotated[float, Field(ge=0)] = 0.0
    realert_s: Annotated[float, Field(gt=0)] | None = 3600.0
    send_recovery: bool = True


class SignalsBody(BaseModel):
    """Every signal the source sees active NOW: a key it no longer sends is a clear."""

    model_config = ConfigDict(extra="forbid")

    source: KeyPart
    signals: Annotated[list[SignalBody], Field(max_length=1000)]
    policy: PolicyBody | None = Field(
        default=None, description="Applies to every kind in this call; default: the server's.")


class DecisionView(BaseModel):
    source: str
    kind: str
    entity: str
    action: str
    incident: int


class EvaluationView(BaseModel):
    source: str
    decisions: list[DecisionView]
    enqueued: int

    @classmethod
    def of(cls, e: Evaluation) -> EvaluationView:
        return cls(source=e.source, enqueued=e.enqueued, decisions=[
            DecisionView(source=d.key.source, kind=d.key.kind, entity=d.key.entity,
                         action=d.action.value, incident=d.incident) for d in e.decisions])


