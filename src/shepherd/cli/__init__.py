"""The ``shepherd`` command's client side: commands that talk to the REST API, and the runner
that turns every failure into one readable line and a non-zero exit code. The commands that run
processes here (serve, agent, up, demo, migrate) are registered by ``shepherd.app``.
"""

from __future__ import annotations

import typer

from shepherd.cli.output import fail
from shepherd.cli.remote import CliError
from shepherd.errors import ConfigError, ShepherdError


def run_cli(app: typer.Typer, argv: list[str] | None = None) -> int:
    """Run ``app``; any failure becomes one line on stderr and an exit code."""
    try:
        rc = app(args=argv, prog_name="shepherd", standalone_mode=False)
    except CliError as exc:
        fail(exc.message)
        return exc.exit_code
    except ConfigError as exc:
        fail(exc.message)
        return 2
    except ShepherdError as exc:
        fail(exc.message)
        return 1
    except KeyboardInterrupt:
        return 130
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    except Exception as exc:  # click's usage errors and the like
        return _click_exit(exc)
    return rc if isinstance(rc, int) else 0


def _click_exit(exc: Exception) -> int:
    import click

    if isinstance(exc, click.exceptions.Exit):
        return exc.exit_code
    if isinstance(exc, click.ClickException):
        fail(exc.format_message())
        return exc.exit_code
    if isinstance(exc, click.exceptions.Abort):
        return 130
    raise exc
