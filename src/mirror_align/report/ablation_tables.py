"""Table 3 (the ablation grid: pairing x tau) and the beyond-the-paper tables (MN loss and
projector variants; the AU's deviation from ViCLIP, its motion-gated colour tokens), each cell
beside its reference run; computed only from the records in :class:`ReportInputs`."""

from __future__ import annotations

from mirror_align.constants import (
    ABLATION_PAIRINGS,
    ABLATION_TAUS,
    RECOGNITION,
    RECOGNITION_TEXT,
    SUCCESS,
)
from mirror_align.report import paper_numbers as paper
from mirror_align.report.inputs import ReportInputs, RunInfo
from mirror_align.report.stats import fmt, fmt_pm
from mirror_align.report.tables import BASELINES, Missing, Table, metric_value
from mirror_align.report.verdict import delta_cells, main_spread, noise_note


def _ablation_cell(inputs: ReportInputs, pairing: str, tau: float) -> RunInfo | None:
    def matches(r: RunInfo) -> bool:
        return (
            r.method == "mn"
            and r.pairing == pairing
            and r.tau is not None
            and abs(r.tau - tau) < 1e-9
            and r.projector in (None, "linear")
            and not r.multi_positive
        )

    found = [r for r in inputs.group("ablation") if matches(r)]
    if not found:  # the default cell may be the main MN run at the ablation's seed
        seeds = {r.seed for r in inputs.group("ablation")}
        found = [r for r in inputs.group("main", "mn") if matches(r) and r.seed in seeds]
    return found[0] if found else None


def _table3_rows(
    inputs: ReportInputs, seeds: list[int], spread: dict[str, float | None]
) -> list[list[str]]:
    """One row per (pairing, τ) cell: per metric its value, Δ from the baseline of its seed, the
    reading of that Δ and the paper's value; then the two baselines' own rows."""
    baselines = {}
    for metric, (method, _, _) in BASELINES.items():
        base = [r for r in inputs.group("main", method) if r.seed in seeds]
        baselines[metric] = (
            (base[0].name, metric_value(inputs, base[0].name, metric, "all")) if base else None
        )
    rows = []
    for pairing in ABLATION_PAIRINGS:
        for tau in ABLATION_TAUS:
            info = _ablation_cell(inputs, pairing, tau)
            p_au, p_ee = paper.TABLE3[(pairing, tau)]
            row = [pairing, f"{tau:g}"]
            for metric, paper_value in ((RECOGNITION, p_au), (SUCCESS, p_ee)):
                value = None if info is None else metric_value(inputs, info.name, metric, "all")
                base = None if baselines[metric] is None else baselines[metric][1]
                row += [
                    "not run" if info is None else "missing" if value is None else fmt(value),
                    *delta_cells(value, base, spread[metric]),
                    f"{paper_value:.1f}",
                ]
            rows.append([*row, "-" if info is None else info.name])
    for metric, (_, name, _) in BASELINES.items():
        ref = baselines[metric]
        if ref is not None:
            row = [f"baseline ({name} alone)", "-", *["-"] * 8, ref[0]]
            row[2 if metric == RECOGNITION else 6] = "missing" if ref[1] is None else fmt(ref[1])
            rows.append(row)
    return rows


def table3(inputs: ReportInputs) -> Table | Missing:
    """Table 3: pairing × τ, AU accuracy and EE success per cell (``task=all``), each with its
    difference from the baseline of the same seed, read against the main comparison's seed-to-seed
    spread; the paper's cells beside."""
    if inputs.manifest is None:
        return Missing(
            f"No `manifest.json` in {inputs.root}: run `mirror-align reproduce --out {inputs.root}`."
        )
    if not inputs.group("ablation"):
        return Missing("`manifest.json` lists no `ablation` runs. " + inputs.how_to_add("table3"))
    seeds = sorted({r.seed for r in inputs.group("ablation")})
    spread = main_spread(inputs)
    rows = _table3_rows(inputs, seeds, spread)
    headers = [
        "pairing",
        "τ",
        "AU accuracy (ours)",
        "Δ vs AU",
        "reading",
        f"AU accuracy: {paper.PAPER_LABEL}",
        "EE success (ours)",
        "Δ vs EE",
        "reading",
        f"EE success: {paper.PAPER_LABEL}",
        "run",
    ]
    notes = [
        f"Ours: one training seed ({', '.join(map(str, seeds))}), `task=all`, split "
        f"`{inputs.split}`; EE success is the mean over evaluation seeds. The paper's third row "
        "is 'By Class'.",
        "Δ: the cell minus the baseline trained alone with the same seed. " + noise_note(spread),
    ]
    return Table(
        "Table 3: ablation, positive-pair definition × temperature τ (%)", headers, rows, notes
    )


def _difference(info: RunInfo, ref: RunInfo) -> str:
    parts = []
    if info.multi_positive != ref.multi_positive:
        parts.append("multi-positive InfoNCE" if info.multi_positive else "single-positive InfoNCE")
    if info.projector != ref.projector:
        parts.append(f"{info.projector} projector")
    if info.pairing != ref.pairing:
        parts.append(f"pairing {info.pairing}")
    if info.tau != ref.tau:
        parts.append(f"τ {info.tau:g}")
    return ", ".join(parts) or "same settings"


def beyond_table(inputs: ReportInputs) -> Table | Missing:
    """Multi-positive loss and MLP projector vs the main MN run of the same seed."""
    runs = inputs.group("beyond", "mn")
    if not runs:
        return Missing(
            "`manifest.json` lists no `beyond` MN runs (multi-positive loss, MLP "
            "projector). " + inputs.how_to_add("beyond")
        )
    rows = []
    for info in runs:
        ref = inputs.seed_run("main", "mn", info.seed)
        cells = [info.name, "-" if ref is None else _difference(info, ref)]
        for metric in (RECOGNITION, SUCCESS):
            value = metric_value(inputs, info.name, metric, "all")
            ref_value = None if ref is None else metric_value(inputs, ref.name, metric, "all")
            cells.append("missing" if value is None else fmt(value))
            cells.append("missing" if ref_value is None else fmt(ref_value))
            cells.append(
                "n/a" if value is None or ref_value is None else fmt(value - ref_value, signed=True)
            )
        cells.append("-" if ref is None else ref.name)
        rows.append(cells)
    headers = [
        "run",
        "change vs MN",
        "AU accuracy",
        "AU accuracy of MN",
        "Δ",
        "EE success",
        "EE success of MN",
        "Δ",
        "reference MN run",
    ]
    notes = ["One training seed each; `task=all`, %; Δ is this run minus the reference MN run."]
    return Table("Beyond the paper: loss and projector variants (%)", headers, rows, notes)


def _recognition(
    inputs: ReportInputs, info: RunInfo | None, metric: str
) -> tuple[str, float | None]:
    """``task=all`` of ``metric`` for ``info`` as "value ± its standard error", and the value."""
    metrics = None if info is None else inputs.metrics.get(info.name)
    value = None if metrics is None else metrics.scores(metric).get("all")
    if value is None:
        return "missing", None
    return fmt_pm(value, metrics.recognition_se(metric, "all")), value


def _with_without(info: RunInfo, ref: RunInfo | None) -> tuple[str, RunInfo | None, RunInfo | None]:
    """(what a ``beyond`` AU run ablates, the run with it, the run without it) against ``ref``, the
    main AU run of its seed."""
    if info.colour_tokens and info.colour_moments is False:
        return "colour moments", ref, info
    return ("colour tokens", *((info, ref) if info.colour_tokens else (ref, info)))


def colour_token_table(inputs: ReportInputs) -> Table | Missing:
    """The ``beyond`` AU runs vs the main AU run of the same seed: the AU with ``au.colour_tokens``
    flipped and, where the preset's tokens carry them, without ``au.colour_moments``; recognition
    by exact id and by text with and without each, and the difference.

    The tokens are not ViCLIP's: a CPU-scale stand-in for its pretrained video features
    (``models/motion_colour.py``, docs/models.md), so they are ablated here.
    """
    runs = inputs.group("beyond", "au")
    if not runs:
        return Missing(
            "`manifest.json` lists no `beyond` AU run (the AU with `au.colour_tokens` "
            "flipped, which ablates the motion-gated colour tokens). " + inputs.how_to_add("beyond")
        )
    rows = []
    for info in runs:
        ref = inputs.seed_run("main", "au", info.seed)
        ablated, with_run, without_run = _with_without(info, ref)
        names = " / ".join("-" if r is None else r.name for r in (with_run, without_run))
        for metric, label in ((RECOGNITION, "exact id"), (RECOGNITION_TEXT, "by text")):
            with_cell, with_value = _recognition(inputs, with_run, metric)
            without_cell, without_value = _recognition(inputs, without_run, metric)
            diff = (
                "n/a"
                if with_value is None or without_value is None
                else fmt(with_value - without_value, signed=True)
            )
            rows.append([ablated, label, with_cell, without_cell, diff, str(info.seed), names])
    headers = [
        "ablated",
        "AU recognition (task=all)",
        "with",
        "without",
        "Δ with − without",
        "training seed",
        "runs (with / without)",
    ]
    notes = [
        "`au.colour_tokens`: motion-gated colour tokens added to the AU's ViT, a CPU-scale "
        "stand-in for ViCLIP's pretrained video features (docs/models.md); the paper's ViCLIP has "
        "none. `au.colour_moments`: those tokens also carry each colour's mean image position. "
        "Each `beyond` AU run changes one of them against the main AU run of the same seed. The "
        "other stand-ins listed there (e.g. `video_batch_norm`) are not ablated here.",
        "One training seed each, split "
        f"`{inputs.split}`, %; ± is the standard error from sampling the test clips (n/a without "
        "clip counts); both runs are scored on the same clips. By text, identical instruction "
        "texts count as equal (Table 1b).",
    ]
    return Table("Beyond the paper: the AU's motion-gated colour tokens (%)", headers, rows, notes)
