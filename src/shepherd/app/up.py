"""``shepherd up``: embedded stores, the control plane, and a local runtime for every agent with a
command — everything a fleet file describes, in one process tree on this machine.

Order: load and validate the manifest (fail before anything starts), claim the data dir and the
port, open the stores, apply the manifest, adopt the runtimes a crashed ``up`` left (or start new
ones) and record their URLs, then serve, keeping the runtimes in step with the agents as they are
applied, created or deleted. Ctrl-C stops the API and the controllers, then the runtimes (which
terminate their children), leaving no process behind. A SIGKILLed ``up`` leaves its runtimes and
their runs alive; the next ``up`` on the data dir adopts them.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import typer

from shepherd.app.banner import banner
from shepherd.app.claim import claimed
from shepherd.app.local_fleet import LocalFleet
from shepherd.app.plane import ControlPlane, agent_token
from shepherd.app.runtimes import LocalRuntimes
from shepherd.app.server import serve_plane
from shepherd.background import GuardedTask
from shepherd.cli.target import ADMIN_TOKEN_FILE
from shepherd.errors import ConfigError
from shepherd.manifest.load import load_manifest
from shepherd.manifest.schema import Manifest
from shepherd.services.fleet import apply_manifest
from shepherd.settings import Settings
from shepherd.web.signin import local_admin_signin_url


async def run_up(manifest_path: Path, settings: Settings, demo: bool = False) -> None:
    manifest = load_manifest(manifest_path)
    with claimed(settings.data_dir, settings.host, settings.port) as listener:
        await _run_up(manifest_path, manifest, settings, listener, demo)


async def _run_up(
    manifest_path: Path, manifest: Manifest, settings: Settings, listener: socket.socket,
    demo: bool,
) -> None:
    plane = await ControlPlane.open(settings)
    runtimes = LocalRuntimes(settings.data_dir, agent_token(settings))
    local = LocalFleet(plane.db, runtimes, plane.redis.circuits)
    plane.local_runtimes = local
    extra = [GuardedTask("local-runtimes", local.run_forever)]
    try:
        await apply_manifest(plane.db, manifest, plane.clock.now_ms(), plane.redis.circuits)
        changes = await local.apply(manifest)
        if changes.failed:
            raise ConfigError("; ".join(changes.failed.values()))
        if demo:
            from shepherd.app.demo import drive_demo_traffic
            from shepherd.app.summary import print_summaries

            extra.append(GuardedTask("demo-traffic", lambda: drive_demo_traffic(plane.db)))
            extra.append(GuardedTask("demo-summary", lambda: print_summaries(
                plane.db, plane.clock, typer.echo)))

        async def announce(url: str) -> None:
            for task in extra:
                task.start()
            typer.echo(banner(
                agents=len(manifest.agents), manifest=manifest_path, url=url,
                data_dir=settings.data_dir.resolve(),
                token_path=settings.data_dir.resolve() / ADMIN_TOKEN_FILE, demo=demo,
                signin_link=await local_admin_signin_url(plane.api_context(), url),
            ))

        await serve_plane(plane, listener, on_ready=announce)
    except BaseException:
        await plane.close()
        raise
    finally:
        for task in extra:
            await task.stop()
        await asyncio.shield(runtimes.stop())
