"""Request bodies the REST API accepts, validated at the boundary.

Unknown fields are rejected, so a typo is a 422 naming the field rather than a silent no-op.
Every free-text field is checked to be storable as-is: valid UTF-8 and free of NUL characters,
which PostgreSQL text columns cannot hold. Field names follow the fleet manifest
(``max_parallel``, ``timeout_s``) so a file and an API call read the same.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from shepherd.core.ids import AGENT_NAME_PATTERN
from shepherd.core.models import OverlapPolicy
from shepherd.core.retry import DEFAULT_MAX_ATTEMPTS
from shepherd.core.text import check_input_text
from shepherd.manifest.schema import MaxAttempts, ScheduleSpec
from shepherd.services.tokens import Role

# The agent protocol's ceilings: inputs the runtime would refuse are refused here first.
MAX_INPUT_CHARS = 10 * 1024 * 1024
MAX_TIMEOUT_S = 7 * 24 * 3600


def _storable(value: str) -> str:
    return check_input_text(value)


Text = Annotated[str, AfterValidator(_storable)]
AgentNameField = Annotated[str, Field(pattern=AGENT_NAME_PATTERN)]
TimeoutField = Annotated[int, Field(ge=1, le=MAX_TIMEOUT_S)]
UrlField = Annotated[Text, Field(pattern=r"^https?://[^\s/]+(/\S*)?$", max_length=2000)]
Argv = tuple[Annotated[Text, Field(min_length=1, max_length=4096)], ...]
Tags = tuple[Annotated[Text, Field(min_length=1, max_length=100)], ...]
ExitCodes = tuple[Annotated[int, Field(ge=0, le=255)], ...]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExecutionCreate(_Body):
    agent: AgentNameField
    input: Annotated[Text, Field(max_length=MAX_INPUT_CHARS)] = ""
    timeout_s: TimeoutField | None = None


class AgentCreate(_Body):
    name: AgentNameField
    url: UrlField | None = None
    command: Annotated[Argv, Field(min_length=1)] | None = None
    max_parallel: Annotated[int, Field(ge=1, le=1000)] = 3
    timeout_s: TimeoutField = 900
    max_backlog_depth: Annotated[int, Field(ge=0, le=100_000)] = 50
    enabled: bool = True
    tags: Tags = ()
    success_exit_codes: Annotated[ExitCodes, Field(min_length=1)] = (0,)
    completion_webhook_url: UrlField | None = None
    require_input_read: bool = False
    max_attempts: MaxAttempts = DEFAULT_MAX_ATTEMPTS
    retry_on_failure: bool = False


class _Patch(_Body):
    """Only the fields present change; ``null`` is accepted only where a value can be cleared."""

    CLEARABLE: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _no_null_for_required(self) -> _Patch:
        nulled = sorted(
            name for name in self.model_fields_set
            if getattr(self, name) is None and name not in self.CLEARABLE
        )
        if nulled:
            raise ValueError(f"{', '.join(nulled)}: cannot be null (leave the field out instead)")
        return self


class AgentPatch(_Patch):
    CLEARABLE = frozenset({"url", "command", "completion_webhook_url"})

    url: UrlField | None = None
    command: Annotated[Argv, Field(min_length=1)] | None = None
    max_parallel: Annotated[int, Field(ge=1, le=1000)] | None = None
    timeout_s: TimeoutField | None = None
    max_backlog_depth: Annotated[int, Field(ge=0, le=100_000)] | None = None
    enabled: bool | None = None
    tags: Tags | None = None
    success_exit_codes: Annotated[ExitCodes, Field(min_length=1)] | None = None
    completion_webhook_url: UrlField | None = None
    require_input_read: bool | None = None
    max_attempts: MaxAttempts | None = None
    retry_on_failure: bool | None = None


class ScheduleCreate(ScheduleSpec):
    """The manifest's schedule entry: the same fields, the same cron and time-zone checks."""

    agent: AgentNameField
    input: Annotated[Text, Field(max_length=MAX_INPUT_CHARS)] = ""
    name: Annotated[Text, Field(min_length=1, max_length=200)] | None = None

    @field_validator("cron", "timezone", mode="before")
    @classmethod
    def _plain_text(cls, value: object) -> object:
        return _storable(value) if isinstance(value, str) else value


class SchedulePatch(_Patch):
    CLEARABLE = frozenset({"name", "timeout_s", "max_attempts", "retry_on_failure"})

    name: Annotated[Text, Field(min_length=1, max_length=200)] | None = None
    cron: Text | None = None
    timezone: Text | None = None
    input: Annotated[Text, Field(max_length=MAX_INPUT_CHARS)] | None = None
    timeout_s: TimeoutField | None = None
    overlap: OverlapPolicy | None = None
    enabled: bool | None = None
    max_attempts: MaxAttempts | None = None  # null: the agent's
    retry_on_failure: bool | None = None  # null: the agent's

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        return None if value is None else ScheduleSpec._valid_cron(value)

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str | None) -> str | None:
        return None if value is None else ScheduleSpec._valid_timezone(value)


class TokenCreate(_Body):
    name: Annotated[Text, Field(min_length=1, max_length=100)]
    role: Role = Role.VIEWER
    agent: AgentNameField | None = None
