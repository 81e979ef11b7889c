"""The CLI's HTTP client for the control plane's REST API (where to connect: ``target.py``).

Built on the standard library's ``http.client`` rather than httpx: a client command makes one or
a few requests, and importing httpx and building its TLS context cost more CPU than the rest of
the command together (bench/cli_startup.py). Every failure becomes one ``CliError`` line: what
went wrong, where.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit

from shepherd.cli.target import Target

if TYPE_CHECKING:
    import http.client

# A control plane on the same network answers in milliseconds; a long-poll asks for its own wait.
DEFAULT_TIMEOUT_S = 30.0


class CliError(Exception):
    """One readable line for the person at the terminal, and the exit code to leave with."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class Remote:
    """A thin synchronous client: JSON in, JSON out, ``CliError`` on anything else."""

    def __init__(self, target: Target, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.target = target
        self._timeout_s = timeout_s
        parts = urlsplit(target.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CliError(f"{target.url}: not an http(s) URL (--url / SHEPHERD_URL)", exit_code=2)
        self._parts = parts
        self._headers = {"Accept": "application/json", "User-Agent": "shepherd-cli"}
        if target.token:
            self._headers["Authorization"] = f"Bearer {target.token}"

    def get(self, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return self._call("GET", path + (f"?{urlencode(clean)}" if clean else ""))

    def post(self, path: str, body: Any = None, *, content: str | None = None,
             content_type: str | None = None) -> Any:
        if content is not None:
            return self._call("POST", path, content.encode("utf-8"), content_type or "text/plain")
        payload = json.dumps(body if body is not None else {}).encode("utf-8")
        return self._call("POST", path, payload, "application/json")

    def delete(self, path: str) -> Any:
        return self._call("DELETE", path)

    def _call(self, method: str, path: str, body: bytes | None = None,
              content_type: str | None = None) -> Any:
        import http.client  # here, not at import time: ``shepherd --help`` never needs it

        headers = dict(self._headers)
        if content_type is not None:
            headers["Content-Type"] = content_type
        route, _, query = path.partition("?")
        # Ids typed by a person may hold anything; quoted, they reach the API as a plain 404.
        target = self._parts.path.rstrip("/") + quote(route, safe="/")
        target += f"?{query}" if query else ""
        connection = self._connect()
        try:
            connection.request(method, target, body, headers)
            response = connection.getresponse()
            data = response.read()
        except TimeoutError as exc:
            raise CliError(f"{self.target.url}: no answer in time ({type(exc).__name__})") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise CliError(
                f"cannot reach the control plane at {self.target.url} ({type(exc).__name__}); "
                "is `shepherd serve` or `shepherd up` running? (--url / SHEPHERD_URL)"
            ) from exc
        finally:
            connection.close()
        if response.status == 204:
            return None
        if 200 <= response.status < 300:
            return json.loads(data)
        raise CliError(describe_failure(method, path, response.status, response.reason, data))

    def _connect(self) -> http.client.HTTPConnection:
        import http.client

        host, port = self._parts.hostname or "", self._parts.port
        if self._parts.scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=self._timeout_s)
        return http.client.HTTPConnection(host, port, timeout=self._timeout_s)


def describe_failure(method: str, path: str, status: int, reason: str, data: bytes) -> str:
    """``GET /api/x: 404 no execution 'y'``, with a hint where the fix is the caller's."""
    text = data.decode("utf-8", errors="replace").strip()
    try:
        body = json.loads(text)
        message = (body.get("message") or body.get("detail") or text) if isinstance(body, dict) \
            else text
    except ValueError:
        message = text or reason
    hint = " (give a token with --token or SHEPHERD_TOKEN)" if status == 401 else ""
    return f"{method} {path.split('?')[0]}: {status} {message}{hint}"
