"""``shepherd up``: embedded stores, the control plane, and a local runtime for every manifest
agent with a command — everything a fleet file describes, in one process tree on this machine.

Order: load and validate the manifest (fail before anything starts), open the stores, apply the
manifest, start the runtimes and record their URLs, then serve. Ctrl-C stops the API and the
controllers, then the runtimes (which terminate their children), leaving no process behind.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from shepherd.app.plane import ControlPlane, agent_token
from shepherd.app.runtimes import LocalRuntimes
from shepherd.app.server import serve_plane
from shepherd.background import GuardedTask
from shepherd.cli.target import ADMIN_TOKEN_FILE
from shepherd.manifest.load import load_manifest
from shepherd.services.fleet import apply_manifest
from shepherd.settings import Settings

DEMO_HINTS = """\
What to look at:
  shepherd agents ls                 slots in use and backlog per agent
  shepherd executions ls             echo succeeds, flaky fails now and then, slow takes ~75 s
  shepherd executions ls --status failed
                                     early-exit shows child_exited_early, flaky exit codes
  shepherd run echo "hi" --wait      a run of your own, followed to its end
  {url}/docs    the REST API
Ctrl-C stops everything."""


async def run_up(manifest_path: Path, settings: Settings, demo: bool = False) -> None:
    manifest = load_manifest(manifest_path)
    plane = await ControlPlane.open(settings)
    runtimes = LocalRuntimes(settings.data_dir, agent_token(settings))
    extra: list[GuardedTask] = []
    try:
        await apply_manifest(plane.db, manifest, plane.clock.now_ms())
        for spec in manifest.agents:
            if spec.command is not None:
                runtime = await runtimes.start(spec)
                await plane.db.agents.update(spec.name, url=runtime.url)
        if demo:
            from shepherd.app.demo import drive_demo_traffic

            extra.append(GuardedTask("demo-traffic", lambda: drive_demo_traffic(plane.db)))

        async def announce(url: str) -> None:
            for task in extra:
                task.start()
            typer.echo(f"Shepherd is up: {len(manifest.agents)} agent(s) from {manifest_path}")
            typer.echo(f"  API        {url}/api   (OpenAPI: {url}/docs)")
            typer.echo(f"  dashboard  {url}/")
            typer.echo(f"  token      {settings.data_dir.resolve() / ADMIN_TOKEN_FILE}")
            typer.echo(f"  data dir   {settings.data_dir.resolve()}")
            if demo:
                typer.echo(DEMO_HINTS.format(url=url))

        await serve_plane(plane, on_ready=announce)
    except BaseException:
        await plane.close()
        raise
    finally:
        for task in extra:
            await task.stop()
        await asyncio.shield(runtimes.stop())
