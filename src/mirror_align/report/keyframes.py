"""The report's EE diagnostics (issue 11.7-11.9): offline keyframe metrics per task and along
training, rollout failure analysis per task, and the standard errors of the success rates.

Every number is read from ``runs/<run>/metrics.jsonl`` of the manifest's EE-side runs (``ee`` and
``mn``), as written by ``evaluate`` (:mod:`mirror_align.eval.evaluate`, record layout in
:mod:`mirror_align.eval.offline`) and by training (``train.keyframe_metrics_every``, split val).
Values are means over training seeds. :func:`sections` returns the report sections; render.py
adds them with a few marked lines.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from mirror_align.constants import SUCCESS
from mirror_align.eval.failure_analysis import (
    FAILURE_KINDS,
    POSITION_TOLERANCE_CM,
    ROLLOUT_EPISODES,
    ROTATION_TOLERANCE_DEGREES,
    failure_metric,
)
from mirror_align.eval.metrics_log import MetricRecord, read_metrics
from mirror_align.eval.offline import parse_keyframe_metric
from mirror_align.eval.precision import mean_rate_se, pooled_rate
from mirror_align.report.inputs import ReportInputs
from mirror_align.report.plots import METHOD_COLOURS, SEED_STYLES, _png
from mirror_align.report.stats import fmt
from mirror_align.report.tables import Missing, Table

EE_METHODS = ("ee", "mn")
# (header, metric, scale, digits): the offline metrics shown per task.
COLUMNS = (
    ("median cm", "position_error_cm_median", 1.0, 1),
    ("≤1 cm %", "position_within_1cm", 100.0, 0),
    ("≤2 cm %", "position_within_2cm", 100.0, 0),
    ("≤5 cm %", "position_within_5cm", 100.0, 0),
    ("stage 1 ≤5 cm %", "stage1_position_within_5cm", 100.0, 0),
    ("yaw ±1 bin %", "rotation_within1_yaw", 100.0, 0),
    ("gripper %", "gripper_accuracy", 100.0, 1),
    ("collision %", "collision_accuracy", 100.0, 1),
)
CURVES = (
    ("position_error_cm_median", "median 3D error (cm)", 1.0),
    ("position_within_2cm", "within 2 cm (%)", 100.0),
    ("stage1_position_within_5cm", "stage 1 within 5 cm (%)", 100.0),
    ("rotation_within1_yaw", "yaw within 1 bin (%)", 100.0),
    ("gripper_accuracy", "gripper accuracy (%)", 100.0),
)


def _runs(inputs: ReportInputs) -> list[tuple[Any, list[MetricRecord]]]:
    """``(RunInfo, records)`` of the main EE-side runs that have a metrics file."""
    out = []
    for info in inputs.group("main"):
        path = inputs.root / "runs" / info.name / "metrics.jsonl"
        if info.method in EE_METHODS and path.is_file():
            out.append((info, read_metrics(path)[0]))
    return out


def _latest(records: list[MetricRecord], split: str, metric: str) -> list[MetricRecord]:
    """Records of ``split`` at the latest step that has ``metric``; a repeat keeps the last."""
    steps = [r.step for r in records if r.split == split and r.metric == metric]
    if not steps:
        return []
    last: dict[tuple[str, str, int], MetricRecord] = {}
    for r in records:
        if r.split == split and r.step == max(steps):
            last[(r.task, r.metric, r.seed)] = r
    return list(last.values())


def _mean(values: list[float], scale: float, digits: int) -> str:
    return fmt(float(np.mean(values)), scale, digits) if values else "-"


def keyframe_table(inputs: ReportInputs) -> Table | Missing:
    """Offline keyframe metrics per task (and over all keyframes), EE vs MN, on the report split."""
    per: dict[tuple[str, str, str], list[float]] = defaultdict(list)  # (method, task, metric)
    for info, records in _runs(inputs):
        for r in _latest(records, inputs.split, COLUMNS[0][1]):
            if parse_keyframe_metric(r.metric)[1] is None:
                per[(info.method, r.task, r.metric)].append(float(r.value))
    if not per:
        return Missing(
            f"No offline keyframe metrics on `{inputs.split}`: run `mirror-align evaluate "
            f"{inputs.root}/runs/<ee or mn run> --split {inputs.split}`."
        )
    tasks = sorted({t for _, t, _ in per if t != "all"}) + ["all"]
    methods = [m for m in EE_METHODS if any(k[0] == m for k in per)]
    rows = []
    for task in tasks:
        for method in methods:
            cells = [_mean(per[(method, task, key)], s, d) for _, key, s, d in COLUMNS]
            rows.append([task, method.upper(), *cells])
    return Table(
        f"Offline keyframe metrics on `{inputs.split}` (greedy decoding of every expert keyframe; "
        "mean over training seeds)",
        ["task", "method", *(c[0] for c in COLUMNS)],
        rows,
        [
            "Position error: Euclidean distance of the decoded keyframe from the expert's, in cm. "
            "Rotation: Euler bins of 5° in the dataset's tool frame; ±1 bin is circular.",
            "Success needs about 1 cm per axis, yaw within 5-10°, gripper ≥ 98% and collision "
            "≥ 95% (expert replays with noise, issue 11).",
            "Stage 1: the point of the first (whole-workspace) position stage. The zoom stage "
            "refines it but does not recover a miss of more than a few cm, so a low stage-1 share "
            "means the policy picked the wrong target, not an imprecise point.",
        ],
    )


def keyframe_index_table(inputs: ReportInputs) -> Table | Missing:
    """Offline keyframe metrics per keyframe index (all tasks), EE vs MN."""
    per: dict[tuple[str, int, str], list[float]] = defaultdict(list)
    for info, records in _runs(inputs):
        for r in _latest(records, inputs.split, COLUMNS[0][1]):
            name, k = parse_keyframe_metric(r.metric)
            if k is not None and r.task == "all":
                per[(info.method, k, name)].append(float(r.value))
    if not per:
        return Missing("No per-keyframe-index metrics (written by `mirror-align evaluate`).")
    rows = []
    for k in sorted({k for _, k, _ in per}):
        for method in [m for m in EE_METHODS if any(x[0] == m for x in per)]:
            count = _mean(per[(method, k, "keyframe_count")], 1.0, 0)
            cells = [_mean(per[(method, k, key)], s, d) for _, key, s, d in COLUMNS]
            rows.append([str(k), method.upper(), count, *cells])
    return Table(
        f"Offline keyframe metrics per keyframe index on `{inputs.split}` (0 = the first "
        "keyframe of an episode)",
        ["keyframe", "method", "keyframes", *(c[0] for c in COLUMNS)],
        rows,
    )


def keyframe_curve(inputs: ReportInputs) -> bytes | Missing:
    """Offline keyframe metrics on val along training (colour = method, line style = seed)."""
    series = []
    for info, records in _runs(inputs):
        values = {
            metric: sorted(
                {r.step: float(r.value) for r in records
                 if r.split == "val" and r.task == "all" and r.metric == metric}.items()
            )
            for metric, _, _ in CURVES
        }  # fmt: skip
        if values[CURVES[0][0]]:
            series.append((info, values))
    if not series:
        return Missing(
            "No offline keyframe metrics along training (`val` records in the runs' "
            "`metrics.jsonl`): set `train.keyframe_metrics_every` > 0 (the quick preset does)."
        )
    fig = Figure(figsize=(4.0 * len(CURVES), 3.2))
    axes = fig.subplots(1, len(CURVES))
    for ax, (metric, label, scale) in zip(axes, CURVES, strict=True):
        for info, values in series:
            steps, ys = zip(*values[metric], strict=True) if values[metric] else ((), ())
            style = SEED_STYLES[info.seed % len(SEED_STYLES)]
            ax.plot(steps, np.array(ys) * scale, style, marker="o", markersize=3,
                    color=METHOD_COLOURS.get(info.method, "k"), label=info.name)  # fmt: skip
        ax.set_xlabel("training step")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    return _png(fig)


def _rollout_counts(inputs: ReportInputs) -> dict[tuple[str, str], dict[str, float]]:
    """``(method, task) -> {"episodes", "failed", <kind>...}`` summed over seeds, latest step."""
    table: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for info, records in _runs(inputs):
        latest = _latest(records, inputs.split, SUCCESS)
        by = {(r.task, r.metric, r.seed): r.value for r in latest}
        for (task, metric, seed), value in by.items():
            if metric != SUCCESS or task == "all" or (task, ROLLOUT_EPISODES, seed) not in by:
                continue
            n = by[(task, ROLLOUT_EPISODES, seed)]
            cell = table[(info.method, task)]
            cell["episodes"] += n
            cell["failed"] += round(n * (1.0 - value))
            for kind in FAILURE_KINDS:
                cell[kind] += by.get((task, failure_metric(kind), seed), 0)
    return table


def failure_table(inputs: ReportInputs) -> Table | Missing:
    """Failed rollouts per task by the first keyframe that left the expert's plan."""
    counts = _rollout_counts(inputs)
    if not counts:
        return Missing(
            "No rollout records: `evaluate` ran none (the tasks are not MirrorBench's, or "
            "`--no-rollouts`), so there is no failure analysis."
        )
    rows = []
    for method, task in sorted(counts, key=lambda k: (k[1], EE_METHODS.index(k[0]))):
        c = counts[(method, task)]
        rows.append([task, method.upper(), *(str(int(c[k])) for k in ("episodes", "failed"))])
        rows[-1] += [str(int(c[k])) for k in FAILURE_KINDS]
    return Table(
        "Rollout failure analysis: failed rollouts by how the first wrong keyframe went wrong "
        "(summed over training and evaluation seeds)",
        ["task", "method", "rollouts", "failed", *FAILURE_KINDS],
        rows,
        [
            "Each rollout's keyframes are compared, in order, with the scripted expert's plan for "
            f"the same scene: position > {POSITION_TOLERANCE_CM:g} cm, rotation > "
            f"{ROTATION_TOLERANCE_DEGREES:g}°, or a wrong gripper/collision flag marks the first "
            "wrong keyframe; if none, the failure is the planner's (a rejected keyframe) or a "
            "timeout (step budget). The expert only diagnoses; the policy never sees it.",
            "A deviation is where the policy left the expert's path, not proof of the cause; a "
            "task solvable in several orders can count another valid order as a deviation.",
        ],
    )


def precision_table(inputs: ReportInputs) -> Table | Missing:
    """Mean success per method with its standard errors (rollouts; training seeds)."""
    per_method: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
    for info, records in _runs(inputs):
        latest = _latest(records, inputs.split, SUCCESS)
        rates: dict[str, dict[int, float]] = defaultdict(dict)
        episodes: dict[str, dict[int, int]] = defaultdict(dict)
        for r in latest:
            if r.task != "all" and r.metric in (SUCCESS, ROLLOUT_EPISODES):
                target = rates if r.metric == SUCCESS else episodes
                target[r.task][r.seed] = r.value
        pooled = [pooled_rate(rates[t], episodes.get(t, {})) for t in rates]
        known = [(p, n) for p, n in pooled if n > 0]
        if known:
            smallest = min(min(episodes[t].values()) for t in rates if episodes.get(t))
            mean = float(np.mean([p for p, _ in known]))
            per_method[info.method].append((mean, mean_rate_se(known), int(smallest)))
    if not per_method:
        return Missing("No rollout success with episode counts (`rollout_episodes` records).")
    rows = []
    for method in [m for m in EE_METHODS if m in per_method]:
        runs = per_method[method]
        means = [m for m, _, _ in runs]
        se_rollouts = float(np.sqrt(sum(se**2 for _, se, _ in runs))) / len(runs)
        se_seeds = float(np.std(means, ddof=1) / np.sqrt(len(means))) if len(means) > 1 else None
        rows.append(
            [method.upper(), str(len(runs)), str(min(n for _, _, n in runs)),
             fmt(float(np.mean(means))), fmt(se_rollouts), fmt(se_seeds)]
        )  # fmt: skip
    return Table(
        "Precision of the mean rollout success over tasks (percentage points)",
        [
            "method",
            "training seeds",
            "min rollouts per task and eval seed",
            "success %",
            "SE from rollouts",
            "SE over training seeds",
        ],  # fmt: skip
        rows,
        [
            "SE from rollouts: binomial, sqrt(Σ p(1-p)/n)/T over the T tasks, pooled over "
            "evaluation seeds, then over training seeds; it is 0 for a task at 0% or 100%. "
            "SE over training seeds: sample std / sqrt(seeds) ('-' with one seed)."
        ],
    )


def sections(
    inputs: ReportInputs, figures: dict[str, Any], make_section: Callable[[str, str], Any]
) -> list[Any]:
    """The EE-diagnostics sections, built with render.py's ``Section`` class (``make_section``);
    none for a folder whose runs predate these records (no keyframe metrics, no rollout counts)."""
    wanted = {COLUMNS[0][1], ROLLOUT_EPISODES}
    if not any(parse_keyframe_metric(r.metric)[0] in wanted for _, rs in _runs(inputs) for r in rs):
        return []
    offline = make_section("keyframes", "EE offline keyframe metrics")
    offline.add(keyframe_table(inputs))
    offline.add(keyframe_index_table(inputs))
    curve = figures.get("keyframe_curve")
    if curve is None or isinstance(curve, Missing):
        offline.add(curve or Missing("The keyframe curve was not rendered."))
    else:
        caption = "Offline keyframe metrics on val along training (colour = method, style = seed)."
        offline.blocks.append(("figure", ("keyframe_curve", caption)))
    rollouts = make_section("rollout_failures", "Rollout failure analysis and precision")
    rollouts.add(failure_table(inputs))
    rollouts.add(precision_table(inputs))
    return [offline, rollouts]
