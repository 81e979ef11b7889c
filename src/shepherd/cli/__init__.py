"""The ``shepherd`` command's client side: commands that talk to the REST API, and the runner
that turns every failure into one readable line and a non-zero exit code. The commands that run
processes here (serve, agent, up, demo, migrate) are registered by ``shepherd.app``.
"""

from __future__ import annotations

import typer

from shepherd.cli.output import fail
from shepherd.cli.remote import CliError
from shepherd.errors import ConfigError, ShepherdError

# A usage error (unknown command or option, missing argument) exits with this, as click does.
USAGE_EXIT_CODE = 2


def run_cli(app: typer.Typer, argv: list[str] | None = None) -> int:
    """Run ``app``; any failure becomes one line on stderr and an exit code.

    Typer runs in standalone mode, so a usage error prints Typer's own usage message and exits 2,
    whichever click (installed or bundled inside Typer) it was built on; Ctrl-C exits 130. Only
    Shepherd's own errors are caught here.
    """
    try:
        app(args=argv, prog_name="shepherd", standalone_mode=True)
    except SystemExit as exc:
        return _exit_code(exc.code)
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
    return 0


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    fail(str(code))
    return 1
