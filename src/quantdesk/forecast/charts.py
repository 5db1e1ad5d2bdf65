"""The forecast chart: the history before the origin, the prediction with its 95% band, and the actual
closes that have arrived since."""

import io
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

HISTORY, PREDICTED, ACTUAL = "#1f2937", "#2563eb", "#ea580c"


@dataclass(frozen=True)
class ForecastPicture:
    history: pd.Series  # closes up to and including the origin
    predicted: pd.DataFrame  # predicted, lower, upper by timestamp
    actual: pd.Series  # closes after the origin, as far as they have arrived
    title: str


def _naive(index: pd.Index) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(index).tz_convert(None)


def render_forecast(picture: ForecastPicture, width_px: int = 1200, height_px: int = 600) -> bytes:
    figure = Figure(figsize=(width_px / 100, height_px / 100), dpi=100)
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    history, predicted = picture.history, picture.predicted
    ax.plot(_naive(history.index), history.to_numpy(), color=HISTORY, linewidth=1.1, label="history")
    # The prediction starts from the origin's close so that the two lines join.
    joined = pd.concat([pd.Series([history.iloc[-1]], index=history.index[-1:]), predicted["predicted"]])
    ax.plot(_naive(joined.index), joined.to_numpy(), color=PREDICTED, linewidth=1.4, label="predicted")
    ax.fill_between(
        _naive(predicted.index),
        predicted["lower"].to_numpy(),
        predicted["upper"].to_numpy(),
        color=PREDICTED,
        alpha=0.15,
        linewidth=0,
        label="95% interval",
    )
    if len(picture.actual):
        ax.plot(
            _naive(picture.actual.index),
            picture.actual.to_numpy(),
            color=ACTUAL,
            linewidth=1.2,
            marker="o",
            markersize=2.5,
            label="actual",
        )
    origin = _naive(history.index[-1:])[0]
    ax.axvline(origin, color="#9ca3af", linewidth=0.8, linestyle="--")  # type: ignore[arg-type]  # dates work
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.set_ylabel("close")
    ax.grid(alpha=0.25)
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    figure.suptitle(picture.title, fontsize=13, x=0.01, ha="left")
    figure.subplots_adjust(left=0.07, right=0.98, top=0.92, bottom=0.08)
    out = io.BytesIO()
    figure.savefig(out, format="png", metadata={"Software": None})
    return out.getvalue()
