"""`quantdesk users ...` and `quantdesk accounts ...`: the local operator's tools (no API key needed:
whoever runs the CLI has the database)."""

from decimal import Decimal, InvalidOperation
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.cli.runner import console, fail, run_in_session

users = typer.Typer(help="Users and their API keys.", no_args_is_help=True)
accounts = typer.Typer(help="Paper accounts and their cash.", no_args_is_help=True)


def money(value: str) -> Decimal:
    try:
        amount = Decimal(value)
    except InvalidOperation:
        fail(f"'{value}' is not an amount")
    if not amount.is_finite() or amount <= 0 or -amount.as_tuple().exponent > 8:  # type: ignore[operator]
        fail(f"'{value}' must be a positive amount with at most 8 decimals")
    return amount


@users.command("create")
def create_user(
    username: Annotated[str, typer.Argument(help="Unique, case-insensitive")],
    admin: Annotated[bool, typer.Option("--admin", help="An admin instead of a trader")] = False,
    display_name: Annotated[str | None, typer.Option(help="Shown on leaderboards")] = None,
) -> None:
    """Create a user and print their first API key (shown once)."""
    from quantdesk.accounts import service

    async def work(session: AsyncSession) -> tuple[int, str, str]:
        user, key = await service.create_user(session, username, display_name, "admin" if admin else "trader")
        return user.id, user.role, key

    user_id, role, key = run_in_session(work, write=True)
    console.print(f"created {role} {username} (id {user_id})")
    console.print(f"API key (shown once): {key}", highlight=False, soft_wrap=True)


QUIET = typer.Option("--quiet", "-q", help="Print only the value, for a script: KEY=$(quantdesk ...)")


@users.command("key")
def new_key(
    username: str,
    label: Annotated[str, typer.Option(help="What the key is for")] = "cli",
    quiet: Annotated[bool, QUIET] = False,
) -> None:
    """Issue another API key for a user and print it (shown once)."""
    from quantdesk.accounts import service

    async def work(session: AsyncSession) -> str:
        _, key = await service.issue_key(session, await service.user_by_name(session, username), label)
        return key

    key = run_in_session(work, write=True)
    console.print(key if quiet else f"API key for {username} (shown once): {key}", soft_wrap=True, highlight=False)


@users.command("list")
def list_users() -> None:
    """List every user with their role and whether they are disabled."""
    from quantdesk.accounts import service

    async def work(session: AsyncSession) -> list[tuple[object, ...]]:
        return [(u.id, u.username, u.display_name, u.role, u.disabled_at) for u in await service.list_users(session)]

    table = Table("id", "username", "display name", "role", "disabled", title="users")
    for row in run_in_session(work):
        table.add_row(*(str(v) if v is not None else "" for v in row))
    console.print(table)


@users.command("disable")
def disable_user(
    username: str, enable: Annotated[bool, typer.Option("--enable", help="Enable instead")] = False
) -> None:
    """Disable (or --enable) a user: a disabled user's keys stop working."""
    from quantdesk.accounts import service

    async def work(session: AsyncSession) -> None:
        await service.set_disabled(session, await service.user_by_name(session, username), not enable)

    run_in_session(work, write=True)
    console.print(f"{username} {'enabled' if enable else 'disabled'}")


@accounts.command("open")
def open_account(
    username: str,
    name: str,
    deposit: Annotated[str, typer.Option(help="Starting deposit")] = "10000",
    currency: Annotated[str, typer.Option(help="Base currency")] = "USD",
    allow_short: Annotated[bool, typer.Option(help="Allow short selling")] = False,
    quiet: Annotated[bool, QUIET] = False,
) -> None:
    """Open a paper account for a user with a starting deposit; prints its id."""
    from quantdesk.accounts import service

    amount = money(deposit)

    async def work(session: AsyncSession) -> int:
        owner = await service.user_by_name(session, username)
        account = await service.open_account(session, owner, name, currency, amount, allow_short)
        return account.id

    account_id = run_in_session(work, write=True)
    console.print(account_id if quiet else f"opened account {account_id} for {username} with {amount} {currency}")


@accounts.command("list")
def list_accounts(username: Annotated[str | None, typer.Option("--user", help="Only this user's")] = None) -> None:
    """List paper accounts with their owner and cash."""
    from quantdesk.accounts import service

    async def work(session: AsyncSession) -> list[tuple[object, ...]]:
        operator = service.LOCAL_OPERATOR
        user_id = (await service.user_by_name(session, username)).id if username else None
        return [
            (a.id, a.user_id, a.name, a.currency, a.cash)
            for a in await service.list_accounts(session, operator, user_id)
        ]

    table = Table("id", "user id", "name", "currency", "cash", title="paper accounts")
    for row in run_in_session(work):
        table.add_row(*(str(v) for v in row))
    console.print(table)


def _cash_change(account_id: int, amount_text: str, withdraw: bool) -> None:
    from quantdesk.accounts import service
    from quantdesk.trading import cash

    amount = money(amount_text)

    async def work(session: AsyncSession) -> Decimal:
        account = await service.get_account(session, account_id, service.LOCAL_OPERATOR, lock=True)
        await (cash.withdraw if withdraw else cash.deposit)(session, account, amount)
        return account.cash

    console.print(f"account {account_id}: cash {run_in_session(work, write=True)}")


@accounts.command("deposit")
def deposit(
    account_id: Annotated[int, typer.Argument(help="Account id (see `accounts list`)")],
    amount: Annotated[str, typer.Argument(help="Amount in the account's currency, e.g. 500 or 12.50")],
) -> None:
    """Add cash to an account (a ledger row)."""
    _cash_change(account_id, amount, withdraw=False)


@accounts.command("withdraw")
def withdraw(
    account_id: Annotated[int, typer.Argument(help="Account id (see `accounts list`)")],
    amount: Annotated[str, typer.Argument(help="Amount in the account's currency; at most the free cash")],
) -> None:
    """Take cash out of an account (a ledger row); refused if it would overdraw."""
    _cash_change(account_id, amount, withdraw=True)


def register(app: typer.Typer) -> None:
    app.add_typer(users, name="users")
    app.add_typer(accounts, name="accounts")
