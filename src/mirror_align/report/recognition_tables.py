"""Table 1b: recognition scored by instruction text, beside the duplicate-text ceiling of exact-id
accuracy and the standard errors of the runs' means (issue 12, items 2-3).

Some instruction ids of MirrorBench's table read the same (e.g. 50 push_buttons ids have 20
distinct texts); a retrieval model cannot tell them apart, so exact-id accuracy (Table 1, the
paper's metric) has a ceiling below 100% and by-text accuracy is the score a model can reach.
Every number comes from the ``recognition_*`` records that ``evaluate`` writes (docs/experiments.md).
"""

from __future__ import annotations

from mirror_align.constants import (
    RECOGNITION,
    RECOGNITION_CEILING,
    RECOGNITION_CLIPS,
    RECOGNITION_TEXT,
)
from mirror_align.report.inputs import ReportInputs
from mirror_align.report.stats import fmt
from mirror_align.report.tables import (
    Missing,
    Table,
    cell,
    delta,
    metric_value,
    missing_main,
    spread_note,
    tasks_of,
)


def _ceiling(inputs: ReportInputs, task: str) -> str:
    """The exact-id ceiling of ``task`` over the main AU and MN runs: one value when they were
    evaluated on the same clips (the normal case), else their range."""
    values = set()
    for info in [*inputs.group("main", "au"), *inputs.group("main", "mn")]:
        value = metric_value(inputs, info.name, RECOGNITION_CEILING, task)
        if value is not None:
            values.add(fmt(value))
    if not values:
        return "missing"
    low, high = min(values, key=float), max(values, key=float)
    return low if low == high else f"{low}–{high}"


def _se_notes(inputs: ReportInputs, *, over_train: bool) -> list[str]:
    """With several training seeds, each run's standard error of its average (exact id / by text);
    and which runs lack the clip counts that per-task standard errors need."""
    runs = [*inputs.group("main", "au"), *inputs.group("main", "mn")]
    notes = []
    if over_train:
        listed = []
        for info in runs:
            metrics = inputs.metrics.get(info.name)
            if metrics is not None and metrics.recognition:
                exact = metrics.recognition_se(RECOGNITION, "all")
                text = metrics.recognition_se(RECOGNITION_TEXT, "all")
                listed.append(f"{info.name} {fmt(exact)} / {fmt(text)}")
        if listed:
            notes.append(
                "Standard error of each run's average from sampling the test clips "
                "(sqrt(Σ p(1−p)/n) / T; exact id / by text, points): " + ", ".join(listed) + "."
            )
    lacking = [
        info.name
        for info in runs
        if info.name in inputs.metrics and not inputs.metrics[info.name].scores(RECOGNITION_CLIPS)
    ]
    if lacking:
        notes.append(
            f"No `{RECOGNITION_CLIPS}` records in {', '.join(lacking)} (evaluated before they were "
            "written), so their per-task standard errors are n/a: re-run "
            f"`mirror-align evaluate {inputs.root / 'runs' / '<run>'}`."
        )
    return notes


def text_table(inputs: ReportInputs) -> Table | Missing:
    """Table 1b: per task, the exact-id ceiling, AU and MN by text, and MN − AU by text."""
    missing = missing_main(inputs, RECOGNITION_TEXT, "au")
    if missing is not None:
        return missing
    over_train, spread = spread_note(inputs, RECOGNITION_TEXT)
    rows = []
    for task in [*tasks_of(inputs, RECOGNITION_TEXT), "all"]:
        rows.append(
            [
                "average (task=all)" if task == "all" else task,
                _ceiling(inputs, task),
                cell(inputs, "au", RECOGNITION_TEXT, task, over_train=over_train),
                cell(inputs, "mn", RECOGNITION_TEXT, task, over_train=over_train),
                delta(inputs, "au", RECOGNITION_TEXT, task),
            ]
        )
    headers = ["task", "exact-id ceiling", "AU by text", "MN by text", "Δ MN−AU by text (paired)"]
    notes = [
        "exact-id ceiling: the best exact-id accuracy (Table 1) any model can reach on these test "
        "clips when ids with identical texts score equally: of each group of ids sharing a text, "
        "only the clips of its most frequent id can be right. The same clips for every run. "
        "By text the ceiling is 100%, so a by-text value can exceed it.",
        "by text: a clip is recognised when the retrieved instruction reads the same as its own "
        "(identical texts count as equal); never below the exact-id accuracy of Table 1.",
        "Δ: MN minus AU by text, paired over the training seeds both have.",
        spread,
        *_se_notes(inputs, over_train=over_train),
        "The `all` row is each run's own `task=all` record (its mean over tasks); the ceiling's "
        "`all` is the mean of the tasks' ceilings.",
    ]
    caption = (
        f"Table 1b: per-task recognition accuracy by instruction text (%), AU alone vs MN, "
        f"split `{inputs.split}`, with the duplicate-text ceiling of exact-id accuracy"
    )
    return Table(caption, headers, rows, notes)
