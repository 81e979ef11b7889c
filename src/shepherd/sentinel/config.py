"""The sentinel's own settings, ``SHEPHERD_SENTINEL_*``: lenient where ``Settings`` is strict.

An observer must not die of its own configuration: a malformed value falls back to its default
with one warning naming the variable, what it accepts and the default used — never an exception.
That is why these are parsed here, from a plain mapping, rather than by the strict ``Settings``
(which stops the control plane on any bad value).

| variable | default | meaning |
|---|---|---|
| ``SHEPHERD_SENTINEL_ENABLED`` | off | scan at all; off means the process table is never read |
| ``SHEPHERD_SENTINEL_AGE_MIN_S`` | 60 | a process alerts once strictly older than this |
| ``SHEPHERD_SENTINEL_PATTERNS`` | ``pytest`` | comma-separated substrings of a command line |
| ``SHEPHERD_SENTINEL_COOLDOWN_S`` | 1800 | re-alert interval while a process lives on |
| ``SHEPHERD_SENTINEL_INTERVAL_S`` | 30 | seconds between two scans |
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

PREFIX = "SHEPHERD_SENTINEL_"
# Off unless asked for: a host sidecar that reads the process table is opt-in.
DEFAULT_ENABLED = False
# A minute: shorter than any run worth worrying about, and past the start-up of a legitimate one.
DEFAULT_AGE_MIN_S = 60.0
# Test runs are what the orchestrator itself starts and most often orphans.
DEFAULT_PATTERNS: tuple[str, ...] = ("pytest",)
# Half an hour between reminders: a stray stays in view without paging every scan.
DEFAULT_COOLDOWN_S = 1800.0
# Thirty seconds between scans: a stray is minutes-to-days old; a scan costs one pass of /proc.
DEFAULT_INTERVAL_S = 30.0
# Scans closer than this would only burn CPU: the smallest interval accepted.
MIN_INTERVAL_S = 0.05

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SentinelConfig:
    enabled: bool = DEFAULT_ENABLED
    age_min_s: float = DEFAULT_AGE_MIN_S
    patterns: tuple[str, ...] = DEFAULT_PATTERNS
    cooldown_s: float = DEFAULT_COOLDOWN_S
    interval_s: float = DEFAULT_INTERVAL_S


def parse_sentinel_config(env: Mapping[str, str]) -> tuple[SentinelConfig, tuple[str, ...]]:
    """The config from ``env`` and one warning per malformed value (each replaced by its
    default)."""
    warnings: list[str] = []

    def field(name: str, parse: Callable[[str], T | None], default: T, accepts: str) -> T:
        raw = env.get(PREFIX + name)
        if raw is None:
            return default
        value = parse(raw.strip())
        if value is None:
            warnings.append(f"{PREFIX}{name}={raw!r} is not {accepts}; using the default "
                            f"{_shown(default)}")
            return default
        return value

    config = SentinelConfig(
        enabled=field("ENABLED", _boolean, DEFAULT_ENABLED, "a boolean (1/0, true/false, on/off)"),
        age_min_s=field("AGE_MIN_S", _seconds(0.0), DEFAULT_AGE_MIN_S,
                        "a number of seconds >= 0"),
        patterns=field("PATTERNS", _patterns, DEFAULT_PATTERNS,
                       "a comma-separated list of non-empty patterns"),
        cooldown_s=field("COOLDOWN_S", _seconds(1.0), DEFAULT_COOLDOWN_S,
                         "a number of seconds >= 1"),
        interval_s=field("INTERVAL_S", _seconds(MIN_INTERVAL_S), DEFAULT_INTERVAL_S,
                         f"a number of seconds >= {MIN_INTERVAL_S}"),
    )
    return config, tuple(warnings)


def _boolean(raw: str) -> bool | None:
    word = raw.lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None


def _seconds(minimum: float) -> Callable[[str], float | None]:
    def parse(raw: str) -> float | None:
        try:
            value = float(raw)
        except ValueError:
            return None
        return value if math.isfinite(value) and value >= minimum else None

    return parse


def _patterns(raw: str) -> tuple[str, ...] | None:
    patterns = tuple(p.strip() for p in raw.split(",") if p.strip())
    return patterns or None


def _shown(default: object) -> str:
    if isinstance(default, tuple):
        return ",".join(str(p) for p in default)
    if isinstance(default, bool):
        return "on" if default else "off"
    return f"{default:g}" if isinstance(default, float) else str(default)
