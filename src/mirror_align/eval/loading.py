"""Rebuild a trained run's modules from its checkpoint files (no pickled objects).

A checkpoint's ``config.json`` holds the experiment config and the dataset facts the models were
sized from (:class:`mirror_align.models.factory.DataFacts`), so no dataset is needed. Checkpoints
written before the facts were stored kept them in the model sections (``ee.image_size``,
``ee.num_views``, ``ee.workspace_bounds``, ``au.image_size``); :func:`run_from_config` moves
them out, so those runs still load.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from mirror_align.config.experiment import ExperimentConfig, experiment_from_dict
from mirror_align.constants import CAMERAS
from mirror_align.errors import UserInputError
from mirror_align.models.factory import DataFacts, build_models
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
    facts: DataFacts  # what the models took from the dataset (image size, cameras, bounds)


def resolve_checkpoint(run_dir: str | Path, step: int | None = None) -> tuple[int, Path]:
    """``(step, folder)`` of checkpoint ``step``, or of the latest complete one. Raises
    :class:`UserInputError` naming ``run_dir`` when it is not a folder or lacks that checkpoint."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserInputError(f"{run_dir}: no such run folder (a `mirror-align train --out` folder)")
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


def _legacy_facts(meta: dict[str, Any]) -> tuple[dict[str, Any], DataFacts]:
    """The experiment dict without the model-section data facts of an old ``config.json``, and
    those facts (the AU's own image size becomes ``au.resize_to`` when it differed)."""
    experiment = copy.deepcopy(meta["experiment"])
    ee, au, data = experiment["ee"], experiment["au"], experiment["data"]
    size = int(ee.pop("image_size", data.get("image_size") or au.get("image_size")))
    views = int(ee.pop("num_views", len(CAMERAS)))
    bounds = ee.pop("workspace_bounds", None)
    au_size = au.pop("image_size", size)
    if au_size != size:
        au["resize_to"] = au_size
    cameras = list(CAMERAS[:views]) if views <= len(CAMERAS) else [f"view{i}" for i in range(views)]
    facts = DataFacts.from_dict(
        {
            "image_size": size,
            "cameras": cameras,
            "video_frames": data.get("video_frames"),
            "workspace_bounds": bounds,
            "instructions": meta["instructions"],
        }
    )
    return experiment, facts


def run_from_config(
    meta: dict[str, Any], where: str
) -> tuple[ExperimentConfig, DataFacts, dict[str, nn.Module]]:
    """The config, dataset facts and freshly initialised modules of a checkpoint's ``config.json``
    (``meta``); ``where`` names the file in errors."""
    if "data_facts" in meta:
        experiment, facts = meta["experiment"], DataFacts.from_dict(meta["data_facts"])
    else:
        experiment, facts = _legacy_facts(meta)
    config = experiment_from_dict(experiment, where=where)
    return config, facts, build_models(config, facts, meta["method"])


def load_run(run_dir: str | Path, step: int | None = None) -> LoadedRun:
    """Load the run in ``run_dir`` at ``step`` (default: its latest checkpoint)."""
    run_dir = Path(run_dir)
    step, folder = resolve_checkpoint(run_dir, step)
    meta = load_config(folder)
    config, facts, modules = run_from_config(meta, str(folder / "config.json"))
    load_modules(modules, load_weights(folder), str(folder))
    for module in modules.values():
        module.eval()
    return LoadedRun(
        run_dir, run_dir.name, step, meta["method"], config, meta["instructions"], modules, facts
    )
