"""Recall@k against brute force, chunking, chance levels, mutual k-NN and CKA."""

import math

import numpy as np
import pytest

from mirror_align.align.metrics import (
    key_aware_chance,
    linear_cka,
    mutual_knn,
    recall_at_k,
    unbiased_cka,
)
from mirror_align.errors import UserInputError


def _brute_force_recall(u, e, k, keys=None):
    """Full similarity matrix, argsort, explicit loops."""
    un = u / np.linalg.norm(u, axis=1, keepdims=True)
    en = e / np.linalg.norm(e, axis=1, keepdims=True)
    sims = un @ en.T
    hits = {"u2e": 0, "e2u": 0}
    for name, matrix in (("u2e", sims), ("e2u", sims.T)):
        for i in range(matrix.shape[0]):
            top = np.argsort(-matrix[i])[:k]
            if keys is None:
                hits[name] += int(i in top)
            else:
                hits[name] += int(any(keys[j] == keys[i] for j in top))
    n = u.shape[0]
    return hits["u2e"] / n, hits["e2u"] / n


@pytest.fixture
def paired():
    rng = np.random.default_rng(0)
    u = rng.normal(size=(150, 12))
    e = u @ rng.normal(size=(12, 12)) * 0.3 + rng.normal(size=(150, 12))
    keys = rng.integers(0, 20, 150)
    return u, e, keys


@pytest.mark.parametrize("k", [1, 3, 10])
def test_recall_matches_brute_force(paired, k):
    u, e, keys = paired
    got = recall_at_k(u, e, (k,), keys=keys, chunk_size=16)[k]
    assert (got.u2e, got.e2u) == pytest.approx(_brute_force_recall(u, e, k))
    assert (got.key_u2e, got.key_e2u) == pytest.approx(_brute_force_recall(u, e, k, keys))
    assert got.mean == pytest.approx(0.5 * (got.u2e + got.e2u))
    assert got.key_mean >= got.mean
    assert got.chance == pytest.approx(k / 150)


def test_chunked_equals_unchunked(paired):
    u, e, keys = paired
    full = recall_at_k(u, e, (1, 5, 10), keys=keys, chunk_size=10_000)
    for chunk in (1, 7, 64):
        chunked = recall_at_k(u, e, (1, 5, 10), keys=keys, chunk_size=chunk)
        assert {k: r.to_dict() for k, r in chunked.items()} == {
            k: r.to_dict() for k, r in full.items()
        }


def test_key_aware_chance_matches_simulation():
    rng = np.random.default_rng(1)
    keys = rng.integers(0, 7, 60)
    k = 3
    hits = []
    for _ in range(4000):
        i = rng.integers(60)
        picked = rng.choice(60, size=k, replace=False)
        hits.append(np.any(keys[picked] == keys[i]))
    assert key_aware_chance(keys, keys, k) == pytest.approx(np.mean(hits), abs=0.025)
    # Unique keys: only the partner itself matches, so the chance is k / N.
    assert key_aware_chance(np.arange(50), np.arange(50), 4) == pytest.approx(4 / 50)


def test_perfect_and_random_retrieval():
    rng = np.random.default_rng(2)
    u = rng.normal(size=(400, 32))
    assert recall_at_k(u, u * 3.0, (1,))[1].mean == 1.0
    r = recall_at_k(u, rng.normal(size=(400, 32)), (10,))[10]
    assert r.mean < 0.1  # chance is 0.025


def test_mutual_knn_identical_and_independent():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 16))
    q, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    assert mutual_knn(x, x @ q, k=10, chunk_size=32) == 1.0
    assert mutual_knn(x, rng.normal(size=(300, 24)), k=10) < 0.1  # chance is 10/299


def test_cka_rotation_invariant_and_independent():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(500, 20)) @ rng.normal(size=(20, 20))
    q, _ = np.linalg.qr(rng.normal(size=(20, 20)))
    assert linear_cka(x, 2.5 * x @ q) == pytest.approx(1.0, abs=1e-9)
    assert unbiased_cka(x, 2.5 * x @ q) == pytest.approx(1.0, abs=1e-9)
    y = rng.normal(size=(500, 30))
    assert abs(unbiased_cka(x, y)) < 0.03
    assert linear_cka(x, y) < 0.1


def test_unbiased_cka_matches_gram_formula():
    """Song et al.'s estimator written directly on N x N Gram matrices."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(40, 6)) + 3.0
    y = x[:, :4] + rng.normal(size=(40, 4))
    n = 40

    def hsic(a, b):
        k, m = a @ a.T, b @ b.T
        np.fill_diagonal(k, 0.0)
        np.fill_diagonal(m, 0.0)
        one = np.ones(n)
        return (
            np.trace(k @ m)
            + (one @ k @ one) * (one @ m @ one) / ((n - 1) * (n - 2))
            - 2.0 / (n - 2) * (one @ k @ m @ one)
        ) / (n * (n - 3))

    expected = hsic(x, y) / math.sqrt(hsic(x, x) * hsic(y, y))
    assert unbiased_cka(x, y) == pytest.approx(expected, rel=1e-9)


def test_unbiased_cka_removes_small_sample_bias():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(60, 200)), rng.normal(size=(60, 200))
    assert linear_cka(x, y) > 0.5  # biased: dims far above N
    assert abs(unbiased_cka(x, y)) < 0.1


def test_collapsed_representations_are_undefined_not_scored():
    """Issue 14.5: identical rows (or rows of one direction) give NaN, never a forced 0 or 1."""
    from mirror_align.align.metrics import (
        CollapsedError,
        check_not_collapsed,
        is_collapsed,
        linear_cka_chance,
    )

    rng = np.random.default_rng(0)
    fine = rng.normal(size=(30, 8))
    same = np.repeat(rng.normal(size=(1, 8)), 30, axis=0)
    scaled = same * rng.uniform(1, 3, size=(30, 1))  # one direction, different lengths
    assert not is_collapsed(scaled)
    assert is_collapsed(scaled / np.linalg.norm(scaled, axis=1, keepdims=True))
    for collapsed in (same, np.zeros((30, 8)), scaled):
        assert np.isnan(mutual_knn(fine, collapsed, k=5))  # every cosine neighbour is a tie
    for collapsed in (same, np.zeros((30, 8))):
        assert is_collapsed(collapsed)
        assert np.isnan(linear_cka(fine, collapsed)) and np.isnan(unbiased_cka(collapsed, fine))
        assert np.isnan(linear_cka_chance(fine, collapsed))
        with pytest.raises(CollapsedError, match="representations collapsed: 30 identical rows"):
            check_not_collapsed(collapsed, "t-SNE")
    assert not is_collapsed(fine) and not is_collapsed(same[:1])
    check_not_collapsed(fine, "t-SNE")
    assert 0.0 <= mutual_knn(fine, fine @ rng.normal(size=(8, 8)), k=5) <= 1.0


def test_mutual_knn_chance_and_cka_chance_levels():
    from mirror_align.align.metrics import linear_cka_chance, mutual_knn_chance

    assert mutual_knn_chance(11, 5) == 0.5
    with pytest.raises(UserInputError, match="k must be in"):
        mutual_knn_chance(4, 4)
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(12, 40)), rng.normal(size=(12, 40))
    # Few rows, many dims: unrelated data already has a high linear CKA; the chance level says so.
    assert linear_cka(x, y) > 0.5 and linear_cka_chance(x, y) > 0.5
    assert linear_cka_chance(x, y, seed=3) == linear_cka_chance(x, y, seed=3)
