"""The one translation of SQLAlchemy errors into the store's errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from shepherd.errors import AlreadyExists, SqlStoreError


@asynccontextmanager
async def translated(what: str) -> AsyncIterator[None]:
    """Run a store operation; a SQLAlchemy error leaves as ``SqlStoreError`` naming ``what``."""
    try:
        yield
    except IntegrityError as exc:
        raise AlreadyExists(f"{what}: conflicts with an existing row") from exc
    except SQLAlchemyError as exc:
        raise SqlStoreError(f"{what}: {type(exc).__name__}: {exc.args[0] if exc.args else ''}"
                            ) from exc
