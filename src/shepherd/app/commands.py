"""The commands that run processes on this machine: serve, agent, up, demo, migrate, sentinel.

Each command imports the control plane (FastAPI, SQLAlchemy, Redis) when it runs, never at import
time: this module is loaded for every ``shepherd`` call, and a client command or ``--help`` must
not pay for what only these commands use.
"""

from __future__ import annotations

import logging
import os
import shlex
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from shepherd.settings import Settings

DataDirOpt = Annotated[
    Path | None, typer.Option("--data-dir", help="Data dir [SHEPHERD_DATA_DIR, ./.shepherd].")
]
PortOpt = Annotated[int | None, typer.Option("--port", min=1, max=65535, help="API port.")]
DEMO_MANIFEST = Path(__file__).resolve().parent / "demo_fleet.yaml"


def _run_loop(main: Coroutine[Any, Any, None]) -> None:
    import asyncio

    asyncio.run(main)


def _settings(data_dir: Path | None, port: int | None = None, host: str | None = None) -> Settings:
    from shepherd.settings import load_settings

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
    from shepherd.app.claim import claimed
    from shepherd.app.plane import ControlPlane
    from shepherd.app.server import serve_plane

    settings = _settings(data_dir, port, host)

    async def _run() -> None:
        with claimed(settings.data_dir, settings.host, settings.port) as listener:
            await serve_plane(await ControlPlane.open(settings), listener)

    _run_loop(_run())


def agent(
    name: Annotated[str, typer.Option(help="Agent name.")],
    command: Annotated[str, typer.Option(help="Child command, split as a shell would.")],
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port; 0 picks a free one.")] = 0,
    host: Annotated[str, typer.Option(help="Listen address.")] = "127.0.0.1",
    token: Annotated[
        str | None, typer.Option(help="Bearer token [SHEPHERD_AGENT_TOKEN].",
                                 envvar="SHEPHERD_AGENT_TOKEN")
    ] = None,
    data_dir: Annotated[Path | None, typer.Option(
        "--data-dir", help="Where results are kept until collected [./.shepherd/agents/NAME].")
    ] = None,
    env_file: Annotated[
        Path | None, typer.Option(help="JSON object of variables every child gets.")
    ] = None,
    sentinel: Annotated[bool, typer.Option(
        "--sentinel", help="Also run the host sentinel beside it (SHEPHERD_SENTINEL_*).")] = False,
) -> None:
    """Run an agent runtime on this host: it starts COMMAND for each execution it is sent."""
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
        from shepherd.app.sentinel import run_runtime_with_sentinel

        run_runtime_with_sentinel(config)
    else:
        run_runtime(config)


def up(
    manifest: Annotated[Path, typer.Argument(metavar="MANIFEST", help="Fleet manifest (YAML).")],
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Run a whole fleet here: stores, control plane and a runtime per local agent."""
    from shepherd.app.up import run_up

    settings = _settings(data_dir, port)
    _run_loop(run_up(manifest, settings))


def demo(port: PortOpt = None, data_dir: DataDirOpt = None) -> None:
    """Run a synthetic fleet (echo, slow, flaky, burst, early-exit) and watch it."""
    from shepherd.app.up import run_up

    settings = _settings(data_dir or Path(".shepherd") / "demo", port)
    if "SHEPHERD_CANARY_ENABLED" not in os.environ:  # the demo shows the canary unless told not
        settings = settings.model_copy(update={"canary_enabled": True})
    _run_loop(run_up(DEMO_MANIFEST, settings, demo=True))


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

    _run_loop(_run())
    typer.echo("schema is up to date")


def sentinel(
    data_dir: Annotated[Path, typer.Option(help="Where its alert state lives.")] = Path(
        ".shepherd") / "sentinel",
    runtime_dir: Annotated[list[Path] | None, typer.Option(
        help="A local runtime's data dir whose finished executions to watch (repeatable).")
    ] = None,
    url: Annotated[str | None, typer.Option(
        help="Control plane to forward signals to [SHEPHERD_URL].", envvar="SHEPHERD_URL")] = None,
    token: Annotated[str | None, typer.Option(
        help="Operator token there [SHEPHERD_TOKEN].", envvar="SHEPHERD_TOKEN")] = None,
) -> None:
    """Watch this host's processes (read-only): alert on long-lived ones matching
    SHEPHERD_SENTINEL_PATTERNS and on those left behind by finished executions."""
    from shepherd.app.sentinel import run_sentinel_command

    run_sentinel_command(data_dir, runtime_dir, url, token)


def register(app: typer.Typer) -> None:
    for command in (serve, agent, up, demo, migrate, sentinel):
        app.command()(command)
