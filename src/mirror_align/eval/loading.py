"""Rebuild a trained run's modules from its checkpoint files (no pickled objects)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from mirror_align.config.experiment import ExperimentConfig, experiment_from_dict
from mirror_align.errors import UserInputError
from mirror_align.models.factory import build_models
from mirror_align.train.checkpoint import (
    latest_checkpoint,
    list_checkpoints,
    load_config,
    load_modules,
    load_weights,
)


@dataclass
class LoadedRun:
    """A run at one checkpoint: its config, method, instruction table and modules (eval mode)."""

    run_dir: Path
    name: str  # the run folder's name, used as ``run`` in metrics
    step: int
    method: str
    config: ExperimentConfig
    instructions: list[str]
    modules: dict[str, nn.Module]


def resolve_checkpoint(run_dir: str | Path, step: int | None = None) -> tuple[int, Path]:
    """``(step, folder)`` of checkpoint ``step``, or of the latest complete one."""
    run_dir = Path(run_dir)
    if step is None:
        folder = latest_checkpoint(run_dir)
        if folder is None:
            raise UserInputError(
                f"{run_dir}: no complete checkpoint (train it first with `mirror-align train`)"
            )
        return int(folder.name.split("_")[1]), folder
    for found_step, folder in list_checkpoints(run_dir):
        if found_step == step:
            return step, folder
    steps = [s for s, _ in list_checkpoints(run_dir)]
    raise UserInputError(f"{run_dir}: no checkpoint at step {step}; available: {steps}")


def load_run(run_dir: str | Path, step: int | None = None) -> LoadedRun:
    """Load the run in ``run_dir`` at ``step`` (default: its latest checkpoint)."""
    run_dir = Path(run_dir)
    step, folder = resolve_checkpoint(run_dir, step)
    meta = load_config(folder)
    config = experiment_from_dict(meta["experiment"], where=str(folder / "config.json"))
    modules = build_models(config, meta["instructions"], meta["method"])
    load_modules(modules, load_weights(folder), str(folder))
    for module in modules.values():
        module.eval()
    return LoadedRun(
        run_dir, run_dir.name, step, meta["method"], config, meta["instructions"], modules
    )
