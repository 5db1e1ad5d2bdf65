"""How much of a sweep's best Sharpe ratio is selection: the deflated Sharpe ratio.

Bailey and López de Prado, "The Deflated Sharpe Ratio" (2014). Of N combinations tried, the best Sharpe
is expected to be high by luck alone. With per-bar Sharpe ratios (not annualised), V the variance of the N
combinations' Sharpe ratios, γ Euler's constant and Φ the standard normal distribution:

    SR0 = sqrt(V) × ((1 − γ) Φ⁻¹(1 − 1/N) + γ Φ⁻¹(1 − 1/(N e)))      the best Sharpe expected by luck
    DSR = Φ((SR − SR0) × sqrt(T − 1) / sqrt(1 − skew × SR + (kurtosis − 1)/4 × SR²))

where SR, skew and kurtosis (not excess) are those of the best combination's T per-bar returns. DSR is the
probability that the best combination's true Sharpe ratio is above zero once the trials are accounted for:
near 1, selection explains little; near 0.5 or below, the best row may be luck.
"""

import math
from statistics import NormalDist

import numpy as np
from numpy.typing import NDArray

EULER_GAMMA = 0.5772156649015329
_NORMAL = NormalDist()


def expected_max_sharpe(variance: float, trials: int) -> float:
    """SR0: the largest of ``trials`` Sharpe ratios expected when every true Sharpe is zero."""
    if trials < 2 or variance <= 0:
        return 0.0
    first = _NORMAL.inv_cdf(1.0 - 1.0 / trials)
    second = _NORMAL.inv_cdf(1.0 - 1.0 / (trials * math.e))
    return math.sqrt(variance) * ((1.0 - EULER_GAMMA) * first + EULER_GAMMA * second)


def deflated_sharpe(
    annual_sharpes: NDArray[np.float64], best_returns: NDArray[np.float64], periods_per_year: float
) -> dict[str, float] | None:
    """The deflated Sharpe ratio of the best of a sweep's combinations, and what it is made of; None when
    it is undefined (fewer than two combinations with a Sharpe ratio, or fewer than three returns)."""
    sharpes = annual_sharpes[np.isfinite(annual_sharpes)] / math.sqrt(periods_per_year)
    returns = best_returns[np.isfinite(best_returns)]
    if sharpes.size < 2 or returns.size < 3 or returns.std() == 0:
        return None
    best = float(returns.mean() / returns.std(ddof=1))
    centred = returns - returns.mean()
    skew = float((centred**3).mean() / returns.std() ** 3)
    kurtosis = float((centred**4).mean() / returns.std() ** 4)
    threshold = expected_max_sharpe(float(sharpes.var(ddof=1)), int(sharpes.size))
    spread = 1.0 - skew * best + (kurtosis - 1.0) / 4.0 * best**2
    if spread <= 0:
        return None
    z = (best - threshold) * math.sqrt(returns.size - 1) / math.sqrt(spread)
    return {
        "deflated_sharpe": _NORMAL.cdf(z),
        "trials": float(sharpes.size),
        "best_sharpe": best * math.sqrt(periods_per_year),
        "expected_max_sharpe": threshold * math.sqrt(periods_per_year),
    }
