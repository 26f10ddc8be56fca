"""Report statistics against hand-computed values, and the typed paper numbers' consistency."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from mirror_align.report import paper_numbers as paper
from mirror_align.report.stats import (
    fmt,
    fmt_ci,
    fmt_mean_std,
    fmt_p,
    minimum_detectable_effect,
    paired_comparison,
    summarize,
)
from mirror_align.sim.registry import TASK_NAMES


def test_summarize_by_hand():
    # values 1..4: mean 2.5, s^2 = 5/3, t(0.975, 3) = 3.182446
    s = summarize([1.0, 2.0, 3.0, 4.0])
    assert s.n == 4 and s.mean == pytest.approx(2.5)
    assert s.std == pytest.approx(math.sqrt(5 / 3))
    half = 3.182446 * math.sqrt(5 / 3) / 2
    assert s.ci_low == pytest.approx(2.5 - half, abs=1e-5)
    assert s.ci_high == pytest.approx(2.5 + half, abs=1e-5)


def test_summarize_one_value_has_no_spread():
    s = summarize([0.7])
    assert (s.n, s.mean, s.std, s.ci_low, s.ci_high) == (1, 0.7, None, None, None)
    assert fmt_mean_std(s) == "70.0"
    assert fmt_ci(s.ci_low, s.ci_high) == "n/a"
    with pytest.raises(ValueError):
        summarize([])


def test_paired_by_hand_and_against_scipy():
    mn = {0: 0.6, 1: 0.7, 2: 0.9, 5: 0.1}  # seed 5 has no baseline: left out
    base = {0: 0.5, 1: 0.5, 2: 0.6}
    p = paired_comparison(mn, base)
    # differences 0.1, 0.2, 0.3: mean 0.2, sd 0.1, t = 2*sqrt(3), df 2
    assert p.n == 3
    assert p.mean_diff == pytest.approx(0.2)
    assert p.std_diff == pytest.approx(0.1)
    t = 0.2 / (0.1 / math.sqrt(3))
    p_by_hand = 1 - t / math.sqrt(t * t + 2)  # two-sided Student-t tail for df = 2
    assert p.p_value == pytest.approx(p_by_hand, rel=1e-9)
    assert p.p_value == pytest.approx(0.07417990, rel=1e-6)
    assert p.p_value == pytest.approx(sps.ttest_rel([0.6, 0.7, 0.9], [0.5, 0.5, 0.6]).pvalue)
    half = 4.302653 * 0.1 / math.sqrt(3)
    assert (p.ci_low, p.ci_high) == (
        pytest.approx(0.2 - half, abs=1e-6),
        pytest.approx(0.2 + half, abs=1e-6),
    )


def test_paired_one_seed_and_degenerate_cases():
    one = paired_comparison({0: 0.8}, {0: 0.5})
    assert one.n == 1 and one.mean_diff == pytest.approx(0.3)
    assert one.p_value is None and one.ci_low is None
    assert fmt_p(one.p_value) == "n/a"
    assert paired_comparison({0: 0.8}, {1: 0.5}) is None
    same = paired_comparison({0: 0.6, 1: 0.7}, {0: 0.5, 1: 0.6})  # identical differences
    assert same.p_value is None and same.std_diff == pytest.approx(0.0, abs=1e-12)


def test_minimum_detectable_effect_has_the_power_it_claims():
    # Simulated paired experiments with true std 1 and true mean difference = the MDE: the paired
    # t-test at alpha 0.05 must reject in 80% of them (binomial SE of 40k draws: 0.2 points).
    rng = np.random.default_rng(0)
    for n in (3, 5, 10):
        mde = minimum_detectable_effect(n, 1.0)
        diffs = rng.normal(mde, 1.0, size=(40_000, n))
        rejected = sps.ttest_1samp(diffs, 0.0, axis=1).pvalue < 0.05
        assert rejected.mean() == pytest.approx(0.8, abs=0.01), n
    # Scales with the spread; shrinks towards the normal approximation (z_.975 + z_.8) / sqrt(n).
    assert minimum_detectable_effect(5, 0.03) == pytest.approx(
        0.03 * minimum_detectable_effect(5, 1.0)
    )
    z = sps.norm.ppf(0.975) + sps.norm.ppf(0.8)
    assert minimum_detectable_effect(400, 1.0) == pytest.approx(z / 20.0, rel=0.01)
    assert minimum_detectable_effect(400, 1.0) > z / 20.0  # the t test needs a little more


def test_minimum_detectable_effect_needs_a_spread():
    assert minimum_detectable_effect(1, 0.1) is None
    assert minimum_detectable_effect(4, 0.0) is None
    with pytest.raises(ValueError, match="power"):
        minimum_detectable_effect(4, 0.1, power=1.0)
    paired = paired_comparison({0: 0.6, 1: 0.7, 2: 0.9}, {0: 0.5, 1: 0.5, 2: 0.6})
    assert paired.mde == pytest.approx(minimum_detectable_effect(3, 0.1))
    assert paired_comparison({0: 0.8}, {0: 0.5}).mde is None


def test_formatting():
    assert fmt(0.1234) == "12.3"
    assert fmt(-0.05, signed=True) == "-5.0"
    assert fmt(None) == "n/a" and fmt(float("nan")) == "n/a"
    assert fmt_p(0.0001) == "<0.001" and fmt_p(0.5) == "0.500"


def test_paper_numbers_match_the_papers_averages_and_our_task_names():
    assert sorted(paper.PAPER_COLUMNS.values()) == sorted(TASK_NAMES)
    assert paper.PAPER_COLUMNS["Screw Bulb"] == "light_bulb_in"
    assert paper.PAPER_COLUMNS["Sort Shape"] == "place_shape_in_shape_sorter"
    # the printed averages are the means of the typed per-task values (a check on typos)
    for key, avg in paper.TABLE1_AVG.items():
        assert np.mean(list(paper.TABLE1[key].values())) == pytest.approx(avg, abs=0.05)
    for key, avg in paper.TABLE2_AVG.items():
        assert np.mean(list(paper.TABLE2_MEAN[key].values())) == pytest.approx(avg, abs=0.05)
    assert paper.TABLE2_STD["mn"]["place_shape_in_shape_sorter"] == 10.1
    assert paper.TABLE3[("instruction", 0.1)] == (74.9, 88.8)
    assert len(paper.TABLE3) == 9
    # One grid: the paper's Table 3 cells are exactly the ablation grid the pipeline runs.
    from mirror_align.constants import ABLATION_PAIRINGS, ABLATION_TAUS

    assert set(paper.TABLE3) == {(p, t) for p in ABLATION_PAIRINGS for t in ABLATION_TAUS}
