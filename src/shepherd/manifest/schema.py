"""The manifest's schema: what a fleet file may say, with defaults and the accepted values.

Pydantic lives here because the manifest is a boundary (a file a person wrote). Unknown keys are
errors; a command is an argv list, or a string split as a POSIX shell would split it, and is never
run through a shell implicitly.
"""

from __future__ import annotations

import re
import shlex
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from shepherd.core.ids import AGENT_NAME_PATTERN
from shepherd.core.models import OverlapPolicy
from shepherd.core.retry import DEFAULT_MAX_ATTEMPTS, MAX_ATTEMPTS_LIMIT
from shepherd.core.text import check_input_text
from shepherd.core.timeouts import DEFAULT_EXECUTION_TIMEOUT_S

_MAX_TIMEOUT_S = 7 * 24 * 3600
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Shepherd's settings and the variables it sets for a child; see agent_runtime/environment.py.
RESERVED_ENV_PREFIX = "SHEPHERD_"
MaxAttempts = Annotated[int, Field(ge=1, le=MAX_ATTEMPTS_LIMIT)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgentSpec(_Strict):
    name: Annotated[str, Field(pattern=AGENT_NAME_PATTERN)]
    command: tuple[str, ...] | None = None
    url: Annotated[str, Field(pattern=r"^https?://[^\s/]+(/\S*)?$")] | None = None
    max_parallel: Annotated[int, Field(ge=1, le=1000)] = 3
    timeout_s: Annotated[int, Field(ge=1, le=_MAX_TIMEOUT_S)] = DEFAULT_EXECUTION_TIMEOUT_S
    max_backlog_depth: Annotated[int, Field(ge=0, le=100_000)] = 50
    tags: tuple[str, ...] = ()
    env: dict[str, str] = Field(default_factory=dict)
    success_exit_codes: tuple[int, ...] = (0,)
    enabled: bool = True
    require_input_read: bool = False

    @field_validator("env")
    @classmethod
    def _no_reserved_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not ENV_NAME.match(name):
                raise ValueError(f"{name!r} is not a variable name (letters, digits, _)")
            if name.startswith(RESERVED_ENV_PREFIX):
                raise ValueError(f"{name!r}: names starting with {RESERVED_ENV_PREFIX} are "
                                 "Shepherd's own and never reach a child")
        return value
    # Attempts in all; infrastructure failures are retried while attempts remain, and a child's
    # own failure too with retry_on_failure.
    max_attempts: MaxAttempts = DEFAULT_MAX_ATTEMPTS
    retry_on_failure: bool = False

    @field_validator("command", mode="before")
    @classmethod
    def _split_command(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = shlex.split(value)
            except ValueError as exc:
                raise ValueError(f"command cannot be split as a shell would: {exc}") from exc
        if isinstance(value, list | tuple) and not value:
            raise ValueError("command must not be empty")
        return value

    @model_validator(mode="after")
    def _command_or_url(self) -> AgentSpec:
        if (self.command is None) == (self.url is None):
            raise ValueError("give exactly one of 'command' (a local agent) or 'url' (remote)")
        return self


class ScheduleSpec(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    agent: str
    cron: str
    timezone: str = "UTC"
    input: Annotated[str, AfterValidator(check_input_text)] = ""
    timeout_s: Annotated[int, Field(ge=1, le=_MAX_TIMEOUT_S)] | None = None
    overlap: OverlapPolicy = OverlapPolicy.SKIP
    enabled: bool = True
    max_attempts: MaxAttempts | None = None  # None: the agent's
    retry_on_failure: bool | None = None  # None: the agent's

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        if not croniter.is_valid(value):
            raise ValueError(f"{value!r} is not a valid cron expression (e.g. '*/5 * * * *')")
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. 'UTC')") from exc
        return value


class Manifest(_Strict):
    agents: tuple[AgentSpec, ...] = ()
    schedules: tuple[ScheduleSpec, ...] = ()


def find_inconsistencies(manifest: Manifest) -> list[str]:
    """Cross-entry problems, each as ``path: problem``: duplicate names, unknown agents."""
    problems = []
    seen: set[str] = set()
    for i, agent in enumerate(manifest.agents):
        if agent.name in seen:
            problems.append(f"agents[{i}].name: {agent.name!r} is already used by another agent")
        seen.add(agent.name)
    keys: set[str] = set()
    for i, schedule in enumerate(manifest.schedules):
        if schedule.agent not in seen:
            problems.append(f"schedules[{i}].agent: no agent named {schedule.agent!r} in this file")
        key = schedule_key(schedule, i)
        if key in keys:
            problems.append(f"schedules[{i}].name: {key!r} is already used by another schedule")
        keys.add(key)
    return problems


def schedule_key(schedule: ScheduleSpec, index: int) -> str:
    """A schedule's identity across applies: its name, else ``<agent>-<index in file>``."""
    return schedule.name or f"{schedule.agent}-{index}"
