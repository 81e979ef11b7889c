"""``python -m shepherd.agent_runtime``: the runtime as a process (what ``shepherd up`` starts)."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from pathlib import Path

from shepherd.agent_runtime.config import RuntimeConfig
from shepherd.agent_runtime.environment import load_env_file
from shepherd.agent_runtime.server import run_runtime
from shepherd.errors import ConfigError


def parse(argv: list[str]) -> RuntimeConfig:
    parser = argparse.ArgumentParser(prog="python -m shepherd.agent_runtime")
    parser.add_argument("--name", required=True)
    parser.add_argument("--command", required=True, help="split as a shell would, never run by one")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--token", default=os.environ.get("SHEPHERD_AGENT_TOKEN"))
    parser.add_argument("--data-dir", type=Path, default=Path(".shepherd-agent"))
    parser.add_argument("--env-file", type=Path, default=None,
                        help="JSON object of variables every child gets (the agent's env)")
    args = parser.parse_args(argv)
    command = tuple(shlex.split(args.command))
    if not command:
        parser.error("--command must not be empty")
    try:
        agent_env = load_env_file(args.env_file) if args.env_file else {}
    except ConfigError as exc:
        parser.error(str(exc))
    return RuntimeConfig(name=args.name, host=args.host, port=args.port, command=command,
                         token=args.token, data_dir=args.data_dir, agent_env=agent_env)


def main() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_runtime(parse(sys.argv[1:]))


if __name__ == "__main__":
    main()
