"""Serving the control plane: the REST API under uvicorn, with the controllers running beside it.

``serve_plane`` serves on a socket already bound (``claim.py``), tells local clients where it is
(``endpoint.py``) once it listens, and blocks until uvicorn stops (Ctrl-C / SIGTERM); then it stops
the controllers and closes the stores, in that order, so no loop outlives the stores it writes to.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable

import uvicorn

from shepherd.api.app import create_api
from shepherd.api.auth import ensure_admin_token
from shepherd.app.endpoint import PublishedEndpoint, publish_endpoint
from shepherd.app.plane import ControlPlane
from shepherd.cli.target import local_url
from shepherd.shutdown import signals_absorbed
from shepherd.web import install_dashboard

log = logging.getLogger("shepherd.app.server")
# Open requests get this long to finish when the control plane stops.
GRACEFUL_SHUTDOWN_S = 5


async def serve_plane(
    plane: ControlPlane,
    listener: socket.socket,
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
    published = PublishedEndpoint()
    await plane.recover()
    plane.start()
    with signals_absorbed():
        try:
            serving = asyncio.create_task(server.serve(sockets=[listener]))
            while not server.started and not serving.done():
                await asyncio.sleep(0.05)
            if server.started:
                url = local_url(settings.host, settings.port)
                published = publish_endpoint(settings.data_dir, url)
                if on_ready is not None:
                    await on_ready(url)
            await serving
        finally:
            published.withdraw()
            await plane.close()
