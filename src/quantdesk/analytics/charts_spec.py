"""What a chart shows, without importing matplotlib (services describe charts; only drawing needs it)."""

from dataclasses import dataclass

from quantdesk.analytics.enriched import IndicatorRequest

MAX_CANDLES = 300  # beyond this, candles are too thin to read and a close line says more
MAX_LINE_POINTS = 5_000  # a longer range is drawn from coarser bars (a 1200-px chart shows no more)
OVERLAY_KINDS = ("sma", "ema", "bollinger")


@dataclass(frozen=True)
class ChartSpec:
    title: str
    width_px: int = 1200
    height_px: int = 700
    overlays: tuple[IndicatorRequest, ...] = ()
    lower_panel: str = "returns"  # or "volatility"
    volatility_window: int = 20
    periods_per_year: float | None = None
    first_row: int = 0  # rows before it are history: overlays use them, the chart starts after them
    dpi: int = 100
