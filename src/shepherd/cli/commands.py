"""The ``shepherd`` command tree, assembled from one module per resource.

Each ``cli/<resource>.py`` defines its commands (a Typer ``group`` for a command group); this module
only registers them, so adding a command touches its resource module and, for a new group, one
line here. The commands that run processes on this machine are added by ``shepherd.app``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from shepherd import __version__
from shepherd.cli import agents, executions, fleet, schedules, status, tokens
from shepherd.cli.alerts import alerts
from shepherd.cli.canary import canary
from shepherd.cli.reaper import reaper
from shepherd.cli.watchdog import watchdog

# Plain help texts: Rich markup would read "[the agent's timeout]" as a style tag and drop it,
# and shows flags as `--wait <bool>`. Every group below inherits the mode.
app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None)
app.command()(executions.run)
app.command()(executions.logs)
app.command()(status.status)
app.add_typer(executions.group, name="executions")
app.add_typer(agents.group, name="agents")
app.add_typer(schedules.group, name="schedules")
app.add_typer(fleet.group, name="fleet")
app.add_typer(tokens.group, name="token")
app.add_typer(alerts, name="alerts")
app.add_typer(watchdog, name="watchdog")
app.add_typer(reaper, name="reaper")
app.add_typer(canary, name="canary")


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"shepherd {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True,
                     help="Print the version and exit."),
    ] = False,
) -> None:
    """Shepherd: a self-healing control plane for a fleet of agents.

    Start with `shepherd up FLEET.yaml` or `shepherd demo`; run the others from the same directory.
    """
