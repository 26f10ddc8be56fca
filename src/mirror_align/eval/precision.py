"""Standard errors of rollout success rates (issue 11.9).

Within one run, each rollout is a Bernoulli trial, so a task's success rate pooled over its
evaluation seeds, ``p = successes / n``, has the binomial standard error ``sqrt(p (1 - p) / n)``;
the mean over T tasks (each its own n) has ``sqrt(sum_t p_t (1 - p_t) / n_t) / T``. This is the
error from the finite number of rollouts only; the spread over *training* seeds is a separate
source, reported by the report as std / sqrt(seeds).

With 20 episodes per task and 2 evaluation seeds (the quick preset), n = 40 per task: a task at
p = 0.5 has SE 7.9 points, and the 18-task mean at most 1.9 points.
"""

from __future__ import annotations

import math
from collections.abc import Mapping


def pooled_rate(rates: Mapping[int, float], episodes: Mapping[int, int]) -> tuple[float, int]:
    """``(p, n)``: the success rate over every evaluation seed's episodes and their count.

    ``rates[seed]`` is a rate in [0, 1] over ``episodes[seed]`` rollouts. Seeds missing from
    ``episodes`` are ignored; returns ``(nan, 0)`` when no episode is known.
    """
    n = sum(int(episodes[s]) for s in rates if s in episodes)
    if n == 0:
        return math.nan, 0
    successes = sum(float(rates[s]) * int(episodes[s]) for s in rates if s in episodes)
    return successes / n, n


def binomial_se(p: float, n: int) -> float:
    """Standard error of a rate ``p`` measured on ``n`` Bernoulli trials (nan when n = 0)."""
    if n <= 0 or math.isnan(p):
        return math.nan
    return math.sqrt(max(p * (1.0 - p), 0.0) / n)


def mean_rate_se(per_task: list[tuple[float, int]]) -> float:
    """Standard error of the unweighted mean over tasks of rates ``(p_t, n_t)``."""
    known = [(p, n) for p, n in per_task if n > 0 and not math.isnan(p)]
    if not known:
        return math.nan
    return math.sqrt(sum(p * (1.0 - p) / n for p, n in known)) / len(known)
