"""Pairing by episode / instruction / class: partners share the key, seeds reproduce, gaps are reported.

Also ties every home of the pairing modes and the default pairing to ``mirror_align.constants``.
"""

import dataclasses
import inspect
import typing

import numpy as np
import pytest

from mirror_align import constants
from mirror_align.align import pairing
from mirror_align.align.pairing import (
    PAIRING_FIELDS,
    PAIRING_MODES,
    make_pairs,
    pair_by_key,
    pairing_keys,
)
from mirror_align.align.probe import ProbeConfig
from mirror_align.config.experiment import AlignConfig
from mirror_align.data.paired import PairedBatchSampler
from mirror_align.errors import UserInputError


def _pool(n, seed):
    rng = np.random.default_rng(seed)
    episode = np.arange(n)
    instruction = rng.integers(0, 12, n)
    task = instruction // 4
    return {"episode_id": episode, "instruction_id": instruction, "task_id": task}


@pytest.mark.parametrize("mode", PAIRING_MODES)
def test_partners_share_the_key(mode):
    au = _pool(200, 0)
    # The EE pool: several keyframe rows per episode, so episode pairing has real choices.
    ee = {k: np.repeat(v, 3) for k, v in au.items()}
    pairs = make_pairs(au, ee, mode=mode, rng=1)
    field = PAIRING_FIELDS[mode]
    assert len(pairs) == 200 and pairs.n_skipped == 0
    assert np.array_equal(au[field][pairs.query_index], ee[field][pairs.candidate_index])
    assert np.array_equal(pairs.keys, au[field][pairs.query_index])


def test_partner_is_random_among_those_sharing_the_key():
    au = {"instruction_id": np.zeros(4000, dtype=np.int64)}
    ee = {"instruction_id": np.zeros(5, dtype=np.int64)}
    pairs = make_pairs(au, ee, mode="instruction", rng=0)
    counts = np.bincount(pairs.candidate_index, minlength=5)
    assert counts.min() > 650 and counts.max() < 950  # uniform: 800 each


def test_same_seed_same_pairs_other_seed_other_pairs():
    au, ee = _pool(300, 0), _pool(300, 1)
    a = make_pairs(au, ee, mode="instruction", rng=7)
    b = make_pairs(au, ee, mode="instruction", rng=np.random.default_rng(7))
    c = make_pairs(au, ee, mode="instruction", rng=8)
    assert np.array_equal(a.candidate_index, b.candidate_index)
    assert not np.array_equal(a.candidate_index, c.candidate_index)


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
    assert pairs.query_index.tolist() == [0, 2, 5]
    assert np.array_equal(ee["task_id"][pairs.candidate_index], [0, 1, 1])


def test_bad_mode_and_missing_key_array():
    with pytest.raises(UserInputError, match="episode, instruction, class"):
        make_pairs(_pool(5, 0), mode="object")
    with pytest.raises(UserInputError, match="'task_id' is missing"):
        pairing_keys({"episode_id": np.arange(3)}, "class")
    with pytest.raises(UserInputError, match="on_missing"):
        pair_by_key([1], [1], on_missing="ignore")


def test_pairing_is_direction_neutral():
    """Either pool can be the queries: each query's partner is a candidate sharing its key."""
    au = _pool(60, 0)
    ee = {k: np.repeat(v, 3) for k, v in au.items()}
    for queries, candidates in ((au, ee), (ee, au)):
        pairs = make_pairs(queries=queries, candidates=candidates, mode="instruction", rng=0)
        assert len(pairs) == len(queries["instruction_id"])
        assert np.array_equal(
            queries["instruction_id"][pairs.query_index],
            candidates["instruction_id"][pairs.candidate_index],
        )
    own = make_pairs(queries=au, mode="episode", rng=0)  # no candidates: the queries' own samples
    assert np.array_equal(own.query_index, own.candidate_index)


def test_pairing_modes_and_default_have_one_home():
    """The pairing module, the experiment config, the probe and the paired sampler all read the
    modes and the default from mirror_align.constants."""
    assert pairing.PAIRING_FIELDS is constants.PAIRING_FIELDS
    assert pairing.PAIRING_MODES is constants.PAIRING_MODES
    assert pairing.DEFAULT_PAIRING == constants.DEFAULT_PAIRING
    assert pairing.KEY_NAMES == tuple(constants.PAIRING_FIELDS.values())
    # The config states the modes as a Literal (for the schema and type checkers): same choices.
    literal = typing.get_type_hints(AlignConfig)["pairing"]
    assert typing.get_args(literal) == constants.PAIRING_MODES
    assert AlignConfig().pairing == constants.DEFAULT_PAIRING
    probe_default = {f.name: f.default for f in dataclasses.fields(ProbeConfig)}["pairing"]
    assert probe_default == constants.DEFAULT_PAIRING
    sampler_default = inspect.signature(PairedBatchSampler).parameters["pairing"].default
    assert sampler_default == constants.DEFAULT_PAIRING
