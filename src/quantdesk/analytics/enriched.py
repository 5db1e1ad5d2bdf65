"""The enriched table: bars plus returns, rolling statistics and indicators, columns named with
their parameters (``sma_20``, ``volatility_20``, ``normalized_100``, ``macd_signal_12_26_9``)."""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from quantdesk.analytics import indicators, series
from quantdesk.core.errors import ValidationFailed


class Memo:
    """Columns shared between outputs (SMA-20 is also the rolling mean and Bollinger's middle band)."""

    def __init__(self, bars: pd.DataFrame) -> None:
        self.bars = bars
        self.close: pd.Series = bars["close"]
        self._values: dict[tuple[object, ...], pd.Series] = {}

    def get(self, key: tuple[object, ...], compute: Callable[[], pd.Series]) -> pd.Series:
        if key not in self._values:
            self._values[key] = compute()
        return self._values[key]

    def rolling(self, window: int, stat: str) -> pd.Series:
        return self.get(("rolling", window, stat), lambda: series.rolling(self.close, window, stat))

    def population_std(self, window: int) -> pd.Series:
        """Rolling std with ddof=0, rescaled from the sample std (ddof=1) when that is already known."""
        if window == 1:
            return self.get(("pstd", 1), lambda: self.close * 0.0)
        sample = self.rolling(window, "std")
        return self.get(("pstd", window), lambda: sample * float(np.sqrt((window - 1) / window)))

    def ema(self, source: str, window: int, values: pd.Series | None = None) -> pd.Series:
        data = self.close if values is None else values
        return self.get(("ema", source, window), lambda: indicators.ema(data, window))


def _macd(memo: Memo, p: tuple[float, ...]) -> list[pd.Series]:
    fast, slow, signal = int(p[0]), int(p[1]), int(p[2])
    line = memo.ema("close", fast) - memo.ema("close", slow)
    signal_line = memo.ema(f"macd_{fast}_{slow}", signal, line)
    return [line, signal_line, line - signal_line]


def _bollinger(memo: Memo, p: tuple[float, ...]) -> list[pd.Series]:
    window, k = int(p[0]), p[1]
    middle = memo.rolling(window, "mean")
    spread = memo.population_std(window) * k
    return [middle + spread, middle, middle - spread]


@dataclass(frozen=True)
class IndicatorKind:
    params: tuple[str, ...]
    defaults: tuple[float, ...]
    integer: tuple[bool, ...]
    compute: Callable[[Memo, tuple[float, ...]], list[pd.Series]]
    columns: tuple[str, ...] = ("",)  # suffixes of the output columns; "" is the indicator's name alone


INDICATORS: dict[str, IndicatorKind] = {
    "sma": IndicatorKind(("window",), (20,), (True,), lambda m, p: [m.rolling(int(p[0]), "mean")]),
    "ema": IndicatorKind(("window",), (20,), (True,), lambda m, p: [m.ema("close", int(p[0]))]),
    "rsi": IndicatorKind(("window",), (14,), (True,), lambda m, p: [indicators.rsi(m.close, int(p[0]))]),
    "macd": IndicatorKind(("fast", "slow", "signal"), (12, 26, 9), (True, True, True), _macd, ("", "signal", "hist")),
    "bollinger": IndicatorKind(("window", "k"), (20, 2.0), (True, False), _bollinger, ("upper", "middle", "lower")),
    "atr": IndicatorKind(
        ("window",),
        (14,),
        (True,),
        lambda m, p: [indicators.atr(m.bars["high"], m.bars["low"], m.close, int(p[0]))],
    ),
}
VALID_INDICATORS = ", ".join(f"{name}:{':'.join(k.params)}" for name, k in INDICATORS.items())
MAX_WINDOW = 100_000


@dataclass(frozen=True)
class IndicatorRequest:
    name: str
    params: tuple[float, ...]

    @property
    def label(self) -> str:
        return "_".join([self.name, *(f"{v:g}" for v in self.params)])

    def column_names(self) -> list[str]:
        suffix = self.label.removeprefix(self.name)
        return [f"{self.name}{'_' + part if part else ''}{suffix}" for part in INDICATORS[self.name].columns]

    def warmup(self) -> int:
        """Bars needed before the first value (the longest window the indicator uses)."""
        if self.name == "macd":
            return int(self.params[1]) + int(self.params[2]) - 1
        return int(self.params[0]) + (1 if self.name in ("rsi", "atr") else 0)


def parse_indicators(text: str | None) -> list[IndicatorRequest]:
    """``sma:20,ema:50,rsi:14,macd:12:26:9,bollinger:20:2,atr:14``; omitted parameters take defaults."""
    if not text or not text.strip():
        return []
    return [_parse_one(part.strip()) for part in text.split(",") if part.strip()]


def _parse_one(part: str) -> IndicatorRequest:
    name, *raw = part.lower().split(":")
    kind = INDICATORS.get(name)
    if kind is None:
        raise ValidationFailed(f"unknown indicator '{name}'; valid ones: {VALID_INDICATORS}")
    if len(raw) > len(kind.params):
        raise ValidationFailed(f"'{part}' has too many parameters; the form is {name}:{':'.join(kind.params)}")
    values = list(kind.defaults)
    for position, text in enumerate(raw):
        try:
            number = float(text)
        except ValueError:
            raise ValidationFailed(f"'{part}': {kind.params[position]} '{text}' is not a number") from None
        if kind.integer[position] and not number.is_integer():
            raise ValidationFailed(f"'{part}': {kind.params[position]} must be a whole number")
        if not 0 < number <= MAX_WINDOW:
            raise ValidationFailed(f"'{part}': {kind.params[position]} must be above 0 and at most {MAX_WINDOW}")
        values[position] = number
    if name == "macd" and values[0] >= values[1]:
        raise ValidationFailed(f"'{part}': the fast window must be shorter than the slow one")
    return IndicatorRequest(name, tuple(values))


@dataclass(frozen=True)
class EnrichOptions:
    window: int = 20
    volatility_window: int = 20
    normalize_base: float = 100.0
    periods_per_year: float | None = None  # annualises volatility when set
    indicators: tuple[IndicatorRequest, ...] = ()

    def warmup(self) -> int:
        """Bars before the first complete value of every window and indicator."""
        return max([self.window, self.volatility_window + 1, *(r.warmup() for r in self.indicators)])


def check_windows(bar_count: int, options: EnrichOptions) -> None:
    """Refuse windows the data cannot fill, saying how many bars there are."""
    needs = [("window", options.window), ("volatility_window", options.volatility_window + 1)]
    needs += [(request.label, request.warmup()) for request in options.indicators]
    too_long = [(name, n) for name, n in needs if n > bar_count]
    if too_long:
        named = ", ".join(f"{name} needs {n}" for name, n in too_long)
        raise ValidationFailed(
            f"only {bar_count} bars are available in the range; {named}: widen the range or shorten the window"
        )


def enrich(bars: pd.DataFrame, options: EnrichOptions, first_row: int = 0) -> pd.DataFrame:
    """The bars from ``first_row`` on, with every derived column appended in a stable order.

    Rows before ``first_row`` are history: windows and indicators see them, but the path columns
    (cumulative return, normalised price, drawdown) start at ``first_row``, the first bar asked for.
    """
    memo = Memo(bars)
    close = memo.close
    w, vw = options.window, options.volatility_window
    columns: dict[str, pd.Series] = {name: bars[name] for name in bars.columns}
    columns |= {
        "return": series.simple_returns(close),
        "log_return": series.log_returns(close),
        **{f"rolling_{stat}_{w}": memo.rolling(w, stat) for stat in series.ROLLING_STATS},
        f"volatility_{vw}": series.volatility(close, vw, options.periods_per_year),
    }
    for request in options.indicators:
        columns |= _indicator_columns(memo, request)
    # From arrays without copying: consolidating 30 million-row columns would cost more than most
    # indicators (pandas' copy-on-write keeps the shared arrays safe).
    arrays = {name: column.to_numpy()[first_row:] for name, column in columns.items()}
    path = close.iloc[first_row:]
    arrays |= {
        "cumulative_return": series.cumulative_returns(path).to_numpy(),
        f"normalized_{options.normalize_base:g}": series.normalize(path, options.normalize_base).to_numpy(),
        "drawdown": series.drawdown(path).to_numpy(),
    }
    table = pd.DataFrame(arrays, index=bars.index[first_row:], copy=False)
    return table[_column_order(bars, options)]


def _column_order(bars: pd.DataFrame, options: EnrichOptions) -> list[str]:
    w, vw = options.window, options.volatility_window
    order = [*bars.columns, "return", "log_return", "cumulative_return"]
    order += [f"rolling_{stat}_{w}" for stat in series.ROLLING_STATS]
    order += [f"volatility_{vw}", f"normalized_{options.normalize_base:g}", "drawdown"]
    for request in options.indicators:
        order += request.column_names()
    return order


def _indicator_columns(memo: Memo, request: IndicatorRequest) -> dict[str, pd.Series]:
    outputs = INDICATORS[request.name].compute(memo, request.params)
    return dict(zip(request.column_names(), outputs, strict=True))
