"""`quantdesk order buy|sell`, `portfolio`, `price`, `replay` and `leaderboard`."""

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from quantdesk.accounts.cli import money
from quantdesk.cli.runner import console, run_in_session, run_with_database, validated
from quantdesk.core.config import get_settings
from quantdesk.core.errors import NotFound
from quantdesk.core.money import text

if TYPE_CHECKING:
    from quantdesk.gamification.leaderboard import Row
    from quantdesk.trading.portfolio import Valuation

order = typer.Typer(help="Place paper orders as an account's owner.", no_args_is_help=True)


def _place(
    side: str,
    account_id: int,
    symbol: str,
    quantity: str,
    kind: str,
    limit_price: str | None,
    stop_price: str | None,
    time_in_force: str,
    take_profit: str | None,
    stop_loss: str | None,
) -> None:
    from quantdesk.accounts import service as accounts
    from quantdesk.accounts.models import User
    from quantdesk.trading import service
    from quantdesk.trading.schemas import OrderCreate

    body = validated(
        OrderCreate,
        {
            "account_id": account_id,
            "symbol": symbol,
            "side": side,
            "type": kind,
            "quantity": money(quantity),
            "limit_price": money(limit_price) if limit_price else None,
            "stop_price": money(stop_price) if stop_price else None,
            "time_in_force": time_in_force,
            "take_profit": money(take_profit) if take_profit else None,
            "stop_loss": money(stop_loss) if stop_loss else None,
        },
    )

    async def work(session: AsyncSession) -> tuple[int, str, Decimal, Decimal | None, Decimal, Decimal]:
        operator = accounts.LOCAL_OPERATOR
        account = await accounts.get_account(session, account_id, operator)
        owner = await session.get(User, account.user_id)
        if owner is None:  # the account's user was deleted meanwhile
            raise NotFound(f"account {account_id} has no owner any more")
        placed, _ = await service.place_order(session, accounts.principal_of(owner), body, get_settings(), "cli")
        return (
            placed.id,
            placed.status,
            placed.filled_quantity,
            placed.filled_avg_price,
            placed.commission,
            placed.total,
        )

    order_id, status, filled, price, commission, total = run_in_session(work, write=True)
    if status == "filled" and price is not None:
        verb = "bought" if side == "buy" else "sold"
        console.print(
            f"order {order_id} filled: {verb} {text(filled)} {symbol.upper()} at {text(price)}, "
            f"commission {text(commission)}, total {text(total)}",
            soft_wrap=True,
        )
    else:
        console.print(f"order {order_id} {status}", soft_wrap=True)


Kind = Annotated[Literal["market", "limit", "stop", "stop_limit"], typer.Option("--type", help="Order type")]
TimeInForce = Annotated[Literal["day", "gtc", "ioc", "fok"], typer.Option("--tif", help="Time in force")]
Price = Annotated[str | None, typer.Option()]


def _order_command(side: str) -> Callable[..., None]:
    """``quantdesk order buy`` and ``sell``: the same options, one side each."""

    def command(
        account_id: int,
        symbol: str,
        quantity: str,
        kind: Kind = "market",
        limit_price: Price = None,
        stop_price: Price = None,
        tif: TimeInForce = "gtc",
        take_profit: Price = None,
        stop_loss: Price = None,
    ) -> None:
        _place(side, account_id, symbol, quantity, kind, limit_price, stop_price, tif, take_profit, stop_loss)

    command.__doc__ = f"{side.capitalize()} on an account (as its owner); prints the trade confirmation."
    return command


order.command("buy")(_order_command("buy"))
order.command("sell")(_order_command("sell"))


def portfolio_command(
    account_id: Annotated[int | None, typer.Argument(help="One account; all when omitted")] = None,
) -> None:
    """Cash, positions at their last prices, and total value."""
    from quantdesk.accounts import service as accounts
    from quantdesk.trading import portfolio

    async def work(session: AsyncSession) -> list["Valuation"]:
        operator = accounts.LOCAL_OPERATOR
        chosen = (
            [await accounts.get_account(session, account_id, operator)]
            if account_id
            else await accounts.list_accounts(session, operator)
        )
        return [await portfolio.value(session, a) for a in chosen]

    for valuation in run_in_session(work):
        account = valuation.account
        title = f"account {account.id} {account.name}: cash {text(account.cash)}, equity {text(valuation.equity)}"
        table = Table("symbol", "quantity", "avg cost", "price", "value", "unrealised", "realised", title=title)
        for h in valuation.positions:
            cells = (h.quantity, h.avg_cost, h.price, h.market_value, h.unrealized_pnl, h.realized_pnl)
            table.add_row(h.symbol, *("-" if c is None else text(c) for c in cells))
        console.print(table)


def price_command(symbol: str, price: str) -> None:
    """Set an instrument's last price by hand (as an admin tick); resting orders it triggers fill."""
    from quantdesk.market import service as market_service
    from quantdesk.trading import prices

    amount = money(price)

    async def work(session: AsyncSession) -> int:
        instrument = await market_service.require_instrument(session, symbol)
        return await prices.set_price(session, instrument, amount, "admin")

    filled = run_in_session(work, write=True)
    console.print(f"{symbol.upper()} at {amount}; {filled} resting order(s) filled")


def replay_command(
    symbol: str,
    start: Annotated[str, typer.Option("--from", help="First bar to play (ISO 8601 date or time)")],
    end: Annotated[str | None, typer.Option("--to", help="Stop before this time")] = None,
    speed: Annotated[float, typer.Option(help="Times real time: 60 plays a minute of bars per second")] = 60.0,
    interval: Annotated[str, typer.Option(help="Which bars: 1m, 5m, 1h, 1d, ...")] = "1d",
) -> None:
    """Play stored bars as live prices: resting orders, brackets and signal trades react as to ticks."""
    from quantdesk.core.timeparse import parse_instant
    from quantdesk.trading.replay import Played, replay

    def show(step: Played) -> None:
        filled = f", {step.filled} order(s) filled" if step.filled else ""
        console.print(f"{step.at:%Y-%m-%d %H:%M} {symbol.upper()} {text(step.price)}{filled}", highlight=False)

    async def play(factory: async_sessionmaker[AsyncSession]) -> int:
        until = parse_instant(end, "--to") if end else None
        return await replay(factory, symbol, parse_instant(start, "--from"), speed, interval, until, show)

    try:
        played = run_with_database(play)
    except KeyboardInterrupt:
        console.print("replay stopped")
        return
    console.print(f"replayed {played} bar(s)")


def leaderboard_command(
    by: Annotated[Literal["gems", "return_pct", "sharpe"], typer.Option(help="Rank by")] = "gems",
    window: Annotated[Literal["7d", "30d", "all"], typer.Option(help="Window")] = "all",
    top: Annotated[int, typer.Option(min=1, max=1000)] = 10,
) -> None:
    """Ranks with ties by gems, return or Sharpe."""
    from quantdesk.gamification.leaderboard import leaderboard

    async def work(session: AsyncSession) -> list["Row"]:
        return await leaderboard(session, by, window, top)

    table = Table("rank", "user", "gems", "trades", "return %", "sharpe", title=f"leaderboard by {by}, {window}")
    for row in run_in_session(work):
        ratio = "-" if row.return_pct is None else f"{row.return_pct:.2f}"
        sharpe = "-" if row.sharpe is None else f"{row.sharpe:.2f}"
        table.add_row(str(row.rank), row.username, str(row.gems), str(row.trades), ratio, sharpe)
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(order, name="order")
    app.command("portfolio")(portfolio_command)
    app.command("price")(price_command)
    app.command("leaderboard")(leaderboard_command)
    app.command("replay")(replay_command)
