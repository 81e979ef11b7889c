"""``LocalFleet``'s decisions over real SQL, with a stand-in for the process launcher (real
runtimes are covered in test_local_runtimes_follow_the_fleet.py): a runtime that fails to start is
retried with backoff, not on every pass, and at once by an explicit apply."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

from shepherd.app.local_fleet import LocalFleet
from shepherd.app.runtime_records import RuntimeSpec
from shepherd.app.runtimes import LocalRuntime, LocalRuntimes
from shepherd.core.ids import AgentName
from shepherd.errors import ConfigError
from shepherd.manifest.schema import Manifest
from shepherd.stores.sql.database import Database


@dataclass
class FailingLauncher:
    runtimes: dict[str, LocalRuntime] = field(default_factory=dict)
    starts: list[str] = field(default_factory=list)

    async def adopt(self, spec: RuntimeSpec) -> LocalRuntime | None:
        return None

    async def start(self, spec: RuntimeSpec) -> LocalRuntime:
        self.starts.append(spec.name)
        raise ConfigError(f"agent {spec.name}: its runtime did not start")

    async def stop_unclaimed(self) -> list[str]:
        return []


async def test_a_runtime_that_fails_to_start_is_retried_with_backoff(db: Database) -> None:
    await db.agents.create(name=AgentName("bad"), url=None, command=("true",))
    launcher = FailingLauncher()
    fleet = LocalFleet(db, cast(LocalRuntimes, launcher))
    first = await fleet.apply(None)
    assert first.failed == {"bad": "agent bad: its runtime did not start"}
    second = await fleet.apply(None)  # the next periodic pass comes before the retry is due
    assert second.failed == {} and launcher.starts == ["bad"]
    await fleet.apply(Manifest())  # an explicit apply tries again at once
    assert launcher.starts == ["bad", "bad"]
