"""Pairing by episode / instruction / class: partners share the key, seeds reproduce, gaps are reported."""

import numpy as np
import pytest

from mirror_align.align.pairing import PAIRING_FIELDS, make_pairs, pair_by_key, pairing_keys
from mirror_align.errors import UserInputError


def _pool(n, seed):
    rng = np.random.default_rng(seed)
    episode = np.arange(n)
    instruction = rng.integers(0, 12, n)
    task = instruction // 4
    return {"episode_id": episode, "instruction_id": instruction, "task_id": task}


@pytest.mark.parametrize("mode", ["episode", "instruction", "class"])
def test_partners_share_the_key(mode):
    au = _pool(200, 0)
    # The EE pool: several keyframe rows per episode, so episode pairing has real choices.
    ee = {k: np.repeat(v, 3) for k, v in au.items()}
    pairs = make_pairs(au, ee, mode=mode, rng=1)
    field = PAIRING_FIELDS[mode]
    assert len(pairs) == 200 and pairs.n_skipped == 0
    assert np.array_equal(au[field][pairs.au_index], ee[field][pairs.ee_index])
    assert np.array_equal(pairs.keys, au[field][pairs.au_index])


def test_partner_is_random_among_those_sharing_the_key():
    au = {"instruction_id": np.zeros(4000, dtype=np.int64)}
    ee = {"instruction_id": np.zeros(5, dtype=np.int64)}
    pairs = make_pairs(au, ee, mode="instruction", rng=0)
    counts = np.bincount(pairs.ee_index, minlength=5)
    assert counts.min() > 650 and counts.max() < 950  # uniform: 800 each


def test_same_seed_same_pairs_other_seed_other_pairs():
    au, ee = _pool(300, 0), _pool(300, 1)
    a = make_pairs(au, ee, mode="instruction", rng=7)
    b = make_pairs(au, ee, mode="instruction", rng=np.random.default_rng(7))
    c = make_pairs(au, ee, mode="instruction", rng=8)
    assert np.array_equal(a.ee_index, b.ee_index)
    assert not np.array_equal(a.ee_index, c.ee_index)


def test_missing_partner_error_names_key_and_mode():
    au = {"instruction_id": np.array([1, 2, 17, 2])}
    ee = {"instruction_id": np.array([1, 2, 2])}
    with pytest.raises(UserInputError, match=r"pairing by instruction: instruction_id 17"):
        make_pairs(au, ee, mode="instruction", rng=0)


def test_missing_partner_skip_reports_count():
    au = {"task_id": np.array([0, 5, 1, 5, 9, 1])}
    ee = {"task_id": np.array([0, 1, 1])}
    pairs = make_pairs(au, ee, mode="class", rng=0, on_missing="skip")
    assert pairs.n_skipped == 3
    assert pairs.missing_keys.tolist() == [5, 9]
    assert pairs.au_index.tolist() == [0, 2, 5]
    assert np.array_equal(ee["task_id"][pairs.ee_index], [0, 1, 1])


def test_bad_mode_and_missing_key_array():
    with pytest.raises(UserInputError, match="episode, instruction, class"):
        make_pairs(_pool(5, 0), mode="object")
    with pytest.raises(UserInputError, match="'task_id' is missing"):
        pairing_keys({"episode_id": np.arange(3)}, "class")
    with pytest.raises(UserInputError, match="on_missing"):
        pair_by_key([1], [1], on_missing="ignore")
