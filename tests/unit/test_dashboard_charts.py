"""The instrument page's chart: the range the page loaded is the range shown, and RSI has its bounds."""

import numpy as np
import pandas as pd

from quantdesk.analytics.enriched import EnrichOptions, enrich, parse_indicators
from quantdesk.web import charts
from tests.factories import make_bars


def table(count: int = 400) -> pd.DataFrame:
    bars = make_bars(count).to_frame()
    return enrich(bars, EnrichOptions(indicators=tuple(parse_indicators("sma:20,rsi:14"))))


def test_the_range_the_page_asked_for_is_the_range_shown_so_its_button_is_the_active_one():
    enriched = table()
    figure = charts.candles(enriched, "ACME", ["sma_20", "rsi_14"], intraday=False, span="1y")
    last = pd.DatetimeIndex(enriched.index).tz_convert(None)[-1]
    expected = [(last - pd.DateOffset(years=1)).strftime("%Y-%m-%d"), last.strftime("%Y-%m-%d")]
    for axis in ("xaxis", "xaxis2", "xaxis3"):
        assert list(figure.layout[axis].range) == expected
        assert figure.layout[axis].autorange is False
    everything = charts.candles(enriched, "ACME", ["sma_20"], intraday=False, span="all")
    assert everything.layout.xaxis.range is None  # "all": Plotly's own autorange, its button active


def test_the_rsi_panel_is_labelled_and_has_its_30_and_70_lines():
    figure = charts.candles(table(), "ACME", ["sma_20", "rsi_14"], intraday=False)
    assert figure.layout.yaxis3.title.text == "rsi_14"
    levels = sorted(shape.y0 for shape in figure.layout.shapes)
    assert levels == [30, 70]
    assert np.isfinite(levels).all()
