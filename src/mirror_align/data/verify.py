"""Check a dataset folder against its schema and checksums, one line per problem."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from mirror_align.constants import SPLITS
from mirror_align.data.episode_io import file_sha256, plain_value
from mirror_align.data.geometry_check import check_views
from mirror_align.data.schema import (
    ACTION_DIM,
    EPISODES_DIR,
    FORMAT_NAME,
    PROPRIO_DIM,
    SCHEMA_VERSION,
    DatasetMeta,
)
from mirror_align.data.writer import load_index, load_meta
from mirror_align.errors import UserInputError


def _check_file(path: Path, entry: dict[str, Any], meta: DatasetMeta) -> str | None:
    """What is wrong with one episode file's content, or None."""
    try:
        with h5py.File(path, "r") as f:
            attrs = {key: plain_value(value) for key, value in f.attrs.items()}
            if attrs.get("format") != FORMAT_NAME or attrs.get("schema_version") != SCHEMA_VERSION:
                return f"not a {FORMAT_NAME} v{SCHEMA_VERSION} episode file"
            for key in ("episode_id", "task_id", "variation_id", "instruction_id", "seed"):
                if int(attrs.get(key, -1)) != int(entry[key]):
                    return f"attribute {key}={attrs.get(key)} but the index says {entry[key]}"
            for key in ("split", "task"):
                if attrs.get(key) != entry[key]:
                    return f"attribute {key}={attrs.get(key)!r} but the index says {entry[key]!r}"
            if attrs["split"] not in SPLITS:
                return f"split {attrs['split']!r} is not one of {', '.join(SPLITS)}"
            if meta.tasks[int(attrs["task_id"])] != attrs["task"]:
                return f"task_id {attrs['task_id']} is not task {attrs['task']!r}"
            row = meta.instructions[int(attrs["instruction_id"])]
            if (row.task, row.variation) != (attrs["task"], int(attrs["variation_id"])):
                return f"instruction_id {row.instruction_id} does not match task/variation"
            k, v, s = int(attrs["num_keyframes"]), len(meta.cameras), meta.image_size
            t = meta.video_frames if meta.video_frames is not None else f["video"].shape[0]
            expected = {
                "video": ((t, s, s, 3), "uint8"),
                "obs/rgb": ((k, v, s, s, 3), "uint8"),
                "obs/depth": ((k, v, s, s), meta.depth_dtype),
                "obs/intrinsics": ((k, v, 3, 3), "float32"),
                "obs/extrinsics": ((k, v, 4, 4), "float32"),
                "obs/proprio": ((k, PROPRIO_DIM), "float32"),
                "actions": ((k, ACTION_DIM), "float32"),
            }
            for name, (shape, dtype) in expected.items():
                if name not in f:
                    return f"dataset {name} is missing"
                got = f[name]
                if got.shape != shape or got.dtype != np.dtype(dtype):
                    return f"dataset {name} is {got.dtype}{list(got.shape)}, expected {dtype}{list(shape)}"
            if k > 0:
                problems = check_views(
                    f["obs/depth"][0].astype(np.float32),
                    f["obs/intrinsics"][0],
                    f["obs/extrinsics"][0],
                    list(meta.cameras),
                    meta.workspace_bounds,
                )
                if problems:
                    return f"keyframe 0 is geometrically inconsistent: {problems[0]}"

    except (OSError, KeyError, ValueError, IndexError) as err:
        return f"cannot be read as HDF5 ({type(err).__name__}: {err})"
    return None


def verify_dataset(
    root: str | Path, progress: Callable[[int], None] | None = None
) -> tuple[list[str], int]:
    """Return (problems, episodes checked); each problem is one line naming what is wrong.

    Checks: ``dataset.json`` against the schema, the index, each episode's size and SHA-256, each
    file's attributes against the index and its datasets' shapes/dtypes against ``dataset.json``,
    the geometry of each episode's keyframe 0 (its cameras' back-projected depth must agree and lie
    near the workspace: :mod:`mirror_align.data.geometry_check`), and episode files that the index
    does not list.
    """
    root = Path(root)
    try:
        meta = load_meta(root)
        entries = load_index(root)
    except UserInputError as err:
        return [str(err)], 0
    problems: list[str] = []
    for episode_id, entry in sorted(entries.items()):
        path = root / entry["file"]
        name = f"episode {episode_id} ({entry['file']})"
        if not path.is_file():
            problems.append(f"{name}: file is missing")
        elif path.stat().st_size != entry["bytes"]:
            problems.append(
                f"{name}: size {path.stat().st_size} bytes but the index records {entry['bytes']} "
                "(truncated or altered)"
            )
        elif file_sha256(path) != entry["sha256"]:
            problems.append(f"{name}: SHA-256 checksum does not match the index (file altered)")
        else:
            issue = _check_file(path, entry, meta)
            if issue:
                problems.append(f"{name}: {issue}")
        if progress:
            progress(1)
    listed = {entry["file"] for entry in entries.values()}
    for path in sorted((root / EPISODES_DIR).glob("*.h5")):
        relative = f"{EPISODES_DIR}/{path.name}"
        if relative not in listed:
            problems.append(
                f"{relative}: episode file not in the index (interrupted write; rerun the same "
                "generate/import command to resume)"
            )
    return problems, len(entries)
