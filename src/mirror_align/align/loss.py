"""The bidirectional InfoNCE alignment loss (paper Eq. 2) and its mutual-information bound.

Shapes: ``z_u`` and ``z_e`` are ``[B, D]`` and index-aligned (row i of each is a positive pair).
Logits are cosine similarities divided by the temperature ``tau``; losses are in nats::

    L_u2e = mean_i  -log softmax_j(cos(u_i, e_j) / tau)[i]     (each u row against every e row)
    L_e2u = mean_i  -log softmax_j(cos(e_i, u_j) / tau)[i]     (each e row against every u row)
    L     = (L_u2e + L_e2u) / 2

Multi-positive mode (``keys``): every pair sharing the pairing key is a positive, and each row's
term is SupCon's L_out, the mean over its positives of -log softmax (cross-entropy against
``P / P.sum(1)``). With unique keys it equals the single-positive loss exactly.

:func:`_definition` below is the loss as written; ``fused_loss.py`` computes the same numbers
faster on one process and is what ``implementation="auto"`` uses there.

Precision: norms, logits and log-sum-exps are computed in float32 for float16/bfloat16 features
(as autocast does for norms, softmax and cross-entropy; a half-precision row norm overflows above
65504) and in the input's precision otherwise. Every row's term is >= 0, so ``log B - L <= log B``.

Distributed (``gather=True`` with an initialised process group): every rank gathers the normalised
features of all ranks with gradient and returns the loss of *its own* anchors against the global
batch, in both directions, scaled by ``world / B`` instead of ``1 / b``. Ranks may hold different
numbers of rows. Hence

* the mean over ranks of the per-rank losses equals the single-process loss on the concatenated
  batch (the global B; with equal shares each per-rank loss is the mean over its anchors);
* after ``backward()`` of the per-rank loss, each rank's gradient w.r.t. its local features equals
  ``world`` times the slice of the single-process gradient (see :func:`gather_rows`), and
  DistributedDataParallel's averaging divides by ``world`` again: the averaged parameter gradients
  equal those of the single-process loss on the global batch. Without DDP, divide by the world
  size yourself.

Anchor: open_clip's ``loss.py`` (ClipLoss: gather features with gradient, labels offset by rank).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from mirror_align.align.distributed import (
    BatchLayout,
    agree_on_layout,
    gather_rows,
    local_layout,
    rank_and_world_size,
)
from mirror_align.align.fused_loss import fused_alignment_loss
from mirror_align.errors import UserInputError

IMPLEMENTATIONS = ("auto", "fused", "autograd")

# F.normalize's default: vectors shorter than this are divided by it instead of their norm.
NORM_EPS = 1e-12


def _definition(
    z_u: torch.Tensor,
    z_e: torch.Tensor,
    tau: float | torch.Tensor,
    keys: torch.Tensor | None,
    layout: BatchLayout,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(loss, u2e, e2u)`` of this rank's anchors ``z_u, z_e [b, D]`` against the global batch."""
    u = F.normalize(z_u, dim=1, eps=NORM_EPS)
    e = F.normalize(z_e, dim=1, eps=NORM_EPS)
    # The candidates: every rank's rows, gathered with gradient (on one process, the local rows).
    all_u, all_e = gather_rows(u, layout), gather_rows(e, layout)
    # Row i's positives: the columns sharing its key. Without keys the key is the global row
    # index, so row i's only positive is its own column (labels offset by this rank's first row).
    if keys is None:
        all_keys = torch.arange(layout.total, device=u.device)
        keys = all_keys[layout.offset : layout.offset + u.shape[0]]
    else:
        all_keys = gather_rows(keys, layout)
    positives = (keys.reshape(-1, 1) == all_keys.reshape(1, -1)).to(u.dtype)  # [b, B]
    u2e = _soft_cross_entropy(u @ all_e.T / tau, positives)  # [b] nats
    e2u = _soft_cross_entropy(e @ all_u.T / tau, positives)
    # Summed over the local anchors and divided by B / world: the mean over ranks is the global
    # mean, also when the ranks hold different numbers of rows.
    loss_u2e = u2e.sum() * layout.world / layout.total
    loss_e2u = e2u.sum() * layout.world / layout.total
    return 0.5 * (loss_u2e + loss_e2u), loss_u2e, loss_e2u


def _soft_cross_entropy(logits: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """``[R]``: the mean over row r's positives of ``-log softmax(logits[r])`` (SupCon L_out).

    Every term is >= 0 also after rounding: a log-softmax entry is never above 0.
    """
    log_p = torch.log_softmax(logits, dim=1)
    return -(log_p * positives).sum(1) / positives.sum(1)


def alignment_loss(
    z_u: torch.Tensor,
    z_e: torch.Tensor,
    tau: float | torch.Tensor = 0.1,
    keys: torch.Tensor | None = None,
    *,
    gather: bool = True,
    implementation: str = "auto",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Bidirectional InfoNCE (paper Eq. 2) between index-aligned ``z_u [B, D]`` and ``z_e [B, D]``.

    ``tau`` is a float or a 0-d tensor (gradient flows into it). ``keys [B]`` (integers) switches
    on multi-positive mode. With ``torch.distributed`` initialised and ``gather=True``, features
    and keys of all ranks are gathered (with gradient) so that every rank sees the global batch as
    negatives and this rank's rows are the anchors; ranks may hold different numbers of rows (see
    the module docstring). ``implementation`` is ``"auto"`` (fused on one process, the definition
    when gathering), ``"fused"`` (one process only) or ``"autograd"`` (the definition).

    Returns ``(loss, parts)`` with ``parts`` holding ``u2e``, ``e2u`` (nats, detached) and
    ``batch_size`` (the global B, used by the MI bound). The loss is float32 for float16/bfloat16
    features and in the features' dtype otherwise. Raises :class:`UserInputError` on bad input,
    under ``torch.distributed`` on every rank when any rank's input is bad.
    """
    if implementation not in IMPLEMENTATIONS:
        raise UserInputError(
            f"alignment loss: unknown implementation {implementation!r}; choose one of "
            f"{', '.join(IMPLEMENTATIONS)}"
        )
    _, world = rank_and_world_size()
    distributed = gather and world > 1
    if implementation == "fused" and distributed:
        raise UserInputError(
            "alignment loss: implementation 'fused' works on one process; use 'auto' or 'autograd' "
            "with torch.distributed, or gather=False"
        )
    problem = _input_problem(z_u, z_e, tau, keys, allow_empty=distributed)
    if distributed:
        rows, dim = (z_u.shape[0], z_u.shape[-1]) if z_u.ndim else (0, 0)
        layout = agree_on_layout(
            rows, dim, has_keys=keys is not None, problem=problem, device=z_u.device
        )
    elif problem:
        raise UserInputError(problem)
    else:
        layout = local_layout(z_u.shape[0])

    # float16/bfloat16 -> float32; float32 and float64 stay as they are.
    dtype = torch.promote_types(z_u.dtype, torch.float32)
    z_u, z_e = z_u.to(dtype), z_e.to(dtype)
    keys = None if keys is None else keys.to(z_u.device)
    if implementation == "autograd" or distributed:
        loss, loss_u2e, loss_e2u = _definition(z_u, z_e, tau, keys, layout)
    else:
        scale = 1.0 / tau if isinstance(tau, torch.Tensor) else torch.tensor(1.0 / float(tau))
        scale = scale.to(dtype=dtype, device=z_u.device)
        loss, loss_u2e, loss_e2u = fused_alignment_loss(z_u, z_e, scale, keys, NORM_EPS)
    parts = {
        "u2e": loss_u2e.detach(),
        "e2u": loss_e2u.detach(),
        "batch_size": torch.tensor(layout.total),
    }
    return loss, parts


def mi_lower_bound(loss: float | torch.Tensor, batch_size: int) -> float:
    """``log(B) - L_align`` in nats (paper Appendix A, Eq. 21).

    The bound saturates at ``log B``: since the loss is non-negative, no batch of size B can
    certify more than ``log B`` nats, however strongly the two representations depend on each
    other. Compare values at the same B. In multi-positive mode a row with k positives has a loss
    of at least ``log k``, so the value there is a looser, key-aware quantity.
    """
    return math.log(batch_size) - float(loss)


def _input_problem(z_u, z_e, tau, keys, *, allow_empty: bool) -> str | None:
    """The first problem with the inputs as one line, or None when they are valid."""
    if z_u.ndim != 2 or z_e.ndim != 2 or z_u.shape != z_e.shape:
        return (
            "alignment loss: z_u and z_e must both be [B, D] with the same B and D, got "
            f"{tuple(z_u.shape)} and {tuple(z_e.shape)}"
        )
    if z_u.shape[0] == 0 and not allow_empty:
        return "alignment loss: the batch is empty (B = 0)"
    if not (z_u.is_floating_point() and z_e.is_floating_point()) or z_u.dtype != z_e.dtype:
        return f"alignment loss: z_u and z_e must share one floating dtype, got {z_u.dtype} and {z_e.dtype}"
    tau_value = float(tau.detach()) if isinstance(tau, torch.Tensor) else float(tau)
    if not (math.isfinite(tau_value) and tau_value > 0):
        return f"alignment loss: tau must be a positive finite number, got {tau_value}"
    if keys is not None:
        if keys.ndim != 1 or keys.shape[0] != z_u.shape[0]:
            return (
                f"alignment loss: keys must be a 1-D tensor of {z_u.shape[0]} pairing keys "
                f"(one per row), got shape {tuple(keys.shape)}"
            )
        if keys.is_floating_point() or keys.is_complex():
            return f"alignment loss: keys must be integers, got dtype {keys.dtype}"
    return None
