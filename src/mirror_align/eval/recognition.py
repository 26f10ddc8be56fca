"""Action recognition (Table 1): top-1 accuracy per task over *all* instructions as candidates."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader

from mirror_align.data.loaders import AUClipDataset


@dataclass
class RecognitionResult:
    """Per-episode predictions and per-task accuracy."""

    episode_id: np.ndarray  # int64 [N]
    task: list[str]  # [N]
    instruction_id: np.ndarray  # int64 [N], the truth
    predicted: np.ndarray  # int64 [N]
    per_task: dict[str, float]  # accuracy in [0, 1]

    @property
    def correct(self) -> np.ndarray:
        """bool [N]."""
        return self.predicted == self.instruction_id

    @property
    def mean(self) -> float:
        """Mean of the per-task accuracies (the papers' 'Avg.' column)."""
        return float(np.mean(list(self.per_task.values())))


@torch.no_grad()
def evaluate_recognition(
    model: torch.nn.Module,
    dataset_path: str,
    split: str = "test",
    clip_frames: int = 8,
    tasks: list[str] | None = None,
    batch_size: int = 32,
) -> RecognitionResult:
    """Recognise every episode of ``split`` (uniform clips, no jitter) with ``model.predict``."""
    dataset = AUClipDataset(
        dataset_path,
        split,
        clip_frames=clip_frames,
        train=False,
        tasks=tasks,
        include_failed=True,
        cache=False,
    )
    names = dataset.meta.tasks
    ids, truth, predicted = [], [], []
    model.eval()
    for batch in DataLoader(dataset, batch_size=batch_size):
        predicted.append(model.predict(batch).cpu().numpy())
        truth.append(batch["instruction_id"].numpy())
        ids.append(batch["episode_id"].numpy())
    predicted_all, truth_all = np.concatenate(predicted), np.concatenate(truth)
    task_names = [names[entry["task_id"]] for entry in dataset.entries]
    hits: dict[str, list[bool]] = defaultdict(list)
    for name, p, t in zip(task_names, predicted_all, truth_all, strict=True):
        hits[name].append(bool(p == t))
    per_task = {name: float(np.mean(hits[name])) for name in names if name in hits}
    return RecognitionResult(np.concatenate(ids), task_names, truth_all, predicted_all, per_task)
