"""The dataset's tool frame: a fixed rotation that keeps gripper orientations away from the
Euler-angle singularity of the policy's rotation tokens.

The EE policy tokenises an orientation as three Euler bins (roll, pitch, yaw; extrinsic xyz, see
:mod:`mirror_align.models.geometry`). At pitch = +-90 degrees roll and yaw are not defined
separately (gimbal lock), so near it two orientations a few degrees apart land in bins far apart
(issue 13.3: 6.9 degrees apart gave bins ``[55, 53, 56]`` and ``[70, 54, 71]``), and the roll/yaw
losses cannot fall. Many robots' raw hand frame sits exactly there when the gripper points down.

A dataset may therefore declare ``tool_frame_rotation`` (xyzw, in ``dataset.json``; default the
identity): the rotation ``r`` from the recorded hand frame to the frame the policy learns in. Every
orientation ``q`` of the dataset (proprio and actions) becomes ``q * r`` when it is loaded
(:func:`to_tool_frame`), and every predicted orientation ``p`` goes back as ``p * r^-1``
(:func:`from_tool_frame`), so predictions and rollouts are in the dataset's own frame. Positions
are unchanged (a rotation about the tool centre point). A world-frame yaw ``y`` (the scene
augmentation) commutes with it: ``(y * q) * r = y * (q * r)``.

A good choice is the inverse of the dataset's typical orientation: that orientation then maps to
roll = pitch = yaw = 0, as far from the singularity as possible (:func:`suggest_tool_frame`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mirror_align.data.geometry import quat_multiply
from mirror_align.errors import UserInputError

IDENTITY: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)
# |pitch| above this counts as near the singularity (where 5-degree roll/yaw bins stop being
# local: at 80 degrees a 1-degree tilt already moves roll and yaw by about 5.7 degrees).
SINGULAR_PITCH_DEGREES = 80.0
# `dataset info` warns when at least this share of a dataset's orientations are near it.
SINGULAR_SHARE_WARNING = 0.1


def check_rotation(
    value: Sequence[float] | None, where: str = "tool_frame_rotation"
) -> list[float]:
    """The unit quaternion xyzw of ``value`` (None: the identity) as a list of 4 floats.

    Raises ``UserInputError`` naming ``where`` when it is not 4 finite numbers of non-zero norm.
    A quaternion whose norm is off by more than 1e-3 is refused rather than normalised: it is
    more likely a wrong field order (wxyz) than rounding.
    """
    if value is None:
        return list(IDENTITY)
    try:
        q = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as err:
        raise UserInputError(
            f"{where}: must be 4 numbers (quaternion xyzw), got {value!r}"
        ) from err
    if q.shape != (4,) or not np.all(np.isfinite(q)):
        raise UserInputError(f"{where}: must be 4 finite numbers (quaternion xyzw), got {value!r}")
    norm = float(np.linalg.norm(q))
    if abs(norm - 1.0) > 1e-3:
        raise UserInputError(f"{where}: must be a unit quaternion xyzw, got norm {norm:.4f}")
    return [float(x) for x in q / norm]


def is_identity(rotation: Sequence[float] | None) -> bool:
    """Whether ``rotation`` (xyzw, or None) is the identity (up to sign)."""
    if rotation is None:
        return True
    return bool(abs(abs(float(rotation[3])) - 1.0) < 1e-9)


def _rotate(vectors: np.ndarray, rotation: np.ndarray, start: int) -> np.ndarray:
    out = np.array(vectors, dtype=np.float32, copy=True)
    q = quat_multiply(out[..., start : start + 4].astype(np.float64), rotation)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    out[..., start : start + 4] = np.where(q[..., 3:4] < 0, -q, q)  # w >= 0, as the policy emits
    return out


def to_tool_frame(vectors: np.ndarray, rotation: Sequence[float] | None) -> np.ndarray:
    """Proprio ``[..., 8]`` or action ``[..., 9]`` vectors (quaternion at columns 3:7) with each
    orientation ``q`` replaced by ``q * rotation``; a copy, float32. The identity returns a copy."""
    if is_identity(rotation):
        return np.array(vectors, dtype=np.float32, copy=True)
    return _rotate(vectors, np.asarray(rotation, dtype=np.float64), 3)


def from_tool_frame(vectors: np.ndarray, rotation: Sequence[float] | None) -> np.ndarray:
    """The inverse of :func:`to_tool_frame`: ``p -> p * rotation^-1``."""
    if is_identity(rotation):
        return np.array(vectors, dtype=np.float32, copy=True)
    x, y, z, w = np.asarray(rotation, dtype=np.float64)
    return _rotate(vectors, np.array([-x, -y, -z, w]), 3)


def pitch_degrees(quaternions: np.ndarray) -> np.ndarray:
    """Euler pitch in degrees (the policy's convention) of xyzw quaternions ``[..., 4]``."""
    import torch

    from mirror_align.models.geometry import quaternion_to_euler

    q = torch.from_numpy(np.asarray(quaternions, dtype=np.float64).reshape(-1, 4))
    pitch = torch.rad2deg(quaternion_to_euler(q)[:, 1]).numpy()
    return pitch.reshape(np.asarray(quaternions).shape[:-1])


def near_singular_share(quaternions: np.ndarray, limit: float = SINGULAR_PITCH_DEGREES) -> float:
    """Share of the orientations ``[N, 4]`` whose |pitch| exceeds ``limit`` degrees (0 if N = 0)."""
    quaternions = np.asarray(quaternions, dtype=np.float64).reshape(-1, 4)
    if quaternions.shape[0] == 0:
        return 0.0
    return float(np.mean(np.abs(pitch_degrees(quaternions)) > limit))


def suggest_tool_frame(quaternions: np.ndarray) -> list[float]:
    """A tool frame that maps the typical orientation of ``quaternions [N, 4]`` to the identity:
    the inverse of their chordal mean (the principal eigenvector of sum q q^T, sign-invariant)."""
    q = np.asarray(quaternions, dtype=np.float64).reshape(-1, 4)
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    _, vectors = np.linalg.eigh(q.T @ q)
    mean = vectors[:, -1] * (1.0 if vectors[3, -1] >= 0 else -1.0)
    inverse = np.array([-mean[0], -mean[1], -mean[2], mean[3]])
    return [round(float(x), 4) for x in inverse / np.linalg.norm(inverse)]


def dataset_orientations(root: str | Path, max_episodes: int = 200) -> np.ndarray:
    """Recorded orientations of a dataset folder, ``[N, 4]`` xyzw in its *raw* frame: the proprio
    and action quaternions of every episode, or of ``max_episodes`` spread evenly over the index
    (reads only those small arrays, so `dataset info` stays fast on large datasets)."""
    import h5py

    from mirror_align.data.reader import DatasetReader

    reader = DatasetReader(root)
    entries = [reader.entries[k] for k in sorted(reader.entries)]
    if len(entries) > max_episodes:
        entries = [entries[i] for i in np.linspace(0, len(entries) - 1, max_episodes).astype(int)]
    parts = [np.zeros((0, 4))]
    for entry in entries:
        with h5py.File(reader.path(entry), "r") as f:
            parts.append(np.asarray(f["obs/proprio"][()], np.float64).reshape(-1, 8)[:, 3:7])
            parts.append(np.asarray(f["actions"][()], np.float64).reshape(-1, 9)[:, 3:7])
    return np.concatenate(parts)


def singularity_warning(root: str | Path) -> str | None:
    """One line for ``dataset info`` when at least :data:`SINGULAR_SHARE_WARNING` of the dataset's
    orientations, in its tool frame, have |pitch| > :data:`SINGULAR_PITCH_DEGREES`; else None.
    The line gives the share and a ``tool_frame_rotation`` that would fix it."""
    from mirror_align.data.writer import load_meta

    raw = dataset_orientations(root)
    rotation = load_meta(Path(root)).tool_frame_rotation
    tooled = to_tool_frame(np.concatenate([np.zeros((len(raw), 3)), raw], axis=1), rotation)
    share = near_singular_share(tooled[:, 3:7])
    if len(raw) == 0 or share < SINGULAR_SHARE_WARNING:
        return None
    return (
        f"warning: {100 * share:.0f}% of the {len(raw)} orientations lie near Euler pitch +-90 deg "
        f"(|pitch| > {SINGULAR_PITCH_DEGREES:g}), where the policy's roll/yaw bins break down; "
        f'set "tool_frame_rotation": {suggest_tool_frame(raw)} in dataset.json (docs/dataset.md, '
        '"Tool frame")'
    )
