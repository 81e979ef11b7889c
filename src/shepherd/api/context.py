"""What the REST API needs from the running control plane, handed over in one frozen value.

``app.py`` builds an ``ApiContext`` from its ``ControlPlane``; routers read it from
``request.app.state.ctx``. The API never opens a store or starts a loop of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from shepherd.alerts.service import AlertService
from shepherd.api.hosting import LocalRuntimeHost
from shepherd.canary.service import CanaryService
from shepherd.controllers.base import Wakeup
from shepherd.controllers.directory import AgentDirectory
from shepherd.core.clock import Clock
from shepherd.services.event_hub import EventHub
from shepherd.settings import Settings
from shepherd.stores.redis.connection import RedisHandle
from shepherd.stores.sql.database import Database
from shepherd.telemetry import Telemetry


@dataclass(frozen=True, slots=True)
class ApiContext:
    db: Database
    redis: RedisHandle
    settings: Settings
    clock: Clock
    directory: AgentDirectory
    # Poked after the API creates work, so the dispatcher does not wait for its next interval.
    dispatch_wakeup: Wakeup
    # Last successful tick (epoch ms, None before the first) per controller name.
    controller_ticks: Callable[[], dict[str, int | None]]
    # The process's own counters and histograms, rendered by /metrics beside the store gauges.
    telemetry: Telemetry = field(default_factory=Telemetry)
    # The alert engine (its sinks and the one evaluate entry point); None: alerts not wired.
    alerts: AlertService | None = None
    # Live events for ``/api/events`` and the dashboard; None where nothing follows the stores.
    events: EventHub | None = None
    # The process's local runtimes under ``shepherd up``; None under ``serve`` (hosting.py).
    local_runtimes: LocalRuntimeHost | None = None
    # The canary (its cycle runs on demand even while its loop is off); None: not wired.
    canary: CanaryService | None = None


def get_context(request: Request) -> ApiContext:
    ctx = request.app.state.ctx
    assert isinstance(ctx, ApiContext)
    return ctx


# Routers take ``ctx: Ctx`` to reach the stores.
Ctx = Annotated[ApiContext, Depends(get_context)]
