"""Statistics over seeds: mean, sample std, Student-t 95% intervals and paired comparisons.

With one seed there is no spread: the std, the interval and the p-value are ``None`` and print as
"n/a". Nothing is imputed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats as _sps

CONFIDENCE = 0.95


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
    return Paired(summary.n, summary.mean, summary.std, summary.ci_low, summary.ci_high, p_value)


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
