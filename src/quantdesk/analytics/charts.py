"""PNG charts of a bar series: price (candles, or a line for long ranges) with overlays, volume,
and a returns or volatility panel.

Pure rendering: a DataFrame in, PNG bytes out. It uses matplotlib's object API with the Agg canvas
and never pyplot, so figures share no global state and can be drawn in worker threads. The same
input always gives the same bytes.
"""

import io

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter

from quantdesk.analytics import indicators, series
from quantdesk.analytics.charts_spec import MAX_CANDLES, ChartSpec
from quantdesk.analytics.enriched import IndicatorRequest

UP, DOWN, INK = "#1a9850", "#d73027", "#1f2937"
OVERLAY_COLORS = ("#2563eb", "#9333ea", "#ea580c", "#0891b2", "#ca8a04")


def render_chart(bars: pd.DataFrame, spec: ChartSpec) -> bytes:
    out = io.BytesIO()
    draw_chart(bars, spec).savefig(out, format="png", metadata={"Software": None})
    return out.getvalue()


def draw_chart(bars: pd.DataFrame, spec: ChartSpec) -> Figure:
    """The figure: price with overlays, volume, and the lower panel, over ``bars[first_row:]``."""
    figure = Figure(figsize=(spec.width_px / spec.dpi, spec.height_px / spec.dpi), dpi=spec.dpi)
    FigureCanvasAgg(figure)
    price, volume, lower = figure.subplots(
        3, 1, sharex=True, gridspec_kw={"height_ratios": [3.2, 1, 1.2], "hspace": 0.06}
    )
    shown = bars.iloc[spec.first_row :]
    x = date2num(pd.DatetimeIndex(shown.index).tz_convert(None).to_pydatetime())
    _draw_price(price, bars, x, spec)
    _draw_volume(volume, shown, x)
    _draw_lower(lower, bars, x, spec)
    locator = AutoDateLocator()
    lower.xaxis.set_major_locator(locator)
    lower.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    figure.suptitle(spec.title, fontsize=13, x=0.01, ha="left")
    figure.subplots_adjust(left=0.07, right=0.98, top=0.93, bottom=0.07)
    return figure


def _bar_width(x: np.ndarray) -> float:
    return float(np.median(np.diff(x))) * 0.7 if x.size > 1 else 0.5


def _draw_price(ax: Axes, bars: pd.DataFrame, x: np.ndarray, spec: ChartSpec) -> None:
    shown = bars.iloc[spec.first_row :]
    # Bands first, so the lines of other overlays stay visible on top of them.
    ordered = sorted(zip(spec.overlays, OVERLAY_COLORS, strict=False), key=lambda item: item[0].name != "bollinger")
    for request, color in ordered:
        _draw_overlay(ax, bars["close"], x, request, color, spec.first_row)
    if len(shown) <= MAX_CANDLES:
        rising = (shown["close"] >= shown["open"]).to_numpy()
        colors = np.where(rising, UP, DOWN)
        ax.vlines(x, shown["low"], shown["high"], colors=colors.tolist(), linewidth=0.8)
        bottom = np.minimum(shown["open"], shown["close"])
        height = np.maximum((shown["close"] - shown["open"]).abs(), 1e-12)
        ax.bar(x, height, _bar_width(x), bottom, color=colors, linewidth=0)
    else:
        ax.plot(x, shown["close"], color=INK, linewidth=1.0, label="close")
    if spec.overlays:
        ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.set_ylabel("price")
    ax.grid(alpha=0.25)


def _draw_overlay(
    ax: Axes, close: pd.Series, x: np.ndarray, request: IndicatorRequest, color: str, first_row: int
) -> None:
    window = int(request.params[0])
    if request.name == "bollinger":
        bands = indicators.bollinger(close, window, request.params[1]).iloc[first_row:]
        ax.plot(x, bands["middle"], color=color, linewidth=0.9, label=request.label)
        ax.fill_between(x, bands["lower"], bands["upper"], color=color, alpha=0.12, linewidth=0)
        return
    line = indicators.sma(close, window) if request.name == "sma" else indicators.ema(close, window)
    ax.plot(x, line.iloc[first_row:], color=color, linewidth=1.0, label=request.label)


def _columns(ax: Axes, x: np.ndarray, heights: pd.Series, colors: np.ndarray, alpha: float = 1.0) -> None:
    """Bars from zero: rectangles when few, one line collection when many (thousands of patches are slow)."""
    if x.size <= MAX_CANDLES:
        ax.bar(x, heights, _bar_width(x), color=colors, alpha=alpha, linewidth=0)
    else:
        ax.vlines(x, 0, heights, colors=colors.tolist(), alpha=alpha, linewidth=0.6)


def _draw_volume(ax: Axes, bars: pd.DataFrame, x: np.ndarray) -> None:
    rising = (bars["close"] >= bars["open"]).to_numpy()
    _columns(ax, x, bars["volume"], np.where(rising, UP, DOWN), alpha=0.6)
    ax.yaxis.set_major_formatter(EngFormatter(sep=""))
    ax.set_ylabel("volume")
    ax.grid(alpha=0.25)


def _draw_lower(ax: Axes, bars: pd.DataFrame, x: np.ndarray, spec: ChartSpec) -> None:
    if spec.lower_panel == "volatility":
        vol = series.volatility(bars["close"], spec.volatility_window, spec.periods_per_year) * 100
        vol = vol.iloc[spec.first_row :]
        ax.plot(x, vol, color="#7c3aed", linewidth=1.0)
        label = "annualised" if spec.periods_per_year else "per bar"
        ax.set_ylabel(f"volatility {spec.volatility_window} % ({label})", fontsize=8)
    else:
        returns = (series.simple_returns(bars["close"]).iloc[spec.first_row :] * 100).fillna(0.0)
        _columns(ax, x, returns, np.where(returns >= 0, UP, DOWN))
        ax.set_ylabel("return %")
    ax.grid(alpha=0.25)
