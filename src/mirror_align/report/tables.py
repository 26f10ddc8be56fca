"""The report's main tables (Tables 1 and 2, per seed), computed only from :class:`ReportInputs`.

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
    Summary,
    fmt,
    fmt_mean_std,
    fmt_pm,
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
    """A run's number for ``task``: the success rate averaged over eval seeds, or the value of a
    recognition metric (exact id, by text, ceiling: :meth:`RunMetrics.scores`)."""
    metrics = inputs.metrics.get(run)
    if metrics is None:
        return None
    if metric == SUCCESS:
        return metrics.success_mean(task)
    return metrics.scores(metric).get(task)


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
            found |= set(metrics.success if metric == SUCCESS else metrics.scores(metric))
    found.discard("all")
    ordered = [t for t in paper.PAPER_TASK_ORDER if t in found]
    return ordered + sorted(found - set(ordered))


def seed_summary(values: dict[int, float]) -> Summary | None:
    """Mean and spread of training seed -> value (``None`` when empty)."""
    return summarize(list(values.values())) if values else None


def missing_main(inputs: ReportInputs, metric: str, base_method: str = "") -> Missing | None:
    """Why a main table of ``metric`` (MN vs ``base_method``, by default its baseline in
    :data:`BASELINES`) cannot be built, or ``None``."""
    base_method = base_method or BASELINES[metric][0]
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


# Under a recognition table with one training seed: what its ± is (eval/recognition.py).
RECOGNITION_SE_NOTE = (
    "1 training seed: ± is the standard error from sampling the test clips: per task "
    "sqrt(p(1−p)/n) over its n clips, for the average sqrt(Σ p(1−p)/n) / T over its T tasks."
)


def spread_note(inputs: ReportInputs, metric: str) -> tuple[bool, str]:
    """Whether a main table's ± is over training seeds, and the footnote saying which spread it is:
    with one training seed, Table 2's is over evaluation seeds and Table 1's the standard error."""
    base_method = "ee" if metric == SUCCESS else "au"  # any recognition metric compares AU
    n_train = max(len(inputs.group("main", m)) for m in (base_method, "mn"))
    if n_train >= 2:
        within = (
            "the mean over its evaluation seeds"
            if metric == SUCCESS
            else "measured on the test clips, with the standard error stated under Table 1b"
        )
        return (
            True,
            f"± is the sample std over {n_train} training seeds; each seed's value is {within}.",
        )
    if metric != SUCCESS:
        return False, RECOGNITION_SE_NOTE
    return False, (
        "1 training seed: ± is the sample std over that run's evaluation seeds "
        "(as in the paper, whose ± is over evaluation seeds)."
    )


def cell(inputs: ReportInputs, method: str, metric: str, task: str, *, over_train: bool) -> str:
    """The ``main`` runs of ``method`` on ``task``: mean ± std over training seeds, or with one
    seed (``over_train=False``) ± over its evaluation seeds (success) or ± its standard error."""
    values = per_seed(inputs, method, metric, task)
    if not values:
        return "missing"
    if over_train:
        return fmt_mean_std(seed_summary(values))
    seed = next(iter(values))
    run = next(r.name for r in inputs.group("main", method) if r.seed == seed)
    if metric == SUCCESS:
        evals = inputs.metrics[run].success[task]  # present: it gave ``values``
        return fmt_mean_std(summarize(list(evals.values())))
    return fmt_pm(values[seed], inputs.metrics[run].recognition_se(metric, task))


def delta(inputs: ReportInputs, base_method: str, metric: str, task: str) -> str:
    """MN minus ``base_method`` on ``task``, paired over the training seeds both have."""
    base = per_seed(inputs, base_method, metric, task)
    paired = paired_comparison(per_seed(inputs, "mn", metric, task), base)
    return "n/a" if paired is None else fmt(paired.mean_diff, signed=True)


def main_table(inputs: ReportInputs, metric: str) -> Table | Missing:
    """Table 1 (``recognition_accuracy``: AU vs MN) or Table 2 (``success_rate``: EE vs MN)."""
    missing = missing_main(inputs, metric)
    if missing is not None:
        return missing
    base_method, base_name, paper_key = BASELINES[metric]
    over_train, spread = spread_note(inputs, metric)
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
                cell(inputs, base_method, metric, task, over_train=over_train),
                cell(inputs, "mn", metric, task, over_train=over_train),
                delta(inputs, base_method, metric, task),
                *paper_cells,
            ]
        )
    caption = _main_caption(inputs, metric, over_train=over_train)
    return Table(caption, headers, rows, _main_notes(metric, spread))


def _main_caption(inputs: ReportInputs, metric: str, *, over_train: bool) -> str:
    if over_train:
        ours = "mean ± std over training seeds"
    elif metric == SUCCESS:
        ours = "mean ± std over evaluation seeds of the one training seed"
    else:
        ours = "value ± standard error over the test clips of the one training seed"
    label = METRIC_LABEL[metric] + (" by exact instruction id" if metric == RECOGNITION else "")
    return (
        f"Table {1 if metric == RECOGNITION else 2}: per-task {label} (%), "
        f"{BASELINES[metric][1]} alone vs MN, split `{inputs.split}`; ours as {ours}."
    )


def _main_notes(metric: str, spread: str) -> list[str]:
    notes = [spread]
    if metric == RECOGNITION:
        notes.append(
            "Exact id (the paper's metric): a clip is recognised when the instruction retrieved "
            "among all instruction texts is its own id. Ids whose texts read the same cannot be "
            "told apart, so this cannot reach 100%: Table 1b gives the ceiling and the score by text."
        )
    return [
        *notes,
        "Ours: MirrorBench (MuJoCo) at this run's preset; the paper's columns are its RLBench "
        "results at GPU scale, shown for reference only.",
        "The `all` row is each run's own `task=all` record (its mean over tasks).",
    ]


def _paper(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _paper_pm(key: str, task: str) -> str:
    if task == "all":
        return f"{paper.TABLE2_AVG[key]:.1f}"
    if task not in paper.TABLE2_MEAN[key]:
        return "-"
    return f"{paper.TABLE2_MEAN[key][task]:.1f} ± {paper.TABLE2_STD[key][task]:.1f}"


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
