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

:func:`probe_subsets` compares subsets (e.g. success vs failure, Fig. 3 right) at equal sample sizes.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
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
    check_mode,
    key_field,
    make_pairs,
    pairing_keys,
)
from mirror_align.align.projector import project_in_chunks
from mirror_align.atomic import write_json_atomic
from mirror_align.errors import UserInputError


@dataclass
class ProbeConfig:
    """How a probe is trained and scored."""

    # Which key makes two rows a positive pair: "episode", "instruction" (paper default) or "class".
    pairing: str = "instruction"
    # Dimension of the shared space Z (the paper uses 1024).
    dim: int = 1024
    # T_u / T_e architecture: "linear" (the paper) or "mlp" (tests "linear sufficiency").
    projector: str = "linear"
    # InfoNCE temperature; the start value when learnable_tau is set.
    tau: float = 0.1
    # Learn tau (clamped to [0.01, 1] by the loss) instead of keeping it fixed.
    learnable_tau: bool = False
    # Train with the multi-positive loss (every pair sharing the key is a positive). The MI bound is
    # always scored with the single-positive loss of paper Eq. 2, which is what the bound is about.
    multi_positive: bool = False
    # Fractions of episodes for train / val / test; they are normalised to sum to 1.
    split: tuple[float, float, float] = (0.6, 0.2, 0.2)
    # Training mini-batch size (pairs per step).
    batch_size: int = 256
    # B of the MI bound log(B) - L, fixed so that values compare; the bound saturates at log(B).
    eval_batch_size: int = 256
    # AdamW learning rate.
    lr: float = 3e-3
    # AdamW weight decay.
    weight_decay: float = 1e-4
    # Upper limit on training epochs (passes over the train pairs).
    max_epochs: int = 100
    # Stop after this many epochs without a better validation Recall@1. At equal recall (e.g. once it
    # saturates at 1) a validation MI bound higher by more than min_delta_nats also counts as better.
    patience: int = 6
    # The smallest validation MI gain (nats) that counts as progress when the recall ties.
    min_delta_nats: float = 0.01
    # Standardise each feature with the train rows' mean and std before projecting.
    standardize: bool = True
    # k of the mutual k-NN metric.
    knn_k: int = 10
    # The k values of the reported Recall@k table.
    recall_ks: tuple[int, ...] = (1, 5, 10)
    # Seed for the split, the pairs, the initialisation and the batch order.
    seed: int = 0
    # Show tqdm progress bars on stderr.
    progress: bool = True


@dataclass
class ProbeResult:
    """What a probe measured on the held-out test rows. Recalls are fractions; MI is in nats."""

    recall_at_1: float  # mean of the two directions, key-aware under the pairing key
    recall_at_1_u2e: float
    recall_at_1_e2u: float
    chance: float  # expected recall_at_1 of a random ranking, from the key frequencies
    recall_at_1_strict: float  # the partner row itself must be retrieved
    recall_at_1_strict_u2e: float
    recall_at_1_strict_e2u: float
    chance_strict: float  # 1 / n_test
    recall_at_k: dict[str, dict]  # "k" -> all RecallAtK fields
    mi_lower_bound_nats: float  # mean over test batches of log(B) - L_align (single-positive)
    mi_eval_batch_size: int  # the B used (n_test pairs if fewer than eval_batch_size)
    log_b: float  # log(B): the ceiling of the bound
    mi_n_batches: int
    val_recall_at_1: float  # best validation recall (the early-stopping criterion)
    best_epoch: int
    epochs_run: int
    n_train: int  # rows
    n_val: int
    n_test: int
    n_train_episodes: int
    n_test_episodes: int
    # The training-free metrics are NaN (undefined) when the test rows are too few for them to
    # mean anything (n_test < min_test_rows(knn_k)) or when a side collapsed (align.metrics).
    mutual_knn: float  # on the raw (unstandardised) test features
    mutual_knn_k: int
    mutual_knn_chance: float  # k / (n_test - 1): unrelated representations
    mutual_knn_projected: float  # the same on the test projections z_u, z_e
    cka_linear: float  # on the raw test features
    cka_linear_chance: float  # linear CKA of row-shuffled (unrelated) test features
    cka_unbiased: float  # its chance level is 0
    pairing: str
    key_field: str
    tau: float  # the temperature at the end (differs from config.tau only when learnable)
    du: int
    de: int
    seconds: float
    config: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return asdict(self)

    def to_json(self) -> str:
        """Indented JSON text."""
        return json.dumps(self.to_dict(), indent=2)

    def save(self, path: str | Path) -> None:
        """Write the JSON atomically."""
        write_json_atomic(path, self.to_dict())


def min_test_rows(knn_k: int) -> int:
    """The fewest test rows at which mutual k-NN and CKA are not fixed by the sample size.

    Mutual k-NN needs k <= n - 2: at k = n - 1 every row's neighbours are all the other rows, so
    it is 1 whatever the data. Linear CKA is exactly 1 at n = 2 and unbiased CKA needs n >= 4.
    """
    return max(4, knn_k + 2)


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


def _validate(config: ProbeConfig) -> None:
    check_mode(config.pairing)
    if len(config.split) != 3 or min(config.split) <= 0:
        raise UserInputError(f"probe: split must be three positive fractions, got {config.split}")
    for name in ("dim", "batch_size", "eval_batch_size", "max_epochs", "knn_k"):
        if getattr(config, name) < 1:
            raise UserInputError(f"probe: {name} must be >= 1, got {getattr(config, name)}")
    if config.batch_size < 2 or config.eval_batch_size < 2:
        raise UserInputError(
            "probe: batch_size and eval_batch_size must be >= 2 (InfoNCE needs negatives)"
        )
    if config.patience < 1:
        raise UserInputError(f"probe: patience must be >= 1, got {config.patience}")


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


def _subset_keys(keys: Mapping[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    return {name: np.asarray(keys[name])[rows] for name in KEY_NAMES}


def _check_inputs(
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
    def __init__(self, x: np.ndarray, enabled: bool) -> None:
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


def fit_probe(
    u: ArrayLike,
    e: ArrayLike,
    keys: Mapping[str, ArrayLike],
    config: ProbeConfig | None = None,
) -> FittedProbe:
    """:func:`probe`, also returning the fitted projectors and standardisers (e.g. to project
    other rows into the probe's shared space, as the t-SNE of paper Fig. 6 does)."""
    config = config or ProbeConfig()
    _validate(config)
    started = time.perf_counter()
    u = np.asarray(u, dtype=np.float32)
    e = np.asarray(e, dtype=np.float32)
    keys = _check_inputs(u, e, keys)
    field_name = key_field(config.pairing)
    train, val, test = split_by_episode(keys["episode_id"], config.split, config.seed)
    if train.size < 2:
        raise UserInputError(f"probe: only {train.size} training row(s); need at least 2")
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)

    scale_u = _Standardizer(u[train], config.standardize)
    scale_e = _Standardizer(e[train], config.standardize)
    u_t = {
        name: scale_u(u[rows]) for name, rows in (("train", train), ("val", val), ("test", test))
    }
    e_t = {
        name: scale_e(e[rows]) for name, rows in (("train", train), ("val", val), ("test", test))
    }
    split_keys = {
        name: _subset_keys(keys, rows)
        for name, rows in (("train", train), ("val", val), ("test", test))
    }
    pair_keys = {name: pairing_keys(split_keys[name], config.pairing) for name in split_keys}
    # Fixed evaluation pairs (the same pool on both sides, so every row has a partner).
    eval_pairs: dict[str, Pairs] = {
        name: make_pairs(split_keys[name], mode=config.pairing, rng=config.seed + 1 + i)
        for i, name in enumerate(("val", "test"))
    }

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
    optimizer = torch.optim.AdamW(
        aligner.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )

    def project(name: str) -> tuple[torch.Tensor, torch.Tensor]:
        aligner.eval()
        return project_in_chunks(aligner.project_u, u_t[name]), project_in_chunks(
            aligner.project_e, e_t[name]
        )

    def score_val() -> tuple[float, float]:
        z_u, z_e = project("val")
        recall = recall_at_k(z_u, z_e, (1,), keys=pair_keys["val"])[1].key_mean
        pairs = eval_pairs["val"]
        tau = float(aligner.criterion.tau.detach())
        bound, _, _ = mi_bound_on_pairs(
            z_u[pairs.au_index], z_e[pairs.ee_index], tau, config.eval_batch_size, config.seed
        )
        return float(recall), bound

    n_train = train.size
    batch = min(config.batch_size, n_train)
    best = (-1.0, -math.inf)
    best_state = copy.deepcopy(aligner.state_dict())
    best_epoch, since_best, epochs_run = 0, 0, 0
    bar = tqdm(
        range(1, config.max_epochs + 1), desc="probe", unit="epoch", disable=not config.progress
    )
    for epoch in bar:
        aligner.train()
        pairs = make_pairs(split_keys["train"], mode=config.pairing, rng=rng)
        order = rng.permutation(len(pairs))
        for start in range(0, len(order) - batch + 1, batch):
            idx = order[start : start + batch]
            a, b = pairs.au_index[idx], pairs.ee_index[idx]
            batch_keys = torch.from_numpy(pairs.keys[idx]) if config.multi_positive else None
            out = aligner(u_t["train"][a], e_t["train"][b], keys=batch_keys)
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            optimizer.step()
        epochs_run = epoch
        score = score_val()
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

    z_u, z_e = project("test")
    tau = float(aligner.criterion.tau.detach())
    recalls = recall_at_k(
        z_u, z_e, tuple(config.recall_ks) + (1,), keys=pair_keys["test"], progress=config.progress
    )
    r1 = recalls[1]
    pairs = eval_pairs["test"]
    bound, b, n_batches = mi_bound_on_pairs(
        z_u[pairs.au_index], z_e[pairs.ee_index], tau, config.eval_batch_size, config.seed
    )
    result = ProbeResult(
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
        n_train=int(train.size),
        n_val=int(val.size),
        n_test=int(test.size),
        n_train_episodes=int(np.unique(split_keys["train"]["episode_id"]).size),
        n_test_episodes=int(np.unique(split_keys["test"]["episode_id"]).size),
        **training_free_metrics(u[test], e[test], z_u, z_e, config.knn_k, config.seed),
        pairing=config.pairing,
        key_field=field_name,
        tau=tau,
        du=int(u.shape[1]),
        de=int(e.shape[1]),
        seconds=time.perf_counter() - started,
        config=asdict(config),
    )
    aligner.eval()
    return FittedProbe(result, aligner, scale_u, scale_e)


@dataclass
class SubsetProbeResult:
    """Probing of several subsets at one sample size, over repeated random subsamples.

    ``summary[subset][metric]`` holds ``mean``, ``std`` (over repeats, ddof=0) and ``values``.
    """

    n_per_subset: int
    repeats: int
    subset_sizes: dict[str, int]
    summary: dict[str, dict[str, dict]]
    runs: list[dict[str, dict]]

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return asdict(self)

    def save(self, path: str | Path) -> None:
        """Write the JSON atomically."""
        write_json_atomic(path, self.to_dict())


SUBSET_METRICS = ("recall_at_1", "chance", "mi_lower_bound_nats", "mutual_knn", "cka_linear")


def probe_subsets(
    u: ArrayLike,
    e: ArrayLike,
    keys: Mapping[str, ArrayLike],
    subsets: Mapping[str, ArrayLike],
    config: ProbeConfig | None = None,
    repeats: int = 5,
) -> SubsetProbeResult:
    """Probe each subset (a boolean mask ``[N]``) at the size of the smallest one (paper Fig. 3 right).

    In every repeat r, each larger subset is subsampled without replacement to that size (seed
    ``config.seed + r``) and a separate probe is trained on it with seed ``config.seed + r``.
    """
    config = config or ProbeConfig()
    u = np.asarray(u, dtype=np.float32)
    e = np.asarray(e, dtype=np.float32)
    keys = _check_inputs(u, e, keys)
    if len(subsets) < 1 or repeats < 1:
        raise UserInputError("probe_subsets: need at least one subset and one repeat")
    rows: dict[str, np.ndarray] = {}
    for name, mask in subsets.items():
        mask = np.asarray(mask)
        if mask.shape != (u.shape[0],) or mask.dtype != np.bool_:
            raise UserInputError(
                f"probe_subsets: subset {name!r} must be a boolean mask of shape ({u.shape[0]},)"
            )
        rows[name] = np.flatnonzero(mask)
    n = min(r.size for r in rows.values())
    if n < 8:
        raise UserInputError(f"probe_subsets: the smallest subset has {n} rows; need at least 8")
    runs: list[dict[str, dict]] = []
    for r in tqdm(range(repeats), desc="subsets", unit="repeat", disable=not config.progress):
        rng = np.random.default_rng(config.seed + r)
        run = {}
        for name, candidates in rows.items():
            pick = np.sort(rng.choice(candidates, size=n, replace=False))
            sub_config = replace(config, seed=config.seed + r, progress=False)
            run[name] = probe(u[pick], e[pick], _subset_keys(keys, pick), sub_config).to_dict()
        runs.append(run)
    summary = {}
    for name in rows:
        summary[name] = {}
        for metric in SUBSET_METRICS:
            values = [float(run[name][metric]) for run in runs]
            summary[name][metric] = {
                "mean": float(np.mean(values)),
                "std": float(np.std(values)),
                "values": values,
            }
    return SubsetProbeResult(
        n_per_subset=int(n),
        repeats=repeats,
        subset_sizes={name: int(r.size) for name, r in rows.items()},
        summary=summary,
        runs=runs,
    )
