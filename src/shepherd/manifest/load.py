"""Reading a manifest file: YAML in, a validated ``Manifest`` out, or one readable error.

Every error names the file, the path inside it (``agents[2].max_parallel``) and what is accepted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from shepherd.errors import ManifestError
from shepherd.manifest.schema import Manifest, find_inconsistencies


def load_manifest(path: Path) -> Manifest:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read the manifest: {exc.strerror}") from exc
    return parse_manifest(text, source=str(path))


def parse_manifest(text: str, source: str = "<manifest>") -> Manifest:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ManifestError(f"{source}: not valid YAML: {_yaml_problem(exc)}") from exc
    return validate_manifest(data, source)


def validate_manifest(data: Any, source: str = "<manifest>") -> Manifest:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ManifestError(
            f"{source}: the top level must be a mapping with 'agents' and 'schedules'"
        )
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        raise ManifestError(f"{source}: {describe_errors(exc)}") from exc
    problems = find_inconsistencies(manifest)
    if problems:
        raise ManifestError(f"{source}: {'; '.join(problems)}")
    return manifest


def describe_errors(exc: ValidationError) -> str:
    """``agents[2].max_parallel: input should be ...`` for each problem, joined with '; '."""
    parts = []
    for error in exc.errors():
        location = format_location(error["loc"])
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        parts.append(f"{location}: {message}" if location else message)
    return "; ".join(parts)


def format_location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part not in ("function-after",):
            out += f".{part}" if out else str(part)
    return out


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is not None:
        return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    return str(problem)
