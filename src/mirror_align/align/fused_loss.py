"""A faster computation of the alignment loss on one process: the same numbers, closed-form gradient.

:func:`mirror_align.align.loss.alignment_loss` is the definition (paper Eq. 2, single- and
multi-positive). This module computes the same loss and the same gradients; tests hold the two
together to 1e-10 in float64 (values and gradients, single- and multi-positive, tau from 0.01 to
0.5, both exponential shifts below; ``tests/test_align_loss.py``) and to float32 accuracy in
float32, float16 and bfloat16.

How it saves time and memory:

* one ``B x B`` similarity matrix serves both directions (u->e normalises its rows, e->u its
  columns) instead of two products and two log-softmaxes;
* the forward pass turns it into ``dL/dlogits = (softmax_rows + softmax_cols) / 2B`` minus the
  positives' target weights, and only that matrix is kept for the backward pass, which costs two
  ``[B, B] x [B, D]`` products (autograd keeps several ``B x B`` intermediates);
* the positives never need a ``B x B`` mask: within a key group every item has the same number of
  positives, so their contribution is a group mean of features (``O(B D)``), which is why
  multi-positive costs about the same as single-positive.

Measured with ``benchmarks/bench_align_loss.py`` (forward + backward, float32, 1 thread, all
implementations timed in the same run with interleaved repeats; two runs on a shared 2-core
machine at load average 6-7, so treat the ranges as rough): the definition takes 1.7-2.1x the
fused time at B=1024, D=1024 and 3.1-3.6x at B=1024, D=128; the fused loss takes 0.50-0.55x the
time of two ``F.cross_entropy`` calls on two products at B=1024, D=1024. Multi-positive costs
0.9-1.3x single-positive in those runs (the spread is the load; the extra work is ``O(B D)``).
"""

from __future__ import annotations

import math

import torch
from torch.autograd.function import once_differentiable

# One exponential serves both directions when exp(-2 / tau) stays above this fraction of the
# dtype's underflow exponent (float32: tau >= 0.025); colder temperatures shift rows and columns by
# their own maxima. Tests set it to 0 to exercise the second path.
SHARED_SHIFT_FRACTION = 0.9


def fused_alignment_loss(
    z_u: torch.Tensor,
    z_e: torch.Tensor,
    scale: torch.Tensor,
    keys: torch.Tensor | None,
    eps: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(loss, u2e, e2u)`` in nats for ``z_u, z_e [B, D]`` (float32 or float64), as the definition.

    ``scale`` is the 0-d ``1 / tau`` (gradient flows into it); ``keys [B]`` switches on
    multi-positive mode; ``eps`` is the normalisation floor (``F.normalize``'s). ``u2e`` and ``e2u``
    are detached. Inputs are assumed valid (``alignment_loss`` checks them).
    """
    group = counts = None
    if keys is not None:
        _, group, counts = torch.unique(keys, return_inverse=True, return_counts=True)
    if not torch.is_grad_enabled():
        # Inside the function needs_input_grad ignores no_grad mode; detaching skips the gradient
        # work of the forward pass.
        z_u, z_e, scale = z_u.detach(), z_e.detach(), scale.detach()
    return _FusedInfoNCE.apply(z_u, z_e, scale, group, counts, eps)


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


def _normalize_backward(grad_hat: torch.Tensor, x_hat: torch.Tensor, norm: torch.Tensor, eps):
    """Gradient through ``x_hat = x / max(|x|, eps)`` given ``dL/dx_hat`` (rows are vectors)."""
    radial = (grad_hat * x_hat).sum(1, keepdim=True)
    # Below eps the divisor is the constant eps, so no radial component is removed.
    radial = radial * (norm > eps).to(radial.dtype)
    return (grad_hat - x_hat * radial) / norm.clamp_min(eps)


def _log_sum_exps(logits: torch.Tensor, scale: float, half: float, *, needs_grad: bool):
    """Row and column log-sum-exps of ``logits [B, B]`` (overwritten) and, if asked, the matrix
    ``(softmax over rows + softmax over columns) * half``."""
    grad_logits = None
    if 2.0 * scale <= SHARED_SHIFT_FRACTION * -math.log(torch.finfo(logits.dtype).tiny):
        # Cosines lie in [-1, 1], so every logit lies in [-scale, scale] and one exp(logits -
        # scale) serves both directions without underflow (each entry >= exp(-2 scale) is a
        # normal number): 5 passes over B x B instead of 10.
        work = logits.sub_(scale).exp_()
        sum_rows, sum_cols = work.sum(1), work.sum(0)
        lse_rows, lse_cols = sum_rows.log() + scale, sum_cols.log() + scale
        if needs_grad:
            grad_logits = torch.mul(work, (half / sum_rows).unsqueeze(1))
            grad_logits.addcmul_(work, (half / sum_cols).unsqueeze(0))
        return lse_rows, lse_cols, grad_logits
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
    return lse_rows, lse_cols, grad_logits


class _FusedInfoNCE(torch.autograd.Function):
    """Bidirectional InfoNCE on raw features with the closed-form gradient.

    Inputs: ``z_u, z_e [B, D]``, ``scale`` (0-d, = 1/tau), optionally ``group [B]`` (int64, the key
    group of each row) with ``counts [G]`` (the size of each group), and ``eps``. Outputs: the loss
    and the detached u->e and e->u terms.
    """

    @staticmethod
    def forward(ctx, z_u, z_e, scale, group, counts, eps):
        batch = z_u.shape[0]
        norm_u = torch.linalg.vector_norm(z_u, dim=1, keepdim=True)
        norm_e = torch.linalg.vector_norm(z_e, dim=1, keepdim=True)
        u_hat = z_u / norm_u.clamp_min(eps)
        e_hat = z_e / norm_e.clamp_min(eps)
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
        lse_rows, lse_cols, grad_logits = _log_sum_exps(
            logits, float(scale.detach()), 0.5 / batch, needs_grad=needs_grad
        )
        del logits
        # Each row's term is at least 0 (at least log of its number of positives); the positive
        # logit is computed apart from the log-sum-exp, so rounding could leave it a few ulps
        # below 0 when the loss is near 0. The clamp keeps log B - L <= log B.
        loss_u2e = (lse_rows - positive_u2e).clamp_min_(0.0).mean()
        loss_e2u = (lse_cols - positive_e2u).clamp_min_(0.0).mean()
        loss = 0.5 * (loss_u2e + loss_e2u)
        if needs_grad:
            # dL/dlogits without the positives: (softmax over rows + softmax over columns) / 2B.
            ctx.save_for_backward(u_hat, e_hat, norm_u, norm_e, u_bar, e_bar, grad_logits, scale)
            ctx.eps = eps
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
            grad_u = _normalize_backward(d_u * (scale * grad_loss), u_hat, norm_u, ctx.eps)
        if ctx.needs_input_grad[1]:
            grad_e = _normalize_backward(d_e * (scale * grad_loss), e_hat, norm_e, ctx.eps)
        if ctx.needs_input_grad[2]:
            # logits = scale * u_hat @ e_hat.T, so dL/dscale = sum_ij dL/dlogits_ij (u_i . e_j).
            grad_scale = ((d_u * u_hat).sum() * grad_loss).reshape(scale.shape)
        return grad_u, grad_e, grad_scale, None, None, None
