"""Telling client commands on this machine where the running control plane is.

Once it listens, a control plane writes ``endpoint.json`` (URL, path of the admin token file, pid)
into its data dir and into ``./.shepherd`` of the directory it was started from, so ``shepherd
agents ls`` run from that directory finds it whatever the data dir and port (``cli/target.py``
reads it). The token itself is never written here. On a clean stop each file is removed if it
still names this process; a file left by a crash names a dead pid, which clients ignore.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from shepherd.cli.target import ADMIN_TOKEN_FILE, DEFAULT_DATA_DIR, ENDPOINT_FILE, read_endpoint
from shepherd.private_files import write_private


@dataclass
class PublishedEndpoint:
    paths: list[Path] = field(default_factory=list)

    def withdraw(self) -> None:
        for path in self.paths:
            endpoint = read_endpoint(path.parent)
            if endpoint is not None and endpoint.pid == os.getpid():
                with contextlib.suppress(OSError):
                    path.unlink()
        self.paths.clear()


def publish_endpoint(data_dir: Path, url: str) -> PublishedEndpoint:
    """Write the endpoint file in the data dir and in ``./.shepherd``; returns what to withdraw."""
    token_path = data_dir.resolve() / ADMIN_TOKEN_FILE
    record = {
        "url": url,
        "token_path": str(token_path) if token_path.exists() else None,
        "pid": os.getpid(),
        "data_dir": str(data_dir.resolve()),
    }
    published = PublishedEndpoint()
    targets = {data_dir.resolve(), DEFAULT_DATA_DIR.resolve()}
    for directory in sorted(targets):
        path = directory / ENDPOINT_FILE
        with contextlib.suppress(OSError):  # a read-only working directory only loses the hint
            write_private(path, json.dumps(record, indent=2) + "\n")
            published.paths.append(path)
    return published
