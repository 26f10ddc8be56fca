"""Optimizers and the learning-rate schedule.

LAMB comes from the maintained ``pytorch-optimizer`` package (the paper's EE optimizer, Table 5);
AdamW and momentum SGD are offered for comparison. The schedule is linear warm-up then cosine decay to
``min_lr_ratio * lr``, as a ``LambdaLR`` so its state checkpoints and resumes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from pytorch_optimizer import Lamb

from mirror_align.errors import UserInputError

OPTIMIZERS = ("lamb", "adamw", "sgd")


def build_optimizer(
    param_groups: Iterable[dict[str, Any]], name: str = "lamb", weight_decay: float = 0.0
) -> torch.optim.Optimizer:
    """An optimizer over ``param_groups`` (each with its own ``lr``)."""
    groups = [g for g in param_groups if g["params"]]
    if name == "lamb":
        # Gradient clipping happens in the loop; LAMB's own max_grad_norm would clip a second time.
        return Lamb(groups, weight_decay=weight_decay, max_grad_norm=0.0)
    if name == "adamw":
        return torch.optim.AdamW(groups, weight_decay=weight_decay)
    if name == "sgd":
        # Momentum SGD: its update is linear in the gradient, so it is what equality tests use.
        return torch.optim.SGD(groups, momentum=0.9, weight_decay=weight_decay)
    raise UserInputError(f"optimizer: unknown name {name!r}; choose one of {', '.join(OPTIMIZERS)}")


def warmup_cosine_factor(
    step: int, total_steps: int, warmup_steps: int, min_lr_ratio: float
) -> float:
    """The learning-rate multiplier at ``step``: linear warm-up, then cosine down to ``min_lr_ratio``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int, min_lr_ratio: float = 0.0
) -> torch.optim.lr_scheduler.LambdaLR:
    """Warm-up + cosine ``LambdaLR`` stepped once per optimisation step."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_cosine_factor(step, total_steps, warmup_steps, min_lr_ratio)
    )
