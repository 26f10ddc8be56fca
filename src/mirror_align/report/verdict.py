"""The summary over training seeds and the plain-language verdict (the report's first section),
computed only from the records in :class:`ReportInputs`: MN vs its baseline on ``task=all`` for
each metric of :data:`~mirror_align.report.tables.BASELINES` (recognition by exact id, the
paper's metric), with recognition by text alongside for reference."""

from __future__ import annotations

from mirror_align.constants import RECOGNITION, RECOGNITION_TEXT, SUCCESS
from mirror_align.report import paper_numbers as paper
from mirror_align.report.inputs import OFFLINE_REFERENCE, ReportInputs
from mirror_align.report.stats import (
    POWER,
    Paired,
    Summary,
    fmt,
    fmt_ci,
    fmt_mean_std,
    fmt_p,
    paired_comparison,
)
from mirror_align.report.tables import (
    BASELINES,
    METRIC_LABEL,
    Missing,
    Table,
    per_seed,
    seed_summary,
)


def comparisons(
    inputs: ReportInputs,
) -> dict[str, tuple[Summary | None, Summary | None, Paired | None]]:
    """metric -> (baseline summary, MN summary, paired MN − baseline) on ``task=all``."""
    out = {}
    for metric, (base_method, _, _) in BASELINES.items():
        out[metric] = _compare(inputs, base_method, metric)
    return out


def _compare(
    inputs: ReportInputs, base_method: str, metric: str
) -> tuple[Summary | None, Summary | None, Paired | None]:
    base = per_seed(inputs, base_method, metric, "all")
    mn = per_seed(inputs, "mn", metric, "all")
    return seed_summary(base), seed_summary(mn), paired_comparison(mn, base)


# Secondary metrics, paired by seed like the paper's two and shown for reference (not part of the
# claim the verdict judges): the EE's offline keyframe metrics (eval/keyframe_metrics.py), where
# alignment can change a sub-skill that rollout success hides. Metric -> label; EE is the baseline.
REFERENCE_LABEL = {
    "position_within_2cm": "EE offline: keyframes within 2 cm",
    "rotation_within1_yaw": "EE offline: yaw within one 5° bin",
    "gripper_accuracy": "EE offline: gripper flag",
}


def reference_comparisons(
    inputs: ReportInputs,
) -> list[tuple[str, Summary | None, Summary | None, Paired | None]]:
    """(label, EE summary, MN summary, paired MN − EE) of each metric of
    :data:`~mirror_align.report.inputs.OFFLINE_REFERENCE` on ``task=all``."""
    return [(REFERENCE_LABEL[m], *_compare(inputs, "ee", m)) for m in OFFLINE_REFERENCE]


# A one-seed difference counts as beyond noise only past this many standard deviations of the main
# comparison's paired differences (about a 95% two-sided band when there is no effect).
NOISE_SDS = 2.0


def main_spread(inputs: ReportInputs) -> dict[str, float | None]:
    """metric -> the std over training seeds of the main comparison's paired MN − baseline
    differences (None with fewer than 2 paired seeds): the noise a one-seed run is read against."""
    out = {}
    for metric, (_, _, paired) in comparisons(inputs).items():
        out[metric] = None if paired is None else paired.std_diff
    return out


def noise_reading(diff: float | None, spread: float | None) -> str:
    """ "within noise", "above noise" or "below noise" for a one-seed difference ``diff`` against
    the main comparison's ``spread`` (:func:`main_spread`); "n/a" without either."""
    if diff is None or spread is None or spread == 0:
        return "n/a"
    if abs(diff) <= NOISE_SDS * spread:
        return "within noise"
    return "above noise" if diff > 0 else "below noise"


def delta_cells(value: float | None, base: float | None, spread: float | None) -> list[str]:
    """The table cells of a one-seed run against its baseline: [Δ ``value - base`` in signed
    points, or "n/a" without either; its :func:`noise_reading` against ``spread``]."""
    diff = None if value is None or base is None else value - base
    return ["n/a" if diff is None else fmt(diff, signed=True), noise_reading(diff, spread)]


def noise_note(spread: dict[str, float | None]) -> str:
    """The footnote that says how :func:`noise_reading` reads a one-seed difference."""
    spreads = ", ".join(
        f"{METRIC_LABEL[m]} {fmt(s)} points" if s else f"{METRIC_LABEL[m]} n/a"
        for m, s in spread.items()
    )
    return (
        "One seed per run, so a Δ is read against the seed-to-seed spread of MN − baseline in the "
        f"main comparison (std over its training seeds: {spreads}): 'within noise' unless |Δ| "
        f"exceeds {NOISE_SDS:g} of those stds; nothing is called better or worse within that band. "
        "'n/a': the main comparison has fewer than 2 seeds, so there is no spread to read against."
    )


def comparison_table(inputs: ReportInputs) -> Table | Missing:
    """Per-metric mean, 95% CI and the paired comparison of MN vs its baseline (``task=all``);
    recognition by text follows recognition by exact id, for reference."""
    entries = []
    for metric, compared in comparisons(inputs).items():
        entries.append((METRIC_LABEL[metric], BASELINES[metric][1], *compared))
        if metric == RECOGNITION:
            by_text = _compare(inputs, "au", RECOGNITION_TEXT)
            entries.append(("recognition accuracy by text (reference)", "AU", *by_text))
    for label, *compared in reference_comparisons(inputs):
        entries.append((f"{label} (reference)", "EE", *compared))
    rows = []
    for label, name, base, mn, paired in entries:
        if base is None and mn is None:
            continue
        rows.append(
            [
                label,
                f"{name}: {fmt_mean_std(base)}",
                "n/a" if base is None else fmt_ci(base.ci_low, base.ci_high),
                f"MN: {fmt_mean_std(mn)}",
                "n/a" if mn is None else fmt_ci(mn.ci_low, mn.ci_high),
                "n/a" if paired is None else fmt(paired.mean_diff, signed=True),
                "n/a" if paired is None else fmt_ci(paired.ci_low, paired.ci_high),
                "n/a" if paired is None else fmt_p(paired.p_value),
                "n/a" if paired is None else fmt(paired.mde),
                "0" if paired is None else str(paired.n),
            ]
        )
    if not rows:
        return Missing("No evaluation records of the main runs: see Tables 1 and 2.")
    headers = [
        "metric (task=all, %)",
        "baseline mean ± std",
        "baseline 95% CI",
        "MN mean ± std",
        "MN 95% CI",
        "paired Δ (MN − baseline)",
        "Δ 95% CI",
        "paired t-test p",
        f"min. detectable Δ ({POWER:.0%} power)",
        "paired seeds",
    ]
    notes = [
        "95% CIs are Student-t intervals over training seeds; with 1 seed they are n/a.",
        "The paired comparison uses the training seeds both methods have; the p-value is n/a "
        "with fewer than 2 seeds or when every seed's difference is identical.",
        "Recognition accuracy is by exact instruction id (the paper's metric, the one the verdict "
        "uses); by text, identical instruction texts count as equal (Table 1b).",
        "EE offline rows (reference, not part of the verdict's claim): greedy decoding of every "
        "expert keyframe of the split, as in 'EE offline keyframe metrics'; MN's policy against "
        "the EE's.",
        f"Min. detectable Δ: the true paired difference that the t-test (α 0.05) finds with "
        f"{POWER:.0%} probability at this seed count and the observed seed-to-seed spread of the "
        "differences; a smaller true effect is likely to read as 'not reliable'.",
    ]
    return Table("Summary over training seeds", headers, rows, notes)


# Differences (fractions; printed x100 as points) that print as +0.0 / -0.0 are ties, not wins.
TIE_FRACTION = 0.0005


def _reliable(paired: Paired | None) -> bool:
    """Whether the paired 95% CI exists and excludes zero."""
    if paired is None or paired.ci_low is None or paired.ci_high is None:
        return False
    return paired.ci_low > 0 or paired.ci_high < 0


def _direction(diff: float, *, reliable: bool) -> str:
    """The verb: "beat" / "fell short of" only for a reliable difference, else what was seen."""
    if abs(diff) < TIE_FRACTION:
        return "tied with"
    if reliable:
        return "beat" if diff > 0 else "fell short of"
    return "scored above" if diff > 0 else "scored below"


def _difference(base: Summary, mn: Summary, paired: Paired | None) -> tuple[float, str]:
    """MN minus the baseline and the words on how reliable that difference is."""
    if paired is None:
        return mn.mean - base.mean, "no training seed is shared, so there is no paired comparison"
    if paired.n < 2:
        return paired.mean_diff, "1 seed, so no confidence interval or p-value"
    if paired.std_diff == 0:
        return paired.mean_diff, (
            f"every one of {paired.n} seeds gave this same difference, so there is no spread to test"
        )
    excludes = paired.ci_low > 0 or paired.ci_high < 0
    return paired.mean_diff, (
        f"paired over {paired.n} seeds, 95% CI {fmt_ci(paired.ci_low, paired.ci_high)} "
        f"points, p = {fmt_p(paired.p_value)}; "
        + (
            "the interval excludes zero"
            if excludes
            else "the interval includes zero, so this is not a reliable difference"
        )
    )


# metric -> the paper's own MN − baseline difference in points (Tables 1 and 2, averages).
PAPER_EFFECT = {
    RECOGNITION: paper.TABLE1_AVG["mn"] - paper.TABLE1_AVG["viclip_finetuned"],
    SUCCESS: paper.TABLE2_AVG["mn"] - paper.TABLE2_AVG["arp"],
}


def _power(metric: str, paired: Paired | None) -> str:
    """The sentence on what this comparison could have detected ('' without a spread)."""
    if paired is None or paired.mde is None:
        return ""
    mde_points = paired.mde * 100.0
    effect = PAPER_EFFECT[metric]
    reach = "could" if effect >= mde_points else "could not"
    return (
        f" With {paired.n} seeds and this spread, the smallest true difference detected with "
        f"{POWER:.0%} power is {mde_points:.1f} points, so this run {reach} reliably detect an "
        f"effect the size of the paper's ({effect:+.1f} points)." + _against_paper(effect, paired)
    )


def _against_paper(effect: float, paired: Paired) -> str:
    """Where the paper's effect (points) and zero fall relative to the paired 95% CI: what
    separates "no effect here" from "too few seeds to tell"."""
    low, high = 100.0 * paired.ci_low, 100.0 * paired.ci_high
    has_zero, has_paper = low <= 0.0 <= high, low <= effect <= high
    if has_zero and has_paper:
        return " The 95% CI contains both zero and the paper's effect: this run cannot tell them apart."
    if has_zero:
        side = "above" if effect > high else "below"
        return (
            f" The paper's effect lies {side} the 95% CI: this run argues against an effect that "
            "large here, though not against a smaller one."
        )
    if has_paper:
        return (
            " The 95% CI excludes zero and contains the paper's effect: consistent with the paper."
        )
    return " The 95% CI excludes both zero and the paper's effect."


def _by_text(inputs: ReportInputs) -> str:
    """The sentence giving recognition by text beside the verdict's exact-id numbers ('' when
    the runs have no by-text records)."""
    base, mn, paired = _compare(inputs, "au", RECOGNITION_TEXT)
    if base is None or mn is None:
        return ""
    diff = mn.mean - base.mean if paired is None else paired.mean_diff
    return (
        f" By instruction text (identical texts count as equal; Table 1b): MN {fmt(mn.mean)}% vs "
        f"AU {fmt(base.mean)}% ({fmt(diff, signed=True)} points)."
    )


def verdict(inputs: ReportInputs) -> str:
    """One plain-language paragraph on whether MN beat the baselines here, from the numbers;
    recognition is judged by exact instruction id, with the by-text numbers alongside."""
    sentences, outcomes = [], []
    for metric, (base, mn, paired) in comparisons(inputs).items():
        name = BASELINES[metric][1]
        label = METRIC_LABEL[metric]
        if base is None or mn is None:
            sentences.append(f"No {label} comparison: the {name} or MN records are missing.")
            continue
        diff, detail = _difference(base, mn, paired)
        reliable = _reliable(paired)
        outcomes.append(
            (label, diff >= TIE_FRACTION, reliable, paired is not None and paired.n > 1)
        )
        by = " (by exact instruction id)" if metric == RECOGNITION else ""
        sentences.append(
            f"On {label}{by}, MN {_direction(diff, reliable=reliable)} the {name} baseline: "
            f"{fmt(mn.mean)}% vs {fmt(base.mean)}% ({fmt(diff, signed=True)} points; {detail})."
            + _power(metric, paired)
            + (_by_text(inputs) if metric == RECOGNITION else "")
        )
    sentences.insert(0, _overall(outcomes))
    return " ".join(sentences) + _reference_differences(inputs)


def _reference_differences(inputs: ReportInputs) -> str:
    """A closing sentence naming the reference metrics whose paired 95% CI excludes zero, with
    their difference; empty when there are none."""
    found = []
    for label, _, _, paired in reference_comparisons(inputs):
        if _reliable(paired):
            found.append(
                f"{label}, MN {fmt(paired.mean_diff, signed=True)} points (95% CI "
                f"{fmt_ci(paired.ci_low, paired.ci_high)}, p = {fmt_p(paired.p_value)})"
            )
    if not found:
        return ""
    return (
        " Beyond the paper's metrics, alignment reliably changed (reference, summary table): "
        + "; ".join(found)
        + "."
    )


def _overall(outcomes: list[tuple[str, bool, bool, bool]]) -> str:
    """The verdict's first sentence from (metric label, MN above, reliable, tested) per metric:
    how often the paper's direction appeared, and whether any of it is beyond chance."""
    if not outcomes:
        return "No verdict: the main comparison has no evaluation records."
    above = sum(up for _, up, _, _ in outcomes)
    where = (
        "every metric of the paper's claim"
        if above == len(outcomes)
        else f"{above} of {len(outcomes)} metrics of the paper's claim"
    )
    head = f"MN scored above its baseline on {where} in this run"
    if above == 0:
        head = "MN did not score above its baseline on any metric of the paper's claim in this run"
    reliable = [label for label, _, ok, _ in outcomes if ok]
    if not any(tested for *_, tested in outcomes):
        return head + "; with one training seed no difference can be tested."
    if not reliable:
        return (
            head + ", but none of these differences is reliable: every paired 95% CI includes zero."
        )
    if len(reliable) == len(outcomes) and above == len(outcomes):
        return "MN beat its baseline on every metric of the paper's claim in this run; every paired 95% CI excludes zero."
    return head + f"; reliable (paired 95% CI excludes zero): {', '.join(reliable)}."
