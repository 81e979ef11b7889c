"""The runtime's records on disk: one append-only journal of JSON lines per runtime.

Each save appends the execution's whole record as one line, each ack one line forgetting the
executions acked: one ``write(2)`` on a file opened ``O_APPEND``, where a directory and a
``state.json`` per execution cost a mkdir, two atomic file writes and a tree removal, more than
starting the child did. Reading takes each execution's last line not forgotten after it.

Guarantees: what ``save`` or ``forget`` wrote is in the file (the kernel's page cache) when it
returns, so a runtime killed at any point loses nothing it reported; a line torn by a crash
mid-write is skipped, and ``open`` rewrites the file with the live records at once, so nothing
is ever appended after a torn line. The file is rewritten the same way (a temp file renamed over
it) when it holds more than ``COMPACT_FACTOR`` lines per live record and at least
``COMPACT_MIN_LINES``. Records an older runtime left as ``<id>/state.json`` are read too, and
moved into the journal on ``open``. Readers in other processes (the host sentinel) only read.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

from shepherd.agent_runtime.record import RunRecord

JOURNAL_FILE = "journal.jsonl"
LEGACY_STATE_FILE = "state.json"  # one per execution directory, before the journal
FORGET = "forget"
# Rewrite when the file holds this many lines per live record (and at least COMPACT_MIN_LINES):
# bounded disk and restart time, and a rewrite only every few thousand executions.
COMPACT_FACTOR = 4
COMPACT_MIN_LINES = 4096
PRIVATE_FILE_MODE = 0o600


def read_records(root: Path) -> list[RunRecord]:
    """Every record the journal under ``root`` holds (last line per execution wins, forgotten
    ones left out), with any older ``<id>/state.json``; an unreadable line counts as none."""
    return list(_read(root).values())


class RecordJournal:
    """The journal of one runtime; opened (and made whole) by ``open``."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._path = root / JOURNAL_FILE
        self._live: dict[str, str] = {}
        self._lines = 0
        self._fd: int | None = None

    def open(self) -> list[RunRecord]:
        """The records a previous boot left, the file rewritten with only them."""
        self._root.mkdir(parents=True, exist_ok=True)
        found = _read(self._root)
        self._live = {eid: json.dumps(r.to_json()) for eid, r in found.items()}
        self._rewrite()
        for legacy in self._root.glob(f"*/{LEGACY_STATE_FILE}"):
            with contextlib.suppress(OSError):
                legacy.unlink()
                legacy.parent.rmdir()  # only when no output log is left beside it
        return list(found.values())

    def save(self, record: RunRecord) -> None:
        line = json.dumps(record.to_json())
        self._live[record.execution_id] = line
        self._append(line)

    def forget(self, execution_ids: Iterable[str]) -> None:
        ids = [eid for eid in execution_ids if self._live.pop(eid, None) is not None]
        if ids:
            self._append(json.dumps({FORGET: ids}))

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _append(self, line: str) -> None:
        if self._fd is None:
            raise RuntimeError("the record journal is not open")
        os.write(self._fd, (line + "\n").encode("utf-8"))
        self._lines += 1
        if self._lines >= max(COMPACT_MIN_LINES, COMPACT_FACTOR * len(self._live)):
            self._rewrite()

    def _rewrite(self) -> None:
        tmp = self._path.with_name(f".{JOURNAL_FILE}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
        try:
            text = "".join(line + "\n" for line in self._live.values())
            os.write(fd, text.encode("utf-8"))
        finally:
            os.close(fd)
        os.replace(tmp, self._path)
        self.close()
        self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND)
        self._lines = len(self._live)


def _read(root: Path) -> dict[str, RunRecord]:
    """Execution id -> its last record, legacy files first (the journal is newer)."""
    found: dict[str, RunRecord] = {}
    if not root.is_dir():
        return found
    for path in sorted(root.glob(f"*/{LEGACY_STATE_FILE}")):
        with contextlib.suppress(OSError, ValueError):
            _take(found, json.loads(path.read_text(encoding="utf-8")))
    try:
        text = (root / JOURNAL_FILE).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return found
    for line in text.splitlines():
        with contextlib.suppress(ValueError):  # a line torn by a crash mid-write
            _take(found, json.loads(line))
    return found


def _take(found: dict[str, RunRecord], data: object) -> None:
    """Apply one line: a record replaces the execution's, a forget line drops its ids; anything
    else (a foreign or damaged line) is skipped."""
    if not isinstance(data, dict):
        return
    if isinstance(data.get(FORGET), list):
        for eid in data[FORGET]:
            found.pop(str(eid), None)
        return
    with contextlib.suppress(TypeError, ValueError, KeyError, AttributeError):
        record = RunRecord.from_json(data)
        found[record.execution_id] = record
