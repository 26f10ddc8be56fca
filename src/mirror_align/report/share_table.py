"""The AU-share comparison (issue: the paper's share of AU-loss steps vs the preset's): MN and the
AU baseline at the preset's ``train.au_share`` (the main runs) and at the paper's
:data:`~mirror_align.constants.PAPER_AU_SHARE` (the ``share`` runs), at one seed; computed only
from the records in :class:`ReportInputs`.

The AU baseline runs exactly the AU-loss steps of MN at its share (``loop_steps``), so each row
compares MN and AU at equal AU updates; the EE baseline does not depend on the share.
"""

from __future__ import annotations

from mirror_align.constants import PAPER_AU_SHARE, RECOGNITION, SUCCESS
from mirror_align.report.inputs import ReportInputs, RunInfo
from mirror_align.report.stats import fmt
from mirror_align.report.tables import Missing, Table, metric_value
from mirror_align.report.verdict import delta_cells, main_spread, noise_note


def _value(inputs: ReportInputs, info: RunInfo | None, metric: str) -> float | None:
    return None if info is None else metric_value(inputs, info.name, metric, "all")


def _cells(mn: float | None, base: float | None, spread: float | None) -> list[str]:
    return [
        "missing" if base is None else fmt(base),
        "missing" if mn is None else fmt(mn),
        *delta_cells(mn, base, spread),
    ]


def au_share_table(inputs: ReportInputs) -> Table | Missing:
    """Per share (the preset's, the paper's): AU baseline vs MN's AU side, EE baseline vs MN's
    success (``task=all``, %), each difference read against the main comparison's spread."""
    runs = inputs.group("share")
    # config.json as reproduce writes it: {"experiment": <the config>, "versions": ...}
    preset_share = (inputs.config or {}).get("experiment", {}).get("train", {}).get("au_share")
    if not runs and preset_share is not None and abs(preset_share - PAPER_AU_SHARE) < 1e-9:
        return Missing(
            f"Not needed: the preset's `train.au_share` is the paper's {PAPER_AU_SHARE:g}, so the "
            "main comparison is already MN vs the AU at the paper's share."
        )
    if not runs:
        return Missing(
            "`manifest.json` lists no `share` runs (MN and the AU at the paper's "
            f"`train.au_share` {PAPER_AU_SHARE:g}, made only when the preset's share differs). "
            + inputs.how_to_add("share")
        )
    seed = runs[0].seed
    spread = main_spread(inputs)
    ee = inputs.seed_run("main", "ee", seed)
    rows = []
    for label, group in (
        ("preset" if preset_share is None else f"{preset_share:g} (preset)", "main"),
        (f"{PAPER_AU_SHARE:g} (paper)", "share"),
    ):
        au, mn = inputs.seed_run(group, "au", seed), inputs.seed_run(group, "mn", seed)
        rows.append(
            [
                label,
                *_cells(_value(inputs, mn, RECOGNITION), _value(inputs, au, RECOGNITION),
                        spread[RECOGNITION]),
                *_cells(_value(inputs, mn, SUCCESS), _value(inputs, ee, SUCCESS), spread[SUCCESS]),
                " / ".join("-" if r is None else r.name for r in (au, mn, ee)),
            ]
        )  # fmt: skip
    headers = [
        "train.au_share",
        "AU alone",
        "MN's AU side",
        "Δ",
        "reading",
        "EE alone",
        "MN success",
        "Δ",
        "reading",
        "runs (AU / MN / EE)",
    ]
    notes = [
        f"Training seed {seed}, `task=all`, split `{inputs.split}`; recognition by exact id. The "
        "AU baseline runs exactly MN's AU-loss steps at the same share, so each row compares MN "
        "and AU at equal AU updates; the EE baseline does not use the share.",
        "Δ: MN minus the baseline. " + noise_note(spread),
    ]
    return Table("Beyond the paper: the share of AU-loss steps (%)", headers, rows, notes)
