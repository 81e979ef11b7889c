"""How the CLI prints: Rich tables for people, ``--json`` for scripts. Nothing else prints."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console()
errors = Console(stderr=True)


def emit_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True))


def emit_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)


def emit_record(title: str, record: dict[str, Any], keys: Sequence[str]) -> None:
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key in keys:
        value = record.get(key)
        table.add_row(key, "" if value is None else str(value))
    console.print(table)


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
