"""Charts only reports draw: the distribution of returns."""

import io

import matplotlib

matplotlib.use("Agg")

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import NDArray


def render_returns_histogram(returns_pct: NDArray[np.float64], title: str) -> bytes:
    figure = Figure(figsize=(12, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    ax.hist(returns_pct, bins=min(80, max(10, returns_pct.size // 10)), color="#2563eb", alpha=0.8)
    mean = float(np.mean(returns_pct))
    ax.axvline(mean, color="#1f2937", linewidth=1, linestyle="--", label=f"mean {mean:.3f}%")
    ax.axvline(0, color="#9ca3af", linewidth=0.8)
    ax.set_xlabel("return per bar (%)")
    ax.set_ylabel("bars")
    ax.grid(alpha=0.25)
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    figure.suptitle(title, fontsize=12, x=0.01, ha="left")
    figure.subplots_adjust(left=0.07, right=0.98, top=0.88, bottom=0.13)
    out = io.BytesIO()
    figure.savefig(out, format="png", metadata={"Software": None})
    return out.getvalue()
