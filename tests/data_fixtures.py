"""Synthetic episodes written through the public writer API (no simulator needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mirror_align.data.schema import DatasetMeta, Episode, Instruction

TASKS = ["reach_red", "push_blue", "open_box"]
VARIATIONS = {"reach_red": 2, "push_blue": 1, "open_box": 3}
BOUNDS = [[-0.45, 0.45], [-0.45, 0.45], [0.0, 0.6]]


def make_meta(image_size: int = 16, video_frames: int | None = 12, **kw) -> DatasetMeta:
    rows = []
    for task in TASKS:
        for v in range(VARIATIONS[task]):
            rows.append(Instruction(len(rows), task, v, f"{task.replace('_', ' ')} variant {v}"))
    return DatasetMeta(
        tasks=list(TASKS),
        instructions=rows,
        image_size=image_size,
        video_frames=video_frames,
        workspace_bounds=BOUNDS,
        source="synthetic-test",
        config={"made_by": "tests"},
        **kw,
    )


def camera(size: int, yaw: float, height: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """A pinhole camera looking down at the origin from (r cos yaw, r sin yaw, height)."""
    f = size * 1.2
    k = np.array([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1]], dtype=np.float32)
    eye = np.array([0.8 * np.cos(yaw), 0.8 * np.sin(yaw), height])
    forward = -eye / np.linalg.norm(eye)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    t = np.eye(4, dtype=np.float32)
    t[:3, :3] = np.stack([right, down, forward], axis=1)
    t[:3, 3] = eye
    return k, t


def table_depth(k: np.ndarray, pose: np.ndarray, size: int) -> np.ndarray:
    """float32 [size, size]: depth (metres along the optical axis) of the table plane z = 0 seen by
    camera (k, pose), so the cameras' back-projected points agree (``dataset verify`` checks it)."""
    cols, rows = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5)
    rays = np.stack(
        [(cols - k[0, 2]) / k[0, 0], (rows - k[1, 2]) / k[1, 1], np.ones_like(cols)], -1
    )
    down = rays @ pose[:3, :3].T[:, 2]  # world z of each ray (z = 1 in the camera)
    return (-pose[2, 3] / down).astype(np.float32)


def make_episode(
    task: str,
    variation: int,
    seed: int,
    split: str = "train",
    keyframes: int = 3,
    size: int = 16,
    frames: int = 12,
    *,
    success: bool = True,
) -> Episode:
    rng = np.random.default_rng(seed)
    cams = [camera(size, yaw) for yaw in (0.0, 1.5, -1.5, 3.0)]
    quat = np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32)
    positions = rng.uniform(-0.2, 0.2, size=(keyframes + 1, 3)).astype(np.float32)
    positions[:, 2] = rng.uniform(0.1, 0.4, size=keyframes + 1)
    proprio = np.concatenate(
        [positions[:-1], np.tile(quat, (keyframes, 1)), np.ones((keyframes, 1))], axis=1
    )
    actions = np.concatenate(
        [
            positions[1:],
            np.tile(quat, (keyframes, 1)),
            rng.integers(0, 2, size=(keyframes, 2)),
        ],
        axis=1,
    )
    return Episode(
        task=task,
        variation_id=variation,
        seed=seed,
        split=split,
        success=success,
        failure_reason="" if success else "expert keyframe unreachable",
        video=rng.integers(0, 256, size=(frames, size, size, 3), dtype=np.uint8),
        rgb=rng.integers(0, 256, size=(keyframes, 4, size, size, 3), dtype=np.uint8),
        depth=np.tile(np.stack([table_depth(*c, size) for c in cams]), (keyframes, 1, 1, 1)),
        intrinsics=np.tile(np.stack([c[0] for c in cams]), (keyframes, 1, 1, 1)),
        extrinsics=np.tile(np.stack([c[1] for c in cams]), (keyframes, 1, 1, 1)),
        proprio=proprio.astype(np.float32),
        actions=actions.astype(np.float32),
    )


def write_dataset(root: Path, per_task: int = 4, splits=("train",), failed_every: int = 0):
    """A small dataset: ``per_task`` episodes per task and split, variations round-robin."""
    from mirror_align.data.writer import DatasetWriter

    meta = make_meta()
    seed = 0
    with DatasetWriter(root, meta) as writer:
        for split in splits:
            for task in TASKS:
                for i in range(per_task):
                    success = not (failed_every and (seed % failed_every == failed_every - 1))
                    writer.add(
                        make_episode(
                            task,
                            i % VARIATIONS[task],
                            seed,
                            split,
                            keyframes=2 + i % 3,
                            success=success,
                        )
                    )
                    seed += 1
    return meta


def cli(argv: list[str], modules: tuple[str, ...] = ("dataset", "import_rlbench", "generate")):
    """Run ``mirror-align ARGV`` through the real ``cli.main`` with only the data commands
    registered, so these tests do not depend on other areas' command modules."""
    import importlib.util

    from mirror_align import cli as cli_module

    saved = list(cli_module.COMMAND_MODULES)
    cli_module.COMMAND_MODULES[:] = [
        m for m in modules if importlib.util.find_spec(f"mirror_align.commands.{m}") is not None
    ]
    try:
        return cli_module.main(argv)
    finally:
        cli_module.COMMAND_MODULES[:] = saved
