"""Statistics over seeds: mean, sample std, Student-t 95% intervals, paired comparisons and the
minimum detectable effect of a paired comparison.

With one seed there is no spread: the std, the interval and the p-value are ``None`` and print as
"n/a". Nothing is imputed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import optimize as _spo
from scipy import stats as _sps

CONFIDENCE = 0.95
# The power at which the minimum detectable effect is quoted (the usual 80%).
POWER = 0.8


@dataclass(frozen=True)
class Summary:
    """Mean of ``n`` values, their sample std (ddof=1) and a two-sided Student-t interval."""

    n: int
    mean: float
    std: float | None  # None when n < 2
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True)
class Paired:
    """MN minus baseline over ``n`` seeds present in both, with a paired t-test."""

    n: int
    mean_diff: float
    std_diff: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None  # None with n < 2 or when every difference is identical
    # The smallest true mean difference this test detects with POWER at this n and observed spread
    # (None with n < 2 or no spread): a reader's line between "no effect" and "too few seeds".
    mde: float | None = None


def summarize(values: Sequence[float], confidence: float = CONFIDENCE) -> Summary:
    """Mean, sample std and the ``confidence`` interval mean ± t(n-1) * std / sqrt(n)."""
    xs = [float(v) for v in values]
    if not xs:
        raise ValueError("summarize needs at least one value")
    n = len(xs)
    mean = math.fsum(xs) / n
    if n < 2:
        return Summary(n, mean, None, None, None)
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
    half = float(_sps.t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half, mean + half)


def paired_comparison(
    treatment: dict[int, float], baseline: dict[int, float], confidence: float = CONFIDENCE
) -> Paired | None:
    """Paired difference ``treatment[s] - baseline[s]`` over the seeds ``s`` both have.

    Returns ``None`` when no seed is shared. The p-value is the two-sided paired t-test.
    """
    seeds = sorted(set(treatment) & set(baseline))
    if not seeds:
        return None
    diffs = [treatment[s] - baseline[s] for s in seeds]
    summary = summarize(diffs, confidence)
    p_value = None
    if summary.std is not None and summary.std > 0:
        t_stat = summary.mean / (summary.std / math.sqrt(summary.n))
        p_value = float(2 * _sps.t.sf(abs(t_stat), summary.n - 1))
    mde = None if summary.std is None else minimum_detectable_effect(summary.n, summary.std)
    return Paired(
        summary.n, summary.mean, summary.std, summary.ci_low, summary.ci_high, p_value, mde
    )


def minimum_detectable_effect(
    n: int, std_diff: float, *, alpha: float = 1.0 - CONFIDENCE, power: float = POWER
) -> float | None:
    """The true mean paired difference that a two-sided paired t-test at level ``alpha`` detects
    with probability ``power``, over ``n`` pairs whose differences have sample std ``std_diff``
    (same unit as ``std_diff``).

    Exact, from the noncentral t: the test statistic is t(n-1) with noncentrality
    ``delta * sqrt(n) / std_diff`` (e.g. Cohen 1988, Statistical Power Analysis, ch. 2), and
    ``delta`` solves P(|T| > t_crit) = ``power``. Returns ``None`` when ``n`` < 2 or ``std_diff``
    is 0 (no spread to size a test from). Raises ``ValueError`` for ``alpha``/``power`` outside (0, 1).
    """
    if not (0.0 < alpha < 1.0 and 0.0 < power < 1.0):
        raise ValueError(f"alpha and power must lie in (0, 1), got {alpha}, {power}")
    if n < 2 or std_diff <= 0:
        return None
    df = n - 1
    t_crit = float(_sps.t.ppf(1.0 - alpha / 2.0, df))

    def shortfall(nc: float) -> float:
        # The lower tail is below alpha / 2 for nc >= 0 and underflows to NaN in scipy's nct for
        # large nc (measured at df 1, nc 15): there it is 0 to double precision.
        lower = float(_sps.nct.cdf(-t_crit, df, nc))
        return float(_sps.nct.sf(t_crit, df, nc)) + (0.0 if math.isnan(lower) else lower) - power

    # Power rises monotonically in nc from alpha (at 0); it reaches any power < 1 well before
    # t_crit + 40 even at n = 2 (t_crit 12.7).
    nc = _spo.brentq(shortfall, 0.0, t_crit + 40.0, xtol=1e-10)
    return nc * std_diff / math.sqrt(n)


def fmt(value: float | None, scale: float = 100.0, digits: int = 1, *, signed: bool = False) -> str:
    """``value * scale`` with ``digits`` decimals, or "n/a" for ``None``/NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value * scale:+.{digits}f}" if signed else f"{value * scale:.{digits}f}"


def fmt_p(p: float | None) -> str:
    """A p-value as text ("n/a" when undefined)."""
    if p is None:
        return "n/a"
    return "<0.001" if p < 1e-3 else f"{p:.3f}"


def fmt_mean_std(summary: Summary | None, scale: float = 100.0) -> str:
    """ "mean ± std" (just the mean with one value; "missing" without a summary)."""
    if summary is None:
        return "missing"
    return fmt_pm(summary.mean, summary.std, scale)


def fmt_pm(value: float | None, error: float | None, scale: float = 100.0) -> str:
    """ "value ± error" (just the value when the error is unknown)."""
    if error is None or math.isnan(error):
        return fmt(value, scale)
    return f"{fmt(value, scale)} ± {fmt(error, scale)}"


def fmt_ci(low: float | None, high: float | None, scale: float = 100.0) -> str:
    """ "[low, high]" or "n/a"."""
    if low is None or high is None:
        return "n/a"
    return f"[{fmt(low, scale)}, {fmt(high, scale)}]"
