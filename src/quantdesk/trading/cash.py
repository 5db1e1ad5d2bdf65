"""Deposits and withdrawals as every caller makes them (API, dashboard, command line): the account is
valued first, since a cash flow's row records the equity before it (time-weighted returns start new
periods there), and a withdrawal must leave what the margin rule asks."""

from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.accounts import service as accounts
from quantdesk.accounts.models import Account
from quantdesk.trading import margin


async def equity(session: AsyncSession, account: Account) -> Decimal:
    """Cash plus every position at its last price (shorts negative)."""
    return account.cash + (await margin.exposure(session, account)).market_value


async def deposit(session: AsyncSession, account: Account, amount: Decimal) -> None:
    accounts.deposit(session, account, amount, await equity(session, account))


async def withdraw(session: AsyncSession, account: Account, amount: Decimal) -> None:
    now = await margin.exposure(session, account)  # valued once: for the rule and for the ledger row
    margin.check_withdrawal(account, amount, now)
    accounts.withdraw(session, account, amount, account.cash + now.market_value)
