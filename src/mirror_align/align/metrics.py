"""Alignment metrics between index-aligned representations ``U [N, du]`` and ``E [N, de]``.

* Recall@k in both directions (u->e: a u row queries all e rows; e->u the reverse), strict (the
  partner row itself is retrieved) and key-aware (any retrieved row sharing the pairing key counts),
  with the chance level of each. Similarities are cosine similarities.
* Mutual k-NN: the mean over rows of ``|kNN_U(i) & kNN_E(i)| / k`` (neighbours within each space).
* Linear CKA and unbiased CKA (Kornblith et al. 2019; unbiased HSIC of Song et al. 2012).

Collapsed representations (every row the same, or the same direction for the cosine metrics: a
known failure of contrastive training) make these numbers undefined, not 0 or 1: mutual k-NN and
CKA return NaN for them, and :func:`check_not_collapsed` lets callers refuse them before handing
them to native code that cannot take them (scikit-learn's t-SNE segfaults on identical rows).

Retrieval and k-NN work on chunks of query rows, so the ``N x N`` similarity matrix never exists:
memory is ``chunk x N`` floats plus ``k x N`` running top-k indices. One pass over the chunks gives
both directions: the row-wise top-k of a chunk serves u->e, and a running column-wise top-k, merged
chunk by chunk, serves e->u. CKA uses the feature-space forms (``D x D`` Gram matrices), which are
exact for linear kernels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike
from tqdm import tqdm

from mirror_align.errors import UserInputError

# Similarity entries per chunk: 2**25 float32 values are 128 MiB.
DEFAULT_MAX_CHUNK_ELEMENTS = 2**25
# Rows that agree to this fraction of the largest |value| count as identical. float32 features
# carry about 7 significant digits, so rows closer than this differ by rounding, not by content.
COLLAPSE_RTOL = 1e-6


class CollapsedError(UserInputError):
    """Every row of a representation is the same: there is nothing to embed, rank or compare."""


def is_collapsed(x: ArrayLike | torch.Tensor, rtol: float = COLLAPSE_RTOL) -> bool:
    """Whether every row of ``x [N, D]`` equals the column mean to within ``rtol`` times the
    largest ``|x|`` (an all-zero array counts as collapsed; fewer than 2 rows never does)."""
    array = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    array = array.astype(np.float64)
    if array.ndim != 2 or array.shape[0] < 2:
        return False
    spread = float(np.abs(array - array.mean(axis=0, keepdims=True)).max(initial=0.0))
    return spread <= rtol * float(np.abs(array).max(initial=0.0))


def check_not_collapsed(x: ArrayLike | torch.Tensor, what: str) -> None:
    """Raise :class:`CollapsedError` (one line, naming ``what``) when ``x [N, D]`` is collapsed."""
    if is_collapsed(x):
        n = int(np.shape(x)[0])
        raise CollapsedError(
            f"{what}: representations collapsed: {n} identical rows (zero variance); "
            "nothing to embed (was training stuck, e.g. a too high learning rate?)"
        )


@dataclass
class RecallAtK:
    """Recall@k (fractions in [0, 1]) of bidirectional retrieval for one k.

    ``u2e``/``e2u``/``mean`` are strict (the partner row), with ``chance = k / N``. The ``key_*``
    fields count any retrieved row sharing the pairing key; ``key_chance`` is the expected key-aware
    recall of a random ranking, computed from the key frequencies. They are None without keys.
    """

    k: int
    u2e: float
    e2u: float
    mean: float
    chance: float
    key_u2e: float | None = None
    key_e2u: float | None = None
    key_mean: float | None = None
    key_chance: float | None = None

    def to_dict(self) -> dict:
        """A JSON-ready dict of the fields."""
        return asdict(self)


def _as_tensor(x: ArrayLike | torch.Tensor, name: str) -> torch.Tensor:
    tensor = x.detach() if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
    if tensor.ndim != 2:
        raise UserInputError(
            f"{name}: expected a 2-D [N, D] array, got shape {tuple(tensor.shape)}"
        )
    return tensor.to(torch.float32)


def _check_pair(u: torch.Tensor, e: torch.Tensor) -> int:
    if u.shape[0] != e.shape[0]:
        raise UserInputError(
            f"metrics: U has {u.shape[0]} rows but E has {e.shape[0]}; they must be index-aligned"
        )
    return int(u.shape[0])


def chunk_rows(n_columns: int, max_elements: int = DEFAULT_MAX_CHUNK_ELEMENTS) -> int:
    """How many query rows fit in one chunk when each row has ``n_columns`` similarities."""
    return max(1, max_elements // max(1, n_columns))


def topk_both_directions(
    z_u: ArrayLike | torch.Tensor,
    z_e: ArrayLike | torch.Tensor,
    k: int,
    chunk_size: int | None = None,
    *,
    progress: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k cosine neighbours in both directions without an ``N x N`` matrix.

    Returns ``(idx_u2e, idx_e2u)``, int64 ``[N, k]`` each, best first: ``idx_u2e[i]`` are the e rows
    nearest to u row i, ``idx_e2u[j]`` the u rows nearest to e row j. ``chunk_size`` rows of u are
    compared with all of e at a time (default: about 128 MiB of similarities).
    """
    u = F.normalize(_as_tensor(z_u, "U"), dim=1)
    e = F.normalize(_as_tensor(z_e, "E"), dim=1)
    n = _check_pair(u, e)
    if u.shape[1] != e.shape[1]:
        raise UserInputError(
            f"recall: U and E must live in one space (equal dims) to compare them, got {u.shape[1]} and {e.shape[1]}"
        )
    if not 1 <= k <= n:
        raise UserInputError(f"recall: k must be in [1, N={n}], got {k}")
    chunk = chunk_size or chunk_rows(n)
    idx_u2e = torch.empty((n, k), dtype=torch.int64)
    best_val = torch.full((k, n), -torch.inf)
    best_idx = torch.zeros((k, n), dtype=torch.int64)
    starts = range(0, n, chunk)
    for start in tqdm(starts, desc="retrieval", unit="chunk", disable=not progress, leave=False):
        sims = u[start : start + chunk] @ e.T  # [c, N]
        idx_u2e[start : start + sims.shape[0]] = sims.topk(k, dim=1).indices
        # Column-wise: keep, for every e row, the k best u rows seen so far.
        kc = min(k, sims.shape[0])
        col_val, col_idx = sims.topk(kc, dim=0)
        merged_val = torch.cat([best_val, col_val], dim=0)
        merged_idx = torch.cat([best_idx, col_idx + start], dim=0)
        best_val, pick = merged_val.topk(k, dim=0)
        best_idx = merged_idx.gather(0, pick)
    return idx_u2e, best_idx.T.contiguous()


def key_aware_chance(query_keys: ArrayLike, gallery_keys: ArrayLike, k: int) -> float:
    """Expected key-aware Recall@k of a uniformly random ranking.

    A query with key c hits when at least one of k distinct random gallery rows has key c:
    ``1 - C(N - n_c, k) / C(N, k)`` with ``n_c`` the gallery count of c; averaged over queries.
    """
    query = np.asarray(query_keys)
    gallery = np.asarray(gallery_keys)
    n = gallery.shape[0]
    values, counts = np.unique(gallery, return_counts=True)
    slot = np.clip(np.searchsorted(values, query), 0, max(values.size - 1, 0))
    n_c = np.where(values[slot] == query, counts[slot], 0).astype(np.float64)
    miss = np.ones_like(n_c)
    for j in range(k):
        miss *= np.clip((n - n_c - j) / (n - j), 0.0, None)
    return float(np.mean(1.0 - miss))


def recall_at_k(
    z_u: ArrayLike | torch.Tensor,
    z_e: ArrayLike | torch.Tensor,
    ks: tuple[int, ...] | list[int] = (1, 5, 10),
    keys: ArrayLike | None = None,
    chunk_size: int | None = None,
    *,
    progress: bool = False,
) -> dict[int, RecallAtK]:
    """Bidirectional Recall@k for every k in ``ks`` (values above N are clipped to N).

    ``z_u [N, D]`` and ``z_e [N, D]`` are index-aligned: row i of each is a positive pair. ``keys [N]``
    (integers, optional) turns on key-aware recall: a retrieved row with the query's key is a hit.
    """
    u = _as_tensor(z_u, "U")
    e = _as_tensor(z_e, "E")
    n = _check_pair(u, e)
    if n == 0:
        raise UserInputError("recall: no rows to score")
    ks = sorted({min(int(k), n) for k in ks})
    if ks[0] < 1:
        raise UserInputError(f"recall: every k must be >= 1, got {ks}")
    idx_u2e, idx_e2u = topk_both_directions(u, e, ks[-1], chunk_size, progress=progress)
    rows = torch.arange(n).unsqueeze(1)
    strict_u2e = idx_u2e == rows
    strict_e2u = idx_e2u == rows
    key_tensor = None
    if keys is not None:
        key_array = np.asarray(keys)
        if key_array.shape != (n,):
            raise UserInputError(f"recall: keys must have shape ({n},), got {key_array.shape}")
        key_tensor = torch.from_numpy(key_array.astype(np.int64))
        same_u2e = key_tensor[idx_u2e] == key_tensor.unsqueeze(1)
        same_e2u = key_tensor[idx_e2u] == key_tensor.unsqueeze(1)
    out: dict[int, RecallAtK] = {}
    for k in ks:
        u2e = strict_u2e[:, :k].any(1).double().mean().item()
        e2u = strict_e2u[:, :k].any(1).double().mean().item()
        result = RecallAtK(k=k, u2e=u2e, e2u=e2u, mean=0.5 * (u2e + e2u), chance=k / n)
        if key_tensor is not None:
            result.key_u2e = same_u2e[:, :k].any(1).double().mean().item()
            result.key_e2u = same_e2u[:, :k].any(1).double().mean().item()
            result.key_mean = 0.5 * (result.key_u2e + result.key_e2u)
            result.key_chance = key_aware_chance(key_array, key_array, k)
        out[k] = result
    return out


def knn_indices(x: ArrayLike | torch.Tensor, k: int, chunk_size: int | None = None) -> torch.Tensor:
    """int64 ``[N, k]``: each row's k nearest other rows by cosine similarity (itself excluded)."""
    z = F.normalize(_as_tensor(x, "features"), dim=1)
    n = z.shape[0]
    if not 1 <= k < n:
        raise UserInputError(f"mutual k-NN: k must be in [1, N-1={n - 1}], got {k}")
    chunk = chunk_size or chunk_rows(n)
    out = torch.empty((n, k), dtype=torch.int64)
    for start in range(0, n, chunk):
        sims = z[start : start + chunk] @ z.T
        rows = torch.arange(sims.shape[0])
        sims[rows, rows + start] = -torch.inf
        out[start : start + sims.shape[0]] = sims.topk(k, dim=1).indices
    return out


def mutual_knn(
    u: ArrayLike | torch.Tensor,
    e: ArrayLike | torch.Tensor,
    k: int = 10,
    chunk_size: int | None = None,
) -> float:
    """Mean over rows i of ``|kNN_U(i) & kNN_E(i)| / k`` (Huh et al. 2024), in [0, 1].

    ``u [N, du]`` and ``e [N, de]`` are index-aligned; neighbours are found within each space by
    cosine similarity, excluding the row itself. A random pairing scores about ``k / (N - 1)``
    (:func:`mutual_knn_chance`). NaN (undefined) when either side's rows all point the same way:
    every neighbour would then be a tie, and the overlap an artefact of the tie order.
    """
    tu, te = _as_tensor(u, "U"), _as_tensor(e, "E")
    _check_pair(tu, te)
    if is_collapsed(F.normalize(tu, dim=1)) or is_collapsed(F.normalize(te, dim=1)):
        return float("nan")
    nn_u = knn_indices(tu, k, chunk_size)
    nn_e = knn_indices(te, k, chunk_size)
    overlap = (nn_u.unsqueeze(2) == nn_e.unsqueeze(1)).any(2).sum(1)
    return float(overlap.double().mean().item() / k)


def mutual_knn_chance(n: int, k: int) -> float:
    """The expected mutual k-NN of unrelated representations of ``n`` rows: ``k / (n - 1)`` (each
    of the k neighbours in one space is one of the other space's k among n - 1 rows)."""
    if not 1 <= k < n:
        raise UserInputError(f"mutual k-NN: k must be in [1, N-1={n - 1}], got {k}")
    return k / (n - 1)


def _centered64(x: ArrayLike | torch.Tensor, name: str) -> np.ndarray:
    array = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if array.ndim != 2:
        raise UserInputError(f"{name}: expected a 2-D [N, D] array, got shape {array.shape}")
    array = array.astype(np.float64)
    return array - array.mean(axis=0, keepdims=True)


def linear_cka(x: ArrayLike | torch.Tensor, y: ArrayLike | torch.Tensor) -> float:
    """Linear CKA between ``x [N, dx]`` and ``y [N, dy]`` (Kornblith et al. 2019, Eq. via features).

    ``||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F)`` with column-centred Xc, Yc. Invariant to
    orthogonal maps and isotropic scaling; biased upwards when N is not much larger than the dims
    (exactly 1 for N = 2). NaN (undefined) when either side has zero variance (collapsed).
    """
    xc, yc = _centered64(x, "CKA x"), _centered64(y, "CKA y")
    if xc.shape[0] != yc.shape[0]:
        raise UserInputError(f"CKA: x has {xc.shape[0]} rows but y has {yc.shape[0]}")
    if is_collapsed(x) or is_collapsed(y):
        return float("nan")
    cross = np.linalg.norm(yc.T @ xc) ** 2
    denom = np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc)
    return float(cross / denom) if denom > 0 else float("nan")


def linear_cka_chance(
    x: ArrayLike | torch.Tensor, y: ArrayLike | torch.Tensor, permutations: int = 5, seed: int = 0
) -> float:
    """The linear CKA of unrelated rows at this N and these dims: the mean of
    ``linear_cka(x, y[perm])`` over ``permutations`` seeded random row permutations.

    Linear CKA is biased upwards when N is small against the dims (it is 1 for any data at N = 2),
    so its value means something only beside this level. NaN when either side is collapsed.
    """
    xc, yc = _centered64(x, "CKA x"), _centered64(y, "CKA y")
    if xc.shape[0] != yc.shape[0]:
        raise UserInputError(f"CKA: x has {xc.shape[0]} rows but y has {yc.shape[0]}")
    if is_collapsed(x) or is_collapsed(y):
        return float("nan")
    # The Gram norms do not change under a row permutation: only the cross term is recomputed.
    denom = np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc)
    rng = np.random.default_rng(seed)
    values = [
        np.linalg.norm(yc[rng.permutation(yc.shape[0])].T @ xc) ** 2 / denom
        for _ in range(permutations)
    ]
    return float(np.mean(values))


def _hsic_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Song et al.'s unbiased HSIC for linear kernels K = x x^T, L = y y^T, without N x N matrices.

    HSIC_1 = [tr(K~L~) + 1'K~1 1'L~1 / ((n-1)(n-2)) - 2/(n-2) 1'K~L~1] / (n(n-3)), where K~ is K
    with its diagonal set to zero; every term reduces to products with x^T y, x^T 1 and y^T 1.
    """
    n = x.shape[0]
    diag_k = np.einsum("ij,ij->i", x, x)
    diag_l = np.einsum("ij,ij->i", y, y)
    sum_x, sum_y = x.sum(0), y.sum(0)
    trace_kl = np.linalg.norm(x.T @ y) ** 2 - diag_k @ diag_l
    total_k = sum_x @ sum_x - diag_k.sum()
    total_l = sum_y @ sum_y - diag_l.sum()
    row_k = x @ sum_x - diag_k
    row_l = y @ sum_y - diag_l
    value = trace_kl + total_k * total_l / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * (row_k @ row_l)
    return float(value / (n * (n - 3)))


def unbiased_cka(x: ArrayLike | torch.Tensor, y: ArrayLike | torch.Tensor) -> float:
    """CKA from unbiased HSIC estimates: about 0 for independent data even when dims exceed N.

    Needs N >= 4. Can be slightly negative by estimation noise; exactly 1 for ``y = x R`` with an
    orthogonal R (times any positive scale). NaN (undefined) when either side is collapsed.
    """
    xc, yc = _centered64(x, "CKA x"), _centered64(y, "CKA y")
    if xc.shape[0] != yc.shape[0]:
        raise UserInputError(f"CKA: x has {xc.shape[0]} rows but y has {yc.shape[0]}")
    if xc.shape[0] < 4:
        raise UserInputError(f"unbiased CKA needs at least 4 rows, got {xc.shape[0]}")
    if is_collapsed(x) or is_collapsed(y):
        return float("nan")
    hxy = _hsic_unbiased(xc, yc)
    hxx = _hsic_unbiased(xc, xc)
    hyy = _hsic_unbiased(yc, yc)
    denom = np.sqrt(max(hxx, 0.0) * max(hyy, 0.0))
    return float(hxy / denom) if denom > 0 else float("nan")
