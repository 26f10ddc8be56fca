"""torchrun/DDP detection: ``RANK``/``WORLD_SIZE`` in the environment select distributed mode.

On a CPU the backend is gloo, on GPUs nccl. Only rank 0 logs and writes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits in the (possibly single-process) job."""

    rank: int = 0  # global rank
    world_size: int = 1  # number of processes
    local_rank: int = 0  # rank on this machine (selects the GPU)
    device: str = "cpu"  # torch device string for this rank

    @property
    def is_main(self) -> bool:
        """True on the rank that logs and writes files."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """True when a process group with more than one rank is running."""
        return self.world_size > 1


def init_distributed() -> DistributedContext:
    """Initialise the process group when launched by torchrun; a no-op for a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        device = "cuda" if torch.cuda.is_available() else "cpu"
        return DistributedContext(device=device)
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    device = "cpu"
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    return DistributedContext(rank=rank, world_size=world, local_rank=local_rank, device=device)


def shutdown_distributed() -> None:
    """Destroy the process group if one is running."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
