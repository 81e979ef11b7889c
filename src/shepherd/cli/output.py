"""How the CLI prints: Rich tables for people, ``--json`` for scripts. Nothing else prints.

Instants are shown in the local time zone (``2026-11-28 14:03:12``), read from the API's
``*_ms`` fields; ids are never cut, so what a table shows can be copied into the next command.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console()
errors = Console(stderr=True)


def emit_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True))


def emit_table(
    title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
    keep: Collection[str] = ("id",),
) -> None:
    """A table; the ``keep`` columns are never wrapped or cut, others give way on a narrow
    terminal."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    texts = [["" if v is None else str(v) for v in row] for row in rows]
    for index, column in enumerate(columns):
        if column in keep:
            width = max([len(column), *(len(row[index]) for row in texts)])
            table.add_column(column, no_wrap=True, min_width=width)
        else:
            table.add_column(column, overflow="fold")
    for row in texts:
        table.add_row(*(escape(value) for value in row))
    console.print(table)


def emit_record(title: str, record: dict[str, Any], keys: Sequence[str]) -> None:
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key in keys:
        value = record.get(key)
        table.add_row(key, "" if value is None else escape(str(value)))
    console.print(table)


def emit_text(text: str) -> None:
    """A child's output, exactly as it printed it (never read as markup)."""
    sys.stdout.write(text)
    sys.stdout.flush()


def fail(message: str) -> None:
    # Messages quote user input and patterns such as ``[a-z0-9]``: never read them as markup.
    errors.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)


def emit_rows(
    title: str, columns: Sequence[str], items: Sequence[dict[str, Any]], as_json: bool
) -> None:
    """A list from the API: JSON as it came for scripts, or a table of ``columns`` for people."""
    if as_json:
        emit_json(items)
    else:
        emit_table(title, columns, [[item.get(c) for c in columns] for item in items])


def local_time(ms: int | None, *, precise: bool = False) -> str | None:
    """An epoch-ms instant in this machine's time zone; milliseconds when ``precise``."""
    if ms is None:
        return None
    moment = datetime.fromtimestamp(ms / 1000).astimezone()
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    return f"{text}.{ms % 1000:03d}" if precise else text


def short_time(ms: int | None, now_ms: int) -> str | None:
    """A local time for a table: ``14:03:12`` today, ``11-27 14:03`` on another day."""
    if ms is None:
        return None
    moment = datetime.fromtimestamp(ms / 1000).astimezone()
    today = datetime.fromtimestamp(now_ms / 1000).astimezone().date()
    return moment.strftime("%H:%M:%S" if moment.date() == today else "%m-%d %H:%M")


def duration(start_ms: int | None, end_ms: int | None) -> str | None:
    """``850 ms``, ``12.3 s``, ``4 min 05 s``: how long between two instants, if both are known."""
    if start_ms is None or end_ms is None:
        return None
    ms = max(0, end_ms - start_ms)
    if ms < 1000:
        return f"{ms} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    minutes, seconds = divmod(ms // 1000, 60)
    return f"{minutes} min {seconds:02d} s"
