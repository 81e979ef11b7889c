"""Running the runtime: recover what a previous boot left, serve the API, shut down cleanly.

Once the socket accepts connections it prints exactly one line, ``shepherd agent NAME listening
on http://HOST:PORT`` (with port 0, the port the kernel chose), which is how ``shepherd up`` learns
where it is. SIGTERM or SIGINT stops accepting, then terminates every child's group.
"""

from __future__ import annotations

import asyncio
import logging
import sys

import uvicorn

from shepherd.agent_runtime.app import RuntimeState, create_runtime_app
from shepherd.agent_runtime.config import RuntimeConfig
from shepherd.background import GuardedTask
from shepherd.shutdown import signals_absorbed

log = logging.getLogger("shepherd.agent_runtime")

# Long-polls hold connections open; do not let them delay a shutdown.
GRACEFUL_SHUTDOWN_S = 2
# Idle connections stay open longer than the control plane's pool keeps them (pool.py), so the
# client always closes first and never reuses a socket the runtime has just closed.
KEEP_ALIVE_S = 30
# Reads expire old results too; the sweep only bounds disk use on a runtime nobody polls.
RETENTION_SWEEP_S = 60.0


def run_runtime(config: RuntimeConfig) -> None:
    """Serve until SIGTERM/SIGINT (blocking)."""
    asyncio.run(serve_runtime(config))


async def serve_runtime(config: RuntimeConfig) -> None:
    config.executions_dir.mkdir(parents=True, exist_ok=True)
    app = create_runtime_app(config)
    state: RuntimeState = app.state.runtime
    await state.registry.recover()
    sweep = GuardedTask("retention sweep", lambda: state.registry.sweep_forever(
        max(1.0, min(RETENTION_SWEEP_S, config.retention_s))))
    server = uvicorn.Server(uvicorn.Config(
        app, host=config.host, port=config.port, log_level="warning", lifespan="off",
        access_log=False, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        timeout_keep_alive=KEEP_ALIVE_S,
    ))
    with signals_absorbed():
        sweep.start()
        serving = asyncio.create_task(server.serve())
        try:
            while not server.started and not serving.done():
                await asyncio.sleep(0.02)
            if server.started:
                port = server.servers[0].sockets[0].getsockname()[1]
                print(f"shepherd agent {config.name} listening on http://{config.host}:{port}",
                      flush=True)
                log.info("boot %s, %d execution(s) recovered", state.boot_id,
                         len(state.registry.all()))
            await serving
        finally:
            await sweep.stop()
            await state.registry.shutdown()
            sys.stdout.flush()
