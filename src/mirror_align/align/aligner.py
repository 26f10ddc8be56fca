"""The aligner: two projectors into the shared space Z plus the alignment loss.

Drop-in usage with any two models that produce ``u [B, du]`` and ``e [B, de]``::

    aligner = Aligner(du, de)                     # linear, 1024-d, tau=0.1 (the paper)
    out = aligner(u, e, keys=instruction_ids)     # keys only matter in multi-positive mode
    (loss_au + loss_ee + 0.5 * out.loss).backward()
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mirror_align.align.loss import AlignmentLoss, mi_lower_bound
from mirror_align.align.projector import make_projector


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
