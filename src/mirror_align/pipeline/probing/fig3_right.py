"""Paper Fig. 3 right: probing on success vs failure subsets, at equal sample sizes.

AU correctly vs incorrectly recognised episodes and EE successful vs failed rollouts (the
per-episode outcomes ``mirror-align evaluate`` writes) are probed at the size of the smaller subset,
over repeated subsamples; records go to ``probing/subsets.jsonl`` (docs/experiments.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mirror_align.align.probe import ProbeConfig
from mirror_align.align.probe_subsets import MIN_SUBSET_ROWS, probe_subsets
from mirror_align.atomic import write_json_atomic
from mirror_align.eval.features import EpisodeFeatures
from mirror_align.eval.loading import resolve_checkpoint
from mirror_align.eval.metrics_log import MetricRecord, append_metrics
from mirror_align.pipeline.probing.common import (
    SKIPPED_SUFFIX,
    Checkpoint,
    FeatureStore,
    checkpoint_key,
    default_probe_config,
    existing_records,
    open_store,
    pair_name,
    read_json,
)

SUBSET_METRIC = "subset_recall_at_1"
# Comparison -> its two subsets (the ``split`` field of subsets.jsonl).
SUBSET_COMPARISONS: dict[str, tuple[str, str]] = {
    "au": ("au_correct", "au_incorrect"),
    "ee": ("ee_success", "ee_failure"),
}


def outcome_masks(
    episode_id: np.ndarray,
    recognition: Mapping | None = None,
    rollouts: Sequence[Mapping] | None = None,
) -> dict[str, np.ndarray]:
    """Boolean masks ``[N]`` over the rows' ``episode_id`` of the subsets the outcomes define.

    ``recognition`` is a ``recognition_<split>_step<S>.json`` (``au_correct``/``au_incorrect``:
    predicted == instruction_id or not); ``rollouts`` a ``rollouts_<split>_step<S>.json``
    (``ee_success``/``ee_failure`` of the evaluation-seed-0 rollout whose scene seed is the
    episode_id). Episodes without an outcome are in neither subset.
    """
    episode_id = np.asarray(episode_id, dtype=np.int64)
    masks: dict[str, np.ndarray] = {}
    if recognition is not None:
        correct = {
            int(ep): int(p) == int(t)
            for ep, p, t in zip(
                recognition["episode_id"],
                recognition["predicted"],
                recognition["instruction_id"],
                strict=True,
            )
        }
        known = np.array([int(ep) in correct for ep in episode_id], dtype=bool)
        hit = np.array([correct.get(int(ep), False) for ep in episode_id], dtype=bool)
        masks["au_correct"], masks["au_incorrect"] = known & hit, known & ~hit
    if rollouts is not None:
        success = {int(r["seed"]): bool(r["success"]) for r in rollouts if int(r["eval_seed"]) == 0}
        known = np.array([int(ep) in success for ep in episode_id], dtype=bool)
        hit = np.array([success.get(int(ep), False) for ep in episode_id], dtype=bool)
        masks["ee_success"], masks["ee_failure"] = known & hit, known & ~hit
    return masks


@dataclass
class ComparisonOutcome:
    """One subset comparison: ``status`` is "written", "present" (already in the file) or
    "missing" (``reason`` says why; nothing was written)."""

    comparison: str
    status: str
    sizes: dict[str, int] = field(default_factory=dict)  # subset -> episodes available
    n_per_subset: int = 0  # rows each probe used (the smallest subset)
    recall_at_1: dict[str, float] = field(default_factory=dict)  # subset -> mean over repeats
    reason: str = ""


def probe_subset_comparison(
    features: EpisodeFeatures,
    comparison: str,
    masks: Mapping[str, np.ndarray],
    run: str,
    step: int,
    out_jsonl: str | Path,
    probe_config: ProbeConfig | None = None,
    repeats: int = 5,
) -> ComparisonOutcome:
    """Probe the two subsets of ``comparison`` ("au" or "ee") at equal sizes and append one
    ``subset_recall_at_1`` record per subset and repeat (``seed`` = probe seed + repeat).

    A subset with fewer than :data:`MIN_SUBSET_ROWS` episodes (or without outcomes) writes nothing
    and returns status "missing" with the reason.
    """
    config = probe_config or default_probe_config()
    names = SUBSET_COMPARISONS[comparison]
    if any(n not in masks for n in names):
        return ComparisonOutcome(comparison, "missing", reason="no per-episode outcomes")
    sizes = {n: int(np.count_nonzero(masks[n])) for n in names}
    if min(sizes.values()) < MIN_SUBSET_ROWS:
        text = ", ".join(f"{n} has {k}" for n, k in sizes.items())
        return ComparisonOutcome(
            comparison,
            "missing",
            sizes,
            reason=f"{text} episode(s); equal-size probing needs >= {MIN_SUBSET_ROWS} in each",
        )
    result = probe_subsets(
        features.u,
        features.e,
        features.keys(),
        {n: np.asarray(masks[n], dtype=bool) for n in names},
        config,
        repeats,
    )
    records = [
        MetricRecord(
            run, step, n, "all", SUBSET_METRIC, float(values[n]["recall_at_1"]), config.seed + r
        )
        for r, values in enumerate(result.runs)
        for n in names
    ]
    append_metrics(out_jsonl, records)
    means = {n: result.summary[n]["recall_at_1"]["mean"] for n in names}
    return ComparisonOutcome(comparison, "written", sizes, result.n_per_subset, means)


def _settled(
    au_run: str | Path, ee_run: str | Path, out_jsonl: Path, split: str
) -> tuple[tuple[int, int], dict[str, Path], dict[str, ComparisonOutcome]]:
    """The latest (AU step, EE step), each comparison's outcome file, and the outcomes of the
    comparisons settled without probing (already in ``out_jsonl``, or no outcome file)."""
    name = pair_name(au_run, ee_run)
    au_step, _ = resolve_checkpoint(au_run)
    ee_step, _ = resolve_checkpoint(ee_run)
    sources = {
        "au": Path(au_run) / "eval" / f"recognition_{split}_step{au_step}.json",
        "ee": Path(ee_run) / "eval" / f"rollouts_{split}_step{ee_step}.json",
    }
    present = {r.split for r in existing_records(out_jsonl, name) if r.metric == SUBSET_METRIC}
    outcomes: dict[str, ComparisonOutcome] = {}
    for comparison, path in sources.items():
        if set(SUBSET_COMPARISONS[comparison]) <= present:
            outcomes[comparison] = ComparisonOutcome(comparison, "present")
        elif not path.is_file():
            outcomes[comparison] = ComparisonOutcome(
                comparison, "missing", reason=f"{path} not found (run `mirror-align evaluate`)"
            )
    return (au_step, ee_step), sources, outcomes


def success_subsets_needs(
    au_run: str | Path, ee_run: str | Path, out_jsonl: str | Path, split: str = "test"
) -> list[Checkpoint]:
    """The checkpoints whose features :func:`probe_success_subsets` will read (none when every
    comparison is settled without probing), for :meth:`FeatureStore.prefetch`."""
    (au_step, ee_step), sources, outcomes = _settled(au_run, ee_run, Path(out_jsonl), split)
    if len(outcomes) == len(sources):
        return []
    return [checkpoint_key("au", au_run, au_step), checkpoint_key("ee", ee_run, ee_step)]


def probe_success_subsets(
    au_run: str | Path,
    ee_run: str | Path,
    dataset: str | Path,
    out_jsonl: str | Path,
    split: str = "test",
    repeats: int = 5,
    probe_config: ProbeConfig | None = None,
    store: FeatureStore | None = None,
    *,
    progress: bool = True,
) -> list[ComparisonOutcome]:
    """Fig. 3 right on the successful episodes of ``split``, with the latest checkpoints.

    AU correct vs incorrect comes from the AU run's ``eval/recognition_<split>_step<S>.json`` and EE
    success vs failure from the EE run's ``eval/rollouts_<split>_step<S>.json`` (written by
    ``mirror-align evaluate`` at the latest checkpoint S). Records: ``run=pair_name``,
    ``step`` = the EE checkpoint step, ``split`` = the subset. A comparison already in the file is
    kept; one that cannot be made (no outcome file, a subset under :data:`MIN_SUBSET_ROWS`) is
    reported as "missing", writes no records and leaves ``subsets_<comparison>.skipped.json``
    with the reason beside ``out_jsonl``.
    """
    config = probe_config or default_probe_config()
    out_jsonl = Path(out_jsonl)
    name = pair_name(au_run, ee_run)
    (au_step, ee_step), sources, outcomes = _settled(au_run, ee_run, out_jsonl, split)
    todo = [c for c in sources if c not in outcomes]
    if todo:
        if store is None:
            store = open_store(dataset, au_run, [split], progress=progress)
        features = store.features(au_run, au_step, ee_run, ee_step).in_splits([split])
        masks = outcome_masks(
            features.episode_id,
            read_json(sources["au"]) if "au" in todo else None,
            read_json(sources["ee"]) if "ee" in todo else None,
        )
        for comparison in todo:
            outcomes[comparison] = probe_subset_comparison(
                features, comparison, masks, name, ee_step, out_jsonl, config, repeats
            )
    # A comparison not probed leaves subsets_<comparison>.skipped.json = {"comparison", "reason"}
    # for the report; it goes once the comparison is probed.
    for comparison, outcome in outcomes.items():
        note = out_jsonl.parent / f"subsets_{comparison}{SKIPPED_SUFFIX}"
        if outcome.status == "missing":
            write_json_atomic(note, {"comparison": comparison, "reason": outcome.reason})
        else:
            note.unlink(missing_ok=True)
    return [outcomes[c] for c in sources]
