"""Alignment probing on synthetic features with known structure and known mutual information."""

import json
import math

import numpy as np
import pytest

from mirror_align.align.features_io import row_keys
from mirror_align.align.probe import ProbeConfig, probe, split_by_episode
from mirror_align.align.probe_subsets import probe_subsets
from mirror_align.commands.demo import synthetic_pairs

# One torch thread in this module (tests/conftest.py says why).
pytestmark = pytest.mark.usefixtures("one_thread")


def _fast(**overrides):
    base = {"dim": 64, "eval_batch_size": 128, "max_epochs": 40, "patience": 5, "progress": False}
    base.update(overrides)
    return ProbeConfig(**base)


def test_split_is_disjoint_by_episode():
    episode = np.repeat(np.arange(50), 4)
    train, val, test = split_by_episode(episode, (0.6, 0.2, 0.2), seed=3)
    parts = [set(episode[rows]) for rows in (train, val, test)]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    assert sorted(np.concatenate([train, val, test])) == list(range(200))
    assert len(parts[2]) == 10
    again = split_by_episode(episode, (0.6, 0.2, 0.2), seed=3)
    assert all(np.array_equal(a, b) for a, b in zip((train, val, test), again, strict=True))


def test_mi_estimates_bounded_and_increasing_with_rho():
    d, n = 8, 3000
    estimates = []
    for i, rho in enumerate((0.2, 0.5, 0.8)):
        data = synthetic_pairs(n, d, rho, du=12, de=10, seed=i)
        result = probe(data.u, data.e, row_keys(n), _fast(pairing="episode"))
        ceiling = min(data.true_mi, result.log_b)
        assert result.mi_lower_bound_nats <= ceiling + 0.15, (
            rho,
            result.mi_lower_bound_nats,
            ceiling,
        )
        estimates.append(result.mi_lower_bound_nats)
    assert estimates[0] < estimates[1] < estimates[2]
    assert estimates[2] > 2.5  # true 4.09, log B 4.85: the bound is not vacuous


def test_held_out_mi_above_three_nats_for_four_true_nats():
    d = 20
    rho = math.sqrt(1.0 - math.exp(-2.0 * 4.0 / d))  # -(d/2) log(1 - rho^2) = 4 nats
    n = 8000
    data = synthetic_pairs(n, d, rho, du=32, de=24, seed=0)
    assert data.true_mi == pytest.approx(4.0)
    config = _fast(pairing="episode", tau=0.05, eval_batch_size=256, max_epochs=60)
    result = probe(data.u, data.e, row_keys(n), config)
    assert result.log_b == pytest.approx(math.log(256))
    assert result.mi_n_batches >= 5
    assert 3.0 < result.mi_lower_bound_nats <= 4.0 + 0.15


def test_recall_near_one_for_rotation_and_near_chance_for_independent():
    rng = np.random.default_rng(0)
    n, dim = 1500, 24
    u = rng.normal(size=(n, dim)).astype(np.float32)
    q, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    e = (u @ q + 0.05 * rng.normal(size=(n, dim))).astype(np.float32)
    aligned = probe(u, e, row_keys(n), _fast())
    assert aligned.recall_at_1 > 0.95
    assert aligned.recall_at_1_u2e > 0.95 and aligned.recall_at_1_e2u > 0.95
    assert aligned.cka_linear > 0.95 and aligned.mutual_knn > 0.5
    independent = probe(u, rng.normal(size=(n, 20)).astype(np.float32), row_keys(n), _fast())
    assert independent.chance == pytest.approx(1.0 / independent.n_test)
    assert independent.recall_at_1 < 5 * independent.chance
    assert independent.mi_lower_bound_nats < 0.1
    assert abs(independent.cka_unbiased) < 0.05


def test_instruction_pairing_scores_key_aware_recall():
    rng = np.random.default_rng(1)
    n_episodes, per_episode = 300, 2
    instruction = rng.integers(0, 30, n_episodes)
    centres = rng.normal(size=(30, 16))
    keys = {
        "episode_id": np.repeat(np.arange(n_episodes), per_episode),
        "instruction_id": np.repeat(instruction, per_episode),
        "task_id": np.repeat(instruction // 10, per_episode),
    }
    base = centres[keys["instruction_id"]]
    u = (base + 0.3 * rng.normal(size=base.shape)).astype(np.float32)
    e = (base @ rng.normal(size=(16, 12)) + 0.3 * rng.normal(size=(len(base), 12))).astype(
        np.float32
    )
    result = probe(u, e, keys, _fast(pairing="instruction", multi_positive=True))
    assert result.key_field == "instruction_id"
    assert result.recall_at_1 > 0.9 > result.recall_at_1_strict
    assert result.chance > result.chance_strict
    record = json.loads(result.to_json())
    for name in (
        "recall_at_1",
        "chance",
        "mi_lower_bound_nats",
        "n_train",
        "n_test",
        "pairing",
        "tau",
    ):
        assert name in record


def test_subset_probing_equal_sizes_and_ordering():
    rng = np.random.default_rng(2)
    n = 1200
    success = np.zeros(n, dtype=bool)
    success[:500] = True
    u = rng.normal(size=(n, 16)).astype(np.float32)
    noise = np.where(success[:, None], 0.2, 1.5)
    e = (u[:, :12] + noise * rng.normal(size=(n, 12))).astype(np.float32)
    result = probe_subsets(
        u,
        e,
        row_keys(n),
        {"success": success, "failure": ~success},
        _fast(max_epochs=15),
        repeats=2,
    )
    assert result.n_per_subset == 500
    assert result.subset_sizes == {"success": 500, "failure": 700}
    for run in result.runs:
        assert run["success"]["n_train"] + run["success"]["n_val"] + run["success"]["n_test"] == 500
        assert run["failure"]["n_train"] + run["failure"]["n_val"] + run["failure"]["n_test"] == 500
    s, f = result.summary["success"]["recall_at_1"], result.summary["failure"]["recall_at_1"]
    assert len(s["values"]) == 2 and s["std"] >= 0.0
    assert s["mean"] > f["mean"] + 0.2


def test_metrics_fixed_by_a_tiny_test_set_are_undefined_not_reported():
    """Issue 14.6: on 10 rows of independent features the test split has 2 rows, where mutual
    k-NN and CKA would be 1.000 for any data. The library reports them as NaN (undefined)."""
    rng = np.random.default_rng(0)
    u, e = rng.normal(size=(10, 8)), rng.normal(size=(10, 6))
    result = probe(u, e, row_keys(10), _fast(pairing="episode"))
    assert result.n_test == 2
    for name in ("mutual_knn", "mutual_knn_projected", "mutual_knn_chance", "cka_linear"):
        assert math.isnan(getattr(result, name)), name
    assert result.mutual_knn_k == 10  # k is never cut silently to fit the sample
    assert 0.0 <= result.recall_at_1 <= 1.0  # Recall@1 stays defined, beside its chance level


def test_collapsed_features_probe_without_crashing():
    """Issue 14.5: identical EE rows (collapsed training) give undefined k-NN/CKA, not a crash."""
    rng = np.random.default_rng(0)
    u = rng.normal(size=(60, 8))
    e = np.repeat(rng.normal(size=(1, 6)), 60, axis=0)
    result = probe(u, e, row_keys(60), _fast(pairing="episode", knn_k=3))
    assert result.n_test >= 5
    assert math.isnan(result.mutual_knn) and math.isnan(result.cka_linear)
    assert math.isnan(result.cka_unbiased)
