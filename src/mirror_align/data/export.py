"""Export a dataset to robomimic's single-HDF5 layout (keyframe transitions as samples).

Output (one demo per episode, N = K keyframe transitions)::

    data                attrs: total (samples), env_args (JSON)
      demo_<episode_id> attrs: num_samples, task, variation_id, instruction_id, instruction,
                        episode_id, seed, split, success
        actions         float32 [N, 9]  next keyframe: xyz, quaternion xyzw, gripper_open, ignore
        rewards         float32 [N]     1 on the last transition of a successful demo, else 0
        dones           int64   [N]     1 on the last transition
        obs/<cam>_image uint8 [N, H, W, 3];  obs/<cam>_depth float32 [N, H, W, 1] metres
        obs/<cam>_intrinsics [N, 3, 3];  obs/<cam>_extrinsics [N, 4, 4] camera-to-world (OpenCV)
        obs/robot0_eef_pos [N, 3];  obs/robot0_eef_quat [N, 4] xyzw;  obs/gripper_open [N, 1]
    mask/train, mask/valid, mask/test   demo names per split (robomimic filter keys)

No ``next_obs`` group is written (robomimic's BC algorithms do not read it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from mirror_align.atomic import atomic_path
from mirror_align.data.episode_io import read_episode
from mirror_align.data.reader import DatasetReader

FILTER_KEYS = {"train": "train", "val": "valid", "test": "test"}


def export_robomimic(
    root: str | Path, out: str | Path, *, include_failed: bool = False
) -> dict[str, int]:
    """Write ``out`` (atomically); returns ``{"demos": ..., "samples": ...}``."""
    reader = DatasetReader(root)
    entries = reader.select(None, include_failed=include_failed)
    masks: dict[str, list[str]] = {key: [] for key in FILTER_KEYS.values()}
    total = 0
    with atomic_path(out) as tmp, h5py.File(tmp, "w") as f:
        data = f.create_group("data")
        for entry in entries:
            episode = read_episode(reader.path(entry))
            name = f"demo_{entry['episode_id']}"
            _write_demo(data.create_group(name), episode, entry, reader)
            masks[FILTER_KEYS[episode.split]].append(name)
            total += episode.num_keyframes
        data.attrs["total"] = total
        data.attrs["env_args"] = json.dumps(_env_args(reader))
        mask = f.create_group("mask")
        for key, names in masks.items():
            mask.create_dataset(key, data=np.array(names, dtype="S"))
    return {"demos": len(entries), "samples": total}


def _write_demo(
    demo: h5py.Group, episode: Any, entry: dict[str, Any], reader: DatasetReader
) -> None:
    """One episode as ``demo_<episode_id>``: attributes, actions, rewards, dones and obs."""
    n = episode.num_keyframes
    demo.attrs.update(
        {
            "num_samples": n,
            "task": episode.task,
            "variation_id": episode.variation_id,
            "instruction_id": episode.instruction_id,
            "instruction": reader.meta.instructions[episode.instruction_id].text,
            "episode_id": entry["episode_id"],
            "seed": episode.seed,
            "split": episode.split,
            "success": episode.success,
        }
    )
    demo["actions"] = episode.actions
    rewards = np.zeros(n, np.float32)
    dones = np.zeros(n, np.int64)
    if n:
        # robomimic's sparse reward: only the last transition of a successful demo is rewarded.
        rewards[-1] = float(episode.success)
        dones[-1] = 1
    demo["rewards"], demo["dones"] = rewards, dones
    obs = demo.create_group("obs")
    for v, cam in enumerate(reader.meta.cameras):
        obs.create_dataset(
            f"{cam}_image", data=episode.rgb[:, v], compression="gzip", compression_opts=1
        )
        obs.create_dataset(
            f"{cam}_depth", data=episode.depth[:, v, ..., None], compression="gzip",
            compression_opts=1,
        )  # fmt: skip
        obs[f"{cam}_intrinsics"] = episode.intrinsics[:, v]
        obs[f"{cam}_extrinsics"] = episode.extrinsics[:, v]
    obs["robot0_eef_pos"] = episode.proprio[:, :3]
    obs["robot0_eef_quat"] = episode.proprio[:, 3:7]
    obs["gripper_open"] = episode.proprio[:, 7:8]


def _env_args(reader: DatasetReader) -> dict[str, Any]:
    """robomimic's ``env_args`` attribute: where the demos come from and their shapes."""
    source = reader.meta.source
    return {
        "env_name": "MirrorBench" if source == "mirrorbench" else source,
        "type": "mirror-align",
        "env_kwargs": {
            "image_size": reader.meta.image_size,
            "cameras": list(reader.meta.cameras),
            "tasks": list(reader.meta.tasks),
        },
    }
