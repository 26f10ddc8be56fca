"""The bidirectional InfoNCE alignment loss (paper Eq. 2) and its mutual-information bound.

Shapes: ``z_u`` and ``z_e`` are ``[B, D]`` and index-aligned (row i of each is a positive pair).
Similarities are cosine similarities divided by the temperature ``tau``.

Two modes:

* single-positive (the paper): row i's only positive is column i;
* multi-positive: every pair sharing the pairing key is a positive. Each direction uses SupCon's
  L_out, the mean over positives of -log softmax, i.e. cross-entropy against ``P / P.sum(1)``.
  With unique keys it equals the single-positive loss exactly.

One ``B x B`` similarity matrix serves both directions: u->e normalises over its rows, e->u over
its columns, so there is no second matrix product.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mirror_align.align.distributed import gather_features, gather_keys, rank_and_world_size
from mirror_align.errors import UserInputError


def positive_mask(keys_rows: torch.Tensor, keys_cols: torch.Tensor) -> torch.Tensor:
    """``[R, C]`` boolean matrix, True where row and column share the pairing key."""
    return keys_rows.reshape(-1, 1) == keys_cols.reshape(1, -1)


def info_nce_logits(
    logits_u2e: torch.Tensor,
    logits_e2u: torch.Tensor | None = None,
    row_offset: int = 0,
    mask_u2e: torch.Tensor | None = None,
    mask_e2u: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The u->e and e->u InfoNCE terms from already-scaled similarity logits, in nats.

    ``logits_u2e [R, C]``: rows are local u items, columns all e items; row i's positive is column
    ``row_offset + i`` unless ``mask_u2e`` marks the positives. ``logits_e2u`` is the same for
    e rows against all u columns. When it is None the square matrix is shared and the e->u term is
    normalised over columns (requires R == C and no offset).
    """
    rows = logits_u2e.shape[0]
    index = torch.arange(rows, device=logits_u2e.device)
    if logits_e2u is None:
        if mask_u2e is None:
            diagonal = logits_u2e.diagonal()
            loss_u2e = (torch.logsumexp(logits_u2e, dim=1) - diagonal).mean()
            loss_e2u = (torch.logsumexp(logits_u2e, dim=0) - diagonal).mean()
            return loss_u2e, loss_e2u
        weights = mask_u2e.to(logits_u2e.dtype)
        log_p_rows = logits_u2e - torch.logsumexp(logits_u2e, dim=1, keepdim=True)
        log_p_cols = logits_u2e - torch.logsumexp(logits_u2e, dim=0, keepdim=True)
        loss_u2e = -((log_p_rows * weights).sum(1) / weights.sum(1)).mean()
        loss_e2u = -((log_p_cols * weights).sum(0) / weights.sum(0)).mean()
        return loss_u2e, loss_e2u
    if mask_u2e is None:
        target = index + row_offset
        return F.cross_entropy(logits_u2e, target), F.cross_entropy(logits_e2u, target)
    terms = []
    for logits, mask in ((logits_u2e, mask_u2e), (logits_e2u, mask_e2u)):
        weights = mask.to(logits.dtype)
        log_p = logits - torch.logsumexp(logits, dim=1, keepdim=True)
        terms.append(-((log_p * weights).sum(1) / weights.sum(1)).mean())
    return terms[0], terms[1]


def alignment_loss(
    z_u: torch.Tensor,
    z_e: torch.Tensor,
    tau: float | torch.Tensor = 0.1,
    keys: torch.Tensor | None = None,
    gather: bool = True,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Bidirectional InfoNCE (paper Eq. 2) between index-aligned ``z_u [B, D]`` and ``z_e [B, D]``.

    ``keys [B]`` (integers) switches on multi-positive mode. With ``torch.distributed`` initialised
    and ``gather=True``, features and keys of all ranks are gathered (with gradient) so that every
    rank sees the global batch as negatives; this rank's rows are the anchors.

    Returns ``(loss, parts)`` with ``parts`` holding ``u2e``, ``e2u`` (nats, detached) and
    ``batch_size`` (the global B, used by the MI bound).
    """
    if z_u.ndim != 2 or z_e.ndim != 2 or z_u.shape[0] != z_e.shape[0]:
        raise UserInputError(
            f"alignment loss: z_u and z_e must be [B, D] with equal B, got {tuple(z_u.shape)} and {tuple(z_e.shape)}"
        )
    if keys is not None and keys.shape[0] != z_u.shape[0]:
        raise UserInputError(f"alignment loss: keys has {keys.shape[0]} entries for a batch of {z_u.shape[0]}")
    z_u = F.normalize(z_u, dim=-1)
    z_e = F.normalize(z_e, dim=-1)
    rank, world = rank_and_world_size()
    if gather and world > 1:
        all_u, all_e = gather_features(z_u), gather_features(z_e)
        offset = rank * z_u.shape[0]
        logits_u2e = z_u @ all_e.T / tau
        logits_e2u = z_e @ all_u.T / tau
        mask = None
        if keys is not None:
            mask = positive_mask(keys, gather_keys(keys))
        loss_u2e, loss_e2u = info_nce_logits(logits_u2e, logits_e2u, offset, mask, mask)
        batch_size = all_u.shape[0]
    else:
        logits = z_u @ z_e.T / tau
        mask = None if keys is None else positive_mask(keys, keys)
        loss_u2e, loss_e2u = info_nce_logits(logits, mask_u2e=mask)
        batch_size = z_u.shape[0]
    loss = 0.5 * (loss_u2e + loss_e2u)
    parts = {
        "u2e": loss_u2e.detach(),
        "e2u": loss_e2u.detach(),
        "batch_size": torch.tensor(batch_size),
    }
    return loss, parts


def mi_lower_bound(loss: float | torch.Tensor, batch_size: int) -> float:
    """``log(B) - L_align`` in nats (paper Appendix A, Eq. 21).

    The bound saturates at ``log B``: no batch of size B can certify more than ``log B`` nats, however
    strongly the two representations depend on each other. Compare values at the same B.
    """
    return math.log(batch_size) - float(loss)


class AlignmentLoss(nn.Module):
    """The alignment loss as a module, with a fixed or learnable temperature.

    A learnable ``tau`` is stored as ``log(1/tau)`` (CLIP's logit scale) and clamped to
    ``[tau_min, tau_max]`` so it can run neither to 0 nor to infinity.
    """

    def __init__(
        self,
        tau: float = 0.1,
        learnable_tau: bool = False,
        multi_positive: bool = False,
        tau_min: float = 0.01,
        tau_max: float = 1.0,
        gather: bool = True,
    ) -> None:
        super().__init__()
        if not tau_min <= tau <= tau_max:
            raise UserInputError(f"tau: {tau} is outside [{tau_min}, {tau_max}]")
        self.multi_positive = multi_positive
        self.gather = gather
        self.tau_min, self.tau_max = tau_min, tau_max
        log_scale = torch.tensor(math.log(1.0 / tau))
        if learnable_tau:
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("log_scale", log_scale)

    @property
    def tau(self) -> torch.Tensor:
        """The current temperature (a scalar tensor, clamped)."""
        scale = self.log_scale.clamp(math.log(1.0 / self.tau_max), math.log(1.0 / self.tau_min)).exp()
        return 1.0 / scale

    def forward(
        self, z_u: torch.Tensor, z_e: torch.Tensor, keys: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``(loss, parts)`` for ``z_u, z_e [B, D]``; ``keys [B]`` is used in multi-positive mode."""
        if self.multi_positive and keys is None:
            raise UserInputError("alignment loss: multi-positive mode needs the pairing keys")
        return alignment_loss(z_u, z_e, self.tau, keys if self.multi_positive else None, self.gather)
