"""The dataset's tool frame (issue 13.3): declared in dataset.json, applied at load, undone at
decode; `dataset info` warns when orientations sit near the Euler singularity."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from byod_data import HAND_DOWN, TOOL_FRAME, make_meta, write_byod_dataset
from data_fixtures import cli
from mirror_align.data.loaders import EEKeyframeDataset
from mirror_align.data.reader import DatasetReader
from mirror_align.data.tool_frame import (
    from_tool_frame,
    near_singular_share,
    pitch_degrees,
    suggest_tool_frame,
    to_tool_frame,
)
from mirror_align.errors import UserInputError
from mirror_align.models.geometry import quaternion_to_bins

# Issue 13.3: two hand orientations 6.9 degrees apart at pitch ~90 degrees.
ISSUE_PAIR = np.array([[0.0353, 0.7110, 0.0452, 0.7009], [-0.0195, 0.7090, 0.0201, 0.7046]])


def _bins(quaternions: np.ndarray) -> np.ndarray:
    return quaternion_to_bins(torch.from_numpy(np.asarray(quaternions, np.float64))).numpy()


def _circular_distance(a: np.ndarray, b: np.ndarray, bins: int = 72) -> np.ndarray:
    d = np.abs(a - b) % bins
    return np.minimum(d, bins - d)


def test_issue_pair_lands_in_neighbouring_bins_in_the_tool_frame():
    raw = _bins(ISSUE_PAIR)
    assert raw.tolist() == [[55, 53, 56], [70, 54, 71]]  # the breakdown the issue measured
    assert _circular_distance(raw[0], raw[1]).max() == 15
    vectors = np.concatenate([np.zeros((2, 3)), ISSUE_PAIR, np.ones((2, 1))], axis=1)
    tooled = _bins(to_tool_frame(vectors, TOOL_FRAME)[:, 3:7])
    assert _circular_distance(tooled[0], tooled[1]).max() <= 1
    assert np.abs(pitch_degrees(to_tool_frame(vectors, TOOL_FRAME)[:, 3:7])).max() < 10


def test_tool_frame_round_trip_keeps_positions_and_flags():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(50, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    actions = np.concatenate([rng.normal(size=(50, 3)), q, rng.integers(0, 2, (50, 2))], axis=1)
    there = to_tool_frame(actions, TOOL_FRAME)
    back = from_tool_frame(there, TOOL_FRAME)
    assert np.array_equal(there[:, [0, 1, 2, 7, 8]], actions[:, [0, 1, 2, 7, 8]].astype(np.float32))
    same_rotation = np.abs(np.sum(back[:, 3:7] * q, axis=1))  # q and -q are one rotation
    assert np.allclose(same_rotation, 1.0, atol=1e-5)
    assert np.all(there[:, 6] >= 0)  # w >= 0, as the policy emits
    assert np.array_equal(to_tool_frame(actions, None), actions.astype(np.float32))


def test_loader_applies_the_declared_tool_frame(tmp_path):
    root = write_byod_dataset(tmp_path / "byod", {"train": 1})
    reader = DatasetReader(root)
    assert reader.meta.tool_frame_rotation == pytest.approx(TOOL_FRAME)
    dataset = EEKeyframeDataset(str(root), split="train", cache=False)
    raw = reader.read(dataset.entries[0]["episode_id"])
    item = dataset[0]
    expected = to_tool_frame(raw.actions[:1], TOOL_FRAME)[0]
    assert np.allclose(item["action"].numpy(), expected, atol=1e-6)
    assert np.allclose(item["proprio"].numpy(), to_tool_frame(raw.proprio[:1], TOOL_FRAME)[0])
    # Raw "down" is at pitch 90 degrees; in the tool frame it is near 0 (the hand tilts <= 4 deg).
    assert abs(pitch_degrees(raw.actions[0, 3:7])) > 80
    assert abs(pitch_degrees(item["action"].numpy()[3:7])) < 5


def test_schema_refuses_a_malformed_tool_frame():
    with pytest.raises(UserInputError, match="tool_frame_rotation: must be a unit quaternion"):
        make_meta(tool_frame=[1.0, 0.0, 0.0, 1.0])
    with pytest.raises(UserInputError, match="tool_frame_rotation: must be 4"):
        make_meta(tool_frame=[0.0, 1.0])


def test_suggested_tool_frame_maps_the_typical_pose_to_pitch_zero():
    rng = np.random.default_rng(1)
    from byod_data import hand_orientations

    raw = hand_orientations(rng, 200)
    assert near_singular_share(raw) == 1.0
    suggestion = suggest_tool_frame(raw)
    tooled = to_tool_frame(np.concatenate([np.zeros((200, 3)), raw], axis=1), suggestion)
    assert near_singular_share(tooled[:, 3:7]) == 0.0
    assert np.allclose(np.abs(suggest_tool_frame(np.tile(HAND_DOWN, (3, 1)))), np.abs(TOOL_FRAME))


def test_dataset_info_warns_near_the_singularity_and_suggests_the_fix(tmp_path, capsys):
    raw_root = write_byod_dataset(tmp_path / "raw", {"train": 1}, tool_frame=None)
    assert cli(["dataset", "info", str(raw_root)]) == 0
    out = capsys.readouterr().out
    assert "warning: 100% of the 18 orientations lie near Euler pitch +-90 deg" in out
    suggested = json.loads(out.split('"tool_frame_rotation": ')[1].split(" in dataset.json")[0])
    # The suggested frame, declared, silences the warning.
    fixed = write_byod_dataset(tmp_path / "fixed", {"train": 1}, tool_frame=suggested)
    assert cli(["dataset", "info", str(fixed)]) == 0
    assert "warning" not in capsys.readouterr().out
    assert cli(["dataset", "info", str(raw_root), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["warnings"]) == 1
