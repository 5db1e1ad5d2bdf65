"""Deterministic synthetic bars: geometric Brownian motion with volatility regimes.

Same seed, same parameters, same bars, on any machine. Each step draws a log return from the
current regime (calm or turbulent, switching as a two-state Markov chain); the bar's high and
low extend beyond open and close by a fraction of that regime's volatility, and volume rises
with the size of the move. Good for demos and benchmarks; it is not market data.
"""

from dataclasses import dataclass

import numpy as np

from quantdesk.market.bars import BarArrays
from quantdesk.market.intervals import DAY_US, MONDAY_OFFSET_US, Interval

MINUTES_PER_YEAR = 365 * 24 * 60


@dataclass(frozen=True)
class SeriesSpec:
    start_price: float = 100.0
    annual_drift: float = 0.07
    annual_volatility: float = 0.20  # long-run average over both regimes
    turbulent_multiplier: float = 2.5  # volatility of the turbulent regime relative to calm
    switch_probability: float = 0.01  # per bar, calm <-> turbulent
    base_volume: float = 1_000_000.0
    periods_per_year: float = 252.0


def bar_times(start_us: int, count: int, interval: Interval, weekdays_only: bool) -> np.ndarray:
    """``count`` bar open times from ``start_us`` on the interval grid, skipping weekends if asked."""
    step = interval.micros
    grid = MONDAY_OFFSET_US if interval is Interval.w1 else 0  # weekly bars start on Mondays
    first = grid - (-(start_us - grid) // step) * step
    if not weekdays_only:
        return first + step * np.arange(count, dtype=np.int64)
    # Draw enough calendar steps to keep ``count`` weekday bars after dropping Saturdays and Sundays.
    candidates = first + step * np.arange(int(count * 7 / 5) + 14, dtype=np.int64)
    weekday = ((candidates // DAY_US) + 3) % 7  # Monday = 0
    return candidates[weekday < 5][:count]


def generate_bars(spec: SeriesSpec, times: np.ndarray, seed: int) -> BarArrays:
    rng = np.random.default_rng(seed)
    n = times.size
    switches = rng.random(n) < spec.switch_probability
    turbulent = (np.cumsum(switches) % 2).astype(bool)
    # The chain spends half its time in each regime, so scale the calm volatility until the average
    # variance is the annual volatility asked for: the named figure is the one a user will measure.
    calm = spec.annual_volatility / np.sqrt(spec.periods_per_year * (1 + spec.turbulent_multiplier**2) / 2)
    vol = np.where(turbulent, calm * spec.turbulent_multiplier, calm)
    drift = (spec.annual_drift / spec.periods_per_year) - 0.5 * vol**2
    log_returns = drift + vol * rng.standard_normal(n)
    close = spec.start_price * np.exp(np.cumsum(log_returns))
    gap = vol * 0.1 * rng.standard_normal(n)  # the open differs a little from the previous close
    previous = np.concatenate(([spec.start_price], close[:-1]))
    open_ = previous * np.exp(gap)
    body_top = np.maximum(open_, close)
    body_bottom = np.minimum(open_, close)
    high = body_top * np.exp(np.abs(rng.standard_normal(n)) * vol * 0.5)
    low = body_bottom * np.exp(-np.abs(rng.standard_normal(n)) * vol * 0.5)
    surprise = np.abs(log_returns) / vol
    volume = np.round(spec.base_volume * rng.lognormal(0.0, 0.3, n) * (0.6 + 0.4 * surprise))
    return BarArrays.from_columns(ts=times, open=open_, high=high, low=low, close=close, volume=volume)
