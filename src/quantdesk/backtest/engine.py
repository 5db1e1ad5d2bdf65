"""The portfolio simulator, compiled with numba: signals and prices in, equity and trades out.

Rules (also in docs/metrics.md; tests/reference_backtest.py implements the same rules in plain
Python and hypothesis checks that both agree):

- A signal decided on bar i fills at bar i+1's open (``fill="next_open"``) or at bar i's close
  (``fill="close"``). Market fills pay ``slippage_bps`` against the trader.
- In a position, an exit signal (or the opposite entry, when shorts are allowed) closes it; flat, an
  entry opens one. Entries while in a position are ignored.
- Stop-loss and take-profit are percentages of the entry price, checked on every bar from the entry
  bar on (a position entered at a bar's close is checked from the next bar): a bar that opens beyond
  a level fills at the open; otherwise a bar whose range reaches the level fills at the level. When a
  bar reaches both, the stop-loss is taken (the conservative reading of an unknown path). Stops are
  market orders and pay slippage; take-profits are limit orders and do not.
- Size: all-in (all cash), a fixed fraction of equity (capped at cash), or a fixed quantity (capped at
  what cash affords), after commission; whole units unless fractional.
- Commission: ``commission_pct`` of the notional plus ``commission_fixed`` per fill.
- A position still open after the last bar is marked to market in the equity curve and reported as
  an open trade, not as a closed one.
"""

import math
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from numba import njit
from numpy.typing import NDArray

# Trade table columns (float64 so the table is one array).
ENTRY_BAR, EXIT_BAR, DIRECTION, SIZE, ENTRY_PRICE, EXIT_PRICE, PNL, RETURN_PCT, REASON, ENTRY_FEE = range(10)
TRADE_COLUMNS = 10


class ExitReason(IntEnum):
    open = -1
    signal = 0
    stop_loss = 1
    take_profit = 2


class Sizing(IntEnum):
    all_in = 0
    fraction = 1
    quantity = 2


@dataclass(frozen=True)
class Costs:
    cash: float = 10_000.0
    commission_pct: float = 0.0  # percent of notional, e.g. 0.1 for 0.1%
    commission_fixed: float = 0.0
    slippage_bps: float = 0.0
    sizing: Sizing = Sizing.all_in
    sizing_value: float = 1.0  # fraction of equity (fraction) or units (quantity)
    fractional: bool = False
    fill_close: bool = False
    stop_loss_pct: float = math.nan  # NaN: no stop
    take_profit_pct: float = math.nan

    def vector(self) -> NDArray[np.float64]:
        """The costs as compiled code takes them: one float array, read back by ``_unpack``."""
        return np.array(
            [
                self.cash,
                self.commission_pct,
                self.commission_fixed,
                self.slippage_bps,
                float(self.sizing),
                self.sizing_value,
                float(self.fractional),
                float(self.fill_close),
                self.stop_loss_pct,
                self.take_profit_pct,
            ],
            dtype=np.float64,
        )


@njit(cache=True)
def _unpack(
    costs: NDArray[np.float64],
) -> tuple[float, float, float, float, int, float, bool, bool, float, float]:  # pragma: no cover - compiled
    """(cash, commission as a fraction, fixed commission, slippage as a fraction, sizing, sizing value,
    fractional, fill at close, stop-loss %, take-profit %) from ``Costs.vector()``."""
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
    )


@dataclass(frozen=True)
class EngineResult:
    equity: NDArray[np.float64]
    position: NDArray[np.float64]
    trades: NDArray[np.float64]  # one row per trade (closed and, last, an open one), TRADE_COLUMNS wide
    commissions: float


@njit(cache=True)
def _entry_size(
    cash: float, price: float, sizing: int, value: float, pct: float, fixed: float, fractional: bool
) -> float:  # pragma: no cover - compiled
    budget = cash if sizing != 1 else cash * min(value, 1.0)
    size = (budget - fixed) / (price * (1.0 + pct))
    if sizing == 2:
        size = min(value, size)
    if not fractional:
        size = math.floor(size + 1e-9)
    return max(size, 0.0)


# The portfolio state travels as one float array so that compiled helpers can update it in place.
CASH, POSITION, ENTRY, ENTRY_COST, ENTERED_AT, FEES, COUNT = range(7)


@njit(cache=True)
def _close_position(
    state: NDArray[np.float64],
    trades: NDArray[np.float64],
    fill: float,
    bar: int,
    reason: int,
    pct: float,
    fixed: float,
) -> None:  # pragma: no cover - compiled
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


@njit(cache=True)
def _open_position(
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
) -> None:  # pragma: no cover - compiled
    size = _entry_size(state[CASH], fill, sizing, value, pct, fixed, fractional)
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


@njit(cache=True)
def _apply_signals(
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
) -> None:  # pragma: no cover - compiled
    position = state[POSITION]
    if (position > 0 and (long_exit or short_entry)) or (position < 0 and (short_exit or long_entry)):
        direction = 1.0 if position > 0 else -1.0
        _close_position(state, trades, price * (1.0 - slip * direction), bar, 0, pct, fixed)
    if state[POSITION] == 0.0 and (long_entry or short_entry):
        direction = 1.0 if long_entry else -1.0
        _open_position(
            state, trades, price * (1.0 + slip * direction), direction, bar, sizing, value, pct, fixed, fractional
        )


@njit(cache=True)
def _check_exits(
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
) -> None:  # pragma: no cover - compiled
    direction = 1.0 if state[POSITION] > 0 else -1.0
    entry = state[ENTRY]
    use_sl, use_tp = not math.isnan(stop_loss), not math.isnan(take_profit)
    stop = entry * (1.0 - direction * stop_loss / 100.0)
    take = entry * (1.0 + direction * take_profit / 100.0)
    held_from_before = state[ENTERED_AT] < bar  # an entry at this open cannot have gapped through
    reaches_stop = use_sl and ((direction > 0 and low <= stop) or (direction < 0 and high >= stop))
    reaches_take = use_tp and ((direction > 0 and high >= take) or (direction < 0 and low <= take))
    if held_from_before and use_sl and direction * (open_ - stop) <= 0.0:
        _close_position(state, trades, open_ * (1.0 - slip * direction), bar, 1, pct, fixed)
    elif held_from_before and use_tp and direction * (open_ - take) >= 0.0:
        _close_position(state, trades, open_, bar, 2, pct, fixed)
    elif reaches_stop:
        _close_position(state, trades, stop * (1.0 - slip * direction), bar, 1, pct, fixed)
    elif reaches_take:
        _close_position(state, trades, take, bar, 2, pct, fixed)


@njit(cache=True)
def _simulate(
    open_: NDArray[np.float64],
    high: NDArray[np.float64],
    low: NDArray[np.float64],
    close: NDArray[np.float64],
    long_entries: NDArray[np.bool_],
    long_exits: NDArray[np.bool_],
    short_entries: NDArray[np.bool_],
    short_exits: NDArray[np.bool_],
    costs: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], float]:  # pragma: no cover - compiled
    n = close.size
    cash0, pct, commission_fixed, slip, sizing, sizing_value, fractional, fill_close, stop_loss, take_profit = _unpack(
        costs
    )
    equity, held = np.empty(n), np.empty(n)
    # Every trade opens on an entry signal, so their count bounds the table (one more for safety).
    trades = np.full((np.count_nonzero(long_entries) + np.count_nonzero(short_entries) + 1, TRADE_COLUMNS), np.nan)
    state = np.zeros(7)
    state[CASH] = cash0
    has_signal = long_entries | long_exits | short_entries | short_exits
    stops = not (math.isnan(stop_loss) and math.isnan(take_profit))
    for i in range(n):
        # Helpers run only on bars with a signal: numba pays atomic reference counting for every array
        # passed to a call, which would otherwise cost more than the rest of the bar.
        if not fill_close and i > 0 and has_signal[i - 1]:  # yesterday's signals at today's open
            _apply_signals(
                state,
                trades,
                open_[i],
                i,
                long_entries[i - 1],
                long_exits[i - 1],
                short_entries[i - 1],
                short_exits[i - 1],
                slip,
                sizing,
                sizing_value,
                pct,
                commission_fixed,
                fractional,
            )
        if stops and state[POSITION] != 0.0 and not (fill_close and state[ENTERED_AT] == i):
            _check_exits(
                state, trades, i, open_[i], high[i], low[i], stop_loss, take_profit, slip, pct, commission_fixed
            )
        if fill_close and has_signal[i]:  # today's signals at today's close
            _apply_signals(
                state,
                trades,
                close[i],
                i,
                long_entries[i],
                long_exits[i],
                short_entries[i],
                short_exits[i],
                slip,
                sizing,
                sizing_value,
                pct,
                commission_fixed,
                fractional,
            )
        equity[i] = state[CASH] + state[POSITION] * close[i]
        held[i] = state[POSITION]
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


def simulate(
    open_: NDArray[np.float64],
    high: NDArray[np.float64],
    low: NDArray[np.float64],
    close: NDArray[np.float64],
    long_entries: NDArray[np.bool_],
    long_exits: NDArray[np.bool_],
    short_entries: NDArray[np.bool_],
    short_exits: NDArray[np.bool_],
    costs: Costs,
) -> EngineResult:
    """Run the compiled simulator (compiled once, then cached on disk)."""
    equity, held, trades, fees = _simulate(
        np.ascontiguousarray(open_, dtype=np.float64),
        np.ascontiguousarray(high, dtype=np.float64),
        np.ascontiguousarray(low, dtype=np.float64),
        np.ascontiguousarray(close, dtype=np.float64),
        np.ascontiguousarray(long_entries, dtype=np.bool_),
        np.ascontiguousarray(long_exits, dtype=np.bool_),
        np.ascontiguousarray(short_entries, dtype=np.bool_),
        np.ascontiguousarray(short_exits, dtype=np.bool_),
        costs.vector(),
    )
    return EngineResult(equity, held, trades, float(fees))
