"""Python strategies: the documented example, files with mistakes, and installed packages found through
the ``quantdesk.strategies`` entry-point group."""

from pathlib import Path

import numpy as np
import pytest

from quantdesk.backtest import plugins, strategies
from quantdesk.backtest.engine import Costs
from quantdesk.backtest.service import simulate
from quantdesk.core.errors import ValidationFailed
from tests.factories import make_bars

EXAMPLES = Path(__file__).parents[2] / "examples" / "strategies"
BARS = make_bars(1_000, seed=11).to_frame()


def test_the_documented_example_runs_and_means_what_it_says():
    strategy = plugins.from_file(EXAMPLES / "donchian_breakout.py")
    params = strategies.bind(strategy, {"n": 30})
    assert (strategy.name, strategy.kind, params) == ("donchian_breakout", "python", {"n": 30.0, "m": 10.0})
    assert strategy.warmup(params) == 32
    outcome = simulate(BARS, strategy, params, Costs(), False, 252)
    assert outcome.metrics.trades > 0
    upper = BARS["high"].rolling(30).max().shift(1).to_numpy()
    entries = strategies.signals(BARS, strategy, params).long_entries
    assert np.array_equal(entries, BARS["close"].to_numpy() > upper)
    with pytest.raises(ValidationFailed, match="n must be a whole number from 2 to 500"):
        strategies.bind(strategy, {"n": 1})


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("PARAMS = {}\n", "defines no signals(bars, params) function"),
        ("def signals(bars, params):\n    return 1\n", "must return (entries, exits) or a dict"),
        ("def signals(bars, params):\n    return bars.close[:5] > 0, bars.close > 0\n", "one value per bar"),
        ("def signals(bars, params):\n    return {'entries': bars.close > 0}\n", "must return long_entries"),
        ("def signals(bars, params):\n    raise KeyError('volume2')\n", "failed: KeyError: 'volume2'"),
        ("import nothing_here\n", "failed to load: ModuleNotFoundError"),
        (
            "PARAMS = {'n': {'min': 1}}\ndef signals(bars, params):\n    return bars.close > 0, bars.close < 0\n",
            "must be an object with default",
        ),
    ],
)
def test_a_broken_module_is_a_clear_error(tmp_path: Path, source: str, message: str):
    path = tmp_path / "mine.py"
    path.write_text(source)
    with pytest.raises(ValidationFailed) as caught:
        load_and_run(path)
    assert message in caught.value.detail


def load_and_run(path: Path) -> None:
    strategy = plugins.from_file(path)
    strategies.signals(BARS, strategy, strategies.bind(strategy, None))


def test_a_dict_of_four_signals_gives_the_strategy_its_own_short_rules(tmp_path: Path):
    path = tmp_path / "both_ways.py"
    path.write_text(
        "def signals(bars, params):\n"
        "    up = bars.close > bars.close.shift(1)\n"
        "    return {'long_entries': up, 'long_exits': ~up, 'short_entries': ~up & (bars.close < 100),\n"
        "            'short_exits': up.to_numpy().astype(int)}\n"
    )
    strategy = plugins.from_file(path)
    sig = strategies.signals(BARS, strategy, {}, allow_short=True)
    up = (BARS["close"] > BARS["close"].shift(1)).to_numpy()
    assert np.array_equal(sig.short_entries, ~up & (BARS["close"].to_numpy() < 100))
    assert np.array_equal(sig.short_exits, up)
    assert not strategies.signals(BARS, strategy, {}).short_entries.any()  # long only: shorts ignored


def test_other_files_are_refused(tmp_path: Path):
    (tmp_path / "rules.yaml").write_text("name: x")
    with pytest.raises(ValidationFailed, match=r"a Python module \(.py\) or a rule document \(.json\)"):
        plugins.from_file(tmp_path / "rules.yaml")
    with pytest.raises(ValidationFailed, match="no strategy file"):
        plugins.from_file(tmp_path / "missing.py")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ValidationFailed, match="is not a JSON rule document"):
        plugins.from_file(tmp_path / "broken.json")


def test_installed_strategies_are_found_by_entry_point(installed_package: Path, caplog: pytest.LogCaptureFixture):
    found = plugins.installed()
    assert list(found) == ["channel_breakout"]  # the broken one and the one shadowing a built-in are left out
    assert (found["channel_breakout"].name, found["channel_breakout"].kind) == ("channel_breakout", "python")
    assert "a built-in has its name" in caplog.text
    assert "broken" in caplog.text
