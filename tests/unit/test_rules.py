"""The rule language: what it parses, how it refuses, what it computes, and the built-ins written as rules
trading exactly as the built-ins do."""

import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantdesk.analytics import indicators
from quantdesk.backtest import rule_eval, rule_syntax, strategies
from quantdesk.backtest.engine import Costs
from quantdesk.backtest.rule_strategy import compile_document
from quantdesk.backtest.rule_syntax import Kind, RuleError
from quantdesk.backtest.service import simulate
from quantdesk.core.errors import ValidationFailed
from quantdesk.market.demo import DEMO_SET, daily_series
from tests.factories import make_bars

WINDOW = {"min": 1, "max": 10_000}
# The five built-ins, written in the rule language (docs/strategies.md shows the same documents).
BUILT_INS_AS_RULES: dict[str, dict[str, Any]] = {
    "sma_cross": {
        "name": "golden_cross",
        "params": {"fast": {"default": 20, **WINDOW}, "slow": {"default": 50, **WINDOW}},
        "entry": "crosses_above(sma(close, fast), sma(close, slow))",
        "exit": "crosses_below(sma(close, fast), sma(close, slow))",
        "constraints": ["fast < slow"],
    },
    "ema_cross": {
        "name": "ema_cross_rule",
        "params": {"fast": {"default": 12, **WINDOW}, "slow": {"default": 26, **WINDOW}},
        "entry": "crosses_above(ema(close, fast), ema(close, slow))",
        "exit": "crosses_below(ema(close, fast), ema(close, slow))",
        "constraints": ["fast < slow"],
    },
    "rsi_reversion": {
        "name": "rsi_reversion_rule",
        "params": {
            "window": {"default": 14, "min": 2, "max": 1000},
            "lower": {"default": 30, "min": 0, "max": 100, "integer": False},
            "upper": {"default": 70, "min": 0, "max": 100, "integer": False},
        },
        "entry": "crosses_below(rsi(close, window), lower)",
        "exit": "crosses_above(rsi(close, window), upper)",
        "constraints": ["lower < upper"],
    },
    "bollinger_breakout": {
        "name": "bollinger_rule",
        "params": {"window": {"default": 20, **WINDOW}, "k": {"default": 2.0, "min": 0.1, "max": 10}},
        "entry": "crosses_above(close, bb_upper(close, window, k))",
        "exit": "crosses_below(close, bb_middle(close, window))",
    },
    "buy_and_hold": {"name": "hold", "params": {}, "entry": "true"},
}
PARAMS: dict[str, list[dict[str, float]]] = {
    "sma_cross": [{"fast": 5, "slow": 20}, {"fast": 20, "slow": 50}],
    "ema_cross": [{"fast": 3, "slow": 10}, {"fast": 12, "slow": 26}],
    "rsi_reversion": [{"window": 7, "lower": 25, "upper": 75}, {"window": 14}],
    "bollinger_breakout": [{"window": 10, "k": 1.5}, {"window": 20}],
    "buy_and_hold": [{}],
}


def same_trades(bars: pd.DataFrame, name: str, params: dict[str, float], allow_short: bool) -> None:
    built_in, bound = strategies.resolve(name, params)
    rule = compile_document(BUILT_INS_AS_RULES[name])
    expected = simulate(bars, built_in, bound, Costs(), allow_short, 252).result.trades
    got = simulate(bars, rule, strategies.bind(rule, params), Costs(), allow_short, 252).result.trades
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("name", list(BUILT_INS_AS_RULES))
@pytest.mark.parametrize("allow_short", [False, True], ids=["long", "long-short"])
def test_the_built_ins_as_rules_trade_exactly_as_the_built_ins_on_the_demo_data(name, allow_short):
    for demo in DEMO_SET:
        bars = daily_series(demo, date(2026, 12, 1)).to_frame()
        for params in PARAMS[name]:
            same_trades(bars, name, params, allow_short)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), rows=st.integers(60, 800), allow_short=st.booleans())
def test_the_built_ins_as_rules_trade_exactly_as_the_built_ins_on_random_series(seed, rows, allow_short):
    bars = make_bars(rows, seed=seed).to_frame()
    for name, choices in PARAMS.items():
        for params in choices:
            same_trades(bars, name, params, allow_short)


NAMES = frozenset({"n", "lo"})


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        ("crosses_below(rsl(close, n), lo)", 15, "unknown function 'rsl'; did you mean 'rsi'?"),
        ("cloze > 1", 1, "unknown name 'cloze'; did you mean 'close'?"),
        ("sma(close) > 1", 1, "sma takes 2 argument(s), got 1"),
        ("rsi(close, n)", 1, "a condition (true or false per bar) is needed here, not a series"),
        ("sma(close, close) > 1", 12, "needs a whole number of bars"),
        ("close > 1 and 5", 15, "'and' needs conditions on both sides, not a number"),
        ("shift(close, -1) < close", 14, "looks back only"),
        ("close ** 2 > 1", 1, "'**' is not part of the rule language"),
        ("close.real > 1", 1, "'.' (an attribute) is not part of the rule language"),
        ("close[1] > 1", 1, "'[...]' (indexing) is not part of the rule language"),
        ("'text' == close", 1, "'text' is not a number"),
        ("__import__('os')", 1, "unknown function '__import__'"),
        ("(lambda: 1)()", 1, "only the rule language's functions can be called"),
        ("1 < close < 2", 1, "compare two things at a time"),
        ("bars_held > 3", 1, "bars_held is allowed only in an exit"),
        ("close >", 7, "the expression ends too soon"),
        ("close = 1", 7, "syntax error: invalid syntax"),
        ("close > 1 && open < 2", 12, "syntax error"),
        ("close >> 1 > 0", 1, "'>>' is not part of the rule language"),
        ("   ", 1, "the expression is empty"),
        ("rsi(close, n=3) > 1", 12, "takes its arguments by position"),
        ("n > 1 and cls > 1", 11, "unknown name 'cls'"),
        ("é > 1", 1, "unknown name 'é'"),
    ],
)
def test_errors_say_what_and_where(text, position, message):
    with pytest.raises(RuleError) as caught:
        rule_syntax.parse(text, NAMES, "entry", Kind.condition)
    error = caught.value.errors[0]
    assert message in error["message"]
    assert (error["field"], error["position"]) == ("entry", position)
    assert caught.value.detail.startswith(f"entry at {position}: ")


def test_length_and_depth_are_limited():
    with pytest.raises(RuleError, match="at most 2,000"):
        rule_syntax.parse("close > 1 and " * 200 + "true", NAMES)
    with pytest.raises(RuleError, match="nests more than 32"):
        rule_syntax.parse("abs(" * 40 + "close" + ")" * 40 + " > 1", NAMES)


def test_bars_held_is_a_holding_time_only_as_a_top_level_or_term():
    exit_ = rule_syntax.parse_exit("crosses_above(rsi(close, n), 70) or bars_held >= 20", NAMES)
    assert exit_.condition is not None
    assert exit_.max_bars_held is not None
    assert rule_eval.constant(exit_.max_bars_held.tree, {}) == 20
    later = rule_syntax.parse_exit("bars_held > n", NAMES).max_bars_held
    assert later is not None
    assert rule_eval.constant(later.tree, {"n": 4}) == 5
    with pytest.raises(RuleError, match="bars_held is allowed only"):
        rule_syntax.parse_exit("close > 1 and bars_held >= 3", NAMES)


BARS = make_bars(600, seed=4).to_frame()


def evaluate(text: str, params: dict[str, float] | None = None) -> np.ndarray:
    tree = rule_syntax.parse(text, frozenset(params or {})).tree
    return rule_eval.Evaluator(BARS).series(tree, params or {})


def test_functions_follow_the_analytics_formulas():
    close = BARS["close"].reset_index(drop=True)
    high, low = BARS["high"].reset_index(drop=True), BARS["low"].reset_index(drop=True)
    macd = indicators.macd(close, 5, 13, 4)
    bands = indicators.bollinger(close, 10, 1.5)
    expected = {
        "sma(close, 10)": indicators.sma(close, 10),
        "ema(close, 10)": indicators.ema(close, 10),
        "rsi(close, 9)": indicators.rsi(close, 9),
        "macd_line(close, 5, 13)": macd["line"],
        "macd_signal(close, 5, 13, 4)": macd["signal"],
        "macd_hist(close, 5, 13, 4)": macd["hist"],
        "bb_upper(close, 10, 1.5)": bands["upper"],
        "bb_middle(close, 10)": bands["middle"],
        "bb_lower(close, 10, 1.5)": bands["lower"],
        "atr(7)": indicators.atr(high, low, close, 7),
        "highest(high, 5)": high.rolling(5).max(),
        "lowest(low, 5)": low.rolling(5).min(),
        "shift(close, 3)": close.shift(3),
        "rolling_mean(close, 4)": close.rolling(4).mean(),
        "rolling_std(close, 4)": close.rolling(4).std(),
        "returns(close)": close.pct_change(fill_method=None),
        "returns(close, 5)": close / close.shift(5) - 1,
        "abs(close - open)": (close - BARS["open"].reset_index(drop=True)).abs(),
        "max(high - low, 1) / 2": np.maximum(high - low, 1) / 2,
        "-min(close, 100)": -np.minimum(close, 100),
    }
    for text, values in expected.items():
        np.testing.assert_allclose(evaluate(text), np.asarray(values, dtype=float), rtol=1e-12, err_msg=text)


def test_comparisons_with_an_undefined_value_are_false():
    entries = rule_eval.Evaluator(BARS).condition(rule_syntax.parse("sma(close, 50) < close", NAMES).tree, {})
    assert not entries[:49].any()


def test_each_distinct_indicator_is_computed_once_per_run_and_per_sweep():
    rule = compile_document(
        {
            "name": "twice",
            "params": {"n": {"default": 10, "min": 2, "max": 50}, "m": {"default": 30, "min": 2, "max": 90}},
            "entry": "crosses_above(sma(close, n), sma(close, m)) and rsi(close, n) < 70",
            "exit": "crosses_below(sma(close, n), sma(close, m)) or rsi(close, n) > 90",
        }
    )
    cache: strategies.Indicators = {}
    strategies.signals(BARS, rule, {"n": 10, "m": 30}, True, cache)
    assert cache["computed"] == {"sma": 2, "rsi": 1}
    for n in (5, 10, 15):
        for m in (20, 30, 40):
            strategies.signals(BARS, rule, {"n": n, "m": m}, False, cache)
    assert cache["computed"] == {"sma": 6, "rsi": 3}  # sma for 5, 10, 15, 20, 30, 40; rsi for 5, 10, 15


def test_a_document_is_checked_whole():
    good = {"name": "x", "params": {"n": {"default": 5, "min": 1, "max": 10}}, "entry": "close > sma(close, n)"}
    assert compile_document(good).params["n"].integer
    bad: list[tuple[dict[str, Any], str]] = [
        ({**good, "name": "Bad Name"}, "lower-case letters"),
        ({**good, "entry": None}, "entry must be an expression"),
        ({**good, "extra": 1}, "unknown field(s) extra"),
        ({**good, "params": {"close": {"default": 1}}}, "not a column, function or keyword"),
        ({**good, "params": {"n": {"default": 50, "min": 1, "max": 10}}}, "min <= default <= max"),
        ({**good, "params": {"n": {"default": 2.5, "integer": True}}}, "needs a whole default"),
        ({**good, "constraints": ["close > 1"]}, "a constraint compares parameters and numbers only"),
        ({**good, "entry": "close > sma(close, n - 5)"}, "with the default parameters, sma needs a whole number"),
        ({**good, "stop_loss_pct": 0}, "stop_loss_pct must be a percentage"),
        ({**good, "exit": "bars_held >= 3 or bars_held >= 4"}, "bars_held may appear once"),
    ]
    for document, message in bad:
        with pytest.raises(ValidationFailed) as caught:
            compile_document(document)
        assert message in caught.value.detail, document


def test_constraints_and_windows_refuse_parameters_before_a_run():
    rule = compile_document(BUILT_INS_AS_RULES["sma_cross"])
    with pytest.raises(ValidationFailed, match="break the constraint `fast < slow`"):
        strategies.bind(rule, {"fast": 50, "slow": 20})
    shifted = compile_document(
        {"name": "s", "params": {"k": {"default": 1, "min": -5, "max": 5}}, "entry": "close > shift(close, k)"}
    )
    with pytest.raises(ValidationFailed, match="looks back only"):
        strategies.bind(shifted, {"k": -2})


def test_every_document_in_the_strategies_guide_compiles_and_runs():
    guide = (Path(__file__).parents[2] / "docs" / "strategies.md").read_text()
    documents = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", guide, re.DOTALL)]
    documents = [d for d in documents if "name" in d]
    assert len(documents) >= 6
    for document in documents:
        strategy = compile_document(document)
        outcome = simulate(BARS, strategy, strategies.bind(strategy, None), Costs(), False, 252)
        assert outcome.metrics.trades >= 1, document["name"]
