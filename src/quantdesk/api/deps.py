"""Dependencies shared by the routers."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.core.config import Settings
from quantdesk.core.db import session_scope

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed when the endpoint returns, rolled back if it raises."""
    write = request.method in WRITE_METHODS
    async with session_scope(request.app.state.sessionmaker, write=write) as session:
        yield session


async def get_app_settings(request: Request) -> Settings:
    # async, though it awaits nothing: FastAPI runs a plain function dependency in a worker thread,
    # and that hand-off cost more than the rest of a webhook's routing under load.
    settings: Settings = request.app.state.settings
    return settings


# scope="function": the commit runs when the endpoint returns and *before* the response is sent, so
# a transaction that fails to commit can never be reported to the client as a success.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
