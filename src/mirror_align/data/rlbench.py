"""Import RLBench/PerAct demonstrations from their standard on-disk layout.

Input (one split)::

    SRC/<task>/all_variations/episodes/episode<N>/
        low_dim_obs.pkl               rlbench.demo.Demo of Observation (read by rlbench_pickle)
        variation_descriptions.pkl    list of str (the first is the instruction)
        variation_number.pkl          int
        <cam>_rgb/<i>.png             cam in front, left_shoulder, right_shoulder, wrist
        <cam>_depth/<i>.png           24-bit packed normalised depth

``SRC`` may instead hold ``train/``, ``val/``, ``test/`` folders in that layout; then every split is
imported with one shared instruction table.

Conversions to this library's conventions (``docs/interfaces.md``):
- depth: value = (R*65536 + G*256 + B) / (2^24 - 1), metres = near + value * (far - near);
- intrinsics: RLBench (PyRep) uses negative focal lengths and integer pixel coordinates; they
  become positive focal lengths with pixel centres at (col + 0.5, row + 0.5), and the flipped
  camera axes move into the extrinsics, so every pixel back-projects to the same world point;
- image size: a W x H source is resized to S x S; x (fx, skew, cx) scales by S / W and y (fy, cy)
  by S / H, so non-square sources keep their geometry (pixels become non-square, fx != fy);
- geometry check: keyframe 0 of every imported episode must back-project to one consistent scene
  across the cameras (:mod:`mirror_align.data.geometry_check`); an episode that does not is
  refused with one line (``--no-geometry-check`` skips it);
- keyframes: the standard discovery heuristic (:func:`discover_keyframes`);
- EE sample k: observation at frame 0 or at the previous keyframe -> the pose at the next keyframe
  (``ignore_collisions`` from the frame before it, as PerAct does; 0 when the field is absent);
- AU video: the front camera's frames, uniformly subsampled to ``video_frames``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mirror_align.constants import SPLITS
from mirror_align.data.geometry_check import check_views
from mirror_align.data.rlbench_pickle import load_restricted
from mirror_align.data.schema import DatasetMeta, Episode, Instruction
from mirror_align.errors import UserInputError

RLBENCH_CAMERAS = ("front", "left_shoulder", "right_shoulder", "wrist")
DEPTH_SCALE = 2**24 - 1
STOP_VELOCITY = 0.1  # rad/s: every joint below this counts as stopped
STOP_COOLDOWN = 4  # frames after a stop before another stop can count
# PerAct's scene bounds for RLBench (rows x, y, z; columns low, high), metres.
RLBENCH_BOUNDS = [[-0.3, 0.7], [-0.5, 0.5], [0.6, 1.6]]


def decode_depth_png(rgb: np.ndarray, near: float, far: float) -> np.ndarray:
    """Metres from RLBench's 24-bit depth PNG: uint8 [H, W, 3] -> float32 [H, W]."""
    rgb = np.asarray(rgb, dtype=np.uint32)
    packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    value = packed.astype(np.float64) / DEPTH_SCALE
    return (near + value * (far - near)).astype(np.float32)


def convert_camera(intrinsics: np.ndarray, extrinsics: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RLBench (K with possibly negative focal lengths, integer pixel coordinates; camera-to-world
    pose) -> this library's K (positive focal lengths, pixel centres at +0.5) and OpenCV pose.

    RLBench back-projects pixel (col, row) as R @ (d * K^-1 [col, row, 1]) + t. Negating a focal
    length and the matching column of R, and shifting the principal point by half a pixel, gives the
    same world point from (col + 0.5, row + 0.5).
    """
    k = np.array(intrinsics, dtype=np.float64)
    pose = np.array(extrinsics, dtype=np.float64)
    for axis in (0, 1):
        if k[axis, axis] < 0:
            k[axis, axis] = -k[axis, axis]
            pose[:3, axis] = -pose[:3, axis]
        k[axis, 2] += 0.5
    return k.astype(np.float32), pose.astype(np.float32)


def discover_keyframes(
    gripper_open: np.ndarray,
    joint_velocities: np.ndarray,
    stop_velocity: float = STOP_VELOCITY,
    cooldown: int = STOP_COOLDOWN,
) -> list[int]:
    """Keyframe frame indices of a demo of N frames (frame 0 is never one).

    A frame is a keyframe when the gripper open state changes, when it is the last frame, or when
    the robot stops: all joint velocities within ``stop_velocity`` of zero while the gripper state
    is steady around it, not within ``cooldown`` frames of the previous stop and not the
    second-to-last frame. Of two adjacent keyframes only the later is kept.
    """
    gripper = np.asarray(gripper_open, dtype=np.float64).reshape(-1)
    velocities = np.asarray(joint_velocities, dtype=np.float64).reshape(len(gripper), -1)
    n = len(gripper)
    found: list[int] = []
    wait = 0
    for i in range(n):
        steady = 2 <= i < n - 2 and gripper[i - 2] == gripper[i - 1] == gripper[i] == gripper[i + 1]
        stopped = wait <= 0 and steady and bool(np.all(np.abs(velocities[i]) <= stop_velocity))
        wait = cooldown if stopped else wait - 1
        if i > 0 and (gripper[i] != gripper[i - 1] or i == n - 1 or stopped):
            found.append(i)
    keyframes: list[int] = []
    for frame in found:
        if keyframes and frame - keyframes[-1] == 1:
            keyframes[-1] = frame
        else:
            keyframes.append(frame)
    return keyframes


@dataclass
class SourceEpisode:
    """One RLBench episode folder and the facts needed before decoding it."""

    split: str
    task: str
    number: int  # N of episode<N>
    path: Path
    variation: int
    descriptions: list[str]


def _split_roots(src: Path, split: str) -> dict[str, Path]:
    nested = {s: src / s for s in SPLITS if (src / s).is_dir()}
    return nested or {split: src}


def scan_source(
    src: str | Path, tasks: list[str] | None = None, split: str = "train"
) -> list[SourceEpisode]:
    """Every episode folder under ``src`` (see the module docstring), sorted by split, task, N."""
    src = Path(src)
    if not src.is_dir():
        raise UserInputError(f"import-rlbench: source folder not found: {src}")
    if split not in SPLITS:
        raise UserInputError(f"--split {split!r} is not one of {', '.join(SPLITS)}")
    found: list[SourceEpisode] = []
    available: set[str] = set()
    for split_name, root in _split_roots(src, split).items():
        for task_dir in sorted(p for p in root.iterdir() if p.is_dir()):
            episodes_dir = task_dir / "all_variations" / "episodes"
            if not episodes_dir.is_dir():
                continue
            available.add(task_dir.name)
            if tasks is not None and task_dir.name not in tasks:
                continue
            for folder in episodes_dir.iterdir():
                match = re.fullmatch(r"episode(\d+)", folder.name)
                if not match or not folder.is_dir():
                    continue
                variation = load_restricted(folder / "variation_number.pkl")
                descriptions = load_restricted(folder / "variation_descriptions.pkl")
                if not isinstance(descriptions, list) or not descriptions:
                    raise UserInputError(
                        f"{folder / 'variation_descriptions.pkl'}: expected a non-empty list of "
                        "strings"
                    )
                found.append(
                    SourceEpisode(
                        split_name,
                        task_dir.name,
                        int(match.group(1)),
                        folder,
                        int(variation),
                        [str(d) for d in descriptions],
                    )
                )
    if not available:
        raise UserInputError(
            f"import-rlbench: no <task>/all_variations/episodes/ folders under {src}"
        )
    if tasks is not None:
        unknown = sorted(set(tasks) - available)
        if unknown:
            raise UserInputError(
                f"--tasks: {', '.join(unknown)} not found in {src}; available: "
                f"{', '.join(sorted(available))}"
            )
    found.sort(key=lambda e: (SPLITS.index(e.split), e.task, e.number))
    return found


def build_meta(
    episodes: list[SourceEpisode],
    image_size: int,
    video_frames: int,
    config: dict[str, Any],
    depth_dtype: str = "float16",
) -> DatasetMeta:
    """Tasks in name order and one instruction per (task, variation) seen, ordered the same way."""
    tasks = sorted({e.task for e in episodes})
    texts: dict[tuple[str, int], str] = {}
    for e in episodes:
        texts.setdefault((e.task, e.variation), e.descriptions[0])
    rows = [
        Instruction(i, task, variation, text)
        for i, ((task, variation), text) in enumerate(sorted(texts.items()))
    ]
    return DatasetMeta(
        tasks=tasks,
        instructions=rows,
        image_size=image_size,
        cameras=list(RLBENCH_CAMERAS),
        video_frames=video_frames,
        depth_dtype=depth_dtype,
        workspace_bounds=RLBENCH_BOUNDS,
        source="rlbench",
        config=config,
    )


def scale_intrinsics(k: np.ndarray, width: int, height: int, size: int) -> np.ndarray:
    """K of a ``width`` x ``height`` image resized to ``size`` x ``size``: row x (fx, skew, cx)
    times size / width, row y (fy, cy) times size / height. Exact with pixel centres at +0.5
    (pixel edges map to pixel edges). Scaling both rows by size / width, as before, put
    back-projected points of 128x96 sources 16-17 cm off the table (issue 14.3)."""
    k = np.array(k, dtype=np.float64)
    k[0] *= size / width
    k[1] *= size / height
    return k.astype(np.float32)


def _resize(image: np.ndarray, size: int, nearest: bool) -> np.ndarray:
    if image.shape[0] == size and image.shape[1] == size:
        return image
    pil = Image.fromarray(image)
    return np.asarray(pil.resize((size, size), Image.NEAREST if nearest else Image.BILINEAR))


def _read_png(path: Path) -> np.ndarray:
    if not path.is_file():
        raise UserInputError(f"{path}: image file not found")
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _field(obs: Any, name: str, where: str) -> Any:
    value = getattr(obs, name, None)
    if value is None:
        raise UserInputError(f"{where}: observation has no {name!r}")
    return value


def _read_view(
    source: SourceEpisode, frame: int, cam: str, misc: dict, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One camera at one frame: rgb uint8 [S,S,3], depth float32 [S,S] metres, K, pose."""
    where = str(source.path / "low_dim_obs.pkl")
    image = _read_png(source.path / f"{cam}_rgb" / f"{frame}.png")
    packed = _read_png(source.path / f"{cam}_depth" / f"{frame}.png")
    try:
        near = float(misc[f"{cam}_camera_near"])
        far = float(misc[f"{cam}_camera_far"])
        k, pose = convert_camera(misc[f"{cam}_camera_intrinsics"], misc[f"{cam}_camera_extrinsics"])
    except KeyError as err:
        raise UserInputError(f"{where}: frame {frame} misc lacks {err}") from err
    if packed.shape[:2] != image.shape[:2]:
        raise UserInputError(
            f"{source.path}: frame {frame} {cam} depth is {packed.shape[1]}x{packed.shape[0]} "
            f"but rgb is {image.shape[1]}x{image.shape[0]}"
        )
    height, width = image.shape[:2]
    return (
        _resize(image, size, nearest=False),
        _resize(decode_depth_png(packed, near, far), size, nearest=True),
        scale_intrinsics(k, width, height, size),
        pose,
    )


def convert_episode(source: SourceEpisode, meta: DatasetMeta) -> Episode:
    """Decode one RLBench episode folder into an :class:`Episode` at ``meta.image_size``."""
    where = str(source.path / "low_dim_obs.pkl")
    demo = load_restricted(source.path / "low_dim_obs.pkl")
    observations = getattr(demo, "observations", None)
    if not observations:
        raise UserInputError(f"{where}: expected an rlbench.demo.Demo with observations")
    gripper_open = np.array([float(_field(o, "gripper_open", where)) for o in observations])
    velocities = np.stack(
        [np.asarray(_field(o, "joint_velocities", where), np.float64) for o in observations]
    )
    keyframes = discover_keyframes(gripper_open, velocities)
    if not keyframes:
        raise UserInputError(f"{where}: a demo of {len(observations)} frame(s) has no keyframes")
    obs_frames = [0, *keyframes[:-1]]
    rgb, depth, intr, extr, proprio = [], [], [], [], []
    for frame in obs_frames:
        obs = observations[frame]
        misc = _field(obs, "misc", where)
        views = [_read_view(source, frame, cam, misc, meta.image_size) for cam in RLBENCH_CAMERAS]
        for stack, kind in zip((rgb, depth, intr, extr), zip(*views, strict=True), strict=True):
            stack.append(kind)
        proprio.append(
            np.concatenate([_field(obs, "gripper_pose", where), [float(obs.gripper_open)]])
        )
    actions = []
    for frame in keyframes:
        obs = observations[frame]
        before = observations[max(frame - 1, 0)]
        ignore = getattr(before, "ignore_collisions", None)
        actions.append(
            np.concatenate(
                [
                    np.asarray(obs.gripper_pose, np.float64),
                    [float(obs.gripper_open), float(ignore) if ignore is not None else 0.0],
                ]
            )
        )
    frames = np.round(np.linspace(0, len(observations) - 1, meta.video_frames)).astype(int)
    video = [
        _resize(_read_png(source.path / "front_rgb" / f"{i}.png"), meta.image_size, False)
        for i in frames
    ]
    return Episode(
        task=source.task,
        variation_id=source.variation,
        seed=source.number,
        split=source.split,
        success=True,  # RLBench saves successful demos only
        video=np.stack(video).astype(np.uint8),
        rgb=np.asarray(rgb, dtype=np.uint8),
        depth=np.asarray(depth, dtype=np.float32),
        intrinsics=np.asarray(intr, dtype=np.float32),
        extrinsics=np.asarray(extr, dtype=np.float32),
        proprio=np.asarray(proprio, dtype=np.float32),
        actions=np.asarray(actions, dtype=np.float32),
    )


def _check_geometry(source: SourceEpisode, episode: Episode, meta: DatasetMeta) -> None:
    if episode.num_keyframes == 0:
        return
    problems = check_views(
        episode.depth[0],
        episode.intrinsics[0],
        episode.extrinsics[0],
        list(meta.cameras),
        meta.workspace_bounds,
    )
    if problems:
        raise UserInputError(
            f"{source.path}: keyframe 0 is geometrically inconsistent: {problems[0]} "
            "(--no-geometry-check imports it anyway)"
        )


def import_rlbench(
    src: str | Path,
    out: str | Path,
    tasks: list[str] | None = None,
    image_size: int = 128,
    video_frames: int = 32,
    split: str = "train",
    progress: bool = True,
    check_geometry: bool = True,
) -> dict[str, int]:
    """Convert every episode under ``src`` into the dataset ``out``; re-running resumes.

    With ``check_geometry``, an episode whose keyframe-0 cameras do not describe one consistent
    scene (see :mod:`mirror_align.data.geometry_check`) is refused with one line.

    Returns counts: ``imported``, ``skipped`` (already in ``out``), ``total``.
    """
    from tqdm import tqdm

    from mirror_align.data.writer import DatasetWriter

    if image_size < 8:
        raise UserInputError(f"--image-size {image_size} must be >= 8")
    if video_frames < 1:
        raise UserInputError(f"--video-frames {video_frames} must be >= 1")
    sources = scan_source(src, tasks, split)
    if not sources:
        raise UserInputError(f"import-rlbench: no episode<N> folders under {src}")
    config = {"command": "import-rlbench", "src": str(src), "tasks": tasks, "split": split}
    meta = build_meta(sources, image_size, video_frames, config)
    imported = skipped = 0
    with DatasetWriter(out, meta) as writer:
        done = {(e["split"], e["task"], e["seed"]) for e in writer.entries.values()}
        for source in tqdm(sources, desc="import-rlbench", unit="episode", disable=not progress):
            if (source.split, source.task, source.number) in done:
                skipped += 1
                continue
            episode = convert_episode(source, writer.meta)
            if check_geometry:
                _check_geometry(source, episode, writer.meta)
            writer.add(episode)
            imported += 1
    return {"imported": imported, "skipped": skipped, "total": len(sources)}
