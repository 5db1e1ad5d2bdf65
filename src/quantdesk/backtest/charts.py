"""The equity chart of a backtest: equity against buy and hold, trade markers, and the drawdown."""

import io

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

EQUITY, HOLD, ENTRY, EXIT, LOSS = "#1f2937", "#9ca3af", "#16a34a", "#dc2626", "#dc2626"


def render_equity(
    equity: pd.Series,
    buy_and_hold: pd.Series | None,
    entries: list[pd.Timestamp],
    exits: list[pd.Timestamp],
    title: str,
    width_px: int = 1200,
    height_px: int = 700,
) -> bytes:
    figure = Figure(figsize=(width_px / 100, height_px / 100), dpi=100)
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1], "hspace": 0.06})
    x = pd.DatetimeIndex(equity.index).tz_convert(None)
    top.plot(x, equity.to_numpy(), color=EQUITY, linewidth=1.2, label="strategy")
    if buy_and_hold is not None:
        top.plot(
            pd.DatetimeIndex(buy_and_hold.index).tz_convert(None),
            buy_and_hold.to_numpy(),
            color=HOLD,
            linewidth=1.0,
            label="buy and hold",
        )
    for stamps, marker, color, label in ((entries, "^", ENTRY, "entry"), (exits, "v", EXIT, "exit")):
        if stamps:
            at = equity.reindex(pd.DatetimeIndex(stamps), method="nearest")
            top.scatter(
                pd.DatetimeIndex(at.index).tz_convert(None),
                at.to_numpy(),
                marker=marker,
                color=color,
                s=28,
                zorder=3,
                label=label,
            )
    top.legend(loc="upper left", fontsize=8, frameon=False)
    top.set_ylabel("equity")
    top.grid(alpha=0.25)
    drawdown = (equity / equity.cummax() - 1.0) * 100
    bottom.fill_between(x, drawdown.to_numpy(), 0, color=LOSS, alpha=0.35, linewidth=0)
    bottom.set_ylabel("drawdown %")
    bottom.grid(alpha=0.25)
    locator = AutoDateLocator()
    bottom.xaxis.set_major_locator(locator)
    bottom.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    figure.suptitle(title, fontsize=13, x=0.01, ha="left")
    figure.subplots_adjust(left=0.07, right=0.98, top=0.93, bottom=0.07)
    out = io.BytesIO()
    figure.savefig(out, format="png", metadata={"Software": None})
    return out.getvalue()


def trade_times(trades: list[dict[str, object]]) -> tuple[list[pd.Timestamp], list[pd.Timestamp]]:
    entries = [pd.Timestamp(str(t["entry_time"])) for t in trades]
    exits = [pd.Timestamp(str(t["exit_time"])) for t in trades if t.get("exit_time")]
    return entries, exits


def equity_series(stamps: np.ndarray, equity: np.ndarray) -> pd.Series:
    index = pd.DatetimeIndex(stamps.astype("datetime64[us]")).tz_localize("UTC")
    return pd.Series(equity, index=index)


def render_heatmap(rows: list[dict[str, object]], x: str, y: str, metric: str, title: str) -> bytes:
    """The metric over a two-parameter grid; invalid combinations (fast >= slow) stay blank."""
    table = pd.DataFrame(rows).pivot_table(index=y, columns=x, values=metric, aggfunc="first")
    figure = Figure(figsize=(10, 7), dpi=100)
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    values = table.to_numpy(dtype=float)
    image = ax.imshow(np.ma.masked_invalid(values), origin="lower", aspect="auto", cmap="RdYlGn")
    ax.set_xticks(range(table.shape[1]), [f"{v:g}" for v in table.columns], rotation=90, fontsize=7)
    ax.set_yticks(range(table.shape[0]), [f"{v:g}" for v in table.index], fontsize=7)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    figure.colorbar(image, ax=ax, label=metric)
    if np.isfinite(values).any():
        row, col = np.unravel_index(np.nanargmax(values), values.shape)
        ax.scatter([col], [row], marker="*", s=160, color="black", label=f"best {metric}")
        ax.legend(loc="upper left", fontsize=8, frameon=True)
    figure.suptitle(title, fontsize=12, x=0.01, ha="left")
    out = io.BytesIO()
    figure.savefig(out, format="png", metadata={"Software": None})
    return out.getvalue()
