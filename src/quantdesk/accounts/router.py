"""HTTP endpoints of users, API keys and paper accounts."""

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from quantdesk.accounts import service
from quantdesk.accounts.auth import AdminUser, CurrentUser, OptionalUser
from quantdesk.accounts.models import Account, User
from quantdesk.accounts.schemas import (
    AccountCreate,
    AccountRead,
    AmountBody,
    KeyCreate,
    KeyCreated,
    KeyRead,
    LedgerRead,
    UserCreate,
    UserCreated,
    UserRead,
    UserUpdate,
)
from quantdesk.api.deps import SessionDep, SettingsDep
from quantdesk.core.errors import Forbidden, Unauthorized
from quantdesk.core.types import RowId
from quantdesk.trading import cash, portfolio
from quantdesk.trading import service as trading

users = APIRouter(prefix="/api/v1/users", tags=["users"])
keys = APIRouter(prefix="/api/v1/keys", tags=["users"])
accounts = APIRouter(prefix="/api/v1/accounts", tags=["accounts"])


@users.post("", response_model=UserCreated, status_code=status.HTTP_201_CREATED)
async def create_user(
    session: SessionDep, settings: SettingsDep, caller: OptionalUser, body: UserCreate
) -> UserCreated:
    """Admins create users of either role; with QUANTDESK_OPEN_SIGNUP anyone may create a trader.
    The answer holds the user's first API key, shown this once."""
    is_admin = caller is not None and caller.is_admin
    if not is_admin:
        if not settings.open_signup:
            raise (Unauthorized if caller is None else Forbidden)("only an admin can create users on this server")
        if body.role != "trader":
            raise Forbidden("open sign-up creates traders; an admin creates admins")
    user, key = await service.create_user(session, body.username, body.display_name, body.role)
    return UserCreated.model_validate({**UserRead.model_validate(user).model_dump(), "api_key": key})


@users.get("", response_model=list[UserRead])
async def list_users(session: SessionDep, _admin: AdminUser) -> list[User]:
    return await service.list_users(session)


@users.get("/me", response_model=UserRead)
async def me(session: SessionDep, caller: CurrentUser) -> User:
    return await service.get_user(session, caller.user_id, caller)


@users.get("/{user_id}", response_model=UserRead)
async def get_user(session: SessionDep, caller: CurrentUser, user_id: RowId) -> User:
    return await service.get_user(session, user_id, caller)


@users.patch("/{user_id}", response_model=UserRead)
async def update_user(session: SessionDep, caller: CurrentUser, user_id: RowId, body: UserUpdate) -> User:
    """Users rename themselves; admins also disable and enable users."""
    user = await service.get_user(session, user_id, caller)
    if body.disabled is not None:
        if not caller.is_admin:
            raise Forbidden("only an admin can disable or enable users")
        if user.id == caller.user_id and body.disabled:
            raise Forbidden("an admin cannot disable themselves")
        await service.set_disabled(session, user, body.disabled)
    if body.display_name is not None:
        user.display_name = body.display_name
    return user


@keys.get("", response_model=list[KeyRead])
async def list_keys(session: SessionDep, caller: CurrentUser, user_id: RowId | None = None) -> list[KeyRead]:
    """Your keys (admins: anyone's with user_id). Keys themselves are never shown again."""
    owner = user_id if user_id is not None and caller.is_admin else caller.user_id
    return [KeyRead.model_validate(k) for k in await service.list_keys(session, owner)]


@keys.post("", response_model=KeyCreated, status_code=status.HTTP_201_CREATED)
async def create_key(session: SessionDep, caller: CurrentUser, body: KeyCreate) -> KeyCreated:
    user = await service.get_user(session, caller.user_id, caller)
    row, key = await service.issue_key(session, user, body.label)
    return KeyCreated.model_validate({**KeyRead.model_validate(row).model_dump(), "api_key": key})


@keys.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_key(session: SessionDep, caller: CurrentUser, key_id: RowId) -> Response:
    await service.revoke_key(session, key_id, caller)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def account_read(session: SessionDep, account: Account) -> AccountRead:
    valuation = await portfolio.value(session, account)
    owner = await session.get(User, account.user_id)
    return AccountRead(
        id=account.id,
        user_id=account.user_id,
        username=owner.username if owner else "",
        name=account.name,
        currency=account.currency,
        cash=account.cash,
        equity=valuation.equity,
        initial_deposit=account.initial_deposit,
        allow_short=account.allow_short,
        generation=account.generation,
        created_at=account.created_at,
        reset_at=account.reset_at,
    )


@accounts.post("", response_model=AccountRead, status_code=status.HTTP_201_CREATED)
async def open_account(session: SessionDep, caller: CurrentUser, body: AccountCreate) -> AccountRead:
    """A paper account of yours, opened with its starting deposit (a ledger row like any other)."""
    owner = await service.get_user(session, caller.user_id, caller)
    account = await service.open_account(
        session, owner, body.name, body.currency, body.initial_deposit, body.allow_short
    )
    return await account_read(session, account)


@accounts.get("", response_model=list[AccountRead])
async def list_accounts(session: SessionDep, caller: CurrentUser, user_id: RowId | None = None) -> list[AccountRead]:
    return [await account_read(session, a) for a in await service.list_accounts(session, caller, user_id)]


@accounts.get("/{account_id}", response_model=AccountRead)
async def get_account(session: SessionDep, caller: CurrentUser, account_id: RowId) -> AccountRead:
    return await account_read(session, await service.get_account(session, account_id, caller))


@accounts.post("/{account_id}/deposit", response_model=AccountRead)
async def deposit(session: SessionDep, caller: CurrentUser, account_id: RowId, body: AmountBody) -> AccountRead:
    account = await trading.trading_account(session, caller, account_id)
    await cash.deposit(session, account, body.amount)
    return await account_read(session, account)


@accounts.post("/{account_id}/withdraw", response_model=AccountRead)
async def withdraw(session: SessionDep, caller: CurrentUser, account_id: RowId, body: AmountBody) -> AccountRead:
    account = await trading.trading_account(session, caller, account_id)
    await cash.withdraw(session, account, body.amount)
    return await account_read(session, account)


@accounts.post("/{account_id}/reset", response_model=AccountRead)
async def reset(session: SessionDep, caller: CurrentUser, account_id: RowId) -> AccountRead:
    """Back to the opening deposit: open orders canceled, positions cleared, history kept and marked."""
    return await account_read(session, await trading.reset_account(session, caller, account_id))


@accounts.get("/{account_id}/ledger", response_model=list[LedgerRead])
async def ledger(
    session: SessionDep,
    caller: CurrentUser,
    account_id: RowId,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> list[LedgerRead]:
    """Every change of cash, newest first, with the balance after it."""
    account = await service.get_account(session, account_id, caller)
    return [LedgerRead.model_validate(e) for e in await service.ledger(session, account, limit)]
