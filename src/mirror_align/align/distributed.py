"""Gathering features across ``torch.distributed`` ranks for global negatives (open_clip pattern)."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn


def rank_and_world_size() -> tuple[int, int]:
    """``(rank, world_size)``, or ``(0, 1)`` when no process group is initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_features(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x [b, D]`` of every rank to ``[world * b, D]``, keeping the gradient.

    The backward pass sums the gradients that every rank computed for this rank's slice. With a
    per-rank loss ``L_r`` over local anchors against the gathered batch (so that the global loss is
    ``L = mean_r L_r``), the gradient that arrives at rank r's ``x`` is
    ``sum_r' dL_r'/dx_r = world * dL/dx_r``. DistributedDataParallel averages parameter gradients
    over ranks, which divides by ``world`` again, so the averaged gradients equal those of the
    single-process loss on the concatenated batch. All ranks must pass the same ``b``.
    """
    return torch.cat(dist_fn.all_gather(x.contiguous()), dim=0)


@torch.no_grad()
def gather_keys(keys: torch.Tensor) -> torch.Tensor:
    """Concatenate the integer keys ``[b]`` of every rank to ``[world * b]`` (no gradient)."""
    _, world = rank_and_world_size()
    parts = [torch.empty_like(keys) for _ in range(world)]
    dist.all_gather(parts, keys.contiguous())
    return torch.cat(parts, dim=0)
