"""Action recognition (Table 1): top-1 accuracy per task over *all* instructions as candidates.

Scored two ways. By exact instruction id (the paper's Table 1), and by instruction text: some ids
of the table read the same (e.g. 50 push_buttons ids have 20 distinct texts), and a retrieval
model cannot tell identical texts apart, so a prediction whose text equals the truth's counts as
right. The *ceiling* is the best exact-id accuracy any model that scores identical texts equally
can reach on the evaluated clips: per group of ids sharing a text, only the clips of its most
frequent id can be right. Every mean is over tasks (the papers' 'Avg.' column); its standard error
treats each task's clips as independent Bernoulli draws.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import DataLoader

from mirror_align.data.loaders import AUClipDataset


def per_task_mean(task: Sequence[str], values: np.ndarray) -> dict[str, float]:
    """Mean of ``values [N]`` per task name, in first-seen task order."""
    groups: dict[str, list[float]] = defaultdict(list)
    for name, value in zip(task, values, strict=True):
        groups[name].append(float(value))
    return {name: float(np.mean(v)) for name, v in groups.items()}


def text_ceiling(task: Sequence[str], truth: np.ndarray, texts: Sequence[str]) -> dict[str, float]:
    """Per task, the best exact-id accuracy reachable when identical texts score equally.

    ``truth [N]`` are instruction ids indexing ``texts`` (the instruction table).
    """
    counts = Counter(zip(task, (texts[i] for i in truth), truth.tolist(), strict=True))
    best: dict[tuple[str, str], int] = defaultdict(int)
    for (name, text, _), n in counts.items():
        best[name, text] = max(best[name, text], n)
    size = Counter(task)
    reachable: dict[str, int] = defaultdict(int)
    for (name, _), n in best.items():
        reachable[name] += n
    return {name: reachable[name] / size[name] for name in size}


def table_ceiling(texts: Sequence[str], tasks_of_ids: Sequence[str]) -> float:
    """Mean over tasks of (distinct texts / ids): the ceiling for clips uniform over each task's ids."""
    by_task: dict[str, list[str]] = defaultdict(list)
    for text, name in zip(texts, tasks_of_ids, strict=True):
        by_task[name].append(text)
    return float(np.mean([len(set(v)) / len(v) for v in by_task.values()]))


def mean_standard_error(task: Sequence[str], correct: np.ndarray) -> float:
    """Standard error of the mean over tasks of per-task accuracy: ``sqrt(sum p(1-p)/n) / tasks``."""
    n = Counter(task)
    p = per_task_mean(task, correct)
    return float(np.sqrt(sum(p[t] * (1 - p[t]) / n[t] for t in p)) / len(p))


@dataclass
class RecognitionResult:
    """Per-episode predictions; accuracies are fractions in [0, 1]."""

    episode_id: np.ndarray  # int64 [N]
    task: list[str]  # [N]
    instruction_id: np.ndarray  # int64 [N], the truth
    predicted: np.ndarray  # int64 [N]
    texts: list[str] = field(default_factory=list)  # the instruction table, by id

    @property
    def correct(self) -> np.ndarray:
        """bool [N]: exact instruction id."""
        return self.predicted == self.instruction_id

    @property
    def correct_text(self) -> np.ndarray:
        """bool [N]: the predicted instruction reads the same as the true one."""
        texts = np.asarray(self.texts, dtype=object)
        return texts[self.predicted] == texts[self.instruction_id]

    @property
    def per_task(self) -> dict[str, float]:
        """Exact-id accuracy per task."""
        return per_task_mean(self.task, self.correct)

    @property
    def per_task_text(self) -> dict[str, float]:
        """Text accuracy per task."""
        return per_task_mean(self.task, self.correct_text)

    @property
    def ceiling(self) -> dict[str, float]:
        """Per task, the duplicate-text ceiling of exact-id accuracy on these clips."""
        return text_ceiling(self.task, self.instruction_id, self.texts)

    @property
    def mean(self) -> float:
        """Mean of the per-task exact-id accuracies (the papers' 'Avg.' column)."""
        return float(np.mean(list(self.per_task.values())))

    @property
    def mean_text(self) -> float:
        """Mean of the per-task text accuracies."""
        return float(np.mean(list(self.per_task_text.values())))

    @property
    def stderr(self) -> float:
        """Standard error of :attr:`mean`."""
        return mean_standard_error(self.task, self.correct)

    @property
    def stderr_text(self) -> float:
        """Standard error of :attr:`mean_text`."""
        return mean_standard_error(self.task, self.correct_text)


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
    task_names = [names[entry["task_id"]] for entry in dataset.entries]
    texts = [row.text for row in dataset.meta.instructions]
    return RecognitionResult(
        np.concatenate(ids), task_names, np.concatenate(truth), np.concatenate(predicted), texts
    )
