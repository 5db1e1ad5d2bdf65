"""The simulator's bar loop and its fill helpers, in plain Python that numba can compile.

Nothing here imports numba: ``quantdesk.backtest.jit`` holds numba-compiled copies (cached on disk)
for inputs large enough to repay compilation, and small inputs (a command-line backtest of a few
thousand daily bars) run these as they are, with no compiler to import or run. Both paths execute this
same source, and the tests run both against the plain-Python reference.
"""

import math

import numpy as np
from numpy.typing import NDArray

# Trade table columns (float64 so the table is one array).
ENTRY_BAR, EXIT_BAR, DIRECTION, SIZE, ENTRY_PRICE, EXIT_PRICE, PNL, RETURN_PCT, REASON, ENTRY_FEE = range(10)
TRADE_COLUMNS = 10

# The portfolio state travels as one float array so that the helpers can update it in place.
CASH, POSITION, ENTRY, ENTRY_COST, ENTERED_AT, FEES, COUNT = range(7)

# The functions quantdesk.backtest.jit compiles.
COMPILED = (
    "unpack_costs",
    "entry_size",
    "close_position",
    "open_position",
    "apply_signals",
    "check_exits",
    "held_too_long",
    "simulate_bars",
)


def unpack_costs(
    costs: NDArray[np.float64],
) -> tuple[float, float, float, float, int, float, bool, bool, float, float, float]:
    """(cash, commission as a fraction, fixed commission, slippage as a fraction, sizing, sizing value,
    fractional, fill at close, stop-loss %, take-profit %, most bars held) from ``Costs.vector()``."""
    return (
        costs[0],
        costs[1] / 100.0,
        costs[2],
        costs[3] / 10_000.0,
        int(costs[4]),
        costs[5],
        costs[6] != 0.0,
        costs[7] != 0.0,
        costs[8],
        costs[9],
        costs[10],
    )


def entry_size(
    cash: float, price: float, sizing: int, value: float, pct: float, fixed: float, fractional: bool
) -> float:
    budget = cash if sizing != 1 else cash * min(value, 1.0)
    size = (budget - fixed) / (price * (1.0 + pct))
    if sizing == 2:
        size = min(value, size)
    if not fractional:
        size = math.floor(size + 1e-9)
    return max(size, 0.0)


def close_position(
    state: NDArray[np.float64],
    trades: NDArray[np.float64],
    fill: float,
    bar: int,
    reason: int,
    pct: float,
    fixed: float,
) -> None:
    direction = 1.0 if state[POSITION] > 0 else -1.0
    size = abs(state[POSITION])
    fee = size * fill * pct + fixed
    state[CASH] += direction * size * fill - fee
    state[FEES] += fee
    row = int(state[COUNT])
    pnl = direction * (fill - state[ENTRY]) * size - state[ENTRY_COST] - fee
    trades[row, EXIT_BAR] = bar
    trades[row, EXIT_PRICE] = fill
    trades[row, PNL] = pnl
    trades[row, RETURN_PCT] = pnl / (state[ENTRY] * size) * 100.0
    trades[row, REASON] = reason
    state[COUNT] += 1.0
    state[POSITION] = 0.0


def open_position(
    state: NDArray[np.float64],
    trades: NDArray[np.float64],
    fill: float,
    direction: float,
    bar: int,
    sizing: int,
    value: float,
    pct: float,
    fixed: float,
    fractional: bool,
) -> None:
    size = entry_size(state[CASH], fill, sizing, value, pct, fixed, fractional)
    if size <= 0.0:
        return
    fee = size * fill * pct + fixed
    state[CASH] -= direction * size * fill + fee
    state[FEES] += fee
    state[POSITION] = direction * size
    state[ENTRY] = fill
    state[ENTRY_COST] = fee
    state[ENTERED_AT] = bar
    row = int(state[COUNT])
    trades[row, ENTRY_BAR] = bar
    trades[row, DIRECTION] = direction
    trades[row, SIZE] = size
    trades[row, ENTRY_PRICE] = fill
    trades[row, ENTRY_FEE] = fee


def apply_signals(
    state: NDArray[np.float64],
    trades: NDArray[np.float64],
    price: float,
    bar: int,
    long_entry: bool,
    long_exit: bool,
    short_entry: bool,
    short_exit: bool,
    slip: float,
    sizing: int,
    value: float,
    pct: float,
    fixed: float,
    fractional: bool,
) -> None:
    position = state[POSITION]
    if (position > 0 and (long_exit or short_entry)) or (position < 0 and (short_exit or long_entry)):
        direction = 1.0 if position > 0 else -1.0
        close_position(state, trades, price * (1.0 - slip * direction), bar, 0, pct, fixed)
    if state[POSITION] == 0.0 and (long_entry or short_entry):
        direction = 1.0 if long_entry else -1.0
        open_position(
            state, trades, price * (1.0 + slip * direction), direction, bar, sizing, value, pct, fixed, fractional
        )


def check_exits(
    state: NDArray[np.float64],
    trades: NDArray[np.float64],
    bar: int,
    open_: float,
    high: float,
    low: float,
    stop_loss: float,
    take_profit: float,
    slip: float,
    pct: float,
    fixed: float,
) -> None:
    direction = 1.0 if state[POSITION] > 0 else -1.0
    entry = state[ENTRY]
    use_sl, use_tp = not math.isnan(stop_loss), not math.isnan(take_profit)
    stop = entry * (1.0 - direction * stop_loss / 100.0)
    take = entry * (1.0 + direction * take_profit / 100.0)
    held_from_before = state[ENTERED_AT] < bar  # an entry at this open cannot have gapped through
    reaches_stop = use_sl and ((direction > 0 and low <= stop) or (direction < 0 and high >= stop))
    reaches_take = use_tp and ((direction > 0 and high >= take) or (direction < 0 and low <= take))
    if held_from_before and use_sl and direction * (open_ - stop) <= 0.0:
        close_position(state, trades, open_ * (1.0 - slip * direction), bar, 1, pct, fixed)
    elif held_from_before and use_tp and direction * (open_ - take) >= 0.0:
        close_position(state, trades, open_, bar, 2, pct, fixed)
    elif reaches_stop:
        close_position(state, trades, stop * (1.0 - slip * direction), bar, 1, pct, fixed)
    elif reaches_take:
        close_position(state, trades, take, bar, 2, pct, fixed)


def held_too_long(state: NDArray[np.float64], bar: int, max_held: float) -> bool:
    """At bar's close, whether the open position has been held ``max_held`` bars (NaN: no limit); a rule's
    ``bars_held >= N`` exit, decided at the close like any exit signal."""
    return bool(state[POSITION] != 0.0 and bar - state[ENTERED_AT] >= max_held)


def simulate_bars(
    open_: NDArray[np.float64],
    high: NDArray[np.float64],
    low: NDArray[np.float64],
    close: NDArray[np.float64],
    long_entries: NDArray[np.bool_],
    long_exits: NDArray[np.bool_],
    short_entries: NDArray[np.bool_],
    short_exits: NDArray[np.bool_],
    costs: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], float]:
    n = close.size
    cash0, pct, fixed, slip, sizing, sizing_value, fractional, fill_close, stop_loss, take_profit, max_held = (
        unpack_costs(costs)
    )
    equity, held = np.empty(n), np.empty(n)
    # Every trade opens on an entry signal, so their count bounds the table (one more for safety).
    trades = np.full((np.count_nonzero(long_entries) + np.count_nonzero(short_entries) + 1, TRADE_COLUMNS), np.nan)
    state = np.zeros(7)
    state[CASH] = cash0
    has_signal = long_entries | long_exits | short_entries | short_exits
    stops = not (math.isnan(stop_loss) and math.isnan(take_profit))
    timed = not math.isnan(max_held)
    expired = False  # the position reached max_held at the previous close
    for i in range(n):
        # Helpers run only on bars with a signal: numba pays atomic reference counting for every array
        # passed to a call, which would otherwise cost more than the rest of the bar.
        if not fill_close and i > 0 and (has_signal[i - 1] or expired):  # yesterday's signals at today's open
            apply_signals(
                state,
                trades,
                open_[i],
                i,
                long_entries[i - 1],
                long_exits[i - 1] or expired,
                short_entries[i - 1],
                short_exits[i - 1] or expired,
                slip,
                sizing,
                sizing_value,
                pct,
                fixed,
                fractional,
            )
        if stops and state[POSITION] != 0.0 and not (fill_close and state[ENTERED_AT] == i):
            check_exits(state, trades, i, open_[i], high[i], low[i], stop_loss, take_profit, slip, pct, fixed)
        if fill_close and timed:
            expired = held_too_long(state, i, max_held)
        if fill_close and (has_signal[i] or expired):  # today's signals at today's close
            apply_signals(
                state,
                trades,
                close[i],
                i,
                long_entries[i],
                long_exits[i] or expired,
                short_entries[i],
                short_exits[i] or expired,
                slip,
                sizing,
                sizing_value,
                pct,
                fixed,
                fractional,
            )
        equity[i] = state[CASH] + state[POSITION] * close[i]
        held[i] = state[POSITION]
        if not fill_close and timed:
            expired = held_too_long(state, i, max_held)
    count = int(state[COUNT])
    if state[POSITION] != 0.0:  # still open: marked to market, reported as open
        direction = 1.0 if state[POSITION] > 0 else -1.0
        size = abs(state[POSITION])
        pnl = direction * (close[n - 1] - state[ENTRY]) * size - state[ENTRY_COST]
        trades[count, EXIT_BAR] = -1.0
        trades[count, PNL] = pnl
        trades[count, RETURN_PCT] = pnl / (state[ENTRY] * size) * 100.0
        trades[count, REASON] = -1.0
        count += 1
    return equity, held, trades[:count], state[FEES]
