"""Offline keyframe metrics as ``metrics.jsonl`` records: by ``evaluate`` on any split of any
dataset, and on val every ``train.keyframe_metrics_every`` steps during training (issue 11.7).

Record layout (:class:`~mirror_align.eval.metrics_log.MetricRecord`, ``seed`` = 0: greedy decoding
is deterministic):

* per task and overall: ``task`` = the task name or ``"all"``, ``metric`` = a name of
  :data:`~mirror_align.eval.keyframe_metrics.KEYFRAME_METRICS` (e.g.
  ``position_error_cm_median``), plus ``keyframe_count`` (how many keyframes it summarises);
* per keyframe index (over all tasks): ``task = "all"``, ``metric = "<name>@keyframe<k>"``
  (:func:`by_keyframe_metric`, parsed back by :func:`parse_keyframe_metric`), ``k`` the 0-based
  index of the keyframe in its episode.

A group with no keyframes gets no records (never NaN in the log).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mirror_align.eval.keyframe_metrics import (
    breakdown,
    keyframe_errors,
    predict_keyframes,
    summarize,
)
from mirror_align.eval.metrics_log import MetricRecord

KEYFRAME_COUNT = "keyframe_count"
_BY_INDEX = re.compile(r"^(?P<name>[a-z0-9_]+)@keyframe(?P<k>\d+)$")


def by_keyframe_metric(name: str, index: int) -> str:
    """The metric name of ``name`` restricted to keyframe index ``index``."""
    return f"{name}@keyframe{index}"


def parse_keyframe_metric(metric: str) -> tuple[str, int | None]:
    """``(name, keyframe index)`` of a metric name; the index is None for a plain name."""
    match = _BY_INDEX.match(metric)
    if match is None:
        return metric, None
    return match["name"], int(match["k"])


@dataclass
class OfflineKeyframeResult:
    """Offline keyframe metrics of one policy on one split.

    ``per_task[task]`` (and ``per_task["all"]``) and ``per_keyframe[k]`` map each
    :data:`KEYFRAME_METRICS` name to its value; ``counts`` / ``counts_by_keyframe`` how many
    keyframes each summarises.
    """

    per_task: dict[str, dict[str, float]] = field(default_factory=dict)
    per_keyframe: dict[int, dict[str, float]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    counts_by_keyframe: dict[int, int] = field(default_factory=dict)


def keyframe_dataset(
    dataset_path: str, split: str, tasks: list[str] | None, *, cache: bool = False
):
    """The un-augmented EE keyframe dataset of ``split`` (successful demos; tool frame applied)."""
    from mirror_align.data.loaders import EEKeyframeDataset

    return EEKeyframeDataset(dataset_path, split=split, augment=False, tasks=tasks, cache=cache)


def offline_keyframe_metrics(
    policy: torch.nn.Module, dataset: torch.utils.data.Dataset, batch_size: int = 32
) -> OfflineKeyframeResult:
    """Greedy-decode every keyframe of ``dataset`` and summarise the errors per task/keyframe.

    Rotation bins are compared at the policy's ``config.rotation_resolution`` (5 degrees by
    default), in the dataset's tool frame: the space the policy's rotation tokens live in.
    """
    predictions = predict_keyframes(policy, dataset, batch_size)
    resolution = float(getattr(getattr(policy, "config", None), "rotation_resolution", 5.0))
    errors = keyframe_errors(
        predictions.predicted, predictions.expert, resolution, predictions.stage1
    )
    names = list(dataset.meta.tasks)
    tasks = [names[int(t)] for t in predictions.task_id]
    out = OfflineKeyframeResult()
    if len(errors) == 0:
        return out
    out.per_task = {"all": summarize(errors), **breakdown(errors, tasks)}
    out.counts = {"all": len(errors)}
    out.counts.update(
        {t: int(n) for t, n in zip(*np.unique(tasks, return_counts=True), strict=True)}
    )
    by_index = breakdown(errors, predictions.keyframe_index.tolist())
    out.per_keyframe = {int(k): by_index[k] for k in sorted(by_index)}
    indices, counts = np.unique(predictions.keyframe_index, return_counts=True)
    out.counts_by_keyframe = {int(k): int(n) for k, n in zip(indices, counts, strict=True)}
    return out


def offline_records(
    result: OfflineKeyframeResult, run: str, step: int, split: str
) -> list[MetricRecord]:
    """The ``metrics.jsonl`` records of ``result`` (layout in the module docstring)."""
    records = []
    for task, values in result.per_task.items():
        for name in values:  # KEYFRAME_METRICS, plus STAGE1_METRICS for a two-stage policy
            records.append(MetricRecord(run, step, split, task, name, values[name], 0))
        records.append(MetricRecord(run, step, split, task, KEYFRAME_COUNT, result.counts[task], 0))
    for k, values in result.per_keyframe.items():
        for name in (*values, KEYFRAME_COUNT):
            value = result.counts_by_keyframe[k] if name == KEYFRAME_COUNT else values[name]
            records.append(
                MetricRecord(run, step, split, "all", by_keyframe_metric(name, k), value, 0)
            )
    return records


def write_tensorboard(run_dir: str | Path, records: list[MetricRecord]) -> None:
    """The overall (``task == "all"``, not per keyframe) records as TensorBoard scalars
    ``keyframes_<split>/<metric>`` in ``RUN/tb``, where the training loop logs."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(Path(run_dir) / "tb"))
    try:
        for r in records:
            if r.task == "all" and parse_keyframe_metric(r.metric)[1] is None:
                writer.add_scalar(f"keyframes_{r.split}/{r.metric}", float(r.value), r.step)
    finally:
        writer.close()


class TrainingKeyframeMetrics:
    """Offline keyframe metrics on val every ``every`` loop iterations of training.

    The val dataset is opened (and cached) once. :meth:`run` appends the records to
    ``RUN/metrics.jsonl`` and TensorBoard; it leaves torch's random state as it found it, so a run
    with and without it trains identically.
    """

    def __init__(self, run_dir: str | Path, dataset, every: int, batch_size: int = 32) -> None:
        self.run_dir = Path(run_dir)
        self.dataset = dataset
        self.every = every
        self.batch_size = batch_size

    @classmethod
    def for_run(cls, config, run_dir: str | Path, method: str, *, enabled: bool = True):
        """The periodic metrics of a run, or None: disabled (``train.keyframe_metrics_every`` 0,
        not the main process, no EE model) or no val episodes (one line says so)."""
        every = config.train.keyframe_metrics_every
        if not enabled or every <= 0 or method == "au":
            return None
        from mirror_align.data.reader import DatasetReader

        tasks = list(config.data.tasks) or None
        if not DatasetReader(config.data.path).select("val", tasks):
            print(f"keyframe metrics: {config.data.path} has no val episodes; not computed")
            return None
        return cls(
            run_dir,
            keyframe_dataset(config.data.path, "val", tasks, cache=config.data.cache),
            every,
        )

    def due(self, iteration: int, total: int) -> bool:
        """Whether to measure after loop iteration ``iteration`` (0-based) of ``total``."""
        return (iteration + 1) % self.every == 0 or iteration == total - 1

    def run(self, policy: torch.nn.Module, step: int) -> OfflineKeyframeResult:
        """Measure ``policy`` after ``step`` optimizer steps; append to metrics.jsonl and TB."""
        from mirror_align.eval.metrics_log import append_metrics

        # The DataLoader draws its base seed from torch's global generator: fork it, so that
        # the training run's random stream (dropout, resume) is the same with or without this.
        with torch.random.fork_rng(devices=[]):
            result = offline_keyframe_metrics(policy, self.dataset, self.batch_size)
        records = offline_records(result, self.run_dir.name, step, "val")
        append_metrics(self.run_dir / "metrics.jsonl", records)
        write_tensorboard(self.run_dir, records)
        return result
