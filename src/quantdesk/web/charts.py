"""Interactive charts as Plotly figures, sent to the page as JSON and drawn by the bundled Plotly.js.

Pure functions of DataFrames; the pages load the data through the services.
"""

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

UP, DOWN, HOLD, BAND = "#1a9850", "#d73027", "#888888", "rgba(49,130,189,0.18)"
PRICE_OVERLAYS = ("sma", "ema", "bollinger")  # drawn on the price; others get their own panel
RANGE_BUTTONS: list[dict[str, str | int]] = [
    {"count": 1, "label": "1m", "step": "month", "stepmode": "backward"},
    {"count": 3, "label": "3m", "step": "month", "stepmode": "backward"},
    {"count": 6, "label": "6m", "step": "month", "stepmode": "backward"},
    {"count": 1, "label": "YTD", "step": "year", "stepmode": "todate"},
    {"count": 1, "label": "1y", "step": "year", "stepmode": "backward"},
    {"step": "all", "label": "all"},
]
INTRADAY_BUTTONS: list[dict[str, str | int]] = [
    {"count": 1, "label": "1h", "step": "hour", "stepmode": "backward"},
    {"count": 6, "label": "6h", "step": "hour", "stepmode": "backward"},
    {"count": 1, "label": "1d", "step": "day", "stepmode": "backward"},
    {"step": "all", "label": "all"},
]


def _layout(figure: go.Figure, height: int, top: int = 30) -> go.Figure:
    figure.update_layout(
        height=height,
        margin={"l": 50, "r": 20, "t": top, "b": 30},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, **figure.layout.legend.to_plotly_json()},
        template="plotly_white",
        hovermode="x unified",
    )
    return figure


def _button_range(buttons: list[dict[str, str | int]], label: str, last: pd.Timestamp) -> list[str] | None:
    """The x range the button ``label`` selects back from ``last``, as Plotly computes it; None for "all"
    or a range no button offers."""
    button = next((b for b in buttons if b["label"] == label and b.get("stepmode") == "backward"), None)
    if button is None:
        return None
    step, count = str(button["step"]), int(button["count"])
    offsets = {"hour": pd.DateOffset(hours=count), "day": pd.DateOffset(days=count)}
    offsets |= {"month": pd.DateOffset(months=count), "year": pd.DateOffset(years=count)}
    first = last - offsets[step]
    form = "%Y-%m-%d" if first.normalize() == first and last.normalize() == last else "%Y-%m-%d %H:%M:%S"
    return [first.strftime(form), last.strftime(form)]


def _times(index: pd.Index) -> list[str]:
    return [stamp.isoformat() for stamp in pd.DatetimeIndex(index).tz_convert(None)]


RSI_BOUNDS = (30, 70)  # oversold and overbought, as RSI charts draw them


def candles(
    table: pd.DataFrame, symbol: str, indicator_columns: list[str], intraday: bool, span: str = "all"
) -> go.Figure:
    """Candles with the chosen overlays, volume below, and a panel for oscillators (RSI, MACD, ATR). The
    range button of ``span`` (the range the page loaded) is the one shown active."""
    overlays = [c for c in indicator_columns if c.startswith(PRICE_OVERLAYS)]
    oscillators = [c for c in indicator_columns if c not in overlays]
    rows = 3 if oscillators else 2
    heights = [0.6, 0.15, 0.25] if oscillators else [0.78, 0.22]
    figure = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.03, row_heights=heights)
    x = _times(table.index)
    figure.add_trace(
        go.Candlestick(
            x=x,
            open=table["open"],
            high=table["high"],
            low=table["low"],
            close=table["close"],
            name=symbol,
            increasing_line_color=UP,
            decreasing_line_color=DOWN,
        ),
        row=1,
        col=1,
    )
    for column in overlays:
        figure.add_trace(go.Scatter(x=x, y=table[column], mode="lines", name=column, line={"width": 1.3}), 1, 1)
    colours = np.where(table["close"].to_numpy() >= table["open"].to_numpy(), UP, DOWN)
    figure.add_trace(go.Bar(x=x, y=table["volume"], name="volume", marker_color=colours, showlegend=False), 2, 1)
    for column in oscillators:
        figure.add_trace(go.Scatter(x=x, y=table[column], mode="lines", name=column, line={"width": 1.2}), 3, 1)
    if oscillators:
        figure.update_yaxes(title_text=", ".join(oscillators), row=3, col=1)
        if any(column.startswith("rsi") for column in oscillators):
            for level in RSI_BOUNDS:
                figure.add_hline(y=level, line={"dash": "dot", "width": 1, "color": HOLD}, row=3, col=1)
    figure.update_xaxes(rangeslider_visible=False)
    buttons = INTRADAY_BUTTONS if intraday else RANGE_BUTTONS
    selector = {"buttons": buttons, "x": 0, "y": 1.0, "yanchor": "bottom"}
    figure.update_xaxes(rangeselector=selector, row=1, col=1)
    shown = _button_range(buttons, span, pd.Timestamp(x[-1])) if x else None
    if shown is not None:
        # Plotly lights the button whose range is the one shown: the page's range, not "all" of what it loaded.
        figure.update_xaxes(range=shown, autorange=False)  # every panel: their x axes are matched
    # The range buttons sit on the left above the chart, the legend on the right.
    figure.update_layout(legend={"x": 1, "xanchor": "right", "y": 1.0, "yanchor": "bottom"})
    figure.update_yaxes(title_text="price", row=1, col=1)
    figure.update_yaxes(title_text="volume", row=2, col=1)
    return _layout(figure, 640 if oscillators else 540, top=60)


def equity(curve: pd.DataFrame, hold: pd.Series | None, trades: list[dict[str, Any]]) -> go.Figure:
    """Equity against buy and hold, entry and exit markers on the equity, and the drawdown below."""
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.04, row_heights=[0.72, 0.28])
    x = _times(curve.index)
    figure.add_trace(go.Scatter(x=x, y=curve["equity"], mode="lines", name="strategy", line={"width": 1.6}), 1, 1)
    if hold is not None:
        figure.add_trace(
            go.Scatter(x=_times(hold.index), y=hold, mode="lines", name="buy and hold", line={"color": HOLD}), 1, 1
        )
    for key, name, symbol, colour in (
        ("entry_time", "entries", "triangle-up", UP),
        ("exit_time", "exits", "triangle-down", DOWN),
    ):
        stamps = pd.DatetimeIndex([t[key] for t in trades if t.get(key)])
        if len(stamps):
            at = curve["equity"].reindex(stamps, method="ffill")
            figure.add_trace(
                go.Scatter(
                    x=_times(stamps), y=at, mode="markers", name=name, marker={"symbol": symbol, "color": colour}
                ),
                1,
                1,
            )
    figure.add_trace(
        go.Scatter(x=x, y=curve["drawdown_pct"], mode="lines", fill="tozeroy", name="drawdown %", line={"color": DOWN}),
        2,
        1,
    )
    figure.update_yaxes(title_text="equity", row=1, col=1)
    figure.update_yaxes(title_text="drawdown %", row=2, col=1)
    return _layout(figure, 520)


def heatmap(rows: list[dict[str, Any]], x: str, y: str, metric: str) -> go.Figure:
    """The metric over a two-parameter grid; a click on a cell opens that backtest (see sweep.js)."""
    table = pd.DataFrame(rows).pivot_table(index=y, columns=x, values=metric, aggfunc="first")
    values = table.to_numpy(dtype=float)
    z = [[None if not np.isfinite(v) else float(v) for v in row] for row in values]
    figure = go.Figure(
        go.Heatmap(
            x=[float(v) for v in table.columns],
            y=[float(v) for v in table.index],
            z=z,
            colorscale="RdYlGn",
            colorbar={"title": {"text": metric}},
            hovertemplate=f"{x}=%{{x}}<br>{y}=%{{y}}<br>{metric}=%{{z:.3f}}<extra>click to open</extra>",
        )
    )
    figure.update_xaxes(title_text=x)
    figure.update_yaxes(title_text=y)
    return _layout(figure, 520)


def forecast(history: pd.Series, predicted: pd.DataFrame, actual: pd.Series) -> go.Figure:
    """History, the prediction with its band, and the actual closes that have arrived since."""
    figure = go.Figure()
    px = _times(predicted.index)
    figure.add_trace(go.Scatter(x=px, y=predicted["upper"], mode="lines", line={"width": 0}, showlegend=False))
    figure.add_trace(
        go.Scatter(
            x=px, y=predicted["lower"], mode="lines", line={"width": 0}, fill="tonexty", fillcolor=BAND, name="band"
        )
    )
    figure.add_trace(go.Scatter(x=_times(history.index), y=history, mode="lines", name="history", line={"color": HOLD}))
    figure.add_trace(go.Scatter(x=px, y=predicted["predicted"], mode="lines+markers", name="predicted"))
    if len(actual):
        figure.add_trace(go.Scatter(x=_times(actual.index), y=actual, mode="lines+markers", name="actual"))
    figure.update_yaxes(title_text="close")
    return _layout(figure, 480)


def as_json(figure: go.Figure) -> str:
    """The figure for the page; JSON that is safe inside a <script type="application/json"> block."""
    text: str = figure.to_json(validate=False, pretty=False)
    return text.replace("</", "<\\/")
