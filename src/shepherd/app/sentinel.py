"""``shepherd sentinel`` and ``shepherd agent --sentinel``: the host sentinel as a process.

The sentinel runs on hosts without the control plane's stores: its alert state and outbox live in
one SQLite file in its own data dir (the same schema and ``AlertService`` as the control plane),
its sinks are the ``SHEPHERD_ALERT_*`` settings, and when a control plane URL and token are
given it also forwards its signals there (``POST /api/alerts/signals``). Beside a runtime
(``shepherd agent --sentinel``) it reads that runtime's records; alone, those of every
``--runtime-dir`` given.

Lenient by design: its own settings fall back to defaults with a warning
(``sentinel.config``), and settings it only borrows (sinks, log level) that do not validate leave
it logging alerts instead of sending them — an observer never dies of configuration. Disabled
(the default), nothing is built and the process table is never read.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import typer

from shepherd.agent_runtime.config import RuntimeConfig
from shepherd.agent_runtime.server import serve_runtime
from shepherd.app.alerting import build_alert_service, build_outbox_sender
from shepherd.background import GuardedTask
from shepherd.clock import SystemClock
from shepherd.core.clock import Clock
from shepherd.core.sentinel import source_for
from shepherd.errors import ConfigError, ShepherdError
from shepherd.sentinel.config import SentinelConfig, parse_sentinel_config
from shepherd.sentinel.footprints import FootprintMemory
from shepherd.sentinel.forward import Forwarder
from shepherd.sentinel.service import Sentinel, SentinelParts
from shepherd.settings import Settings, load_settings
from shepherd.stores.sql.database import Database, open_database

log = logging.getLogger("shepherd.sentinel")

DB_FILE = "sentinel.db"
SENTINEL_DIR = "sentinel"  # under a runtime's data dir, for ``shepherd agent --sentinel``
URL_ENV, TOKEN_ENV = "SHEPHERD_URL", "SHEPHERD_TOKEN"


@dataclass(frozen=True, slots=True)
class SentinelOptions:
    data_dir: Path
    runtime_dirs: tuple[Path, ...] = ()
    url: str | None = None  # the control plane to forward to
    token: str | None = None  # an unscoped operator token there


def read_sentinel_config(environ: Mapping[str, str]) -> SentinelConfig:
    config, warnings = parse_sentinel_config(environ)
    for warning in warnings:
        log.warning("sentinel: %s", warning)
    return config


def borrowed_settings() -> Settings:
    """The shared settings (sinks, log level), or their defaults when they do not validate."""
    try:
        return load_settings()
    except ConfigError as exc:
        log.warning("sentinel: %s; using defaults: alerts go to the log only", exc.message)
        return Settings.model_construct()


async def open_sentinel(
    options: SentinelOptions, config: SentinelConfig, clock: Clock, settings: Settings
) -> tuple[Sentinel, Database]:
    options.data_dir.mkdir(parents=True, exist_ok=True)
    url = f"sqlite+aiosqlite:///{(options.data_dir / DB_FILE).resolve()}"
    db = await open_database(url, clock)
    alerts = build_alert_service(settings, db, clock)
    owner = f"sentinel-{socket.gethostname()}-{os.getpid()}"
    sender = build_outbox_sender(settings, db, clock, alerts, owner=owner) if alerts.sinks \
        else None
    forwarder = None
    if options.url and options.token:
        forwarder = Forwarder(options.url, options.token)
    elif options.url or options.token:
        log.warning("sentinel: a control plane needs both a URL and a token; not forwarding")
    parts = SentinelParts(alerts, FootprintMemory(options.data_dir), options.runtime_dirs,
                          forwarder, sender)
    sentinel = Sentinel(config, parts, clock, source=source_for(socket.gethostname()),
                        exclude=frozenset({os.getpid()}))
    return sentinel, db


@asynccontextmanager
async def running_sentinel(
    options: SentinelOptions, config: SentinelConfig, clock: Clock | None = None,
    settings: Settings | None = None, *, beside: str | None = None,
) -> AsyncIterator[Sentinel | None]:
    """A sentinel scanning in the background for the length of the block (None: disabled, and
    nothing was built). ``beside`` names what it runs next to: then a sentinel that cannot open
    its store is logged and skipped, so it never takes that down."""
    if not config.enabled:
        log.info("sentinel: disabled (SHEPHERD_SENTINEL_ENABLED is off); not scanning")
        yield None
        return
    try:
        sentinel, db = await open_sentinel(options, config, clock or SystemClock(),
                                           settings or borrowed_settings())
    except (ShepherdError, OSError) as exc:
        if beside is None:
            raise
        log.error("sentinel: not started beside %s: %s", beside, exc)
        yield None
        return
    task = GuardedTask("sentinel", sentinel.run_forever)
    task.start()
    log.info("sentinel: %s watching %s and %d runtime(s) every %g s (threshold %g s)",
             sentinel.source, ",".join(config.patterns), len(options.runtime_dirs),
             config.interval_s, config.age_min_s)
    try:
        yield sentinel
    finally:
        await task.stop()
        await sentinel.close()
        await db.close()


async def serve_sentinel(
    options: SentinelOptions, config: SentinelConfig, settings: Settings
) -> None:
    """Run until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with running_sentinel(options, config, settings=settings):
            await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def run_runtime_with_sentinel(runtime: RuntimeConfig) -> None:
    """A runtime and, beside it in the same process, a sentinel reading its records (its state
    under ``<data dir>/sentinel``; forwarding when SHEPHERD_URL and SHEPHERD_TOKEN are set). The
    sentinel stops when the runtime does."""
    settings = borrowed_settings()
    configure_logging(settings)
    config = read_sentinel_config(os.environ)
    options = SentinelOptions(runtime.data_dir / SENTINEL_DIR, (runtime.data_dir,),
                              os.environ.get(URL_ENV), os.environ.get(TOKEN_ENV))

    async def serve() -> None:
        async with running_sentinel(options, config, settings=settings,
                                    beside=f"runtime {runtime.name}"):
            await serve_runtime(runtime)

    asyncio.run(serve())


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "httpcore", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def run_sentinel_command(
    data_dir: Path, runtime_dir: list[Path] | None, url: str | None, token: str | None
) -> None:
    """``shepherd sentinel``: watch this host's processes until interrupted."""
    settings = borrowed_settings()
    configure_logging(settings)
    config = read_sentinel_config(os.environ)
    if not config.enabled:
        typer.echo("sentinel is disabled: set SHEPHERD_SENTINEL_ENABLED=1 to scan")
        return
    options = SentinelOptions(data_dir, tuple(runtime_dir or ()), url, token)
    asyncio.run(serve_sentinel(options, config, settings))
