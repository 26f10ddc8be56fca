"""Projectors T_u and T_e into the shared space Z (paper Eq. 1)."""

from __future__ import annotations

import torch
from torch import nn

from mirror_align.errors import UserInputError

PROJECTOR_KINDS = ("linear", "mlp")


def make_projector(in_dim: int, out_dim: int = 1024, kind: str = "linear") -> nn.Module:
    """A map from ``[B, in_dim]`` to ``[B, out_dim]``.

    ``linear`` is the paper's choice. ``mlp`` (Linear-GELU-Linear, hidden width ``out_dim``) exists
    to test the paper's claim that a linear map is sufficient.
    """
    if kind == "linear":
        return nn.Linear(in_dim, out_dim)
    if kind == "mlp":
        return nn.Sequential(nn.Linear(in_dim, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim))
    raise UserInputError(
        f"projector: unknown kind {kind!r}; choose one of {', '.join(PROJECTOR_KINDS)}"
    )


def count_parameters(module: nn.Module) -> int:
    """Number of trainable scalars in ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


@torch.no_grad()
def project_in_chunks(projector: nn.Module, x: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
    """Apply ``projector`` to ``x [N, D]`` in chunks of rows, without gradient."""
    return torch.cat([projector(x[i : i + chunk]) for i in range(0, x.shape[0], chunk)], dim=0)
