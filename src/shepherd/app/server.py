"""Serving the control plane: the REST API under uvicorn, with the controllers running beside it.

``serve_plane`` blocks until uvicorn stops (Ctrl-C / SIGTERM), then stops the controllers and
closes the stores, in that order, so no loop outlives the stores it writes to.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import uvicorn

from shepherd.api.app import create_api
from shepherd.api.auth import ensure_admin_token
from shepherd.app.plane import ControlPlane
from shepherd.shutdown import signals_absorbed
from shepherd.web import install_dashboard

log = logging.getLogger("shepherd.app.server")
# Open requests get this long to finish when the control plane stops.
GRACEFUL_SHUTDOWN_S = 5


async def serve_plane(
    plane: ControlPlane,
    *,
    on_ready: Callable[[str], Awaitable[None]] | None = None,
) -> None:
    """Run the API and the controllers until interrupted; ``on_ready(url)`` once listening."""
    settings = plane.settings
    token_path = await ensure_admin_token(plane.db, settings.data_dir)
    if token_path is not None:
        log.info("created the first admin token at %s", token_path)
    api = create_api(plane.api_context())
    install_dashboard(api)
    config = uvicorn.Config(
        api, host=settings.host, port=settings.port, log_level=settings.log_level.lower(),
        lifespan="off", access_log=False, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    server = uvicorn.Server(config)
    plane.start()
    with signals_absorbed():
        try:
            if on_ready is None:
                await server.serve()
            else:
                await _serve_announcing(server, on_ready, settings.host, settings.port)
        finally:
            await plane.close()


async def _serve_announcing(
    server: uvicorn.Server, on_ready: Callable[[str], Awaitable[None]], host: str, port: int
) -> None:
    import asyncio

    serving = asyncio.create_task(server.serve())
    while not server.started and not serving.done():
        await asyncio.sleep(0.05)
    if server.started:
        await on_ready(f"http://{host}:{port}")
    await serving
