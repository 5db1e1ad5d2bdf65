"""Run async service calls from Typer commands, and print errors without tracebacks."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import NoReturn, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from quantdesk.core.db import create_engine, create_sessionmaker, session_scope
from quantdesk.core.errors import QuantdeskError

T = TypeVar("T")
console = Console()
err_console = Console(stderr=True)


def fail(message: str, errors: list[dict[str, object]] | None = None) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    if errors:
        table = Table(*errors[0].keys(), title=f"first {min(len(errors), 20)} problem(s)")
        for item in errors[:20]:
            table.add_row(*(str(v) if v is not None else "" for v in item.values()))
        err_console.print(table)
    raise typer.Exit(1)


def invalid_input(exc: ValidationError) -> str:
    problems = [f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors()]
    return "invalid input: " + "; ".join(problems)


ModelT = TypeVar("ModelT", bound=BaseModel)


def validated(model: type[ModelT], data: dict[str, object]) -> ModelT:
    """``data`` as ``model``, or a clean exit 1 that lists what is wrong (never a traceback)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fail(invalid_input(exc))


def run_in_session(work: Callable[[AsyncSession], Awaitable[T]], write: bool = False) -> T:
    """Run ``work`` in one transaction on a fresh engine; domain errors become a clean exit 1.

    ``write`` declares that the command stores something (see ``core.db.declare_write``).
    """

    async def main(factory: async_sessionmaker[AsyncSession]) -> T:
        async with session_scope(factory, write=write) as session:
            return await work(session)

    return run_with_database(main)


def run_with_database(main: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]]) -> T:
    """Run ``main`` with sessions on the configured database (several transactions if it likes);
    domain and database errors become a clean exit 1."""

    async def scoped() -> T:
        engine = create_engine()
        try:
            return await main(create_sessionmaker(engine))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(scoped())
    except QuantdeskError as exc:
        fail(exc.detail, exc.errors)
    except ValidationError as exc:
        fail(invalid_input(exc))
    except (OperationalError, ProgrammingError) as exc:
        text = str(exc.orig) if exc.orig is not None else str(exc)
        if "no such table" in text or "does not exist" in text:
            fail("the database has no quantdesk tables yet; run `quantdesk db upgrade` first")
        fail(f"database error: {text.splitlines()[0]}")
