"""The top layer: wires stores, clients, controllers and the API, and owns process lifecycles.

``main`` is the ``shepherd`` entry point: the remote commands come from ``shepherd.cli``; the
commands that run processes here (serve, agent, up, demo, migrate) are added by
``shepherd.app.commands``, because only this layer may wire the whole control plane.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from shepherd.app.commands import register
    from shepherd.cli import run_cli
    from shepherd.cli.commands import app

    register(app)
    return run_cli(app, argv)


def entrypoint() -> None:
    sys.exit(main())
