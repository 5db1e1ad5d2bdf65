"""A plain-Python, bar-by-bar backtester written from the rules in docs/metrics.md, not from the
compiled engine's code. The property tests require both to produce the same trades and equity."""

import math
from dataclasses import dataclass, field

from quantdesk.backtest.engine import Costs


@dataclass
class Trade:
    entry_bar: int
    direction: int
    size: float
    entry_price: float
    entry_fee: float
    exit_bar: int = -1
    exit_price: float = math.nan
    pnl: float = math.nan
    reason: int = -1


@dataclass
class Book:
    cash: float
    position: float = 0.0
    open_trade: Trade | None = None
    trades: list[Trade] = field(default_factory=list)
    fees: float = 0.0


def run(
    bars: list[tuple[float, ...]], signals: list[tuple[bool, ...]], costs: Costs
) -> tuple[list[float], list[Trade], float]:
    """bars: (open, high, low, close); signals: (long entry, long exit, short entry, short exit)."""
    book = Book(costs.cash)
    equity = []
    held_too_long = False  # at the previous close, the position had been held max_bars_held bars
    for i, (open_, high, low, close) in enumerate(bars):
        if not costs.fill_close and i > 0:
            act(book, costs, timed_out(signals[i - 1], held_too_long), open_, i)
        if book.open_trade and not (costs.fill_close and book.open_trade.entry_bar == i):
            stops(book, costs, i, open_, high, low)
        if costs.fill_close:
            act(book, costs, timed_out(signals[i], expired(book, costs, i)), close, i)
        equity.append(book.cash + book.position * close)
        held_too_long = expired(book, costs, i)
    if book.open_trade:
        t = book.open_trade
        t.pnl = t.direction * (bars[-1][3] - t.entry_price) * t.size - t.entry_fee
        book.trades.append(t)
    return equity, book.trades, book.fees


def expired(book: Book, costs: Costs, bar: int) -> bool:
    """The holding-time exit: held at least max_bars_held bars (since the entry bar) at this close."""
    t = book.open_trade
    return t is not None and not math.isnan(costs.max_bars_held) and bar - t.entry_bar >= costs.max_bars_held


def timed_out(signal: tuple[bool, ...], expired: bool) -> tuple[bool, ...]:
    """An expired holding time adds an exit signal on both sides (only the held side's matters)."""
    long_entry, long_exit, short_entry, short_exit = signal
    return long_entry, long_exit or expired, short_entry, short_exit or expired


def fee(costs: Costs, size: float, price: float) -> float:
    return size * price * costs.commission_pct / 100 + costs.commission_fixed


def act(book: Book, costs: Costs, signal: tuple[bool, ...], price: float, bar: int) -> None:
    long_entry, long_exit, short_entry, short_exit = signal
    slip = costs.slippage_bps / 10_000
    t = book.open_trade
    if t and ((t.direction == 1 and (long_exit or short_entry)) or (t.direction == -1 and (short_exit or long_entry))):
        close_trade(book, costs, price * (1 - slip) if t.direction == 1 else price * (1 + slip), bar, 0)
    if book.open_trade is None and (long_entry or short_entry):
        direction = 1 if long_entry else -1
        fill = price * (1 + slip) if direction == 1 else price * (1 - slip)
        budget = book.cash if costs.sizing != 1 else book.cash * min(costs.sizing_value, 1.0)
        size = (budget - costs.commission_fixed) / (fill * (1 + costs.commission_pct / 100))
        if costs.sizing == 2:
            size = min(costs.sizing_value, size)
        if not costs.fractional:
            size = math.floor(size + 1e-9)
        if size <= 0:
            return
        paid = fee(costs, size, fill)
        book.cash -= direction * size * fill + paid
        book.fees += paid
        book.position = direction * size
        book.open_trade = Trade(bar, direction, size, fill, paid)


def close_trade(book: Book, costs: Costs, fill: float, bar: int, reason: int) -> None:
    t = book.open_trade
    assert t is not None
    paid = fee(costs, t.size, fill)
    book.cash += t.direction * t.size * fill - paid
    book.fees += paid
    t.exit_bar, t.exit_price, t.reason = bar, fill, reason
    t.pnl = t.direction * (fill - t.entry_price) * t.size - t.entry_fee - paid
    book.trades.append(t)
    book.open_trade = None
    book.position = 0.0


def stops(book: Book, costs: Costs, bar: int, open_: float, high: float, low: float) -> None:
    t = book.open_trade
    assert t is not None
    slip = costs.slippage_bps / 10_000
    has_sl, has_tp = not math.isnan(costs.stop_loss_pct), not math.isnan(costs.take_profit_pct)
    if t.direction == 1:
        stop, take = t.entry_price * (1 - costs.stop_loss_pct / 100), t.entry_price * (1 + costs.take_profit_pct / 100)
        gapped_stop, gapped_take = has_sl and open_ <= stop, has_tp and open_ >= take
        hit_stop, hit_take = has_sl and low <= stop, has_tp and high >= take
        worse = 1 - slip
    else:
        stop, take = t.entry_price * (1 + costs.stop_loss_pct / 100), t.entry_price * (1 - costs.take_profit_pct / 100)
        gapped_stop, gapped_take = has_sl and open_ >= stop, has_tp and open_ <= take
        hit_stop, hit_take = has_sl and high >= stop, has_tp and low <= take
        worse = 1 + slip
    from_before = t.entry_bar < bar
    if from_before and gapped_stop:
        close_trade(book, costs, open_ * worse, bar, 1)
    elif from_before and gapped_take:
        close_trade(book, costs, open_, bar, 2)
    elif hit_stop:  # both reachable in one bar: the stop is assumed first
        close_trade(book, costs, stop * worse, bar, 1)
    elif hit_take:
        close_trade(book, costs, take, bar, 2)
