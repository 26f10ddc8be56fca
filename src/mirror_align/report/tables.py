"""The report's tables and its verdict, computed only from the records in :class:`ReportInputs`.

Our numbers are shown in percent (records hold fractions in [0, 1]). The paper's numbers sit in
separate columns labelled with :data:`~mirror_align.report.paper_numbers.PAPER_LABEL`.
A table that cannot be built returns a :class:`Missing` that says what is missing and which
command makes it.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from mirror_align.constants import RECOGNITION, SUCCESS
from mirror_align.report import paper_numbers as paper
from mirror_align.report.inputs import ReportInputs, RunInfo
from mirror_align.report.stats import (
    Paired,
    Summary,
    fmt,
    fmt_ci,
    fmt_mean_std,
    fmt_p,
    paired_comparison,
    summarize,
)

# metric -> (baseline method, display name of the baseline, paper key of the baseline)
BASELINES = {RECOGNITION: ("au", "AU", "viclip_finetuned"), SUCCESS: ("ee", "EE", "arp")}
METRIC_LABEL = {RECOGNITION: "recognition accuracy", SUCCESS: "rollout success"}


def inline_html(text: str) -> str:
    """Escape ``text`` for HTML and turn Markdown `code` spans into <code>."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


@dataclass
class Table:
    """A rendered-agnostic table: string cells, a caption and footnotes."""

    caption: str
    headers: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)

    def to_markdown(self) -> str:
        def row(cells: list[str]) -> str:
            return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

        lines = [f"*{self.caption}*", "", row(self.headers), row(["---"] * len(self.headers))]
        lines += [row(r) for r in self.rows]
        lines += [""] + [f"- {n}" for n in self.notes]
        return "\n".join(lines).rstrip() + "\n"

    def to_html(self) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self.headers)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in self.rows
        )
        notes = "".join(f"<li>{inline_html(n)}</li>" for n in self.notes)
        return (
            f"<table><caption>{inline_html(self.caption)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>" + (f"<ul class='notes'>{notes}</ul>" if notes else "")
        )


@dataclass
class Missing:
    """Why a table or figure is absent and how to make it."""

    message: str


def metric_value(inputs: ReportInputs, run: str, metric: str, task: str) -> float | None:
    """A run's number for ``task``: the accuracy, or the success rate averaged over eval seeds."""
    metrics = inputs.metrics.get(run)
    if metrics is None:
        return None
    if metric == RECOGNITION:
        return metrics.recognition.get(task)
    return metrics.success_mean(task)


def per_seed(inputs: ReportInputs, method: str, metric: str, task: str) -> dict[int, float]:
    """Training seed -> value for the ``main`` runs of ``method`` (seeds without a value left out)."""
    out = {}
    for info in inputs.group("main", method):
        value = metric_value(inputs, info.name, metric, task)
        if value is not None:
            out[info.seed] = value
    return out


def tasks_of(inputs: ReportInputs, metric: str) -> list[str]:
    """Tasks with a record of ``metric`` in any main run, in the paper's column order."""
    found: set[str] = set()
    for info in inputs.group("main"):
        metrics = inputs.metrics.get(info.name)
        if metrics is not None:
            found |= set(metrics.recognition if metric == RECOGNITION else metrics.success)
    found.discard("all")
    ordered = [t for t in paper.PAPER_TASK_ORDER if t in found]
    return ordered + sorted(found - set(ordered))


def _summary(values: dict[int, float]) -> Summary | None:
    return summarize(list(values.values())) if values else None


def _missing_main(inputs: ReportInputs, metric: str) -> Missing | None:
    base_method = BASELINES[metric][0]
    if inputs.manifest is None:
        return Missing(
            f"No `manifest.json` in {inputs.root}: run `mirror-align reproduce --out {inputs.root}`."
        )
    for method in (base_method, "mn"):
        if not inputs.group("main", method):
            return Missing(
                f"`manifest.json` lists no `main` run of method `{method}`: "
                f"run `mirror-align reproduce --out {inputs.root}`."
            )
    if not tasks_of(inputs, metric):
        return Missing(
            f"No `{metric}` records on split `{inputs.split}` in the main runs' metrics.jsonl: "
            f"run `mirror-align evaluate DIR/runs/<run>` (or `mirror-align reproduce --out {inputs.root}`)."
        )
    return None


def _success_spread_note(inputs: ReportInputs) -> tuple[bool, str]:
    """Whether Table 2's ± is over training seeds, and the footnote saying which spread it is."""
    n_train = max(len(inputs.group("main", m)) for m in ("ee", "mn"))
    if n_train >= 2:
        return True, (
            f"± is the sample std over {n_train} training seeds; within a training seed the value "
            "is the mean over its evaluation seeds."
        )
    return False, (
        "1 training seed: ± is the sample std over that run's evaluation seeds "
        "(as in the paper, whose ± is over evaluation seeds)."
    )


def _cell(inputs: ReportInputs, method: str, metric: str, task: str, *, over_train: bool) -> str:
    values = per_seed(inputs, method, metric, task)
    if not values:
        return "missing"
    if metric == SUCCESS and not over_train:
        seed = next(iter(values))
        run = next(r.name for r in inputs.group("main", method) if r.seed == seed)
        evals = inputs.metrics[run].success[task]  # present: it gave ``values``
        return fmt_mean_std(summarize(list(evals.values())))
    return fmt_mean_std(_summary(values))


def _delta(inputs: ReportInputs, metric: str, task: str) -> str:
    base = per_seed(inputs, BASELINES[metric][0], metric, task)
    paired = paired_comparison(per_seed(inputs, "mn", metric, task), base)
    return "n/a" if paired is None else fmt(paired.mean_diff, signed=True)


def main_table(inputs: ReportInputs, metric: str) -> Table | Missing:
    """Table 1 (``recognition_accuracy``: AU vs MN) or Table 2 (``success_rate``: EE vs MN)."""
    missing = _missing_main(inputs, metric)
    if missing is not None:
        return missing
    base_method, base_name, paper_key = BASELINES[metric]
    over_train, spread_note = (True, "") if metric == RECOGNITION else _success_spread_note(inputs)
    n_base = len(per_seed(inputs, base_method, metric, "all"))
    n_mn = len(per_seed(inputs, "mn", metric, "all"))
    headers = [
        "task",
        "paper column",
        f"{base_name} (ours, {n_base} seed{'s' * (n_base != 1)})",
        f"MN (ours, {n_mn} seed{'s' * (n_mn != 1)})",
        f"Δ MN−{base_name} (paired)",
        f"{'ViCLIP ft.' if metric == RECOGNITION else 'ARP'}: {paper.PAPER_LABEL}",
        f"MN: {paper.PAPER_LABEL}",
    ]
    rows = []
    for task in [*tasks_of(inputs, metric), "all"]:
        if metric == RECOGNITION:
            p_base, p_mn = paper.TABLE1[paper_key].get(task), paper.TABLE1["mn"].get(task)
            if task == "all":
                p_base, p_mn = paper.TABLE1_AVG[paper_key], paper.TABLE1_AVG["mn"]
            paper_cells = [_paper(p_base), _paper(p_mn)]
        else:
            paper_cells = [_paper_pm(paper_key, task), _paper_pm("mn", task)]
        rows.append(
            [
                "average (task=all)" if task == "all" else task,
                "Avg." if task == "all" else paper.paper_column(task),
                _cell(inputs, base_method, metric, task, over_train=over_train),
                _cell(inputs, "mn", metric, task, over_train=over_train),
                _delta(inputs, metric, task),
                *paper_cells,
            ]
        )
    number = 1 if metric == RECOGNITION else 2
    spread = "training seeds" if over_train else "evaluation seeds of the one training seed"
    caption = (
        f"Table {number}: per-task {METRIC_LABEL[metric]} (%), {base_name} alone vs MN, "
        f"split `{inputs.split}`; ours as mean ± std over {spread}."
    )
    notes = [
        "Ours: MirrorBench (MuJoCo) at this run's preset; the paper's columns are its RLBench "
        "results at GPU scale, shown for reference only.",
        "The `all` row is each run's own `task=all` record (its mean over tasks).",
    ]
    if spread_note:
        notes.insert(0, spread_note)
    return Table(caption, headers, rows, notes)


def _paper(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _paper_pm(key: str, task: str) -> str:
    if task == "all":
        return f"{paper.TABLE2_AVG[key]:.1f}"
    if task not in paper.TABLE2_MEAN[key]:
        return "-"
    return f"{paper.TABLE2_MEAN[key][task]:.1f} ± {paper.TABLE2_STD[key][task]:.1f}"


def comparisons(
    inputs: ReportInputs,
) -> dict[str, tuple[Summary | None, Summary | None, Paired | None]]:
    """metric -> (baseline summary, MN summary, paired MN − baseline) on ``task=all``."""
    out = {}
    for metric, (base_method, _, _) in BASELINES.items():
        base = per_seed(inputs, base_method, metric, "all")
        mn = per_seed(inputs, "mn", metric, "all")
        out[metric] = (_summary(base), _summary(mn), paired_comparison(mn, base))
    return out


def comparison_table(inputs: ReportInputs) -> Table | Missing:
    """Per-metric mean, 95% CI and the paired comparison of MN vs its baseline (``task=all``)."""
    rows = []
    for metric, (base, mn, paired) in comparisons(inputs).items():
        if base is None and mn is None:
            continue
        name = BASELINES[metric][1]
        rows.append(
            [
                METRIC_LABEL[metric],
                f"{name}: {fmt_mean_std(base)}",
                "n/a" if base is None else fmt_ci(base.ci_low, base.ci_high),
                f"MN: {fmt_mean_std(mn)}",
                "n/a" if mn is None else fmt_ci(mn.ci_low, mn.ci_high),
                "n/a" if paired is None else fmt(paired.mean_diff, signed=True),
                "n/a" if paired is None else fmt_ci(paired.ci_low, paired.ci_high),
                "n/a" if paired is None else fmt_p(paired.p_value),
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
        "paired seeds",
    ]
    notes = [
        "95% CIs are Student-t intervals over training seeds; with 1 seed they are n/a.",
        "The paired comparison uses the training seeds both methods have; the p-value is n/a "
        "with fewer than 2 seeds or when every seed's difference is identical.",
    ]
    return Table("Summary over training seeds", headers, rows, notes)


# Differences (fractions; printed x100 as points) that print as +0.0 / -0.0 are ties, not wins.
TIE_FRACTION = 0.0005


def _direction(diff: float) -> str:
    if abs(diff) < TIE_FRACTION:
        return "tied with"
    return "beat" if diff > 0 else "did not beat"


def verdict(inputs: ReportInputs) -> str:
    """One plain-language paragraph on whether MN beat the baselines here, from the numbers."""
    sentences, outcomes = [], []
    for metric, (base, mn, paired) in comparisons(inputs).items():
        name = BASELINES[metric][1]
        label = METRIC_LABEL[metric]
        if base is None or mn is None:
            sentences.append(f"No {label} comparison: the {name} or MN records are missing.")
            continue
        if paired is None:
            diff = mn.mean - base.mean
            detail = "no training seed is shared, so there is no paired comparison"
        elif paired.n < 2:
            diff = paired.mean_diff
            detail = "1 seed, so no confidence interval or p-value"
        elif paired.std_diff == 0:
            diff = paired.mean_diff
            detail = f"every one of {paired.n} seeds gave this same difference, so there is no spread to test"
        else:
            diff = paired.mean_diff
            excludes = paired.ci_low > 0 or paired.ci_high < 0
            detail = (
                f"paired over {paired.n} seeds, 95% CI {fmt_ci(paired.ci_low, paired.ci_high)} "
                f"points, p = {fmt_p(paired.p_value)}; "
                + (
                    "the interval excludes zero"
                    if excludes
                    else "the interval includes zero, so this is not a reliable difference"
                )
            )
        outcomes.append(_direction(diff) == "beat")
        sentences.append(
            f"On {label}, MN {_direction(diff)} the {name} baseline: {fmt(mn.mean)}% vs "
            f"{fmt(base.mean)}% ({fmt(diff, signed=True)} points; {detail})."
        )
    if outcomes:
        if all(outcomes):
            overall = "MN beat the baseline on every measured metric in this run."
        elif any(outcomes):
            overall = "MN beat the baseline on some metrics but not on others in this run."
        else:
            overall = "MN did not beat the baseline on any measured metric in this run."
        sentences.insert(0, overall)
    else:
        sentences.insert(0, "No verdict: the main comparison has no evaluation records.")
    return " ".join(sentences)


def per_seed_tables(inputs: ReportInputs) -> list[Table] | Missing:
    """Every main run's numbers, one column per run, per task and ``all``."""
    main = inputs.group("main")
    if not main:
        return Missing(
            f"No `main` runs in `manifest.json`: run `mirror-align reproduce --out {inputs.root}`."
        )
    order = {"au": 0, "ee": 1, "mn": 2}
    main = sorted(main, key=lambda r: (order.get(r.method, 9), r.seed))
    tables = []
    for metric in (RECOGNITION, SUCCESS):
        runs = [r for r in main if r.method in (BASELINES[metric][0], "mn")]
        tasks = tasks_of(inputs, metric)
        if not tasks:
            continue
        rows = []
        for task in [*tasks, "all"]:
            row = [task]
            for r in runs:
                value = metric_value(inputs, r.name, metric, task)
                row.append("missing" if value is None else fmt(value))
            rows.append(row)
        notes = _per_seed_notes(inputs, metric, runs)
        caption = f"Per-seed {METRIC_LABEL[metric]} (%), split `{inputs.split}`"
        if metric == SUCCESS:
            caption += ", each value the mean over evaluation seeds"
        tables.append(Table(caption, ["task", *[r.name for r in runs]], rows, notes))
    if not tables:
        return Missing("No evaluation records in the main runs' metrics.jsonl.")
    return tables


def _per_seed_notes(inputs: ReportInputs, metric: str, runs: list[RunInfo]) -> list[str]:
    """The notes under a per-seed table: the ``all`` success of each evaluation seed (success
    only) and the checkpoint step each run was evaluated at."""
    notes = []
    if metric == SUCCESS:
        for r in runs:
            metrics = inputs.metrics.get(r.name)
            evals = {} if metrics is None else metrics.success.get("all", {})
            if evals:
                listed = ", ".join(f"seed {s}: {fmt(v)}" for s, v in sorted(evals.items()))
                notes.append(f"{r.name} `all` per evaluation seed: {listed}.")
    steps = []
    for r in runs:
        metrics = inputs.metrics.get(r.name)
        step = None
        if metrics is not None:
            step = metrics.recognition_step if metric == RECOGNITION else metrics.success_step
        steps.append(f"{r.name}@{'?' if step is None else step}")
    notes.append("Evaluated checkpoints (run@step): " + ", ".join(steps) + ".")
    return notes
