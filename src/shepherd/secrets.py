"""Tokens kept in the data dir: created once with mode 0600, read back on every start."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

log = logging.getLogger("shepherd.secrets")

TOKEN_BYTES = 32


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def read_or_create_token(path: Path) -> tuple[str, bool]:
    """The token stored at ``path``, creating it (mode 0600) when absent; True when created."""
    try:
        return path.read_text(encoding="utf-8").strip(), False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    token = new_token()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    return token, True


def given_or_stored_token(given: str | None, path: Path) -> str:
    """``given`` when set, else the token kept at ``path`` (created there, and said so, once)."""
    if given:
        return given
    token, created = read_or_create_token(path)
    if created:
        # A first start is expected to generate it: worth a line, not a warning.
        log.info("no token given: generated one at %s (mode 0600)", path)
    return token
