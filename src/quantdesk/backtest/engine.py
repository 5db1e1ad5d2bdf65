"""The portfolio simulator: signals and prices in, equity and trades out (the bar loop is in kernels.py).

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
- A maximum holding time (a rule strategy's ``bars_held >= N`` exit) is an exit signal decided at the
  close of the bar where the position has been held N bars (bars since its entry bar), filled like one.
- A position still open after the last bar is marked to market in the equity curve and reported as
  an open trade, not as a closed one.
"""

import math
import sys
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

from quantdesk.backtest import kernels

# Up to this many bars (about 0.4 s in plain Python) the plain kernels answer sooner than importing numba
# and loading (let alone compiling) the compiled ones; a process that has loaded them uses them for all sizes.
PLAIN_PYTHON_MAX_BARS = 250_000


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
    max_bars_held: float = math.nan  # NaN: no limit; a rule's `bars_held >= N` exit

    def vector(self) -> NDArray[np.float64]:
        """The costs as the kernels take them: one float array, read back by ``kernels.unpack_costs``."""
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
                self.max_bars_held,
            ],
            dtype=np.float64,
        )


@dataclass(frozen=True)
class EngineResult:
    equity: NDArray[np.float64]
    position: NDArray[np.float64]
    trades: NDArray[np.float64]  # one row per trade (closed and, last, an open one), TRADE_COLUMNS wide
    commissions: float


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
    compiled: bool | None = None,
) -> EngineResult:
    """Run the simulator: compiled for long inputs (or once this process has loaded the compiled kernels),
    else in plain Python; ``compiled`` forces one or the other."""
    if compiled is None:
        compiled = "quantdesk.backtest.jit" in sys.modules or close.size > PLAIN_PYTHON_MAX_BARS
    run = kernels.simulate_bars
    if compiled:
        from quantdesk.backtest import jit

        run = jit.kernels.simulate_bars
    equity, held, trades, fees = run(
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
