"""Gathering rows across ``torch.distributed`` ranks for global negatives (open_clip pattern).

Ranks may hold different numbers of rows (a DDP run's last partial batch). Every rank first
gathers the others' row counts (:func:`agree_on_layout`, a small collective that also checks that
the ranks' inputs fit together, so that a mismatch raises the same clear error on every rank
instead of aborting or hanging inside the feature gather); :func:`gather_rows` then pads each
rank's rows to the largest count, gathers, and cuts the padding out again, so padding never
reaches the loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn

from mirror_align.errors import UserInputError


def rank_and_world_size() -> tuple[int, int]:
    """``(rank, world_size)``, or ``(0, 1)`` when no process group is initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@dataclass(frozen=True)
class BatchLayout:
    """Where this rank's rows sit in the global batch: ``sizes[r]`` rows on rank ``r``."""

    rank: int
    sizes: tuple[int, ...]

    @property
    def world(self) -> int:
        return len(self.sizes)

    @property
    def total(self) -> int:
        """The global batch size B."""
        return sum(self.sizes)

    @property
    def offset(self) -> int:
        """The global index of this rank's first row."""
        return sum(self.sizes[: self.rank])


def local_layout(rows: int) -> BatchLayout:
    """The layout of one process holding the whole batch."""
    return BatchLayout(rank=0, sizes=(rows,))


@torch.no_grad()
def agree_on_layout(
    rows: int, dim: int, *, has_keys: bool, problem: str | None, device: torch.device
) -> BatchLayout:
    """Gather every rank's row count, feature size, key use and input check before any features.

    ``problem`` is this rank's input error (None when its inputs are valid). Every rank raises the
    same :class:`UserInputError` when any rank's inputs are invalid, when the ranks' feature
    sizes differ, when some ranks pass keys and others do not, or when every rank is empty.
    """
    rank, world = rank_and_world_size()
    meta = torch.tensor([rows, dim, int(has_keys), int(problem is not None)], device=device)
    parts = [torch.empty_like(meta) for _ in range(world)]
    dist.all_gather(parts, meta)
    table = [part.tolist() for part in parts]
    failed = [r for r, row in enumerate(table) if row[3]]
    if failed:
        # Only now, and on every rank, fetch the messages: the common path stays one collective.
        messages = [None] * world
        dist.all_gather_object(messages, problem)
        raise UserInputError(f"{messages[failed[0]]} (rank {failed[0]} of {world})")
    dims = [row[1] for row in table]
    if len(set(dims)) > 1:
        raise UserInputError(
            f"alignment loss: every rank must pass features of one size D; got D = {dims} by rank"
        )
    with_keys = [bool(row[2]) for row in table]
    if len(set(with_keys)) > 1:
        raise UserInputError(
            f"alignment loss: pass keys on every rank or on none; ranks passing keys: {with_keys}"
        )
    sizes = tuple(row[0] for row in table)
    if sum(sizes) == 0:
        raise UserInputError("alignment loss: the batch is empty on every rank (B = 0)")
    return BatchLayout(rank=rank, sizes=sizes)


def gather_rows(x: torch.Tensor, layout: BatchLayout) -> torch.Tensor:
    """Concatenate the rows of ``x [sizes[rank], ...]`` of every rank to ``[total, ...]``.

    The gradient is kept when ``x`` requires one: the backward pass sums the gradients that
    every rank computed for this rank's rows. With a per-rank loss ``L_r`` whose sum over ranks is
    ``world`` times the global loss ``L``, the gradient arriving at rank r's ``x`` is therefore
    ``world * dL/dx_r``; DistributedDataParallel averages parameter gradients over ranks, which
    divides by ``world`` again, so the averaged gradients equal those of the single-process loss
    on the concatenated batch. On one process ``x`` is returned as it is.
    """
    if layout.world == 1:
        return x
    longest = max(layout.sizes)
    padding = x.new_zeros((longest - x.shape[0], *x.shape[1:]))
    padded = torch.cat([x, padding]).contiguous() if padding.shape[0] else x.contiguous()
    if x.requires_grad:
        parts = dist_fn.all_gather(padded)
    else:
        parts = [torch.empty_like(padded) for _ in range(layout.world)]
        dist.all_gather(parts, padded)
    return torch.cat([part[:size] for part, size in zip(parts, layout.sizes, strict=True)])
