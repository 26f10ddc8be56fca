"""Every shipped preset loads, validates and keeps the paper's aligner settings."""

import pytest

from mirror_align.config.experiment import load_experiment
from mirror_align.errors import UserInputError


@pytest.mark.parametrize("preset", ["tiny", "quick", "paper"])
def test_presets_load(preset):
    config = load_experiment(preset)
    assert config.preset == preset and config.model_preset == preset
    assert config.ee.image_size == config.data.image_size
    assert (config.align.dim, config.align.tau, config.align.weight) == (1024, 0.1, 0.5)


def test_paper_preset_matches_the_paper():
    config = load_experiment("paper")
    assert (config.train.batch_size, config.train.steps, config.train.au_share) == (192, 80000, 0.2)
    assert (config.au.tau, config.ee.lr, config.align.lr) == (0.05, 1.25e-5, 1e-4)
    assert config.data.episodes_per_task == {"train": 100, "val": 25, "test": 25}


def test_overrides_and_bad_fields_are_checked():
    config = load_experiment("tiny", ["align.pairing=episode", "train.steps=3"])
    assert config.align.pairing == "episode" and config.train.steps == 3
    with pytest.raises(UserInputError, match="align.pairing"):
        load_experiment("tiny", ["align.pairing=pixel"])
    with pytest.raises(UserInputError, match="ee.image_size"):
        load_experiment("tiny", ["data.image_size=64"])
