"""Offline keyframe metrics: known errors give known numbers; a real dataset runs end to end."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from mirror_align.data.loaders import EEKeyframeDataset
from mirror_align.eval.keyframe_metrics import (
    KEYFRAME_METRICS,
    STAGE1_METRICS,
    breakdown,
    keyframe_errors,
    predict_keyframes,
    summarize,
)
from mirror_align.models.geometry import bins_to_quaternion


def _actions(bins: list[list[int]], xyz: np.ndarray, flags: np.ndarray) -> np.ndarray:
    quat = bins_to_quaternion(torch.tensor(bins), 5.0).double().numpy()
    return np.concatenate([xyz, quat, flags], axis=1)


def test_known_errors_give_known_metrics():
    n = 4
    xyz = np.zeros((n, 3))
    expert = _actions([[36, 20, 10]] * n, xyz, np.ones((n, 2)))
    # Errors of 0.5, 1.5, 3 and 10 cm along x; yaw one bin off on row 1, pitch two off on row 2.
    moved = xyz + np.array([[0.005, 0, 0], [0.015, 0, 0], [0.0, 0.03, 0], [0.0, 0, 0.10]])
    flags = np.array([[1, 1], [0, 1], [1, 0], [1, 1]], dtype=float)
    predicted = _actions([[36, 20, 10], [36, 20, 11], [36, 22, 10], [36, 20, 10]], moved, flags)
    out = summarize(keyframe_errors(predicted, expert))
    assert set(out) == set(KEYFRAME_METRICS)
    assert out["position_error_cm_median"] == pytest.approx((1.5 + 3.0) / 2)
    assert out["position_within_1cm"] == pytest.approx(0.25)
    assert out["position_within_2cm"] == pytest.approx(0.5)
    assert out["position_within_5cm"] == pytest.approx(0.75)
    assert out["rotation_exact_yaw"] == pytest.approx(0.75)
    assert out["rotation_within1_yaw"] == pytest.approx(1.0)
    assert out["rotation_exact_pitch"] == pytest.approx(0.75)
    assert out["rotation_within1_pitch"] == pytest.approx(0.75)
    assert out["rotation_exact_roll"] == pytest.approx(1.0)
    assert out["gripper_accuracy"] == pytest.approx(0.75)
    assert out["collision_accuracy"] == pytest.approx(0.75)


def test_rotation_bins_are_circular():
    xyz = np.zeros((1, 3))
    flags = np.ones((1, 2))
    errors = keyframe_errors(
        _actions([[36, 20, 71]], xyz, flags), _actions([[36, 20, 0]], xyz, flags)
    )
    assert errors.rotation_bin_distance[0, 2] == 1


def test_breakdown_and_empty_groups():
    xyz = np.zeros((3, 3))
    expert = _actions([[36, 20, 10]] * 3, xyz, np.ones((3, 2)))
    predicted = expert.copy()
    predicted[2, 0] += 0.04
    per_task = breakdown(keyframe_errors(predicted, expert), ["a", "a", "b"])
    assert per_task["a"]["position_error_cm_median"] == pytest.approx(0.0)
    assert per_task["b"]["position_error_cm_median"] == pytest.approx(4.0)
    empty = summarize(keyframe_errors(np.zeros((0, 9)), np.zeros((0, 9))))
    assert all(math.isnan(v) for v in empty.values())
    with pytest.raises(ValueError, match=r"\[N, 9\]"):
        keyframe_errors(np.zeros((2, 8)), np.zeros((2, 8)))


class _Offset(nn.Module):
    """A stand-in policy that returns the expert's keyframe moved 2 cm up (any model with predict)."""

    def predict(self, batch: dict) -> torch.Tensor:
        action = batch["action"].clone()
        action[:, 2] += 0.02
        return action


def test_predict_keyframes_on_a_real_dataset(tiny_sim_dataset):
    dataset = EEKeyframeDataset(str(tiny_sim_dataset), "test")
    pred = predict_keyframes(_Offset(), dataset, batch_size=5)
    assert pred.predicted.shape == pred.expert.shape == (len(dataset), 9)
    assert pred.keyframe_index.max() >= 1  # several keyframes per episode
    assert len(np.unique(pred.task_id)) == 2  # open_drawer and push_buttons
    out = summarize(keyframe_errors(pred.predicted, pred.expert))
    assert out["position_error_cm_median"] == pytest.approx(2.0, abs=1e-4)
    assert out["position_error_cm_z"] == pytest.approx(2.0, abs=1e-4)
    assert out["gripper_accuracy"] == 1.0


def test_stage1_metrics_only_with_first_stage_points():
    xyz = np.zeros((4, 3))
    expert = _actions([[36, 20, 10]] * 4, xyz, np.ones((4, 2)))
    # The final points are exact; the first stage missed by 0.5, 3, 8 and 20 cm.
    stage1 = np.array([[0.005, 0, 0], [0, 0.03, 0], [0, 0, 0.08], [0.2, 0, 0]])
    out = summarize(keyframe_errors(expert, expert, stage1=stage1))
    assert set(out) == set(KEYFRAME_METRICS) | set(STAGE1_METRICS)
    assert out["position_within_1cm"] == 1.0
    assert out["stage1_position_error_cm_median"] == pytest.approx(5.5)
    assert out["stage1_position_within_1cm"] == pytest.approx(0.25)
    assert out["stage1_position_within_5cm"] == pytest.approx(0.5)
    per = breakdown(keyframe_errors(expert, expert, stage1=stage1), ["a", "a", "b", "b"])
    assert per["b"]["stage1_position_within_5cm"] == 0.0
    assert "stage1_position_within_5cm" not in summarize(keyframe_errors(expert, expert))
    with pytest.raises(ValueError, match=r"stage1 must be \[4, 3\]"):
        keyframe_errors(expert, expert, stage1=np.zeros((3, 3)))


class _TwoStage(_Offset):
    """A stand-in two-stage policy: its first stage is 10 cm off along x, its output 2 cm up."""

    def predict_stages(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        coarse = batch["action"][:, :3].clone()
        coarse[:, 0] += 0.10
        return self.predict(batch), coarse


def test_predict_keyframes_reads_the_first_stage_of_a_two_stage_policy(tiny_sim_dataset):
    dataset = EEKeyframeDataset(str(tiny_sim_dataset), "test")
    assert predict_keyframes(_Offset(), dataset, batch_size=5).stage1 is None
    pred = predict_keyframes(_TwoStage(), dataset, batch_size=5)
    assert pred.stage1.shape == (len(dataset), 3)
    out = summarize(keyframe_errors(pred.predicted, pred.expert, stage1=pred.stage1))
    assert out["position_error_cm_median"] == pytest.approx(2.0, abs=1e-4)
    assert out["stage1_position_error_cm_median"] == pytest.approx(10.0, abs=1e-4)
    assert out["stage1_position_within_5cm"] == 0.0
