"""Torch datasets for the two models: AU clips and EE keyframe transitions (batches per
``docs/interfaces.md``).

Caching: with ``cache=True`` (the default) every episode's images are decoded once, in the process
that builds the dataset, into compact numpy arrays (depth stays in its stored dtype). DataLoader
workers started by ``fork`` then share those pages copy-on-write, so nothing is re-decoded per epoch
or per worker. With ``cache=False`` each item opens its episode file, which is fork-safe because no
HDF5 handle outlives a call.

Randomness (clip jitter, augmentation) comes from a per-process numpy Generator: in a DataLoader
worker it is reseeded from ``torch.initial_seed()`` (distinct per worker and per epoch), so workers
never repeat each other's draws; in the main process it starts from ``seed``.
"""

from __future__ import annotations

import os
import random
from typing import Any

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset, default_collate
from tqdm import tqdm

from mirror_align.data.geometry import (
    depth_to_points,
    sample_scene_augmentation,
    transform_pose_vector,
    yaw_transform,
)
from mirror_align.data.reader import DatasetReader
from mirror_align.data.tool_frame import to_tool_frame
from mirror_align.errors import UserInputError

AUGMENT_TRANSLATION = 0.125  # metres, per axis (ARP/PerAct)
AUGMENT_YAW_DEGREES = 45.0  # about the world z axis (ARP/PerAct)


class _Seeded:
    """A numpy Generator that is re-derived after a fork (DataLoader workers)."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._pid = os.getpid()
        self._generator = np.random.default_rng(seed)

    @property
    def rng(self) -> np.random.Generator:
        if os.getpid() != self._pid:
            self.reseed(torch.initial_seed())
        return self._generator

    def reseed(self, seed: int) -> None:
        self._pid = os.getpid()
        self._generator = np.random.default_rng([self._seed, seed % (1 << 63)])


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn`` for DataLoader: seed numpy, ``random`` and the dataset from the worker's
    torch seed (which DataLoader makes distinct per worker and per epoch)."""
    seed = torch.initial_seed() % (1 << 32)
    np.random.seed(seed)
    random.seed(seed)
    info = torch.utils.data.get_worker_info()
    if info is not None:
        for dataset in _datasets_in(info.dataset):
            dataset.reseed(torch.initial_seed())


def collate(items: list[Any]) -> Any:
    """``collate_fn`` for these datasets: stacks (nested tuples of) dicts of tensors into batches.

    In the main process it stacks with numpy, which copies on one thread: torch's multi-threaded
    ``torch.stack`` was 5-8x slower on a busy 2-core machine (see ``benchmarks/bench_data.py``).
    In DataLoader workers (single-threaded torch) it is ``default_collate``, which writes straight
    into shared memory.
    """
    if torch.utils.data.get_worker_info() is not None:
        return default_collate(items)
    first = items[0]
    if isinstance(first, tuple):
        return tuple(collate(list(group)) for group in zip(*items, strict=True))
    if isinstance(first, dict):
        return {key: collate([item[key] for item in items]) for key in first}
    if isinstance(first, torch.Tensor):
        return torch.from_numpy(np.stack([item.numpy() for item in items]))
    return default_collate(items)


def _datasets_in(dataset: Any) -> list[_Seeded]:
    found = [dataset] if isinstance(dataset, _Seeded) else []
    for child in getattr(dataset, "children", lambda: [])():
        found.extend(_datasets_in(child))
    return found


def uniform_clip_indices(
    num_frames: int, clip_frames: int, rng: np.random.Generator | None
) -> np.ndarray:
    """``clip_frames`` indices spread uniformly over ``num_frames``: one per equal segment, the
    segment centre without ``rng`` (evaluation) or a random frame of the segment with it (training).
    Short videos repeat frames. Returns int64 [clip_frames], non-decreasing."""
    edges = np.linspace(0.0, num_frames, clip_frames + 1)
    lo = np.floor(edges[:-1]).astype(np.int64)
    hi = np.maximum(np.ceil(edges[1:]).astype(np.int64), lo + 1)
    if rng is None:
        idx = np.floor((edges[:-1] + edges[1:]) / 2).astype(np.int64)
    else:
        idx = rng.integers(lo, hi)
    return np.clip(idx, 0, num_frames - 1)


class _EpisodeDataset(Dataset, _Seeded):
    """Shared selection, identity keys and caching of the two datasets."""

    arrays: tuple[str, ...] = ()

    def __init__(
        self,
        root: str,
        split: str | None,
        *,
        tasks: list[str] | None,
        include_failed: bool,
        cache: bool,
        seed: int,
    ) -> None:
        _Seeded.__init__(self, seed)
        self.reader = DatasetReader(root)
        self.meta = self.reader.meta
        self.entries = self.reader.select(split, tasks, include_failed)
        if not self.entries:
            raise UserInputError(
                f"{root}: no {'' if include_failed else 'successful '}episodes in split "
                f"{split!r}" + (f" for tasks {', '.join(tasks)}" if tasks else "")
            )
        self.split = split
        self._cache: dict[int, dict[str, np.ndarray]] | None = None
        if cache:
            self._cache = {}
            for entry in tqdm(self.entries, desc=f"caching {type(self).__name__}", leave=False):
                self._cache[entry["episode_id"]] = self._load(entry)

    def _load(self, entry: dict[str, Any]) -> dict[str, np.ndarray]:
        with h5py.File(self.reader.path(entry), "r") as f:
            return {name: f[name][()] for name in self.arrays}

    def _arrays(self, position: int) -> dict[str, np.ndarray]:
        entry = self.entries[position]
        if self._cache is not None:
            return self._cache[entry["episode_id"]]
        return self._load(entry)

    def cached_bytes(self) -> int:
        """Bytes held by the in-memory cache (0 without caching)."""
        if self._cache is None:
            return 0
        return sum(a.nbytes for arrays in self._cache.values() for a in arrays.values())

    def _keys(self, entry: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {
            "instruction_id": torch.tensor(entry["instruction_id"], dtype=torch.int64),
            "task_id": torch.tensor(entry["task_id"], dtype=torch.int64),
            "episode_id": torch.tensor(entry["episode_id"], dtype=torch.int64),
        }

    def key_arrays(self) -> dict[str, np.ndarray]:
        """Per-sample ``episode_id``, ``instruction_id``, ``task_id`` as int64 [len(self)] arrays."""
        rows = [self.entries[self.episode_position(i)] for i in range(len(self))]
        return {
            key: np.array([row[key] for row in rows], dtype=np.int64)
            for key in ("episode_id", "instruction_id", "task_id")
        }

    def episode_position(self, index: int) -> int:
        return index


class AUClipDataset(_EpisodeDataset):
    """One sample per episode: a front-camera clip of ``clip_frames`` frames and its identity keys.

    Item: ``video`` uint8 [T, H, W, 3], ``instruction_id``/``task_id``/``episode_id`` int64 [].
    ``train=True`` jitters the frame chosen in each of the T equal segments of the video. Every
    argument after ``split`` is keyword-only.
    """

    arrays = ("video",)

    def __init__(
        self,
        root: str,
        split: str | None = "train",
        *,
        clip_frames: int = 8,
        train: bool = True,
        tasks: list[str] | None = None,
        include_failed: bool = False,
        cache: bool = True,
        seed: int = 0,
    ) -> None:
        if clip_frames < 1:
            raise UserInputError(f"clip_frames must be >= 1, got {clip_frames}")
        self.clip_frames = clip_frames
        self.train = train
        super().__init__(
            root, split, tasks=tasks, include_failed=include_failed, cache=cache, seed=seed
        )

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        video = self._arrays(index)["video"]
        idx = uniform_clip_indices(
            video.shape[0], self.clip_frames, self.rng if self.train else None
        )
        item = {"video": torch.from_numpy(np.ascontiguousarray(video[idx]))}
        item.update(self._keys(self.entries[index]))
        return item


class EEKeyframeDataset(_EpisodeDataset):
    """One sample per keyframe transition: (observation at keyframe k, instruction) -> action k.

    Item keys and shapes are the EE batch of ``docs/interfaces.md`` without the batch axis. With
    ``augment=True`` the whole scene is moved by a random translation (up to
    ``AUGMENT_TRANSLATION`` m per axis) and yaw (up to ``AUGMENT_YAW_DEGREES``), applied
    consistently to ``points``, ``extrinsics``, ``proprio`` and ``action``; draws that would move
    the target outside the dataset's ``workspace_bounds`` are redrawn. Every argument after
    ``split`` is keyword-only.
    """

    arrays = ("obs/rgb", "obs/depth", "obs/intrinsics", "obs/extrinsics", "obs/proprio", "actions")

    def __init__(
        self,
        root: str,
        split: str | None = "train",
        *,
        augment: bool = False,
        tasks: list[str] | None = None,
        include_failed: bool = False,
        cache: bool = True,
        seed: int = 0,
        max_translation: float = AUGMENT_TRANSLATION,
        max_yaw_degrees: float = AUGMENT_YAW_DEGREES,
    ) -> None:
        self.augment = augment
        self.max_translation = max_translation
        self.max_yaw_degrees = max_yaw_degrees
        super().__init__(
            root, split, tasks=tasks, include_failed=include_failed, cache=cache, seed=seed
        )
        bounds = self.meta.workspace_bounds
        self.bounds = None if bounds is None else np.asarray(bounds, dtype=np.float64)
        # (episode position, keyframe) of every transition, in index order.
        self.samples = np.array(
            [(p, k) for p, entry in enumerate(self.entries) for k in range(entry["num_keyframes"])],
            dtype=np.int64,
        ).reshape(-1, 2)

    def _load(self, entry: dict[str, Any]) -> dict[str, np.ndarray]:
        # Orientations in the dataset's tool frame (docs/dataset.md), once per episode read.
        arrays = super()._load(entry)
        rotation = self.meta.tool_frame_rotation
        for name in ("obs/proprio", "actions"):
            arrays[name] = to_tool_frame(arrays[name], rotation)
        return arrays

    def __len__(self) -> int:
        return int(self.samples.shape[0])

    def targets_outside(self, bounds: tuple[float, ...]) -> int:
        """How many keyframe targets (``actions[:, :3]``, metres) lie outside ``bounds`` = (x_min,
        y_min, z_min, x_max, y_max, z_max), unaugmented. Reads only the small ``actions`` arrays
        (from the cache when there is one), never the images."""
        lo, hi = np.asarray(bounds[:3]), np.asarray(bounds[3:])
        outside = 0
        for entry in self.entries:
            if self._cache is not None:
                actions = self._cache[entry["episode_id"]]["actions"]
            else:
                with h5py.File(self.reader.path(entry), "r") as f:
                    actions = f["actions"][()]
            xyz = np.asarray(actions, dtype=np.float64).reshape(-1, 9)[:, :3]
            outside += int(np.sum(np.any((xyz < lo) | (xyz > hi), axis=1)))
        return outside

    def episode_position(self, index: int) -> int:
        return int(self.samples[index, 0])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        position, k = (int(x) for x in self.samples[index])
        arrays = self._arrays(position)
        depth = arrays["obs/depth"][k].astype(np.float32)
        intrinsics = arrays["obs/intrinsics"][k]
        extrinsics = arrays["obs/extrinsics"][k]
        proprio = arrays["obs/proprio"][k]
        action = arrays["actions"][k]
        if self.augment:
            yaw, shift = sample_scene_augmentation(
                self.rng,
                self.max_translation,
                self.max_yaw_degrees,
                [action, proprio],
                self.bounds,
            )
            extrinsics = (yaw_transform(yaw, shift) @ extrinsics).astype(np.float32)
            proprio = transform_pose_vector(proprio, yaw, shift)
            action = transform_pose_vector(action, yaw, shift)
        item = {
            "rgb": torch.from_numpy(np.ascontiguousarray(arrays["obs/rgb"][k])),
            "depth": torch.from_numpy(depth),
            "points": torch.from_numpy(depth_to_points(depth, intrinsics, extrinsics)),
            "intrinsics": torch.from_numpy(np.array(intrinsics, dtype=np.float32)),
            "extrinsics": torch.from_numpy(np.array(extrinsics, dtype=np.float32)),
            "proprio": torch.from_numpy(np.array(proprio, dtype=np.float32)),
            "action": torch.from_numpy(np.array(action, dtype=np.float32)),
            "keyframe_index": torch.tensor(k, dtype=torch.int64),
        }
        item.update(self._keys(self.entries[position]))
        return item
