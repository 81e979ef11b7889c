"""The CLI's HTTP client for the control plane's REST API.

Where to connect: ``--url``/``--token``, else ``SHEPHERD_URL``/``SHEPHERD_TOKEN``, else the local
control plane of the data dir (``SHEPHERD_HOST``/``SHEPHERD_PORT``) with the admin token kept in
``<data_dir>/admin.token``. Every failure becomes one ``CliError`` line: what went wrong, where.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from shepherd.settings import Settings

ADMIN_TOKEN_FILE = "admin.token"


class CliError(Exception):
    """One readable line for the person at the terminal, and the exit code to leave with."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


@dataclass(frozen=True)
class Target:
    url: str
    token: str | None


def resolve_target(url: str | None, token: str | None, settings: Settings) -> Target:
    url = url or os.environ.get("SHEPHERD_URL") or f"http://{settings.host}:{settings.port}"
    token = token or os.environ.get("SHEPHERD_TOKEN") or _local_admin_token(settings.data_dir)
    return Target(url.rstrip("/"), token)


def _local_admin_token(data_dir: Path) -> str | None:
    try:
        return (data_dir / ADMIN_TOKEN_FILE).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


class Remote:
    """A thin synchronous client: JSON in, JSON out, ``CliError`` on anything else."""

    def __init__(self, target: Target, timeout_s: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {target.token}"} if target.token else {}
        self.target = target
        self._http = httpx.Client(base_url=target.url, headers=headers, timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def get(self, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return self._call("GET", path, params=clean)

    def post(self, path: str, body: Any = None, *, content: str | None = None,
             content_type: str | None = None) -> Any:
        if content is not None:
            return self._call("POST", path, content=content,
                              headers={"Content-Type": content_type or "text/plain"})
        return self._call("POST", path, json=body if body is not None else {})

    def delete(self, path: str) -> Any:
        return self._call("DELETE", path)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise CliError(f"{self.target.url}: no answer in time ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise CliError(
                f"cannot reach the control plane at {self.target.url} ({type(exc).__name__}); "
                "is `shepherd serve` or `shepherd up` running? (--url / SHEPHERD_URL)"
            ) from exc
        if response.status_code == 204:
            return None
        if response.is_success:
            return response.json()
        raise CliError(_describe_failure(response))


def _describe_failure(response: httpx.Response) -> str:
    try:
        body = response.json()
        message = body.get("message") or body.get("detail") or response.text
    except ValueError:
        message = response.text.strip() or response.reason_phrase
    hint = ""
    if response.status_code == 401:
        hint = " (give a token with --token or SHEPHERD_TOKEN)"
    return f"{response.request.method} {response.request.url.path}: " \
           f"{response.status_code} {message}{hint}"
