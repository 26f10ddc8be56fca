"""Offline keyframe metrics of an EE policy: how far each predicted keyframe is from the expert's.

These cost seconds (one greedy decoding per keyframe, no simulator), apply to any dataset
(MirrorBench or not), and say *why* rollouts fail without running any: the project measured (docs/architecture.md) that
success needs about 1 cm of position accuracy per axis, yaw within 5-10 degrees, the gripper flag
right >= 98% of the time and the collision flag >= 95%.

The metrics are model-agnostic: they compare action arrays ``[N, 9]`` (xyz metres, quaternion
xyzw, gripper_open, ignore_collisions; docs/interfaces.md) and never read the model.

Metric names (``KEYFRAME_METRICS``), each a float:

* ``position_error_cm_median``: median Euclidean 3D error, centimetres;
* ``position_within_1cm`` / ``_2cm`` / ``_5cm``: share of keyframes within that 3D error;
* ``position_error_cm_{x,y,z}``: median absolute error per world axis, centimetres;
* ``rotation_exact_{roll,pitch,yaw}``: share whose Euler bin equals the expert's;
* ``rotation_within1_{roll,pitch,yaw}``: share within one bin (circular, so bin 0 and 71 are
  neighbours with 72 bins);
* ``gripper_accuracy`` / ``collision_accuracy``: share of correct 0/1 flags.

A policy with a coarse first stage (RVT-2/ARP's zoom-in: ``KeyframePolicy.predict_stages``) also
gets ``STAGE1_METRICS``: the same position metrics of its first stage's point. They tell a miss of
the target (stage 1 far off, the zoom stage cannot recover it) from imprecision (stage 1 close,
the final point not within 1 cm); docs/models.md found the former dominates at the quick preset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from mirror_align.data.loaders import collate
from mirror_align.models.geometry import quaternion_to_bins

EULER_AXES: tuple[str, ...] = ("roll", "pitch", "yaw")
WITHIN_CM: tuple[int, ...] = (1, 2, 5)
KEYFRAME_METRICS: tuple[str, ...] = (
    "position_error_cm_median",
    *(f"position_within_{cm}cm" for cm in WITHIN_CM),
    *(f"position_error_cm_{axis}" for axis in "xyz"),
    *(f"rotation_exact_{a}" for a in EULER_AXES),
    *(f"rotation_within1_{a}" for a in EULER_AXES),
    "gripper_accuracy",
    "collision_accuracy",
)
# Position metrics of a two-stage policy's first-stage point (only for such policies).
STAGE1_METRICS: tuple[str, ...] = (
    "stage1_position_error_cm_median",
    *(f"stage1_position_within_{cm}cm" for cm in WITHIN_CM),
)


@dataclass
class KeyframeErrors:
    """Per-keyframe errors of N predicted keyframes against the expert's.

    ``position_cm [N, 3]`` absolute per-axis error (cm); ``rotation_bin_distance [N, 3]`` circular
    distance in bins per Euler angle; ``gripper_correct [N]`` and ``collision_correct [N]`` bools;
    ``stage1_cm [N]`` the first stage's 3D error (cm) of a two-stage policy, else None.
    """

    position_cm: np.ndarray
    rotation_bin_distance: np.ndarray
    gripper_correct: np.ndarray
    collision_correct: np.ndarray
    stage1_cm: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.position_cm.shape[0])

    def select(self, rows: np.ndarray) -> KeyframeErrors:
        """The errors of the keyframes ``rows`` (a boolean mask or indices)."""
        return KeyframeErrors(
            self.position_cm[rows],
            self.rotation_bin_distance[rows],
            self.gripper_correct[rows],
            self.collision_correct[rows],
            None if self.stage1_cm is None else self.stage1_cm[rows],
        )


def keyframe_errors(
    predicted: np.ndarray,
    expert: np.ndarray,
    rotation_resolution: float = 5.0,
    stage1: np.ndarray | None = None,
) -> KeyframeErrors:
    """Compare predicted keyframes with the expert's.

    Args:
        predicted, expert: ``[N, 9]`` action arrays (xyz m, quaternion xyzw, gripper_open,
            ignore_collisions).
        rotation_resolution: Euler bin width in degrees (5: the paper's 72 bins).
        stage1: ``[N, 3]`` first-stage points (m) of a two-stage policy, or None.
    Raises:
        ValueError: when the shapes differ or are not ``[N, 9]`` (``stage1``: ``[N, 3]``).
    """
    predicted = np.asarray(predicted, dtype=np.float64)
    expert = np.asarray(expert, dtype=np.float64)
    if predicted.shape != expert.shape or predicted.ndim != 2 or predicted.shape[1] != 9:
        raise ValueError(
            f"keyframe_errors: need two [N, 9] action arrays, got {predicted.shape} and {expert.shape}"
        )
    bins = round(360.0 / rotation_resolution)
    pred_bins = quaternion_to_bins(torch.from_numpy(predicted[:, 3:7]), rotation_resolution)
    true_bins = quaternion_to_bins(torch.from_numpy(expert[:, 3:7]), rotation_resolution)
    diff = (pred_bins - true_bins).abs().numpy() % bins
    stage1_cm = None
    if stage1 is not None:
        stage1 = np.asarray(stage1, dtype=np.float64)
        if stage1.shape != (expert.shape[0], 3):
            raise ValueError(
                f"keyframe_errors: stage1 must be [{expert.shape[0]}, 3], got {stage1.shape}"
            )
        stage1_cm = np.linalg.norm(stage1 - expert[:, :3], axis=1) * 100.0
    return KeyframeErrors(
        position_cm=np.abs(predicted[:, :3] - expert[:, :3]) * 100.0,
        rotation_bin_distance=np.minimum(diff, bins - diff),
        gripper_correct=(predicted[:, 7] > 0.5) == (expert[:, 7] > 0.5),
        collision_correct=(predicted[:, 8] > 0.5) == (expert[:, 8] > 0.5),
        stage1_cm=stage1_cm,
    )


def summarize(errors: KeyframeErrors) -> dict[str, float]:
    """The :data:`KEYFRAME_METRICS` of a set of keyframes (NaN for each when it is empty), plus
    the :data:`STAGE1_METRICS` when ``errors`` has first-stage errors."""
    names = KEYFRAME_METRICS + (STAGE1_METRICS if errors.stage1_cm is not None else ())
    if len(errors) == 0:
        return dict.fromkeys(names, float("nan"))
    out = _distance_metrics(np.linalg.norm(errors.position_cm, axis=1))
    for i, axis in enumerate("xyz"):
        out[f"position_error_cm_{axis}"] = float(np.median(errors.position_cm[:, i]))
    for i, name in enumerate(EULER_AXES):
        out[f"rotation_exact_{name}"] = float(np.mean(errors.rotation_bin_distance[:, i] == 0))
        out[f"rotation_within1_{name}"] = float(np.mean(errors.rotation_bin_distance[:, i] <= 1))
    out["gripper_accuracy"] = float(np.mean(errors.gripper_correct))
    out["collision_accuracy"] = float(np.mean(errors.collision_correct))
    if errors.stage1_cm is not None:
        out.update(_distance_metrics(errors.stage1_cm, "stage1_"))
    return out


def _distance_metrics(distance_cm: np.ndarray, prefix: str = "") -> dict[str, float]:
    """``<prefix>position_error_cm_median`` and ``<prefix>position_within_<k>cm`` of ``[N]`` 3D
    errors (cm)."""
    out = {f"{prefix}position_error_cm_median": float(np.median(distance_cm))}
    for cm in WITHIN_CM:
        out[f"{prefix}position_within_{cm}cm"] = float(np.mean(distance_cm <= cm))
    return out


def breakdown(
    errors: KeyframeErrors, groups: Sequence[object] | np.ndarray
) -> dict[object, dict[str, float]]:
    """:func:`summarize` per group label (e.g. the task name or the keyframe index of each row)."""
    labels = np.asarray(groups, dtype=object)
    if labels.shape[0] != len(errors):
        raise ValueError(f"breakdown: {labels.shape[0]} group labels for {len(errors)} keyframes")
    return {label: summarize(errors.select(labels == label)) for label in dict.fromkeys(labels)}


@dataclass
class KeyframePredictions:
    """Greedy predictions of a policy over every keyframe of a dataset, with their labels.

    ``predicted`` and ``expert`` are ``[N, 9]`` action arrays; ``task_id`` and ``keyframe_index``
    are ``[N]`` int64 (the task's index in the dataset's task table, the keyframe's index in its
    episode); ``stage1 [N, 3]`` the first-stage points (m) of a two-stage policy, else None.
    """

    predicted: np.ndarray
    expert: np.ndarray
    task_id: np.ndarray
    keyframe_index: np.ndarray
    stage1: np.ndarray | None = None


@torch.no_grad()
def predict_keyframes(
    policy: torch.nn.Module, dataset: torch.utils.data.Dataset, batch_size: int = 64
) -> KeyframePredictions:
    """Run ``policy.predict`` (``[B, 9]``) over an EE keyframe dataset (no augmentation).

    Any model with ``predict(batch) -> [B, 9]`` works; one with ``predict_stages(batch) ->
    ([B, 9], [B, 3] first-stage points or None)`` (:class:`~mirror_align.models.KeyframePolicy`;
    points with the zoom stage) also yields ``stage1``. The dataset's items hold ``action [9]``,
    ``task_id`` and ``keyframe_index`` (``mirror_align.data.loaders.EEKeyframeDataset``).
    """
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=collate)
    was_training = policy.training
    policy.eval()
    stages = getattr(policy, "predict_stages", None)
    keys = ("pred", "true", "task", "index", "stage1")
    parts: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    try:
        for batch in loader:
            if stages is not None:
                predicted, stage1 = stages(batch)
                if stage1 is not None:
                    parts["stage1"].append(stage1.cpu().double().numpy())
            else:
                predicted = policy.predict(batch)
            parts["pred"].append(predicted.cpu().double().numpy())
            parts["true"].append(batch["action"].double().numpy())
            parts["task"].append(batch["task_id"].numpy())
            parts["index"].append(batch["keyframe_index"].numpy())
    finally:
        policy.train(was_training)
    if not parts["pred"]:
        empty = np.zeros((0, 9))
        return KeyframePredictions(empty, empty, np.zeros(0, np.int64), np.zeros(0, np.int64))
    stage1 = np.concatenate(parts["stage1"]) if parts["stage1"] else None
    return KeyframePredictions(
        *(np.concatenate(parts[k]) for k in ("pred", "true", "task", "index")), stage1
    )
