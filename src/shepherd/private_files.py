"""Files in the data dir that only their owner may read: tokens, endpoint and runtime records.

``write_private`` replaces a file atomically (temp file + rename in the same directory) and the
file is mode 0600 from its first byte, so a reader sees the old content or the new one, never a
half-written or briefly world-readable file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
        raise
