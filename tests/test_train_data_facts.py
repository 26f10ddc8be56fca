"""Models are sized from the dataset, the config is checked against it before decoding, and a
user's dataset with its own tasks, bounds and video length trains on the tiny preset."""

import json

import numpy as np
import pytest
import torch

from data_fixtures import TASKS, VARIATIONS, make_episode, make_meta
from mirror_align.config.experiment import load_experiment
from mirror_align.data.loaders import _EpisodeDataset
from mirror_align.data.writer import DatasetWriter
from mirror_align.errors import UserInputError
from mirror_align.eval.loading import load_run
from mirror_align.train.checkpoint import latest_checkpoint, load_config
from mirror_align.train.trainer import train

# Not MirrorBench's bounds (x, y within ±0.45 m, z 0-0.6 m): a user's robot.
USER_BOUNDS = [[-0.3, 0.3], [-0.25, 0.35], [0.0, 0.5]]
FLAT_USER_BOUNDS = (-0.3, -0.25, 0.0, 0.3, 0.35, 0.5)


def write_user_dataset(root, bounds=USER_BOUNDS, size=32, frames=12):
    """Two episodes per task of the fixture tasks (not MirrorBench's), ``size``-px images."""
    meta = make_meta(image_size=size, video_frames=frames)
    meta.workspace_bounds = bounds
    with DatasetWriter(root, meta) as writer:
        for seed, task in enumerate(TASKS * 2):
            writer.add(make_episode(task, seed % VARIATIONS[task], seed, size=size, frames=frames))
    return root


def tiny(dataset, *overrides):
    """The tiny preset with only data.path set, plus a few steps' worth of overrides."""
    quick = ["train.steps=2", "train.batch_size=4", "train.threads=1", "train.log_every=1"]
    return load_experiment("tiny", [f"data.path={dataset}", *quick, *overrides])


@pytest.fixture
def no_decoding(monkeypatch):
    """Fault injection: decoding any episode fails, so a check that passes ran before decoding."""

    def refuse(self, entry):
        raise AssertionError(f"episode {entry['episode_id']} decoded before the config check")

    monkeypatch.setattr(_EpisodeDataset, "_load", refuse)


def test_user_dataset_trains_with_only_its_path_and_takes_its_facts(tmp_path, capsys):
    data = write_user_dataset(tmp_path / "user")
    result = train(tiny(data), "mn", tmp_path / "run", progress=False)
    assert result.steps == 2
    assert "outside the workspace bounds" not in capsys.readouterr().err
    saved = load_config(latest_checkpoint(tmp_path / "run"))
    assert saved["data_facts"]["workspace_bounds"] == list(FLAT_USER_BOUNDS)
    assert saved["data_facts"]["image_size"] == 32 and saved["data_facts"]["video_frames"] == 12
    # The checkpoint alone rebuilds the models: the dataset is not needed any more.
    for path in sorted(data.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    run = load_run(tmp_path / "run")
    bounds = run.modules["ee"].bounds
    torch.testing.assert_close(bounds, torch.tensor(FLAT_USER_BOUNDS, dtype=torch.float32))
    assert run.facts.cameras == ("front", "left_shoulder", "right_shoulder", "wrist")


def test_a_stated_image_size_is_checked_before_decoding(tmp_path, no_decoding):
    data = write_user_dataset(tmp_path / "user", size=16)
    with pytest.raises(UserInputError, match=r"data.image_size is 32 but dataset .* 16-px"):
        train(tiny(data), "ee", tmp_path / "run", progress=False)
    with pytest.raises(UserInputError, match=r"ee.patch_size \(5\) must divide .* \(16\)"):
        train(tiny(data, "data.image_size=null", "ee.patch_size=5"), "ee", tmp_path / "r2")
    with pytest.raises(UserInputError, match=r"au.patch_size \(5\) must divide"):
        train(tiny(data, "data.image_size=null", "au.patch_size=5"), "au", tmp_path / "r3")


def test_null_image_size_takes_the_datasets(tmp_path):
    data = write_user_dataset(tmp_path / "user", size=16)
    train(tiny(data, "data.image_size=null"), "ee", tmp_path / "run", progress=False)
    assert load_run(tmp_path / "run").facts.image_size == 16


def test_stated_bounds_must_agree_with_the_dataset(tmp_path, no_decoding):
    data = write_user_dataset(tmp_path / "user")
    default = "ee.workspace_bounds=[-0.45, -0.45, 0.0, 0.45, 0.45, 0.6]"
    with pytest.raises(UserInputError, match="ee.workspace_bounds .* contradict"):
        train(tiny(data, default), "ee", tmp_path / "run", progress=False)


def test_a_dataset_without_bounds_needs_them_in_the_config(tmp_path, no_decoding):
    data = write_user_dataset(tmp_path / "user", bounds=None)
    with pytest.raises(
        UserInputError, match="records no workspace_bounds; set ee.workspace_bounds"
    ):
        train(tiny(data), "mn", tmp_path / "run", progress=False)


def test_a_dataset_without_bounds_trains_with_config_bounds_and_the_au_needs_none(tmp_path):
    data = write_user_dataset(tmp_path / "user", bounds=None)
    bounds = f"ee.workspace_bounds={list(FLAT_USER_BOUNDS)}"
    train(tiny(data, bounds), "ee", tmp_path / "ee", progress=False)
    assert load_run(tmp_path / "ee").facts.workspace_bounds == FLAT_USER_BOUNDS
    train(tiny(data), "au", tmp_path / "au", progress=False)


def test_targets_outside_the_bounds_are_counted_and_reported(tmp_path, capsys):
    narrow = [[-0.1, 0.3], [-0.25, 0.35], [0.0, 0.5]]
    data = write_user_dataset(tmp_path / "user", bounds=narrow)
    lo, hi = np.array([-0.1, -0.25, 0.0]), np.array([0.3, 0.35, 0.5])
    expected = total = 0
    for seed, task in enumerate(TASKS * 2):
        xyz = make_episode(task, seed % VARIATIONS[task], seed, size=32, frames=12).actions[:, :3]
        expected += int(np.sum(np.any((xyz < lo) | (xyz > hi), axis=1)))
        total += len(xyz)
    assert 0 < expected < total
    train(tiny(data, "data.augment=false"), "ee", tmp_path / "run", progress=False)
    err = capsys.readouterr().err
    assert f"warning: {expected} of {total} keyframe targets" in err
    assert "not clipped" in err
    # The stored targets are untouched (counted, never clipped).
    assert err.count("keyframe targets") == 1


def test_old_checkpoints_without_data_facts_still_load(tmp_path):
    data = write_user_dataset(tmp_path / "user")
    train(tiny(data), "mn", tmp_path / "run", progress=False)
    folder = latest_checkpoint(tmp_path / "run")
    fresh = load_run(tmp_path / "run").modules["ee"].state_dict()
    saved = json.loads((folder / "config.json").read_text())
    # The layout before the facts moved out of the model sections.
    facts = saved.pop("data_facts")
    saved["experiment"]["ee"].update(
        image_size=32, num_views=4, workspace_bounds=facts["workspace_bounds"]
    )
    saved["experiment"]["au"]["image_size"] = 32
    del saved["experiment"]["au"]["resize_to"]
    (folder / "config.json").write_text(json.dumps(saved))
    run = load_run(tmp_path / "run")
    assert run.facts.image_size == 32 and run.facts.workspace_bounds == FLAT_USER_BOUNDS
    for key, value in run.modules["ee"].state_dict().items():
        assert torch.equal(value, fresh[key]), key
