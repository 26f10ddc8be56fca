"""The aligner: two projectors into the shared space Z plus the alignment loss with its temperature.

Drop-in usage with any two models that produce ``u [B, du]`` and ``e [B, de]``::

    aligner = Aligner(du, de)                     # linear, 1024-d, tau=0.1 (the paper)
    out = aligner(u, e, keys=instruction_ids)     # keys only matter in multi-positive mode
    (loss_au + loss_ee + 0.5 * out.loss).backward()
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from mirror_align.align.loss import alignment_loss, mi_lower_bound
from mirror_align.align.projector import make_projector
from mirror_align.errors import UserInputError


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
        *,
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
            z_u, z_e, self.tau, keys if self.multi_positive else None, gather=self.gather
        )


@dataclass
class AlignmentOutput:
    """What one aligner call returns.

    ``loss`` is a scalar with gradient; ``z_u``, ``z_e`` are the projected ``[B, dim]`` features;
    ``u2e`` and ``e2u`` are the two directional terms and ``mi_lower_bound`` is log(B) - loss, all in
    nats; ``tau`` is the temperature used. With ``torch.distributed`` and gathering, ``loss`` is
    this rank's share (its anchors against the global batch; the mean over ranks is the global
    loss) and ``mi_lower_bound`` uses the global batch size.
    """

    loss: torch.Tensor
    z_u: torch.Tensor
    z_e: torch.Tensor
    u2e: float
    e2u: float
    mi_lower_bound: float
    tau: float


class Aligner(nn.Module):
    """``T_u``, ``T_e`` and the bidirectional InfoNCE loss (paper Sec. 3, Eq. 1-2)."""

    def __init__(
        self,
        du: int,
        de: int,
        dim: int = 1024,
        projector: str = "linear",
        tau: float = 0.1,
        *,
        learnable_tau: bool = False,
        multi_positive: bool = False,
        gather: bool = True,
    ) -> None:
        super().__init__()
        self.project_u = make_projector(du, dim, projector)
        self.project_e = make_projector(de, dim, projector)
        self.criterion = AlignmentLoss(
            tau=tau, learnable_tau=learnable_tau, multi_positive=multi_positive, gather=gather
        )

    def forward(
        self, u: torch.Tensor, e: torch.Tensor, keys: torch.Tensor | None = None
    ) -> AlignmentOutput:
        """Project ``u [B, du]`` and ``e [B, de]`` and compute the loss; ``keys [B]`` optional."""
        z_u, z_e = self.project_u(u), self.project_e(e)
        loss, parts = self.criterion(z_u, z_e, keys)
        batch_size = int(parts["batch_size"])
        return AlignmentOutput(
            loss=loss,
            z_u=z_u,
            z_e=z_e,
            u2e=float(parts["u2e"]),
            e2u=float(parts["e2u"]),
            mi_lower_bound=mi_lower_bound(loss.detach(), batch_size),
            tau=float(self.criterion.tau.detach()),
        )
