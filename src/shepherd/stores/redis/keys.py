"""Every Redis key Shepherd uses, built in one place. No key literal lives anywhere else.

All keys start with the configured prefix (default ``shepherd:``).

| key                        | type   | TTL                 | written by                  | read by                          |
|----------------------------|--------|---------------------|-----------------------------|----------------------------------|
| ``instance``               | string | none                | startup, slot recovery (mirror of SQL meta) | startup, slot recovery, canary G-06 |
| ``epoch``                  | string | none                | dispatcher's slot recovery, after a rebuild from SQL | slot acquire script, dispatcher |
|                            |        |                     | value: run_id of the server the slots were rebuilt on (core.epoch) |
| ``slots:{agent}``          | ZSET   | none                | slot acquire / release      | dispatcher, maintenance, canary  |
|                            |        |                     | scripts; member = execution id, score = acquired_at_ms        |
| ``slot:{agent}:{eid}``     | HASH   | timeout_s + 300     | slot acquire / release      | maintenance, canary S-03/S-04    |
|                            |        |                     | fields acquired_at_ms, timeout_s, holder                       |
| ``drain:tick_at``          | string | none                | maintenance, end of a sweep (TickStore) | canary B-02, /metrics |
| ``circuit:{agent}``        | HASH   | none (absent = closed, no failures) | circuit_* scripts | breaker, prober, API, /metrics, canary L-05 |
|                            |        |                     | fields state, failures, failed_probes, opened_at_ms, next_probe_at_ms, probe_owner, probe_until_ms, probe_from, changed_at_ms, reason, fail_at:{replica} |
| ``circuit:{agent}:events`` | LIST   | none (capped at 50) | circuit_* scripts (LPUSH + LTRIM, with the transition) | API, CLI |
|                            |        |                     | JSON: at_ms, kind, from, to, reason, by; newest first           |
| ``replica:{id}``           | string | PX presence TTL     | breaker heartbeat (each replica) | breaker (quorum guard: live replicas) |
| ``lease:{name}``           | string | PX lease TTL        | lease scripts (owner token) | lease holders, reaper            |
|                            |        |                     | names: ``controller:{c}``, ``monitor:{agent}``, ``finalize:{eid}`` |
|                            |        |                     | (finalize: the finalizer, or the reaper finalizing on its behalf; |
|                            |        |                     | the reaper, /metrics and ``/api/reaper`` read who holds them)   |
| ``agent:{agent}:cursor``   | HASH   | none                | monitor (CursorStore)       | monitor, watchdog, dashboard     |
|                            |        |                     | fields seq, boot_id, seen_at_ms (last answered poll), booted_at_ms (runtime boot); |
|                            |        |                     | reconcile_requested_at_ms, reconcile_reason                     |
|                            |        |                     | (a reconcile request: monitor sets, watchdog consumes)          |
| ``agent:{agent}:health``   | HASH   | none                | watchdog                    | watchdog, dispatcher, API        |
|                            |        |                     | fields unreachable_since_ms (first miss of the current outage), |
|                            |        |                     | lost_at_ms (the fence: no dispatch until a clean registry pass) |
| ``watchdog:requests``      | pub/sub channel | -          | monitor (reconcile request) | every replica's watchdog         |
|                            |        |                     | message = agent name (not a key: nothing is stored)             |
| ``controller:{c}:tick_at`` | string | none                | controller loop (TickStore) | /metrics, canary G-02            |
| ``controller:{c}:last_report`` | string | none            | controller loop (JSON: tick_at_ms, duration_ms, report counts) | API status views |
| ``controller:{c}:last_detail`` | string | none            | a controller's own last-pass detail (JSON; the watchdog's: skipped agents and why; the reaper's: actions by tier, defers) | API status views |
| ``canary:{part}``          | any    | per part            | canary                      | canary                           |
| ``web:session:{digest}``   | string | session_ttl_s       | dashboard sign-in           | dashboard, ``/api/events``       |
|                            |        |                     | JSON {token_id, csrf, created_at_ms}; digest = SHA-256 of the cookie's secret |
| ``web:signin:{digest}``    | string | signin_link_ttl_s   | ``shepherd up`` (sign-in link) | dashboard (GETDEL: single use) |
|                            |        |                     | the token id the one-time code signs in as; digest = SHA-256 of the code      |

Agent names never contain ``:`` (see ``core.ids.validate_agent_name``), so ``slot:{agent}:{eid}``
cannot collide across agents.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PREFIX = "shepherd:"


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = DEFAULT_PREFIX

    def instance(self) -> str:
        return f"{self.prefix}instance"

    def epoch(self) -> str:
        return f"{self.prefix}epoch"

    def slots(self, agent: str) -> str:
        return f"{self.prefix}slots:{agent}"

    def slot(self, agent: str, execution_id: str) -> str:
        return f"{self.prefix}slot:{agent}:{execution_id}"

    def slot_pattern(self, agent: str) -> str:
        """SCAN pattern matching every slot hash of ``agent``."""
        return f"{self.prefix}slot:{agent}:*"

    def all_slots_pattern(self) -> str:
        """SCAN pattern matching every slot hash of every agent (never a ``slots:`` ZSET)."""
        return f"{self.prefix}slot:*"

    def parse_slot(self, key: str) -> tuple[str, str] | None:
        """``(agent, execution_id)`` of a slot hash key; None for any other key."""
        head = f"{self.prefix}slot:"
        if not key.startswith(head):
            return None
        agent, sep, execution_id = key[len(head):].partition(":")
        return (agent, execution_id) if sep and agent and execution_id else None

    def drain_tick_at(self) -> str:
        return f"{self.prefix}drain:tick_at"

    def circuit(self, agent: str) -> str:
        return f"{self.prefix}circuit:{agent}"

    def circuit_events(self, agent: str) -> str:
        return f"{self.prefix}circuit:{agent}:events"

    def replica(self, replica_id: str) -> str:
        return f"{self.prefix}replica:{replica_id}"

    def replica_pattern(self) -> str:
        """SCAN pattern matching every replica's presence key."""
        return f"{self.prefix}replica:*"

    def lease(self, name: str) -> str:
        return f"{self.prefix}lease:{name}"

    def controller_lease(self, controller: str) -> str:
        return self.lease(f"controller:{controller}")

    def monitor_lease(self, agent: str) -> str:
        return self.lease(f"monitor:{agent}")

    def finalize_lease(self, execution_id: str) -> str:
        return self.lease(f"finalize:{execution_id}")

    def finalize_lease_pattern(self) -> str:
        """SCAN pattern matching every finalize lease."""
        return self.lease("finalize:*")

    def parse_finalize_lease(self, key: str) -> str | None:
        """The execution id of a finalize lease key; None for any other key."""
        head = self.finalize_lease("")
        if not key.startswith(head):
            return None
        return key[len(head):] or None

    def agent_cursor(self, agent: str) -> str:
        return f"{self.prefix}agent:{agent}:cursor"

    def agent_health(self, agent: str) -> str:
        return f"{self.prefix}agent:{agent}:health"

    def reconcile_channel(self) -> str:
        """The pub/sub channel that wakes the watchdog (a channel, never a stored key)."""
        return f"{self.prefix}watchdog:requests"

    def controller_tick_at(self, controller: str) -> str:
        return f"{self.prefix}controller:{controller}:tick_at"

    def controller_report(self, controller: str) -> str:
        return f"{self.prefix}controller:{controller}:last_report"

    def controller_detail(self, controller: str) -> str:
        return f"{self.prefix}controller:{controller}:last_detail"

    def canary(self, part: str) -> str:
        return f"{self.prefix}canary:{part}"

    def web_session(self, digest: str) -> str:
        return f"{self.prefix}web:session:{digest}"

    def web_signin_code(self, digest: str) -> str:
        return f"{self.prefix}web:signin:{digest}"

    def all_pattern(self) -> str:
        """SCAN pattern for every key under the prefix (tests assert the exact keyspace)."""
        return f"{self.prefix}*"

    def agent_keys(self, agent: str) -> tuple[str, ...]:
        """Fixed-name keys that belong to one agent; deleting the agent deletes these."""
        return (self.slots(agent), self.circuit(agent), self.circuit_events(agent),
                self.agent_cursor(agent), self.monitor_lease(agent), self.agent_health(agent))
