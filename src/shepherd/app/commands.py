"""The commands that run processes on this machine: serve, agent, up, demo, migrate, sentinel."""

from __future__ import annotations

import asyncio
import logging
import shlex
from pathlib import Path
from typing import Annotated

import typer

from shepherd.app.plane import ControlPlane
from shepherd.app.sentinel import run_runtime_with_sentinel
from shepherd.app.sentinel import sentinel as sentinel_command
from shepherd.app.server import serve_plane
from shepherd.app.up import run_up
from shepherd.settings import Settings, load_settings

DataDirOpt = Annotated[
    Path | None, typer.Option("--data-dir", help="Data dir [SHEPHERD_DATA_DIR, ./.shepherd].")
]
PortOpt = Annotated[int | None, typer.Option("--port", min=1, max=65535, help="API port.")]
DEMO_MANIFEST = Path(__file__).resolve().parent / "demo_fleet.yaml"


def _settings(data_dir: Path | None, port: int | None = None, host: str | None = None) -> Settings:
    overrides: dict[str, object] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if port is not None:
        overrides["port"] = port
    if host is not None:
        overrides["host"] = host
    settings = load_settings(**overrides)
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Every agent call and migration step at INFO would drown what Shepherd itself says.
    for noisy in ("httpx", "httpcore", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    return settings


def serve(
    host: Annotated[str | None, typer.Option(help="Listen address [SHEPHERD_HOST].")] = None,
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Run the control plane: REST API and controllers."""
    settings = _settings(data_dir, port, host)

    async def _run() -> None:
        await serve_plane(await ControlPlane.open(settings))

    asyncio.run(_run())


def agent(
    name: Annotated[str, typer.Option(help="Agent name.")],
    command: Annotated[str, typer.Option(help="Child command, split as a shell would.")],
    port: Annotated[int, typer.Option(min=0, max=65535, help="0 picks a free port.")] = 0,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    token: Annotated[
        str | None, typer.Option(help="Bearer token [SHEPHERD_AGENT_TOKEN].",
                                 envvar="SHEPHERD_AGENT_TOKEN")
    ] = None,
    data_dir: DataDirOpt = None,
    env_file: Annotated[
        Path | None, typer.Option(help="JSON object of variables every child gets.")
    ] = None,
    sentinel: Annotated[bool, typer.Option(
        "--sentinel", help="Also run the host sentinel beside it (SHEPHERD_SENTINEL_*).")] = False,
) -> None:
    """Run an agent runtime that supervises children of COMMAND."""
    from shepherd.agent_runtime.config import RuntimeConfig
    from shepherd.agent_runtime.environment import load_env_file
    from shepherd.agent_runtime.server import run_runtime

    argv = tuple(shlex.split(command))
    if not argv:
        raise typer.BadParameter("must not be empty", param_hint="--command")
    root = data_dir or Path(".shepherd") / "agents" / name
    agent_env = load_env_file(env_file) if env_file else {}
    config = RuntimeConfig(name=name, host=host, port=port, command=argv, token=token,
                           data_dir=root, agent_env=agent_env)
    if sentinel:
        run_runtime_with_sentinel(config)
    else:
        run_runtime(config)


def up(
    manifest: Annotated[Path, typer.Argument(help="Fleet manifest (YAML).")],
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Embedded stores + control plane + a local runtime for every agent with a command."""
    settings = _settings(data_dir, port)
    asyncio.run(run_up(manifest, settings))


def demo(port: PortOpt = None, data_dir: DataDirOpt = None) -> None:
    """`up` with a bundled synthetic fleet: echo, slow, flaky, burst and early-exit agents."""
    settings = _settings(data_dir or Path(".shepherd") / "demo", port)
    asyncio.run(run_up(DEMO_MANIFEST, settings, demo=True))


def migrate(data_dir: DataDirOpt = None) -> None:
    """Bring the SQL schema up to date (startup does this too)."""
    from shepherd.stores.sql.engine import create_sql_engine
    from shepherd.stores.sql.engine import migrate as run_migrations

    settings = _settings(data_dir)

    async def _run() -> None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = await create_sql_engine(settings.resolved_database_url)
        try:
            await run_migrations(engine)
        finally:
            await engine.dispose()

    asyncio.run(_run())
    typer.echo("schema is up to date")


def register(app: typer.Typer) -> None:
    for command in (serve, agent, up, demo, migrate):
        app.command()(command)
    app.command("sentinel")(sentinel_command)
