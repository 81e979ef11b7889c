"""The environment a child starts with: built from an allow-list, never inherited whole.

A child gets exactly three things:

1. the host's basic variables, when the runtime has them: ``HOST_VARIABLES`` and every ``LC_*``;
2. its agent's ``env`` (the manifest's ``env:``, given to the runtime as a JSON file with
   ``--env-file``), which may override the host's values;
3. ``SHEPHERD_EXECUTION_ID``, ``SHEPHERD_ATTEMPT`` and ``SHEPHERD_AGENT``.

Guarantees: no other ``SHEPHERD_*`` variable ever reaches a child — not the agent token, not the
database or Redis URL, not a setting — even when the runtime's own environment or the agent's
``env`` holds one. The base is built once per runtime, so a spawn only adds three names.
Must not: read the environment anywhere but in ``host_variables`` (the caller passes it in).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from shepherd.errors import ConfigError

# What a program expects of a login-like environment: where to find commands, who and where it
# is, its locale, time zone, scratch space and terminal type. Anything else is the agent's to give.
HOST_VARIABLES = (
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TERM",
)
LOCALE_PREFIX = "LC_"
# Every variable Shepherd itself reads starts with this; none but the three below reach a child.
RESERVED_PREFIX = "SHEPHERD_"
EXECUTION_ID = "SHEPHERD_EXECUTION_ID"
ATTEMPT = "SHEPHERD_ATTEMPT"
AGENT = "SHEPHERD_AGENT"


def host_variables(environ: Mapping[str, str]) -> dict[str, str]:
    """The allow-listed part of the runtime's own environment; ``PATH`` always has a value."""
    kept = {
        name: value for name, value in environ.items()
        if name in HOST_VARIABLES or name.startswith(LOCALE_PREFIX)
    }
    kept.setdefault("PATH", os.defpath)
    return kept


def base_environment(host: Mapping[str, str], agent_env: Mapping[str, str]) -> dict[str, str]:
    """Host variables overlaid with the agent's ``env``, minus every reserved name."""
    merged = {**host, **agent_env}
    return {k: v for k, v in merged.items() if not k.startswith(RESERVED_PREFIX)}


def child_environment(
    base: Mapping[str, str], *, execution_id: str, attempt: int, agent: str
) -> dict[str, str]:
    return {**base, EXECUTION_ID: execution_id, ATTEMPT: str(attempt), AGENT: agent}


def load_env_file(path: Path) -> dict[str, str]:
    """An agent's ``env`` from a JSON object of strings; ``ConfigError`` naming the file if not."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read the agent environment: {exc}") from exc
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise ConfigError(f"{path}: must be a JSON object of string names to string values")
    return data


def write_env_file(path: Path, env: Mapping[str, str]) -> None:
    """Write ``env`` for ``--env-file``, readable by its owner only (values may be secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(dict(env), handle)
    os.replace(tmp, path)
