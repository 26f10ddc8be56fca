"""Build the modules a method trains from an experiment config (lerobot's ``make_policy``).

The factory is the only place that maps a method (``au``, ``ee``, ``mn``) to concrete models, so
the trainer, the evaluation and the probing experiments all build identical modules.
"""

from __future__ import annotations

import torch
from torch import nn

from mirror_align.align import Aligner
from mirror_align.config.experiment import METHODS, ExperimentConfig
from mirror_align.errors import UserInputError
from mirror_align.models.policy import KeyframePolicy
from mirror_align.models.video_text import VideoTextModel


def build_models(
    config: ExperimentConfig, instructions: list[str], method: str
) -> dict[str, nn.Module]:
    """The modules a method trains, each initialised from its own seed so that the AU model of
    the AU baseline and of MN (and the EE models) start from identical weights."""
    if method not in METHODS:
        raise UserInputError(f"--method: unknown {method!r}; choose one of {', '.join(METHODS)}")
    modules: dict[str, nn.Module] = {}
    if method in ("au", "mn"):
        torch.manual_seed(config.seed * 1000 + 1)
        modules["au"] = VideoTextModel(config.au, instructions)
    if method in ("ee", "mn"):
        torch.manual_seed(config.seed * 1000 + 2)
        modules["ee"] = KeyframePolicy(config.ee, instructions)
    if method == "mn":
        torch.manual_seed(config.seed * 1000 + 3)
        a = config.align
        modules["aligner"] = Aligner(
            modules["au"].representation_dim,
            modules["ee"].representation_dim,
            dim=a.dim,
            projector=a.projector,
            tau=a.tau,
            learnable_tau=a.learnable_tau,
            multi_positive=a.multi_positive,
        )
    return modules
