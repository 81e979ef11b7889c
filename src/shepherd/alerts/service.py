"""The alert service: the one entry point every alerting source calls.

``evaluate(source, active, now_ms)`` takes ALL the signals a source sees active right now (so a
key it no longer reports is a clear), decides per key with ``core.alerting.decide`` under the
policy of the key's kind, and in ONE transaction stores the new states and enqueues the messages
for every configured sink in the outbox. A restart therefore neither re-alerts nor forgets an
open incident, and two replicas evaluating the same source at once cannot both enqueue (the state
write is a compare-and-set; the loser's transaction rolls back and is retried once). Each
decision other than NONE is also logged (the log sink) and, once committed, recorded as an
``alert.changed`` fleet event for live viewers. It never sends anything itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from shepherd.alerts.notice import Notice
from shepherd.alerts.payloads import log_line
from shepherd.alerts.sinks import AlertDelivery, SinkConfig, messages_for
from shepherd.core.alerting import DEFAULT_POLICY, AlertAction, AlertPhase, AlertPolicy, decide
from shepherd.core.clock import Clock
from shepherd.core.fleet_events import AlertChange, FleetChange, alert_changed
from shepherd.core.outbox import OutboxMessage
from shepherd.core.signals import Signal, SignalKey
from shepherd.errors import ConfigError, Conflict
from shepherd.stores.sql.alerts import AlertChanges, StoredAlert
from shepherd.stores.sql.database import Database

log = logging.getLogger("shepherd.alerts")

# Alert messages undelivered for six hours are given up: the incident stays visible in the API,
# and a re-alert carries it again.
DEFAULT_ALERT_MAX_AGE_S = 6 * 3600
# Alertmanager resolves an alert nobody refreshes at its endsAt: a day outlasts any re-alert.
DEFAULT_ALERTMANAGER_HOLD_S = 86_400


@dataclass(frozen=True, slots=True)
class Decision:
    key: SignalKey
    action: AlertAction
    incident: int


@dataclass(frozen=True, slots=True)
class Evaluation:
    source: str
    decisions: tuple[Decision, ...] = ()  # every key that was not NONE
    enqueued: int = 0  # outbox messages written
    notices: tuple[Notice, ...] = field(default=(), repr=False)


class AlertService:
    def __init__(
        self, db: Database, clock: Clock, sinks: Sequence[SinkConfig] = (), *,
        policies: Mapping[str, AlertPolicy] | None = None,
        default_policy: AlertPolicy = DEFAULT_POLICY,
        delivery: AlertDelivery | None = None,
        on_enqueued: Callable[[], None] | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self.sinks = tuple(sinks)
        self._policies = dict(policies or {})
        self._default = default_policy
        self._delivery = delivery or AlertDelivery(DEFAULT_ALERT_MAX_AGE_S,
                                                   DEFAULT_ALERTMANAGER_HOLD_S)
        self._on_enqueued = on_enqueued

    def register_policy(self, kind: str, policy: AlertPolicy) -> None:
        """The policy for one kind of signal (sources declare theirs when they are wired)."""
        self._policies[kind] = policy

    def policy_for(self, kind: str) -> AlertPolicy:
        return self._policies.get(kind, self._default)

    async def evaluate(
        self, source: str, active: Iterable[Signal], now_ms: int | None = None,
        policies: Mapping[str, AlertPolicy] | None = None,
    ) -> Evaluation:
        """Decide every key of ``source`` given the signals it sees active now."""
        signals = list(active)
        foreign = sorted({s.key.source for s in signals} - {source})
        if foreign:
            raise ConfigError(f"signals for source {source!r} name other sources: {foreign}")
        now = now_ms if now_ms is not None else self._clock.now_ms()
        planner = _Planner(source, {s.key: s for s in signals}, now, self, policies or {})
        try:
            changes = await self._db.alerts.transact(source, planner.plan, now)
        except Conflict:
            changes = await self._db.alerts.transact(source, planner.plan, now)
        evaluation: Evaluation = changes.result
        for notice in evaluation.notices:
            (log.info if notice.is_recovery else log.warning)("%s", log_line(notice))
        await self._db.fleet_events.record(*(_event(n) for n in evaluation.notices))
        if evaluation.enqueued and self._on_enqueued is not None:
            self._on_enqueued()
        return evaluation

    def messages(self, notice: Notice) -> list[OutboxMessage]:
        return messages_for(self.sinks, notice, self._delivery)


# What each decision is, for live viewers.
ALERT_CHANGES: dict[AlertAction, AlertChange] = {
    AlertAction.ALERT: AlertChange.OPENED, AlertAction.REALERT: AlertChange.REPEATED,
    AlertAction.RECOVERY: AlertChange.RESOLVED,
}


def _event(notice: Notice) -> FleetChange:
    return alert_changed(ALERT_CHANGES[notice.action], notice.key, severity=notice.severity,
                         summary=notice.summary, incident=notice.incident,
                         opened_at_ms=notice.opened_at_ms)


@dataclass
class _Planner:
    """The pure half of one evaluation: stored states in, new states and messages out."""

    source: str
    active: dict[SignalKey, Signal]
    now_ms: int
    service: AlertService
    overrides: Mapping[str, AlertPolicy]

    def plan(self, current: dict[SignalKey, StoredAlert]) -> AlertChanges:
        keys = set(self.active) | {k for k, s in current.items()
                                   if s.state.phase is not AlertPhase.CLEAR}
        states: list[StoredAlert] = []
        notices: list[Notice] = []
        for key in sorted(keys):
            before = current.get(key)
            written, notice = self._decide(key, before)
            if written is not None and written != before:
                states.append(written)
            if notice is not None:
                notices.append(notice)
        messages = [m for n in notices for m in self.service.messages(n)]
        result = Evaluation(
            self.source, tuple(Decision(n.key, n.action, n.incident) for n in notices),
            len(messages), tuple(notices),
        )
        return AlertChanges(states, messages, result)

    def _decide(
        self, key: SignalKey, before: StoredAlert | None
    ) -> tuple[StoredAlert | None, Notice | None]:
        policy = self.overrides.get(key.kind) or self.service.policy_for(key.kind)
        signal = self.active.get(key)
        action, state = decide(before.state if before else None, signal is not None,
                               self.now_ms, policy)
        if state is None:
            return None, None
        if signal is not None:
            written = StoredAlert(key, state, signal.severity, signal.summary, signal.forensics,
                                  signal.forensic_total, signal.runbook,
                                  before.version if before else 0,
                                  before.updated_at_ms if before else 0)
        else:
            assert before is not None  # a clear key was stored before
            written = StoredAlert(key, state, before.severity, before.summary, before.forensics,
                                  before.forensic_total, before.runbook, before.version,
                                  before.updated_at_ms)
        if action is AlertAction.NONE:
            return written, None
        opened = before.state.since_ms if action is AlertAction.RECOVERY and before else \
            state.since_ms
        last_red = before.state.last_red_ms if action is AlertAction.ALERT and before else None
        notice = Notice(action, key, written.severity, written.summary, written.forensics,
                        written.forensic_total, written.runbook, self.now_ms, opened,
                        state.incidents, last_red)
        return written, notice
