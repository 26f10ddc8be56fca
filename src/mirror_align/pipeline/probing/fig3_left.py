"""Paper Fig. 3 left: alignment probing along training (plus mutual k-NN and CKA).

Checkpoints of a separately trained AU run and EE run, paired by training progress
(:func:`pair_checkpoints`), are probed on one fixed set of episodes; each pair appends the
:data:`ALONG_TRAINING_METRICS` records to ``probing/along_training.jsonl`` (docs/experiments.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from mirror_align.align.probe import ProbeConfig, probe
from mirror_align.errors import UserInputError
from mirror_align.eval.metrics_log import MetricRecord, append_metrics
from mirror_align.pipeline.probing.common import (
    Checkpoint,
    FeatureStore,
    checkpoint_key,
    default_probe_config,
    existing_records,
    open_store,
    pair_name,
)
from mirror_align.train.checkpoint import list_checkpoints

# along_training.jsonl metric name -> ProbeResult field.
ALONG_TRAINING_METRICS: dict[str, str] = {
    "probe_recall_at_1": "recall_at_1",
    "probe_recall_at_1_u2e": "recall_at_1_u2e",
    "probe_recall_at_1_e2u": "recall_at_1_e2u",
    "probe_chance": "chance",
    "probe_mi_lower_bound_nats": "mi_lower_bound_nats",
    "mutual_knn": "mutual_knn",
    "cka_linear": "cka_linear",
    "cka_unbiased": "cka_unbiased",
}


@dataclass(frozen=True)
class CheckpointPair:
    """An AU and an EE checkpoint at one training progress ``step`` (0 = fresh initialisation)."""

    step: int
    au_step: int
    ee_step: int


def pair_checkpoints(au_steps: Sequence[int], ee_steps: Sequence[int]) -> list[CheckpointPair]:
    """Step 0 (both freshly initialised), then for each EE step s the AU checkpoint with the largest
    step <= s (the fresh AU model when there is none)."""
    pairs = [CheckpointPair(0, 0, 0)]
    for step in sorted(set(ee_steps) - {0}):
        au = max((a for a in au_steps if a <= step), default=0)
        pairs.append(CheckpointPair(step, au, step))
    return pairs


@dataclass
class AlongTrainingOutcome:
    """What :func:`probe_along_training` did; ``results`` holds the probes run in this call."""

    run: str
    pairs: list[CheckpointPair]
    skipped_steps: list[int]  # already complete in the file
    results: dict[int, dict] = field(default_factory=dict)  # step -> ProbeResult.to_dict()


def _checkpoint_pairs(au_run: str | Path, ee_run: str | Path) -> list[CheckpointPair]:
    """:func:`pair_checkpoints` of the two runs' complete checkpoints; ``UserInputError`` when a
    run has none."""
    au_steps = [s for s, _ in list_checkpoints(au_run)]
    ee_steps = [s for s, _ in list_checkpoints(ee_run)]
    for run_dir, steps in ((au_run, au_steps), (ee_run, ee_steps)):
        if not steps:
            raise UserInputError(
                f"{run_dir}: no complete checkpoint (train it first with `mirror-align train`)"
            )
    return pair_checkpoints(au_steps, ee_steps)


def _outcome_so_far(
    au_run: str | Path, ee_run: str | Path, out_jsonl: Path
) -> AlongTrainingOutcome:
    """The pairs of the two runs, those whose every metric is already in ``out_jsonl`` skipped."""
    name = pair_name(au_run, ee_run)
    pairs = _checkpoint_pairs(au_run, ee_run)
    have: dict[int, set[str]] = {}
    for record in existing_records(out_jsonl, name):
        have.setdefault(record.step, set()).add(record.metric)
    done = [p.step for p in pairs if have.get(p.step, set()) >= set(ALONG_TRAINING_METRICS)]
    return AlongTrainingOutcome(name, pairs, done)


def along_training_needs(
    au_run: str | Path, ee_run: str | Path, out_jsonl: str | Path
) -> list[Checkpoint]:
    """The checkpoints whose features :func:`probe_along_training` will read (its pairs not yet
    complete in ``out_jsonl``), for :meth:`FeatureStore.prefetch`."""
    outcome = _outcome_so_far(au_run, ee_run, Path(out_jsonl))
    todo = [p for p in outcome.pairs if p.step not in outcome.skipped_steps]
    return [checkpoint_key("au", au_run, p.au_step) for p in todo] + [
        checkpoint_key("ee", ee_run, p.ee_step) for p in todo
    ]


def probe_along_training(
    au_run: str | Path,
    ee_run: str | Path,
    dataset: str | Path,
    out_jsonl: str | Path,
    probe_config: ProbeConfig | None = None,
    splits: Sequence[str] | None = None,
    store: FeatureStore | None = None,
    *,
    progress: bool = True,
) -> AlongTrainingOutcome:
    """Probe every checkpoint pair of ``au_run`` and ``ee_run`` (:func:`pair_checkpoints`) on the
    successful episodes of ``splits`` (None: all splits; the probe splits them by episode) and
    append the :data:`ALONG_TRAINING_METRICS` records to ``out_jsonl``.

    Rows pair by episode. Records: ``run=pair_name``, ``step`` = the pair's step, ``split="all"``
    (or the splits joined by "+"), ``task="all"``, ``seed`` = the probe seed. Steps whose every
    metric is already in the file are skipped.
    """
    config = probe_config or default_probe_config()
    out_jsonl = Path(out_jsonl)
    outcome = _outcome_so_far(au_run, ee_run, out_jsonl)
    todo = [p for p in outcome.pairs if p.step not in outcome.skipped_steps]
    if not todo:
        return outcome
    if store is None:
        store = open_store(dataset, au_run, splits, progress=progress)
    # Every pair's checkpoints in one batch-major pass (a no-op for those already held).
    store.prefetch(along_training_needs(au_run, ee_run, out_jsonl))
    split_label = "all" if splits is None else "+".join(splits)
    name = outcome.run
    for pair in tqdm(todo, desc="probe along training", unit="ckpt", disable=not progress):
        features = store.features(au_run, pair.au_step, ee_run, pair.ee_step)
        if splits is not None:
            features = features.in_splits(splits)
        result = probe(features.u, features.e, features.keys(), config)
        records = [
            MetricRecord(
                name,
                pair.step,
                split_label,
                "all",
                metric,
                float(getattr(result, attr)),
                config.seed,
            )
            for metric, attr in ALONG_TRAINING_METRICS.items()
        ]
        append_metrics(out_jsonl, records)
        outcome.results[pair.step] = result.to_dict()
    return outcome
