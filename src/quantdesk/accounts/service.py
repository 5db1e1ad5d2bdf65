"""Users, keys, accounts and the ledger. Every change of cash goes through ``post``."""

import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.accounts import keys
from quantdesk.accounts.models import Account, ApiKey, LedgerEntry, User
from quantdesk.core.clock import utcnow
from quantdesk.core.db import Base, append, dialect_name
from quantdesk.core.errors import (
    Conflict,
    Forbidden,
    InsufficientFunds,
    NotFound,
    QuantdeskError,
    Unauthorized,
    ValidationFailed,
)
from quantdesk.core.money import quantize, text
from quantdesk.realtime.events import ACCESS_STREAM, publish

log = logging.getLogger(__name__)

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,39}$")
LAST_USED_EVERY = timedelta(minutes=1)  # last-used times are kept to the minute, not written per request


@dataclass(frozen=True)
class Principal:
    """Who is calling: resolved from the API key of a request (or the local operator on the CLI)."""

    user_id: int
    username: str
    role: str
    key_id: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def may_see(self, owner_id: int) -> bool:
        return self.is_admin or owner_id == self.user_id


# Whoever runs the command line on the server's machine: it holds the database already, so it sees as an admin.
LOCAL_OPERATOR = Principal(0, "operator", "admin")


def principal_of(user: User, key_id: int | None = None) -> Principal:
    return Principal(user.id, user.username, user.role, key_id)


# Users and keys ----------------------------------------------------------------------------------


async def create_user(
    session: AsyncSession, username: str, display_name: str | None = None, role: str = "trader"
) -> tuple[User, str]:
    """A new user and their first API key (returned once, never stored)."""
    if not USERNAME.match(username):
        raise ValidationFailed(
            f"username '{username}' must be 3 to 40 letters, digits, '_', '.' or '-', starting with a letter or digit"
        )
    taken = await session.scalar(select(User.id).where(User.username_key == username.lower()))
    if taken is not None:
        raise Conflict(f"the username '{username}' is taken (names differ by more than case)")
    user = User(username=username, username_key=username.lower(), display_name=display_name or username, role=role)
    session.add(user)
    await session.flush()
    _, key = await issue_key(session, user, "first key")
    return user, key


async def issue_key(session: AsyncSession, user: User, label: str) -> tuple[ApiKey, str]:
    key = keys.new_key()
    row = ApiKey(user_id=user.id, prefix=keys.lookup(key), digest=keys.digest(key), label=label)
    session.add(row)
    await session.flush()
    return row, key


# Built once: every authenticated request runs it.
_KEYS_AND_USERS = select(ApiKey, User).join(User, User.id == ApiKey.user_id)
_KEY_AND_USER = _KEYS_AND_USERS.where(ApiKey.prefix == bindparam("prefix"))
_KEYS_AND_USERS_BY_PREFIX = _KEYS_AND_USERS.where(ApiKey.prefix.in_(bindparam("prefixes", expanding=True)))


async def authenticate(session: AsyncSession, key: str) -> tuple[Principal, bool]:
    """The caller of an API key, and whether its last-used time is due an update."""
    found = await session.execute(_KEY_AND_USER, {"prefix": keys.lookup(key)})
    pair = found.first()
    return _principal(key, (pair[0], pair[1]) if pair is not None else None)


def _principal(key: str, pair: tuple[ApiKey, User] | None) -> tuple[Principal, bool]:
    if pair is None or not keys.matches(key, pair[0].digest):
        raise Unauthorized("the API key is not valid; create one with POST /api/v1/keys or ask an admin")
    row, user = pair
    if row.revoked_at is not None:
        raise Unauthorized(f"the API key {row.prefix}… was revoked on {row.revoked_at:%Y-%m-%d}; use another key")
    if user.disabled_at is not None:
        raise Forbidden("this user is disabled; an admin can enable it again")
    due = row.last_used_at is None or utcnow() - row.last_used_at >= LAST_USED_EVERY
    return principal_of(user, row.id), due


async def authenticate_many(session: AsyncSession, api_keys: set[str]) -> dict[str, Principal | QuantdeskError]:
    """``authenticate`` of the keys of a batch of requests in one query, in the batch's writing
    transaction: the last-used time of each key due an update is written with it."""
    prefixes = sorted({keys.lookup(key) for key in api_keys})
    rows = await session.execute(_KEYS_AND_USERS_BY_PREFIX, {"prefixes": prefixes})
    found = {row.prefix: (row, user) for row, user in rows}
    callers: dict[str, Principal | QuantdeskError] = {}
    for key in api_keys:
        try:
            principal, due = _principal(key, found.get(keys.lookup(key)))
        except QuantdeskError as refused:
            callers[key] = refused
            continue
        if due:
            found[keys.lookup(key)][0].last_used_at = utcnow()
        callers[key] = principal
    return callers


async def touch_key(session: AsyncSession, key_id: int) -> None:
    row = await session.get(ApiKey, key_id)
    if row is not None:
        row.last_used_at = utcnow()


async def get_user(session: AsyncSession, user_id: int, caller: Principal) -> User:
    user = await session.get(User, user_id)
    if user is None or not caller.may_see(user.id):
        raise NotFound(f"no user {user_id}")
    return user


async def user_by_name(session: AsyncSession, username: str) -> User:
    user = await session.scalar(select(User).where(User.username_key == username.lower()))
    if user is None:
        raise NotFound(f"no user '{username}'")
    return user


async def user_exists(session: AsyncSession, username: str) -> bool:
    return await session.scalar(select(User.id).where(User.username_key == username.lower())) is not None


async def list_users(session: AsyncSession) -> list[User]:
    return list(await session.scalars(select(User).order_by(User.username_key)))


async def set_disabled(session: AsyncSession, user: User, disabled: bool) -> User:
    """Disable (or enable) a user; a disabled user's sockets close on every server when this commits."""
    user.disabled_at = utcnow() if disabled else None
    if disabled:
        publish(session, ACCESS_STREAM, {"reason": "the user was disabled"}, user_id=user.id)
    return user


async def list_keys(session: AsyncSession, user_id: int) -> list[ApiKey]:
    return list(await session.scalars(select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.id)))


async def revoke_key(session: AsyncSession, key_id: int, caller: Principal) -> ApiKey:
    row = await session.get(ApiKey, key_id)
    if row is None or not caller.may_see(row.user_id):
        raise NotFound(f"no API key {key_id}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        # Sockets opened with the key close on every server when this commits.
        publish(session, ACCESS_STREAM, {"reason": "the API key was revoked", "key_id": row.id}, user_id=row.user_id)
        if row.user_id != caller.user_id:  # an admin acting on a leaked key: worth a line in the log
            log.warning(
                "admin %s revoked API key %s… (id %s) of user %s", caller.username, row.prefix, row.id, row.user_id
            )
    return row


# Accounts and the ledger -------------------------------------------------------------------------


async def open_account(
    session: AsyncSession,
    owner: User,
    name: str,
    currency: str,
    initial_deposit: Decimal,
    allow_short: bool = False,
) -> Account:
    clash = await session.scalar(select(Account.id).where(Account.user_id == owner.id, Account.name == name))
    if clash is not None:
        raise Conflict(f"{owner.username} already has an account named '{name}'")
    account = Account(
        user_id=owner.id,
        name=name,
        currency=currency.upper(),
        cash=Decimal(0),
        initial_deposit=quantize(initial_deposit),
        allow_short=allow_short,
    )
    session.add(account)
    await session.flush()
    if initial_deposit > 0:
        post(session, account, "deposit", initial_deposit, note="opening deposit", equity_before=Decimal(0))
    return account


# Built once: every order and account change starts with one of these.
_ACCOUNT = select(Account).where(Account.id == bindparam("account_id"))
_RELOADED_ACCOUNT = _ACCOUNT.execution_options(populate_existing=True)
# FOR NO KEY UPDATE: it serialises changes of the account, yet lets other transactions insert rows that
# reference it (a signal and its order), which FOR UPDATE would block.
_LOCKED_ACCOUNT = _RELOADED_ACCOUNT.with_for_update(key_share=True)


async def get_account(session: AsyncSession, account_id: int, caller: Principal, lock: bool = False) -> Account:
    """The account if the caller may see it (another trader's is reported missing, not forbidden, so
    that ids reveal nothing); ``lock`` takes its row lock on PostgreSQL for a change of cash or holdings
    (SQLite's writers are already serialised by BEGIN IMMEDIATE)."""
    query = _ACCOUNT
    if lock:
        # Reloading under the lock must not drop changes this transaction has not flushed yet.
        await session.flush()
        query = _LOCKED_ACCOUNT if dialect_name(session) == "postgresql" else _RELOADED_ACCOUNT
    account = await session.scalar(query, {"account_id": account_id})
    if account is None or not caller.may_see(account.user_id):
        raise NotFound(f"no account {account_id}")
    return account


async def list_accounts(session: AsyncSession, caller: Principal, user_id: int | None = None) -> list[Account]:
    query = select(Account).order_by(Account.id)
    if not caller.is_admin:
        query = query.where(Account.user_id == caller.user_id)
    elif user_id is not None:
        query = query.where(Account.user_id == user_id)
    return list(await session.scalars(query))


def post(
    session: AsyncSession,
    account: Account,
    kind: str,
    amount: Decimal,
    order: Base | None = None,
    note: str = "",
    equity_before: Decimal | None = None,
) -> None:
    """Change the account's cash by ``amount`` (signed) and record it: the only way cash changes. A cash
    flow (deposit, withdrawal, reset) also records the equity just before it (``equity_before``)."""
    amount = quantize(amount)
    account.cash = quantize(account.cash + amount)
    at = utcnow()
    append(
        session,
        LedgerEntry,
        account_id=account.id,
        kind=kind,
        amount=amount,
        balance=account.cash,
        equity_before=None if equity_before is None else quantize(equity_before),
        generation=account.generation,
        order_id=order,  # the order, maybe not written yet: its id once it is
        note=note,
        at=at,
    )
    publish(
        session,
        "account_updates",
        {"event": kind, "account_id": account.id, "amount": amount, "cash": account.cash, "at": at},
        account.id,
    )


def deposit(session: AsyncSession, account: Account, amount: Decimal, equity_before: Decimal) -> None:
    """Add cash (``trading.cash.deposit`` values the account first: use that)."""
    post(session, account, "deposit", amount, equity_before=equity_before)


def withdraw(session: AsyncSession, account: Account, amount: Decimal, equity_before: Decimal) -> None:
    """Take cash out (``trading.cash.withdraw`` values the account and checks the margin rule: use that)."""
    if amount > account.cash:
        raise InsufficientFunds(
            f"cannot withdraw {text(amount)} {account.currency}: account {account.id} holds {text(account.cash)}"
        )
    post(session, account, "withdrawal", -amount, equity_before=equity_before)


async def ledger(session: AsyncSession, account: Account, limit: int = 500) -> list[LedgerEntry]:
    query = select(LedgerEntry).where(LedgerEntry.account_id == account.id).order_by(LedgerEntry.id.desc())
    return list(await session.scalars(query.limit(limit)))
