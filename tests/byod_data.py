"""A small non-MirrorBench dataset written through the public writer API (docs/dataset.md,
"Bring your own data"): its own task names (one of them reusing a MirrorBench name with its own
wording), its own cameras and workspace bounds (y from 0.35 to 0.95 m, outside MirrorBench's
+-0.45 m), and a raw hand frame whose "pointing down" sits at Euler pitch 90 degrees, corrected by
a declared tool frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mirror_align.data import DatasetMeta, DatasetWriter, Episode, Instruction
from mirror_align.data.geometry import quat_multiply

S = 32  # image size of the tiny preset
CAMERAS = ["overhead", "left", "right", "hand"]
TASKS = ["wipe_table", "stack_cups"]  # stack_cups: a MirrorBench name, not its instructions
BOUNDS = [[-0.3, 0.3], [0.35, 0.95], [0.0, 0.5]]
# The recorded hand frame points down at pitch +90 degrees; this tool frame maps it to pitch 0.
HAND_DOWN = np.array([0.0, np.sqrt(0.5), 0.0, np.sqrt(0.5)])
TOOL_FRAME = [0.0, -float(np.sqrt(0.5)), 0.0, float(np.sqrt(0.5))]


def make_meta(tool_frame: list[float] | None = TOOL_FRAME) -> DatasetMeta:
    return DatasetMeta(
        tasks=list(TASKS),
        instructions=[
            Instruction(0, "wipe_table", 0, "wipe the table"),
            Instruction(1, "stack_cups", 0, "put the red mug on the blue mug"),
            Instruction(2, "stack_cups", 1, "put the blue mug on the red mug"),
        ],
        image_size=S,
        cameras=list(CAMERAS),
        video_frames=8,
        workspace_bounds=BOUNDS,
        tool_frame_rotation=tool_frame,
        source="my_robot",
        config={"converted_from": "tests/byod_data.py"},
    )


def _camera(yaw: float) -> tuple[np.ndarray, np.ndarray]:
    """A pinhole camera 1 m above the workspace centre, tilted towards it from direction ``yaw``."""
    centre = np.array([0.0, 0.65, 0.0])
    eye = centre + np.array([0.5 * np.cos(yaw), 0.5 * np.sin(yaw), 1.0])
    forward = (centre - eye) / np.linalg.norm(centre - eye)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    t = np.eye(4, dtype=np.float32)
    t[:3, :3] = np.stack([right, np.cross(forward, right), forward], axis=1)
    t[:3, 3] = eye
    k = np.array([[S, 0, S / 2], [0, S, S / 2], [0, 0, 1]], dtype=np.float32)
    return k, t


def _table_depth(k: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``[S, S]`` depth (m, along the optical axis) of the table plane z = 0 seen by camera (k, t):
    every camera sees the same surface, so the dataset passes ``dataset verify``'s geometry check."""
    v, u = np.mgrid[0:S, 0:S].astype(np.float64) + 0.5  # pixel centres
    rays = np.linalg.inv(k.astype(np.float64)) @ np.stack([u, v, np.ones_like(u)]).reshape(3, -1)
    down = (t[:3, :3].astype(np.float64) @ rays)[2]  # world z per unit of depth
    return (-float(t[2, 3]) / down).reshape(S, S).astype(np.float32)


def hand_orientations(rng: np.random.Generator, n: int, degrees: float = 4.0) -> np.ndarray:
    """``[n, 4]`` xyzw: the raw "down" hand pose tilted by up to ``degrees`` about a random axis."""
    axes = rng.normal(size=(n, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    half = np.deg2rad(rng.uniform(0, degrees, size=(n, 1))) / 2
    tilt = np.concatenate([axes * np.sin(half), np.cos(half)], axis=1)
    return quat_multiply(tilt, HAND_DOWN)


def make_episode(task: str, variation: int, seed: int, split: str, keyframes: int) -> Episode:
    rng = np.random.default_rng(seed)
    cams = [_camera(yaw) for yaw in (-1.57, 0.0, 3.14, 1.57)]
    lo, hi = np.array(BOUNDS)[:, 0] + 0.05, np.array(BOUNDS)[:, 1] - 0.05
    xyz = rng.uniform(lo, hi, size=(keyframes + 1, 3))
    quat = hand_orientations(rng, keyframes + 1)
    grip = rng.integers(0, 2, size=keyframes + 1).astype(np.float64)
    poses = np.concatenate([xyz, quat, grip[:, None]], axis=1)
    actions = np.concatenate([poses[1:], rng.integers(0, 2, size=(keyframes, 1))], axis=1)
    return Episode(
        task=task,
        variation_id=variation,
        seed=seed,
        split=split,
        success=True,
        video=rng.integers(0, 256, size=(8, S, S, 3), dtype=np.uint8),
        rgb=rng.integers(0, 256, size=(keyframes, 4, S, S, 3), dtype=np.uint8),
        depth=np.tile(np.stack([_table_depth(*c) for c in cams]), (keyframes, 1, 1, 1)),
        intrinsics=np.tile(np.stack([c[0] for c in cams]), (keyframes, 1, 1, 1)),
        extrinsics=np.tile(np.stack([c[1] for c in cams]), (keyframes, 1, 1, 1)),
        proprio=poses[:-1].astype(np.float32),
        actions=actions.astype(np.float32),
    )


def write_byod_dataset(
    root: Path,
    per_split: dict[str, int] | None = None,
    tool_frame: list[float] | None = TOOL_FRAME,
) -> Path:
    """``per_split[split]`` episodes per (task, variation) and split (default 2 train, 1 val,
    1 test), 2-4 keyframes each."""
    per_split = per_split or {"train": 2, "val": 1, "test": 1}
    seed = 0
    with DatasetWriter(root, make_meta(tool_frame)) as writer:
        for split, count in per_split.items():
            for task, variation in (("wipe_table", 0), ("stack_cups", 0), ("stack_cups", 1)):
                for _ in range(count):
                    writer.add(make_episode(task, variation, seed, split, 2 + seed % 3))
                    seed += 1
    return root
