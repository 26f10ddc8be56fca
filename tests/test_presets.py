"""Every shipped preset loads, validates and keeps the paper's aligner settings; the config states
each data fact once and `mirror-align config show` documents every field."""

import dataclasses

import pytest
import yaml

from mirror_align.cli import main
from mirror_align.config.describe import describe, missing_comments
from mirror_align.config.experiment import (
    PRESET_NAMES,
    ExperimentConfig,
    experiment_from_dict,
    load_experiment,
)
from mirror_align.errors import UserInputError
from mirror_align.models.config import PolicyConfig, VideoTextConfig


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_presets_load(preset):
    config = load_experiment(preset)
    assert config.preset == preset and config.model_preset == preset
    assert (config.align.dim, config.align.tau, config.align.weight) == (1024, 0.1, 0.5)


def test_paper_preset_matches_the_paper():
    config = load_experiment("paper")
    assert (config.train.batch_size, config.train.steps, config.train.au_share) == (192, 80000, 0.2)
    assert (config.au.tau, config.ee.lr, config.align.lr) == (0.05, 1.25e-5, 1e-4)
    assert config.data.episodes_per_task == {"train": 100, "val": 25, "test": 25}
    # ViCLIP works at 224 px: the AU resizes the dataset's 128-px clips to it.
    assert (config.data.image_size, config.au.resize_to) == (128, 224)


def test_overrides_and_bad_fields_are_checked():
    config = load_experiment("tiny", ["align.pairing=episode", "train.steps=3"])
    assert config.align.pairing == "episode" and config.train.steps == 3
    with pytest.raises(UserInputError, match="align.pairing"):
        load_experiment("tiny", ["align.pairing=pixel"])
    with pytest.raises(UserInputError, match="data.image_size"):
        load_experiment("tiny", ["data.image_size=4"])


def test_image_size_is_stated_once():
    """The models hold no image size of their own: one override changes it everywhere."""
    for cls in (PolicyConfig, VideoTextConfig):
        assert "image_size" not in {f.name for f in dataclasses.fields(cls)}
    assert "num_views" not in {f.name for f in dataclasses.fields(PolicyConfig)}
    config = load_experiment("quick", ["data.image_size=128"])  # no other override needed
    assert config.data.image_size == 128


def test_bare_defaults_do_not_contradict_each_other():
    config = experiment_from_dict({})
    assert isinstance(config, ExperimentConfig) and config.model_preset == "quick"
    assert config.ee.workspace_bounds is None  # the dataset's bounds, never a silent default


def test_tiny_names_its_tasks_for_generation_only():
    """A user's dataset trains on all of its tasks with only data.path set (issue 13 item 4)."""
    config = load_experiment("tiny", ["data.path=elsewhere"])
    assert config.data.tasks == []
    assert config.data.generate_tasks == ["open_drawer", "push_buttons"]


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_every_field_has_a_comment(preset):
    assert missing_comments(load_experiment(preset)) == []


def test_config_show_prints_every_field_with_its_comment_and_reloads(tmp_path, capsys):
    assert main(["config", "show", "--preset", "quick", "--set", "train.steps=7"]) == 0
    text = capsys.readouterr().out
    assert "# Optimisation steps.\n  steps: 7\n" in text
    assert "# Tasks that `reproduce` generates" in text
    # Every leaf field appears, and the output is a config file that loads back to the same config.
    config = load_experiment("quick", ["train.steps=7"])
    assert len([ln for ln in describe(config) if not ln.lstrip().startswith("#")]) == len(
        [ln for ln in text.splitlines() if ln and not ln.lstrip().startswith("#")]
    )
    path = tmp_path / "shown.yaml"
    path.write_text(text)
    assert isinstance(yaml.safe_load(text), dict)
    assert load_experiment(path) == config


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_config_show_round_trips_every_preset(preset, tmp_path):
    """Small floats such as the paper's lr 1e-5 must stay numbers in YAML (1e-05 would be a string)."""
    config = load_experiment(preset, ["align.tau=0.02", "ee.workspace_bounds=[-1, -1, 0, 1, 1, 2]"])
    path = tmp_path / f"{preset}.yaml"
    path.write_text("\n".join(describe(config)))
    assert load_experiment(path) == config


def test_config_show_errors_are_one_line(capsys):
    assert main(["config", "show", "--preset", "tiny", "--set", "data.bogus=1"]) == 2
    assert "data: unknown field(s) bogus" in capsys.readouterr().err


def test_cli_worker_options_default_to_the_config():
    from mirror_align.cli import build_parser

    parser = build_parser()
    for command in ("reproduce", "ablate"):
        args = parser.parse_args([command, "--out", "x"])
        assert args.workers is None  # resolved to config.eval.workers when run


@pytest.mark.parametrize("command", ["reproduce", "ablate"])
def test_reproduce_needs_an_image_size_to_generate(command, tmp_path, capsys):
    argv = [command, "--preset", "tiny", "--out", str(tmp_path), "--set", "data.image_size=null"]
    assert main(argv) == 2
    assert "data.image_size: reproduce generates data and needs a size" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # refused before writing anything
