"""The bidirectional InfoNCE alignment loss (paper Eq. 2) and its mutual-information bound.

Shapes: ``z_u`` and ``z_e`` are ``[B, D]`` and index-aligned (row i of each is a positive pair).
Logits are cosine similarities divided by the temperature ``tau``; losses are in nats.

Two modes:

* single-positive (the paper): row i's only positive is column i;
* multi-positive: every pair sharing the pairing key is a positive. Each direction uses SupCon's
  L_out, the mean over positives of -log softmax, i.e. cross-entropy against ``P / P.sum(1)``.
  With unique keys it equals the single-positive loss exactly (same arithmetic, bit for bit).

Two implementations compute the same numbers:

* ``fused`` (the default on one process): a custom autograd function with the closed-form
  gradient. One ``B x B`` similarity matrix serves both directions (u->e normalises its rows,
  e->u its columns); the forward pass turns it into ``dL/dlogits = (softmax_rows + softmax_cols) /
  2B`` minus the positives' target weights, and only that matrix is kept for the backward pass,
  which costs two ``[B, B] x [B, D]`` products. The positives never need a ``B x B`` mask: within a
  key group every item has the same number of positives, so their contribution is a group mean
  of features (``O(B D)``), which is why multi-positive costs about the same as single-positive.
* ``autograd``: the same maths written with plain differentiable ops. It is used with
  ``torch.distributed`` (where each rank's anchors face the gathered batch) and as a check.

Distributed semantics (``gather=True`` with an initialised process group, every rank holding
``b`` rows): every rank gathers the normalised features of all ranks with gradient and returns the
loss of *its own* ``b`` anchors against the global ``world * b`` candidates, in both directions.
Hence

* the mean over ranks of the per-rank losses equals the single-process loss on the concatenated
  batch (the global ``B = world * b``);
* after ``backward()`` of the per-rank loss, each rank's gradient w.r.t. its local features equals
  ``world`` times the slice of the single-process gradient, because the gather's backward sums
  what every rank computed for that slice. DistributedDataParallel averages parameter gradients
  over ranks, which divides by ``world`` again: the averaged parameter gradients equal those of
  the single-process loss on the global batch. Without DDP, divide by the world size yourself.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from mirror_align.align.distributed import gather_features, gather_keys, rank_and_world_size
from mirror_align.errors import UserInputError

IMPLEMENTATIONS = ("auto", "fused", "autograd")

# F.normalize's default: vectors shorter than this are divided by it instead of their norm.
NORM_EPS = 1e-12

# The fused forward pass shares one exponential between both directions when exp(-2 / tau) stays
# above this fraction of the dtype's underflow exponent (float32: tau >= 0.025), and shifts rows
# and columns by their own maxima otherwise. Tests set it to 0 to exercise the second path.
SHARED_SHIFT_FRACTION = 0.9


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


def _group_means(
    u_hat: torch.Tensor, e_hat: torch.Tensor, group: torch.Tensor, counts: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row of ``u_hat`` and ``e_hat [B, D]`` replaced by the mean over its key group.

    Both sides share one buffer so that the sums, the division and the gather run once.
    """
    dim = u_hat.shape[1]
    sums = torch.zeros(counts.shape[0], 2 * dim, dtype=u_hat.dtype, device=u_hat.device)
    sums[:, :dim].index_add_(0, group, u_hat)
    sums[:, dim:].index_add_(0, group, e_hat)
    means = sums.div_(counts.to(sums.dtype).unsqueeze(1)).index_select(0, group)
    return means[:, :dim], means[:, dim:]


def _normalize_backward(grad_hat: torch.Tensor, x_hat: torch.Tensor, norm: torch.Tensor):
    """Gradient through ``x_hat = x / max(|x|, eps)`` given ``dL/dx_hat`` (rows are vectors)."""
    radial = (grad_hat * x_hat).sum(1, keepdim=True)
    # Below eps the divisor is the constant eps, so no radial component is removed.
    radial = radial * (norm > NORM_EPS).to(radial.dtype)
    return (grad_hat - x_hat * radial) / norm.clamp_min(NORM_EPS)


class _FusedInfoNCE(torch.autograd.Function):
    """Bidirectional InfoNCE on raw features with the closed-form gradient.

    Inputs: ``z_u, z_e [B, D]``, ``scale`` (0-d, = 1/tau), and optionally ``group [B]`` (int64,
    the key group of each row) with ``counts [G]`` (the size of each group). Outputs: the loss and
    the detached u->e and e->u terms.
    """

    @staticmethod
    def forward(ctx, z_u, z_e, scale, group, counts):
        batch = z_u.shape[0]
        norm_u = torch.linalg.vector_norm(z_u, dim=1, keepdim=True)
        norm_e = torch.linalg.vector_norm(z_e, dim=1, keepdim=True)
        u_hat = z_u / norm_u.clamp_min(NORM_EPS)
        e_hat = z_e / norm_e.clamp_min(NORM_EPS)
        logits = torch.mm(u_hat * scale, e_hat.T)

        # Each direction's positive logit, averaged over the row's positives (one positive when
        # there are no keys): scale * u_i . mean(e_j over i's group), and the same for e.
        if group is None:
            u_bar, e_bar = u_hat, e_hat
        else:
            u_bar, e_bar = _group_means(u_hat, e_hat, group, counts)
        positive_u2e = (u_hat * e_bar).sum(1) * scale
        positive_e2u = (e_hat * u_bar).sum(1) * scale

        needs_grad = any(ctx.needs_input_grad[:3])
        half = 0.5 / batch
        shift = float(scale.detach())
        if 2.0 * shift <= SHARED_SHIFT_FRACTION * -math.log(torch.finfo(logits.dtype).tiny):
            # Cosines lie in [-1, 1], so every logit lies in [-scale, scale] and one exp(logits -
            # scale) serves both directions without underflow (each entry >= exp(-2 scale) is a
            # normal number): 5 passes over B x B instead of 10.
            work = logits.sub_(shift).exp_()
            sum_rows, sum_cols = work.sum(1), work.sum(0)
            lse_rows = sum_rows.log() + shift
            lse_cols = sum_cols.log() + shift
            if needs_grad:
                grad_logits = torch.mul(work, (half / sum_rows).unsqueeze(1))
                grad_logits.addcmul_(work, (half / sum_cols).unsqueeze(0))
            del work, logits
        else:
            # A cold temperature: shift each row and each column by its own maximum.
            max_rows = logits.amax(1, keepdim=True)
            max_cols = logits.amax(0, keepdim=True)
            work = torch.sub(logits, max_rows).exp_()
            lse_rows = work.sum(1).log_() + max_rows.squeeze(1)
            torch.sub(logits, max_cols, out=work).exp_()
            sum_cols = work.sum(0)
            lse_cols = sum_cols.log() + max_cols.squeeze(0)
            if needs_grad:
                # ``work`` holds exp(logits - max_cols); ``logits`` becomes the row softmax.
                work.mul_(half / sum_cols)
                logits.sub_(lse_rows.unsqueeze(1)).exp_()
                grad_logits = work.add_(logits, alpha=half)
            del logits

        loss_u2e = (lse_rows - positive_u2e).mean()
        loss_e2u = (lse_cols - positive_e2u).mean()
        loss = 0.5 * (loss_u2e + loss_e2u)
        if needs_grad:
            # dL/dlogits without the positives: (softmax over rows + softmax over columns) / 2B.
            ctx.save_for_backward(u_hat, e_hat, norm_u, norm_e, u_bar, e_bar, grad_logits, scale)
        ctx.mark_non_differentiable(loss_u2e, loss_e2u)
        return loss, loss_u2e.detach(), loss_e2u.detach()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_loss, _grad_u2e, _grad_e2u):
        u_hat, e_hat, norm_u, norm_e, u_bar, e_bar, grad_logits, scale = ctx.saved_tensors
        batch = u_hat.shape[0]
        # dL/dlogits = grad_logits - W with W_ij = [i ~ j] / (B * group size), so
        # W @ e_hat = e_bar / B and W.T @ u_hat = u_bar / B: no B x B mask is needed.
        d_u = torch.mm(grad_logits, e_hat).sub_(e_bar, alpha=1.0 / batch)
        d_e = torch.mm(grad_logits.T, u_hat).sub_(u_bar, alpha=1.0 / batch)
        grad_u = grad_e = grad_scale = None
        if ctx.needs_input_grad[0]:
            grad_u = _normalize_backward(d_u * (scale * grad_loss), u_hat, norm_u)
        if ctx.needs_input_grad[1]:
            grad_e = _normalize_backward(d_e * (scale * grad_loss), e_hat, norm_e)
        if ctx.needs_input_grad[2]:
            # logits = scale * u_hat @ e_hat.T, so dL/dscale = sum_ij dL/dlogits_ij (u_i . e_j).
            grad_scale = ((d_u * u_hat).sum() * grad_loss).reshape(scale.shape)
        return grad_u, grad_e, grad_scale, None, None


def _check_inputs(z_u: torch.Tensor, z_e: torch.Tensor, tau, keys: torch.Tensor | None) -> None:
    if z_u.ndim != 2 or z_e.ndim != 2 or z_u.shape != z_e.shape:
        raise UserInputError(
            "alignment loss: z_u and z_e must both be [B, D] with the same B and D, got "
            f"{tuple(z_u.shape)} and {tuple(z_e.shape)}"
        )
    if z_u.shape[0] == 0:
        raise UserInputError("alignment loss: the batch is empty (B = 0)")
    if not (z_u.is_floating_point() and z_e.is_floating_point()) or z_u.dtype != z_e.dtype:
        raise UserInputError(
            f"alignment loss: z_u and z_e must share one floating dtype, got {z_u.dtype} and {z_e.dtype}"
        )
    tau_value = float(tau.detach()) if isinstance(tau, torch.Tensor) else float(tau)
    if not (math.isfinite(tau_value) and tau_value > 0):
        raise UserInputError(
            f"alignment loss: tau must be a positive finite number, got {tau_value}"
        )
    if keys is not None:
        if keys.ndim != 1 or keys.shape[0] != z_u.shape[0]:
            raise UserInputError(
                f"alignment loss: keys must be a 1-D tensor of {z_u.shape[0]} pairing keys "
                f"(one per row), got shape {tuple(keys.shape)}"
            )
        if keys.is_floating_point() or keys.is_complex():
            raise UserInputError(f"alignment loss: keys must be integers, got dtype {keys.dtype}")


def alignment_loss(
    z_u: torch.Tensor,
    z_e: torch.Tensor,
    tau: float | torch.Tensor = 0.1,
    keys: torch.Tensor | None = None,
    gather: bool = True,
    *,
    implementation: str = "auto",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Bidirectional InfoNCE (paper Eq. 2) between index-aligned ``z_u [B, D]`` and ``z_e [B, D]``.

    ``tau`` is a float or a 0-d tensor (gradient flows into it). ``keys [B]`` (integers) switches
    on multi-positive mode. With ``torch.distributed`` initialised and ``gather=True``, features
    and keys of all ranks are gathered (with gradient) so that every rank sees the global batch as
    negatives and this rank's rows are the anchors; see the module docstring for how losses and
    gradients relate to the single-process ones. ``implementation`` is ``"auto"`` (fused on one
    process, autograd when gathering), ``"fused"`` or ``"autograd"``.

    Returns ``(loss, parts)`` with ``parts`` holding ``u2e``, ``e2u`` (nats, detached) and
    ``batch_size`` (the global B, used by the MI bound).
    """
    if implementation not in IMPLEMENTATIONS:
        raise UserInputError(
            f"alignment loss: unknown implementation {implementation!r}; choose one of "
            f"{', '.join(IMPLEMENTATIONS)}"
        )
    _check_inputs(z_u, z_e, tau, keys)
    rank, world = rank_and_world_size()
    distributed = gather and world > 1
    if implementation == "fused" and distributed:
        raise UserInputError(
            "alignment loss: implementation 'fused' works on one process; use 'auto' or 'autograd' "
            "with torch.distributed, or gather=False"
        )
    if implementation == "auto":
        implementation = "autograd" if distributed else "fused"

    if implementation == "fused":
        scale = 1.0 / tau if isinstance(tau, torch.Tensor) else torch.tensor(1.0 / float(tau))
        scale = scale.to(dtype=z_u.dtype, device=z_u.device)
        group = counts = None
        if keys is not None:
            _, group, counts = torch.unique(keys, return_inverse=True, return_counts=True)
        if not torch.is_grad_enabled():
            # Inside the function needs_input_grad ignores no_grad mode; detaching skips the
            # gradient work of the forward pass.
            z_u, z_e, scale = z_u.detach(), z_e.detach(), scale.detach()
        loss, loss_u2e, loss_e2u = _FusedInfoNCE.apply(z_u, z_e, scale, group, counts)
        batch_size = z_u.shape[0]
    elif distributed:
        z_u = F.normalize(z_u, dim=-1, eps=NORM_EPS)
        z_e = F.normalize(z_e, dim=-1, eps=NORM_EPS)
        all_u, all_e = gather_features(z_u), gather_features(z_e)
        if all_u.shape[0] != world * z_u.shape[0]:
            raise UserInputError("alignment loss: every rank must hold the same batch size")
        offset = rank * z_u.shape[0]
        logits_u2e = z_u @ all_e.T / tau
        logits_e2u = z_e @ all_u.T / tau
        mask = None
        if keys is not None:
            mask = positive_mask(keys, gather_keys(keys))
        loss_u2e, loss_e2u = info_nce_logits(logits_u2e, logits_e2u, offset, mask, mask)
        loss = 0.5 * (loss_u2e + loss_e2u)
        batch_size = all_u.shape[0]
    else:
        z_u = F.normalize(z_u, dim=-1, eps=NORM_EPS)
        z_e = F.normalize(z_e, dim=-1, eps=NORM_EPS)
        logits = z_u @ z_e.T / tau
        mask = None if keys is None else positive_mask(keys, keys)
        loss_u2e, loss_e2u = info_nce_logits(logits, mask_u2e=mask)
        loss = 0.5 * (loss_u2e + loss_e2u)
        batch_size = z_u.shape[0]
    parts = {
        "u2e": loss_u2e.detach(),
        "e2u": loss_e2u.detach(),
        "batch_size": torch.tensor(batch_size),
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


class _ClampWithRecovery(torch.autograd.Function):
    """``clamp(x, low, high)`` whose gradient is not lost at the bounds.

    A plain clamp has zero gradient outside the range, so a learnable temperature that hit a bound
    would stay there for good. This one passes the gradient when a descent step would move ``x``
    back towards the range, and blocks it when the step would push ``x`` further out.
    """

    @staticmethod
    def forward(ctx, x, low: float, high: float):
        ctx.save_for_backward(x)
        ctx.low, ctx.high = low, high
        return x.clamp(low, high)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        inside = (x >= ctx.low) & (x <= ctx.high)
        recovering = ((x < ctx.low) & (grad < 0)) | ((x > ctx.high) & (grad > 0))
        return grad * (inside | recovering).to(grad.dtype), None, None


class AlignmentLoss(nn.Module):
    """The alignment loss as a module, with a fixed or learnable temperature.

    A learnable ``tau`` is stored as ``log(1/tau)`` (CLIP's logit scale) and clamped to
    ``[tau_min, tau_max]`` so it can run neither to 0 nor to infinity; at a bound it still
    receives the gradient that would bring it back. A fixed ``tau`` only has to be positive.
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
        if not (math.isfinite(tau) and tau > 0):
            raise UserInputError(f"tau: must be a positive number, got {tau}")
        if learnable_tau:
            if not 0 < tau_min < tau_max:
                raise UserInputError(f"tau: need 0 < tau_min < tau_max, got {tau_min}, {tau_max}")
            if not tau_min <= tau <= tau_max:
                raise UserInputError(
                    f"tau: {tau} is outside [tau_min, tau_max] = [{tau_min}, {tau_max}]"
                )
        self.multi_positive = multi_positive
        self.gather = gather
        self.learnable_tau = learnable_tau
        self.tau_min, self.tau_max = tau_min, tau_max
        log_scale = torch.tensor(math.log(1.0 / tau))
        if learnable_tau:
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("log_scale", log_scale)

    @property
    def tau(self) -> torch.Tensor:
        """The current temperature (a scalar tensor; clamped when learnable)."""
        log_scale = self.log_scale
        if self.learnable_tau:
            low, high = math.log(1.0 / self.tau_max), math.log(1.0 / self.tau_min)
            log_scale = _ClampWithRecovery.apply(log_scale, low, high)
        return torch.exp(-log_scale)

    def forward(
        self, z_u: torch.Tensor, z_e: torch.Tensor, keys: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``(loss, parts)`` for ``z_u, z_e [B, D]``; ``keys [B]`` is used in multi-positive mode."""
        if self.multi_positive and keys is None:
            raise UserInputError(
                "alignment loss: multi-positive mode needs the pairing keys (keys=[B] integers)"
            )
        return alignment_loss(
            z_u, z_e, self.tau, keys if self.multi_positive else None, self.gather
        )
