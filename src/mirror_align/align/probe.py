"""Alignment probing of frozen representations (paper Sec. 2.2, Fig. 3).

Given frozen features ``U [N, du]`` and ``E [N, de]`` (row i of each comes from the same sample) and
the per-row keys ``episode_id``, ``instruction_id``, ``task_id``:

1. split the rows into train/val/test with disjoint episodes (seeded);
2. train only the projectors ``T_u``, ``T_e`` with the alignment loss on positive pairs drawn by the
   pairing mode (fresh random partners every epoch), AdamW on mini-batches, early stopping on the
   validation mean Recall@1, restoring the best weights;
3. on the test rows report the mean bidirectional Recall@1 (and each direction), its chance level,
   the InfoNCE mutual-information lower bound ``log B - L`` in nats at a fixed evaluation batch size
   B, and the training-free metrics mutual k-NN and CKA.

Recall is scored on the test rows as they are (row i of U against all test rows of E). The headline
``recall_at_1`` is key-aware under the pairing key: a retrieved row sharing the key is a hit. Without
keys, or with one row per episode and episode pairing, this is the strict "partner itself" recall,
which is also reported as ``recall_at_1_strict``.

Mutual k-NN and CKA are NaN below ``min_test_rows`` (the sample size alone would fix them).
Settings and result: :mod:`.probe_config`; equal-size subsets (Fig. 3 right): :mod:`.probe_subsets`.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike
from tqdm import tqdm

from mirror_align.align import Aligner, alignment_loss
from mirror_align.align.metrics import (
    linear_cka,
    linear_cka_chance,
    mutual_knn,
    mutual_knn_chance,
    recall_at_k,
    unbiased_cka,
)
from mirror_align.align.pairing import (
    KEY_NAMES,
    Pairs,
    key_field,
    make_pairs,
    pairing_keys,
)
from mirror_align.align.probe_config import (
    ProbeConfig,
    ProbeResult,
    min_test_rows,
    validate_probe_config,
)
from mirror_align.align.projector import project_in_chunks
from mirror_align.errors import UserInputError


def training_free_metrics(
    u: np.ndarray, e: np.ndarray, z_u: torch.Tensor, z_e: torch.Tensor, knn_k: int, seed: int
) -> dict[str, Any]:
    """Mutual k-NN (raw ``u``, ``e`` and projected ``z_u``, ``z_e`` test rows) and CKA, with
    their chance levels; each NaN when the ``n`` test rows are fewer than :func:`min_test_rows`
    (the value would be forced by ``n``, not measured). ``k`` is never cut to fit ``n``."""
    n = u.shape[0]
    nan = float("nan")
    knn_ok = n >= min_test_rows(knn_k)
    cka_ok = n >= 4
    return {
        "mutual_knn": mutual_knn(u, e, knn_k) if knn_ok else nan,
        "mutual_knn_k": knn_k,
        "mutual_knn_chance": mutual_knn_chance(n, knn_k) if knn_ok else nan,
        "mutual_knn_projected": mutual_knn(z_u, z_e, knn_k) if knn_ok else nan,
        "cka_linear": linear_cka(u, e) if cka_ok else nan,
        "cka_linear_chance": linear_cka_chance(u, e, seed=seed) if cka_ok else nan,
        "cka_unbiased": unbiased_cka(u, e) if cka_ok else nan,
    }


def split_by_episode(
    episode_id: ArrayLike, split: tuple[float, float, float], seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices (int64, sorted) of train/val/test, with no episode in two of them.

    Episodes are shuffled with ``seed`` and cut by the ``split`` fractions; each part gets at least
    one episode, so at least 3 distinct episodes are needed.
    """
    episodes = np.asarray(episode_id)
    unique = np.unique(episodes)
    if unique.size < 3:
        raise UserInputError(
            f"probe: need at least 3 distinct episode_id values to split, got {unique.size}"
        )
    order = np.random.default_rng(seed).permutation(unique)
    fractions = np.asarray(split, dtype=np.float64) / float(sum(split))
    n_val = max(1, int(round(fractions[1] * unique.size)))
    n_test = max(1, int(round(fractions[2] * unique.size)))
    n_train = unique.size - n_val - n_test
    if n_train < 1:
        raise UserInputError(f"probe: {unique.size} episodes are too few for the split {split}")
    train, val, test = (
        np.flatnonzero(np.isin(episodes, part))
        for part in np.split(order, [n_train, n_train + n_val])
    )
    return train, val, test


def subset_keys(keys: Mapping[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    return {name: np.asarray(keys[name])[rows] for name in KEY_NAMES}


def check_probe_inputs(
    u: np.ndarray, e: np.ndarray, keys: Mapping[str, ArrayLike]
) -> dict[str, np.ndarray]:
    if u.ndim != 2 or e.ndim != 2:
        raise UserInputError(f"probe: U and E must be 2-D [N, D], got {u.shape} and {e.shape}")
    if u.shape[0] != e.shape[0]:
        raise UserInputError(f"probe: U has {u.shape[0]} rows but E has {e.shape[0]}")
    if not (np.isfinite(u).all() and np.isfinite(e).all()):
        raise UserInputError("probe: U or E contains NaN or inf")
    out = {}
    for name in KEY_NAMES:
        if name not in keys:
            raise UserInputError(
                f"probe: key array {name!r} is missing; required: {', '.join(KEY_NAMES)}"
            )
        array = np.asarray(keys[name])
        if array.shape != (u.shape[0],):
            raise UserInputError(
                f"probe: key {name} must have shape ({u.shape[0]},), got {array.shape}"
            )
        out[name] = array.astype(np.int64)
    return out


@torch.no_grad()
def mi_bound_on_pairs(
    z_u: torch.Tensor, z_e: torch.Tensor, tau: float, batch_size: int, seed: int
) -> tuple[float, int, int]:
    """Mean over shuffled full batches of ``log(B) - L_align`` (single-positive, nats).

    ``z_u``, ``z_e`` are index-aligned ``[P, D]`` pairs. Returns ``(bound, B, n_batches)``; when
    ``P < batch_size`` one batch of all P pairs is used and B = P.
    """
    n = z_u.shape[0]
    b = min(batch_size, n)
    order = torch.from_numpy(np.random.default_rng(seed).permutation(n))
    bounds = []
    for start in range(0, n - b + 1, b):
        idx = order[start : start + b]
        loss, _ = alignment_loss(z_u[idx], z_e[idx], tau, gather=False)
        bounds.append(math.log(b) - float(loss))
    return float(np.mean(bounds)), b, len(bounds)


class _Standardizer:
    def __init__(self, x: np.ndarray, *, enabled: bool) -> None:
        self.mean = x.mean(0, keepdims=True) if enabled else 0.0
        self.std = (x.std(0, keepdims=True) + 1e-6) if enabled else 1.0

    def __call__(self, x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(((x - self.mean) / self.std).astype(np.float32))


@dataclass
class FittedProbe:
    """A trained probe: its test-row result, the projectors and the train-row standardisers."""

    result: ProbeResult
    aligner: Aligner  # T_u, T_e at the best validation epoch, in eval mode
    scale_u: _Standardizer  # raw u -> standardised float32 tensor (train-row mean/std)
    scale_e: _Standardizer

    @torch.no_grad()
    def project(self, u: ArrayLike, e: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """``z_u [N, dim]``, ``z_e [M, dim]`` (float32) of raw features ``u [N, du]``, ``e [M, de]``."""
        self.aligner.eval()
        z_u = project_in_chunks(self.aligner.project_u, self.scale_u(np.asarray(u, np.float32)))
        z_e = project_in_chunks(self.aligner.project_e, self.scale_e(np.asarray(e, np.float32)))
        return z_u.numpy(), z_e.numpy()


def probe(
    u: ArrayLike,
    e: ArrayLike,
    keys: Mapping[str, ArrayLike],
    config: ProbeConfig | None = None,
) -> ProbeResult:
    """Train a probe on frozen ``u [N, du]``, ``e [N, de]`` with ``keys`` and score it on test rows.

    ``keys`` maps ``episode_id``, ``instruction_id``, ``task_id`` to integer arrays ``[N]``.
    """
    return fit_probe(u, e, keys, config).result


@dataclass
class _Rows:
    """The probe's inputs, split by episode: standardised float32 tensors, keys and fixed pairs
    of each part ("train", "val", "test")."""

    index: dict[str, np.ndarray]  # part -> row indices into u, e
    u: dict[str, torch.Tensor]
    e: dict[str, torch.Tensor]
    keys: dict[str, dict[str, np.ndarray]]  # part -> key arrays of its rows
    pair_keys: dict[str, np.ndarray]  # part -> each row's pairing key
    eval_pairs: dict[str, Pairs]  # "val", "test" -> fixed evaluation pairs


def _split_rows(
    u: np.ndarray,
    e: np.ndarray,
    keys: dict[str, np.ndarray],
    config: ProbeConfig,
    scale_u: _Standardizer,
    scale_e: _Standardizer,
) -> _Rows:
    train, val, test = split_by_episode(keys["episode_id"], config.split, config.seed)
    index = {"train": train, "val": val, "test": test}
    part_keys = {name: subset_keys(keys, rows) for name, rows in index.items()}
    return _Rows(
        index=index,
        u={name: scale_u(u[rows]) for name, rows in index.items()},
        e={name: scale_e(e[rows]) for name, rows in index.items()},
        keys=part_keys,
        pair_keys={name: pairing_keys(part_keys[name], config.pairing) for name in part_keys},
        # Fixed evaluation pairs (the same pool on both sides, so every row has a partner).
        eval_pairs={
            name: make_pairs(part_keys[name], mode=config.pairing, rng=config.seed + 1 + i)
            for i, name in enumerate(("val", "test"))
        },
    )


def _project(aligner: Aligner, rows: _Rows, part: str) -> tuple[torch.Tensor, torch.Tensor]:
    aligner.eval()
    z_u = project_in_chunks(aligner.project_u, rows.u[part])
    z_e = project_in_chunks(aligner.project_e, rows.e[part])
    return z_u, z_e


def _score_val(aligner: Aligner, rows: _Rows, config: ProbeConfig) -> tuple[float, float]:
    """Validation (key-aware mean Recall@1, MI bound in nats): the early-stopping criterion."""
    z_u, z_e = _project(aligner, rows, "val")
    recall = recall_at_k(z_u, z_e, (1,), keys=rows.pair_keys["val"])[1].key_mean
    pairs = rows.eval_pairs["val"]
    tau = float(aligner.criterion.tau.detach())
    bound, _, _ = mi_bound_on_pairs(
        z_u[pairs.query_index], z_e[pairs.candidate_index], tau, config.eval_batch_size, config.seed
    )
    return float(recall), bound


def _train_probe(
    aligner: Aligner, rows: _Rows, config: ProbeConfig, rng: np.random.Generator
) -> tuple[tuple[float, float], int, int]:
    """AdamW epochs over fresh random pairs of the train rows, early-stopped on the validation
    score; the aligner ends with the best epoch's weights. Returns (best score, its epoch, epochs)."""
    optimizer = torch.optim.AdamW(
        aligner.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    batch = min(config.batch_size, rows.index["train"].size)
    best = (-1.0, -math.inf)
    best_state = copy.deepcopy(aligner.state_dict())
    best_epoch, since_best, epochs_run = 0, 0, 0
    bar = tqdm(
        range(1, config.max_epochs + 1), desc="probe", unit="epoch", disable=not config.progress
    )
    for epoch in bar:
        aligner.train()
        pairs = make_pairs(rows.keys["train"], mode=config.pairing, rng=rng)
        order = rng.permutation(len(pairs))
        for start in range(0, len(order) - batch + 1, batch):
            idx = order[start : start + batch]
            a, b = pairs.query_index[idx], pairs.candidate_index[idx]
            batch_keys = torch.from_numpy(pairs.keys[idx]) if config.multi_positive else None
            out = aligner(rows.u["train"][a], rows.e["train"][b], keys=batch_keys)
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            optimizer.step()
        epochs_run = epoch
        score = _score_val(aligner, rows, config)
        if score[0] > best[0] or (
            score[0] == best[0] and score[1] > best[1] + config.min_delta_nats
        ):
            best, best_epoch, since_best = score, epoch, 0
            best_state = copy.deepcopy(aligner.state_dict())
        else:
            since_best += 1
        bar.set_postfix(val_r1=f"{score[0]:.3f}", val_mi=f"{score[1]:.2f}", best=best_epoch)
        if since_best >= config.patience:
            break
    bar.close()
    aligner.load_state_dict(best_state)
    return best, best_epoch, epochs_run


def _test_result(
    aligner: Aligner,
    rows: _Rows,
    u: np.ndarray,
    e: np.ndarray,
    config: ProbeConfig,
    trained: tuple[tuple[float, float], int, int],
) -> dict[str, Any]:
    """The :class:`ProbeResult` fields measured on the test rows (all but timing and sizes)."""
    z_u, z_e = _project(aligner, rows, "test")
    tau = float(aligner.criterion.tau.detach())
    recalls = recall_at_k(
        z_u,
        z_e,
        tuple(config.recall_ks) + (1,),
        keys=rows.pair_keys["test"],
        progress=config.progress,
    )
    r1 = recalls[1]
    pairs = rows.eval_pairs["test"]
    bound, b, n_batches = mi_bound_on_pairs(
        z_u[pairs.query_index], z_e[pairs.candidate_index], tau, config.eval_batch_size, config.seed
    )
    test = rows.index["test"]
    best, best_epoch, epochs_run = trained
    return dict(
        recall_at_1=float(r1.key_mean),
        recall_at_1_u2e=float(r1.key_u2e),
        recall_at_1_e2u=float(r1.key_e2u),
        chance=float(r1.key_chance),
        recall_at_1_strict=r1.mean,
        recall_at_1_strict_u2e=r1.u2e,
        recall_at_1_strict_e2u=r1.e2u,
        chance_strict=r1.chance,
        recall_at_k={str(kk): r.to_dict() for kk, r in recalls.items()},
        mi_lower_bound_nats=bound,
        mi_eval_batch_size=b,
        log_b=math.log(b),
        mi_n_batches=n_batches,
        val_recall_at_1=float(best[0]),
        best_epoch=best_epoch,
        epochs_run=epochs_run,
        **training_free_metrics(u[test], e[test], z_u, z_e, config.knn_k, config.seed),
        tau=tau,
    )


def fit_probe(
    u: ArrayLike,
    e: ArrayLike,
    keys: Mapping[str, ArrayLike],
    config: ProbeConfig | None = None,
) -> FittedProbe:
    """:func:`probe`, also returning the fitted projectors and standardisers (e.g. to project
    other rows into the probe's shared space, as the t-SNE of paper Fig. 6 does)."""
    config = config or ProbeConfig()
    validate_probe_config(config)
    started = time.perf_counter()
    u = np.asarray(u, dtype=np.float32)
    e = np.asarray(e, dtype=np.float32)
    checked = check_probe_inputs(u, e, keys)
    train, _, _ = split_by_episode(checked["episode_id"], config.split, config.seed)
    if train.size < 2:
        raise UserInputError(f"probe: only {train.size} training row(s); need at least 2")
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    scale_u = _Standardizer(u[train], enabled=config.standardize)
    scale_e = _Standardizer(e[train], enabled=config.standardize)
    rows = _split_rows(u, e, checked, config, scale_u, scale_e)
    aligner = Aligner(
        u.shape[1],
        e.shape[1],
        dim=config.dim,
        projector=config.projector,
        tau=config.tau,
        learnable_tau=config.learnable_tau,
        multi_positive=config.multi_positive,
        gather=False,
    )
    trained = _train_probe(aligner, rows, config, rng)
    measured = _test_result(aligner, rows, u, e, config, trained)
    result = ProbeResult(
        **measured,
        n_train=int(train.size),
        n_val=int(rows.index["val"].size),
        n_test=int(rows.index["test"].size),
        n_train_episodes=int(np.unique(rows.keys["train"]["episode_id"]).size),
        n_test_episodes=int(np.unique(rows.keys["test"]["episode_id"]).size),
        pairing=config.pairing,
        key_field=key_field(config.pairing),
        du=int(u.shape[1]),
        de=int(e.shape[1]),
        seconds=time.perf_counter() - started,
        config=asdict(config),
    )
    aligner.eval()
    return FittedProbe(result, aligner, scale_u, scale_e)
