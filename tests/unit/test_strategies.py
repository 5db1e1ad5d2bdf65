"""Built-in strategies: their signals, their parameter checks, and the classic crossover bugs."""

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest

from quantdesk.backtest.strategies import STRATEGIES, crosses_above, resolve, signals
from quantdesk.core.errors import ValidationFailed
from tests.factories import make_bars


def frame(closes: Sequence[float]) -> pd.DataFrame:
    close = pd.Series(closes, index=pd.date_range("2024-01-01", periods=len(closes), tz="UTC"), dtype=float)
    return pd.DataFrame({"open": close, "high": close + 1, "low": close - 1, "close": close, "volume": 1.0})


def test_a_cross_needs_both_series_defined_on_both_bars():
    a = pd.Series([np.nan, 2.0, 3.0, 1.0, 4.0])
    b = pd.Series([1.0, 1.0, 2.5, 2.0, 2.0])
    assert crosses_above(a, b).tolist() == [False, False, False, False, True]  # bar 1: a was undefined before


def test_sma_cross_enters_on_the_cross_up_and_exits_on_the_cross_down():
    closes = [10, 10, 10, 10, 12, 14, 16, 12, 8, 6, 6]
    strategy, params = resolve("sma_cross", {"fast": 2, "slow": 4})
    sig = signals(frame(closes), strategy, params)
    assert np.flatnonzero(sig.long_entries).tolist() == [4]
    assert np.flatnonzero(sig.long_exits).tolist() == [8]
    assert not sig.short_entries.any()


def test_long_short_turns_the_cross_down_into_a_short():
    strategy, params = resolve("ema_cross", {"fast": 3, "slow": 8})
    bars = make_bars(300).to_frame()
    sig = signals(bars, strategy, params, allow_short=True)
    assert (sig.short_entries == sig.long_exits).all()
    assert (sig.short_exits == sig.long_entries).all()


def test_rsi_reversion_and_bollinger_breakout_produce_signals_on_real_looking_data():
    bars = make_bars(2_000, seed=5).to_frame()
    for name in ("rsi_reversion", "bollinger_breakout"):
        strategy, params = resolve(name, None)
        sig = signals(bars, strategy, params)
        assert sig.long_entries.any()
        assert sig.long_exits.any()
        assert not (sig.long_entries & sig.long_exits).any()


def test_buy_and_hold_enters_once_at_the_first_bar():
    sig = signals(frame([1, 2, 3]), *resolve("buy_and_hold", None))
    assert sig.long_entries.tolist() == [True, False, False]
    assert not sig.long_exits.any()


def test_every_strategy_has_defaults_that_resolve():
    for name in STRATEGIES:
        strategy, params = resolve(name, None)
        assert set(params) == set(strategy.params)


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("macd_magic", None, "unknown strategy 'macd_magic'; valid ones: sma_cross, ema_cross, rsi_reversion"),
        ("sma_cross", {"fast": 10, "slow": 10}, "fast (10) must be shorter than slow (10)"),
        ("sma_cross", {"fast": 50, "slow": 20}, "fast (50) must be shorter than slow (20)"),
        ("sma_cross", {"window": 5}, "unknown parameter(s) window for sma_cross; its parameters: fast, slow"),
        ("sma_cross", {"fast": 2.5}, "fast must be a whole number from 1 to 10000"),
        ("sma_cross", {"fast": 0}, "fast must be a whole number from 1 to 10000"),
        ("rsi_reversion", {"lower": 80, "upper": 20}, "lower (80) must be below upper (20)"),
        ("buy_and_hold", {"fast": 1}, "its parameters: none"),
    ],
)
def test_bad_strategies_and_parameters_say_what_is_valid(name, params, message):
    with pytest.raises(ValidationFailed) as caught:
        resolve(name, params)
    assert message in caught.value.detail


def test_warmup_is_the_longest_window_plus_one():
    strategy, params = resolve("sma_cross", {"fast": 20, "slow": 200})
    assert strategy.warmup(params) == 201
