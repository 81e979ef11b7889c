"""PostgreSQL writes that take a batch as arrays, one per column (``unnest``): a batch of any size
is one statement, one prepared plan and one round trip, run outside any transaction (a single
statement is its own). The hot path's writes use them where a transaction around a batch cost
more round trips than its statements did (BEGIN, a locking read, a log check, the writes, COMMIT).

What each statement guarantees is the transaction's: the rows are locked in id order before any
is written (two batches over the same rows never wait for each other in a cycle), a row is
written only in the status its writer expects, and (status writes) never once its event log holds
a terminal event, with exactly its events appended, in order, in the same statement. Under read
committed, a row another transaction changed while this one waited for its lock is re-checked
in its new version; every write that ends a row also moves its status, so the status condition
alone sees such a write even where the log check's snapshot does not. These statements only
write: deciding what a row that did not match means (lost, or refused and reported) is the
caller's, on the transaction path.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from sqlalchemy import JSON, BigInteger, Boolean, Column, Integer, String, TextClause, text

from shepherd.stores.sql.tables import execution_events, executions

# The event columns a status write appends, in insert order.
EVENT_COLUMNS = ("execution_id", "from_status", "to_status", "cause", "actor", "reason", "at_ms")
# Bound names of the writes' own arrays, apart from the columns' ("c_*") and events' ("e_*").
IDS, SEEN = "ids", "seen"


def column_array(name: str) -> str:
    return f"c_{name}"


def event_array(name: str) -> str:
    return f"e_{name}"


def _element_type(column: Column[object]) -> str:
    kind = column.type
    if isinstance(kind, JSON):
        return "TEXT"  # sent as JSON text, cast back in the SET
    if isinstance(kind, BigInteger):
        return "BIGINT"
    if isinstance(kind, Integer):
        return "INTEGER"
    if isinstance(kind, Boolean):
        return "BOOLEAN"
    if isinstance(kind, String):  # Text included
        return "TEXT"
    raise TypeError(f"no array type for column {column.name} ({kind})")


def _unnest(names: Sequence[str], columns: Sequence[Column[object]], alias: str,
            ordered: bool = False) -> str:
    arrays = ", ".join(f"CAST(:{n} AS {_element_type(c)}[])" for n, c in zip(names, columns,
                                                                             strict=True))
    labels = ", ".join(c.name for c in columns) + (", n" if ordered else "")
    return f"unnest({arrays}){' WITH ORDINALITY' if ordered else ''} AS {alias}({labels})"


def _locked_update(sets: Sequence[str], arrays: str, condition: str) -> str:
    """The rows of ``:ids`` locked in id order, then updated from the ``v`` arrays where
    ``condition`` holds; the statement's CTE ``moved`` holds the ids written."""
    assignments = ", ".join(
        f"{name} = CAST(v.{name} AS JSON)" if isinstance(executions.c[name].type, JSON)
        else f"{name} = v.{name}" for name in sets)
    return (
        f"WITH locked AS (SELECT id FROM executions WHERE id = ANY(CAST(:{IDS} AS TEXT[])) "
        "ORDER BY id FOR UPDATE), "
        f"v AS (SELECT * FROM {arrays}), "
        f"moved AS (UPDATE executions SET {assignments} FROM v "
        "WHERE executions.id = v.id AND executions.id IN (SELECT id FROM locked) "
        f"AND {condition} RETURNING executions.id)")


@functools.lru_cache(maxsize=64)  # one per set of columns written; a handful in practice
def status_writes(columns: tuple[str, ...], terminal: tuple[str, ...]) -> TextClause:
    """Rows ``:ids`` in statuses ``:seen`` (one per row) get ``columns`` from the ``c_*``
    arrays unless their log holds one of ``terminal``; the ``e_*`` arrays' events of the rows
    written are appended in array order. Returns the ids written."""
    id_column = executions.c.id
    arrays = _unnest([IDS, SEEN, *map(column_array, columns)],
                     [id_column, Column("seen", String()), *(executions.c[n] for n in columns)],
                     "v")
    ended = ", ".join(f"'{status}'" for status in terminal)  # fixed enum values, not input
    update = _locked_update(
        columns, arrays,
        "executions.status = v.seen AND NOT EXISTS (SELECT 1 FROM execution_events ended "
        f"WHERE ended.execution_id = executions.id AND ended.to_status IN ({ended}))")
    events = _unnest([event_array(n) for n in EVENT_COLUMNS],
                     [execution_events.c[n] for n in EVENT_COLUMNS], "e", ordered=True)
    listed = ", ".join(EVENT_COLUMNS)
    return text(
        f"{update}, logged AS (INSERT INTO execution_events ({listed}) "
        f"SELECT {', '.join('e.' + n for n in EVENT_COLUMNS)} FROM {events} "
        "WHERE e.execution_id IN (SELECT id FROM moved) ORDER BY e.n) "
        "SELECT id FROM moved")


@functools.lru_cache(maxsize=8)
def column_writes(columns: tuple[str, ...], status: str) -> TextClause:
    """Rows ``:ids`` still in ``status`` get ``columns`` from the ``c_*`` arrays (no status
    write, no event). Returns the ids written."""
    arrays = _unnest([IDS, *map(column_array, columns)],
                     [executions.c.id, *(executions.c[n] for n in columns)], "v")
    update = _locked_update(columns, arrays, f"executions.status = '{status}'")
    return text(f"{update} SELECT id FROM moved")
