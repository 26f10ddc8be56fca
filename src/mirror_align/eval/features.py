"""Per-episode representations of a frozen AU model and a frozen EE model (probing inputs).

One row per episode of the chosen splits (successful demonstrations by default):

* ``u [N, du]``: the AU model's ``represent`` of the episode's front-camera clip, sampled uniformly
  without jitter (the segment centres, as recognition does);
* ``e [N, de]``: the EE model's ``represent`` of every keyframe observation of the episode
  (greedy decoding in eval mode, so the action label is never read), **averaged over the
  keyframes**. The paper's ``e`` is per keyframe; one row per episode is what pairs by episode need
  (row i of U and of E are the same episode) and weighs every episode equally, whatever its number
  of keyframes.

Both models run in eval mode under ``torch.no_grad``; their previous mode is restored afterwards.
``torch.set_num_threads`` is left to the caller. The datasets are opened (and, by default, decoded
into memory) once in :class:`EpisodeSet`, so that features of many checkpoints reuse them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import nn
from tqdm import tqdm

from mirror_align.data.loaders import AUClipDataset, EEKeyframeDataset, collate
from mirror_align.data.reader import DatasetReader
from mirror_align.data.schema import SPLITS
from mirror_align.errors import UserInputError

KEY_NAMES = ("episode_id", "instruction_id", "task_id")


@dataclass
class EpisodeFeatures:
    """Index-aligned per-episode arrays: row i of every field is one episode.

    ``u`` float32 [N, du] and ``e`` float32 [N, de] (either may be None when only one model was
    run); ``episode_id``, ``instruction_id``, ``task_id`` int64 [N]; ``split`` str [N].
    """

    u: np.ndarray | None
    e: np.ndarray | None
    episode_id: np.ndarray
    instruction_id: np.ndarray
    task_id: np.ndarray
    split: np.ndarray

    def __len__(self) -> int:
        return int(self.episode_id.shape[0])

    def keys(self) -> dict[str, np.ndarray]:
        """The pairing keys ``episode_id``, ``instruction_id``, ``task_id`` (int64 [N])."""
        return {name: getattr(self, name) for name in KEY_NAMES}

    def select(self, rows: ArrayLike) -> EpisodeFeatures:
        """The rows picked by a boolean mask [N] or an index array."""
        rows = np.asarray(rows)
        return EpisodeFeatures(
            None if self.u is None else self.u[rows],
            None if self.e is None else self.e[rows],
            self.episode_id[rows],
            self.instruction_id[rows],
            self.task_id[rows],
            self.split[rows],
        )

    def in_splits(self, splits: Sequence[str]) -> EpisodeFeatures:
        """Only the rows of ``splits``."""
        return self.select(np.isin(self.split, list(splits)))


@dataclass
class _SplitPart:
    split: str
    au: AUClipDataset
    ee: EEKeyframeDataset


class EpisodeSet:
    """The episodes whose features are extracted, opened once per split.

    ``splits`` None means every split of the dataset that holds a selected episode, in
    ``train, val, test`` order. ``clip_frames`` is the AU clip length (use the AU model's
    ``au.num_frames``; the model resamples other lengths itself). ``cache`` decodes every episode
    into memory once, which pays off when many checkpoints are run over the same episodes.
    """

    def __init__(
        self,
        root: str,
        splits: Sequence[str] | None = None,
        clip_frames: int = 8,
        tasks: list[str] | None = None,
        *,
        include_failed: bool = False,
        cache: bool = True,
    ) -> None:
        reader = DatasetReader(root)
        if splits is None:
            splits = [s for s in SPLITS if reader.select(s, tasks, include_failed)]
            if not splits:
                raise UserInputError(f"{root}: no episodes to extract features from")
        for split in splits:
            if split not in SPLITS:
                raise UserInputError(f"split {split!r} is not one of {', '.join(SPLITS)}")
        self.root = str(root)
        self.splits = list(splits)
        self.clip_frames = clip_frames
        self.cache = cache
        options = {"tasks": tasks, "include_failed": include_failed, "cache": cache, "seed": 0}
        self.parts = [
            _SplitPart(
                split,
                AUClipDataset(root, split, clip_frames=clip_frames, train=False, **options),
                EEKeyframeDataset(root, split, augment=False, **options),
            )
            for split in self.splits
        ]
        for part in self.parts:
            au_ids = [entry["episode_id"] for entry in part.au.entries]
            ee_ids = [entry["episode_id"] for entry in part.ee.entries]
            if au_ids != ee_ids:  # both select from one index; a mismatch would mispair rows
                raise UserInputError(
                    f"{root}: AU and EE episode lists differ in split {part.split}"
                )

    def __len__(self) -> int:
        return sum(len(part.au) for part in self.parts)

    @property
    def num_keyframes(self) -> int:
        """EE samples (keyframe transitions) over all episodes."""
        return sum(len(part.ee) for part in self.parts)

    def empty_features(self) -> EpisodeFeatures:
        """The keys and split labels of every episode, without features."""
        keys = [part.au.key_arrays() for part in self.parts]
        return EpisodeFeatures(
            None,
            None,
            *(np.concatenate([k[name] for k in keys]) for name in KEY_NAMES),
            np.concatenate(
                [np.full(len(part.au), part.split, dtype=object) for part in self.parts]
            ).astype(str),
        )


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


def batch_at(dataset: torch.utils.data.Dataset, start: int, batch_size: int) -> dict:
    """The collated batch of items ``start .. start + batch_size - 1`` (fewer at the end)."""
    return collate([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])


def _batches(dataset: torch.utils.data.Dataset, batch_size: int) -> Iterator[dict]:
    for start in range(0, len(dataset), batch_size):
        yield batch_at(dataset, start, batch_size)


def au_representations(
    model: nn.Module, episodes: EpisodeSet, batch_size: int = 32, *, progress: bool = True
) -> np.ndarray:
    """``u [N, du]`` float32: ``model.represent`` of each episode's uniform clip."""
    out = []
    bar = tqdm(
        total=len(episodes), desc="AU features", unit="episode", disable=not progress, leave=False
    )
    with _eval_mode(model):
        for part in episodes.parts:
            for batch in _batches(part.au, batch_size):
                out.append(model.represent(batch).float().cpu().numpy())
                bar.update(len(batch["episode_id"]))
    bar.close()
    return np.concatenate(out).astype(np.float32)


def ee_representations(
    model: nn.Module, episodes: EpisodeSet, batch_size: int = 32, *, progress: bool = True
) -> np.ndarray:
    """``e [N, de]`` float32: ``model.represent`` of every keyframe, averaged per episode."""
    out = []
    bar = tqdm(
        total=episodes.num_keyframes,
        desc="EE features",
        unit="keyframe",
        disable=not progress,
        leave=False,
    )
    with _eval_mode(model):
        for part in episodes.parts:
            rows = []
            for batch in _batches(part.ee, batch_size):
                rows.append(model.represent(batch).float().cpu().numpy())
                bar.update(len(batch["episode_id"]))
            out.append(episode_means(episodes, part, np.concatenate(rows)))
    bar.close()
    return np.concatenate(out).astype(np.float32)


def episode_means(episodes: EpisodeSet, part: _SplitPart, per_keyframe: np.ndarray) -> np.ndarray:
    """``[N_part, de]`` float64: the rows ``per_keyframe [K_part, de]`` (one per keyframe of the
    split ``part``, in dataset order) averaged per episode. UserInputError when an episode has no
    keyframe."""
    per_keyframe = per_keyframe.astype(np.float64)
    position = part.ee.samples[:, 0]
    sums = np.zeros((len(part.ee.entries), per_keyframe.shape[1]))
    np.add.at(sums, position, per_keyframe)
    counts = np.bincount(position, minlength=len(part.ee.entries))
    if (counts == 0).any():
        missing = [part.ee.entries[i]["episode_id"] for i in np.flatnonzero(counts == 0)]
        raise UserInputError(
            f"{episodes.root}: episode(s) {missing[:5]} of split {part.split} have no keyframes"
        )
    return sums / counts[:, None]


def extract_features(
    au_model: nn.Module | None,
    ee_model: nn.Module | None,
    episodes: EpisodeSet,
    batch_size: int = 32,
    *,
    progress: bool = True,
) -> EpisodeFeatures:
    """Per-episode ``u`` and ``e`` of the episodes in ``episodes`` (a None model gives None)."""
    if batch_size < 1:
        raise UserInputError(f"batch_size must be >= 1, got {batch_size}")
    features = episodes.empty_features()
    if au_model is not None:
        features.u = au_representations(au_model, episodes, batch_size, progress=progress)
    if ee_model is not None:
        features.e = ee_representations(ee_model, episodes, batch_size, progress=progress)
    return features
