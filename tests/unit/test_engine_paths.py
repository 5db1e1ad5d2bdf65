"""Which kernels run: plain Python for short inputs in a process without numba, compiled otherwise."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from quantdesk.backtest import engine, jit
from quantdesk.backtest.engine import Costs


def test_a_short_backtest_neither_imports_nor_compiles_numba():
    script = textwrap.dedent(
        """
        import sys
        import numpy as np
        from quantdesk.backtest import engine
        close = 100 + np.cumsum(np.random.default_rng(1).normal(0, 1, 2_520))
        flags = np.zeros(close.size, dtype=bool)
        entries = flags.copy()
        entries[10] = True
        result = engine.simulate(close, close, close, close, entries, flags, flags, flags, engine.Costs())
        assert len(result.trades) == 1, result.trades
        print("numba" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "False"


def test_long_inputs_and_processes_that_loaded_numba_use_the_compiled_kernels(monkeypatch: pytest.MonkeyPatch):
    calls: list[int] = []
    compiled = jit.kernels.simulate_bars

    def spy(*args: object) -> object:
        calls.append(len(args[3]))  # type: ignore[arg-type]
        return compiled(*args)

    monkeypatch.setattr(jit.kernels, "simulate_bars", spy)
    for rows in (10, engine.PLAIN_PYTHON_MAX_BARS + 1):
        close = np.full(rows, 100.0)
        flags = np.zeros(rows, dtype=bool)
        engine.simulate(close, close, close, close, flags, flags, flags, flags, Costs())
    assert calls == [10, engine.PLAIN_PYTHON_MAX_BARS + 1]  # jit is imported here, so even 10 bars compiled
    engine.simulate(close, close, close, close, flags, flags, flags, flags, Costs(), compiled=False)
    assert len(calls) == 2
