"""The experiment config: data, the two models, the aligner, training and evaluation.

Presets are packaged in ``mirror_align/config/presets/<preset>.yaml`` (:func:`preset_yaml`). A
YAML file names a ``model_preset`` (tiny, quick or paper, see :mod:`mirror_align.models.config`)
whose model configs it may override field by field; every other section overrides the dataclass
defaults below. ``--set key=value`` edits the result. ``mirror-align config show`` prints every
field with the comment above it here.

Facts of the data (image size, cameras, frames per video, workspace bounds, the instruction table)
are stated once: the dataset records them, and the models are sized from them when they are built
(:func:`mirror_align.models.factory.data_facts`). The few fields below that state such a fact are
what ``reproduce`` generates, and training checks them against the dataset before decoding it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from mirror_align.config import apply_overrides, config_from_dict, config_to_dict, load_yaml
from mirror_align.errors import UserInputError
from mirror_align.models.config import (
    PolicyConfig,
    VideoTextConfig,
    policy_preset,
    validate_policy,
    validate_video_text,
    video_text_preset,
)


@dataclass
class DataConfig:
    """Which demonstrations to learn from and how to read them."""

    # Dataset folder made by `mirror-align generate` (relative paths are relative to the cwd).
    path: str = "data/quick"
    # Tasks to train and evaluate on (empty: every task of the dataset).
    tasks: list[str] = field(default_factory=list)
    # Tasks that `reproduce` generates into `path` (empty: all 18 MirrorBench tasks). Generation
    # only: training reads `tasks`, so a preset's list never narrows a user's own dataset.
    generate_tasks: list[str] = field(default_factory=list)
    # Episodes per task and split that `reproduce` generates (train, val, test).
    episodes_per_task: dict[str, int] = field(
        default_factory=lambda: {"train": 100, "val": 25, "test": 25}
    )
    # Image side in pixels: `reproduce` generates at this size, and training checks that the
    # dataset holds it before decoding anything (the models take their sizes from the dataset).
    # null: whatever the dataset holds (training only).
    image_size: int | None = 64
    # Frames per front-camera video that `reproduce` generates. Generation only: the AU model
    # samples au.num_frames frames (one per equal segment) from a stored video of any length.
    video_frames: int = 16
    # ARP/PerAct scene augmentation of EE samples (translation ±0.125 m, yaw ±45°).
    augment: bool = True
    # Keep decoded episodes in memory (no re-decoding every epoch).
    cache: bool = True


@dataclass
class AlignConfig:
    """The mirror-neuron aligner (paper Sec. 3, supplement C.3)."""

    # Shared space size (the paper: 1024).
    dim: int = 1024
    # Projector kind: "linear" (the paper) or "mlp" (tests the linear-sufficiency claim).
    projector: Literal["linear", "mlp"] = "linear"
    # InfoNCE temperature (the paper: 0.1).
    tau: float = 0.1
    # Learn tau (clamped to [0.01, 1]) instead of fixing it.
    learnable_tau: bool = False
    # Every pair sharing the pairing key counts as a positive (SupCon L_out) instead of one.
    multi_positive: bool = False
    # Positive pairs share the "episode", the "instruction" (the paper) or the "class" (task).
    pairing: Literal["episode", "instruction", "class"] = "instruction"
    # Learning rate of the two projectors (the paper: 1e-4).
    lr: float = 1e-4
    # lambda_align in L = L_AU + lambda_EE L_EE + lambda_align L_align (the paper: 0.5).
    weight: float = 0.5


@dataclass
class TrainConfig:
    """The optimisation loop shared by the au, ee and mn methods."""

    # Optimisation steps.
    steps: int = 1000
    # Pairs per step (global, over all DDP ranks).
    batch_size: int = 32
    # Share of steps on which the AU task loss is applied (supplement C.3: 20%); the AU baseline
    # runs exactly those steps, so it sees the same AU batches as MN.
    au_share: float = 0.2
    # lambda_EE (the paper: 1).
    ee_weight: float = 1.0
    # Optimizer: "lamb" (the paper's EE optimizer), "adamw" or "sgd" (momentum 0.9).
    optimizer: Literal["lamb", "adamw", "sgd"] = "lamb"
    # Decoupled weight decay.
    weight_decay: float = 0.0
    # Linear warm-up steps before the cosine decay.
    warmup_steps: int = 50
    # Final learning rate as a fraction of the peak.
    min_lr_ratio: float = 0.05
    # Gradient norm clip (0 disables).
    grad_clip: float = 1.0
    # Log every this many steps (JSONL + TensorBoard).
    log_every: int = 10
    # Save a checkpoint every this many steps (and always at the end).
    checkpoint_every: int = 250
    # Complete checkpoints to keep (older ones are deleted); 0 keeps all.
    keep_checkpoints: int = 0
    # torch threads per process (0: min(usable CPUs, 8), mirror_align.threads).
    threads: int = 0
    # reproduce/ablate: independent runs (seeds, ablation cells) trained at once, each in its own
    # 1-thread process (mirror_align.pipeline.parallel); 1 trains them one after another with
    # `threads`. On 2 cores two 1-thread processes did ~1.4x the work of one 2-thread process.
    parallel_runs: int = 1
    # Offline keyframe metrics of the EE on val every this many steps, into metrics.jsonl and
    # TensorBoard (mirror_align.eval.offline; seconds each); 0 disables.
    keyframe_metrics_every: int = 0


@dataclass
class EvalConfig:
    """Evaluation protocol (Tables 1 and 2)."""

    # Rollout episodes per task and evaluation seed (the paper: 25).
    episodes_per_task: int = 25
    # Evaluation seeds; each uses a different set of test scenes (the paper: 3).
    eval_seeds: int = 3
    # Keyframe steps per rollout (the paper: 25).
    max_steps: int = 25
    # Processes for generation and rollouts (the default of `reproduce --workers`, `ablate
    # --workers` and `evaluate --workers`).
    workers: int = 2
    # Dataset splits whose episodes the probing experiments (Fig. 3, Fig. 6) read; EE features cost a
    # greedy decoding per keyframe and checkpoint, so large presets probe fewer episodes.
    probe_splits: list[str] = field(default_factory=lambda: ["train", "val", "test"])


@dataclass
class ExperimentConfig:
    """Everything a run is made from; saved as ``config.json`` in every checkpoint."""

    # Name of the preset this config came from (informational).
    preset: str = "quick"
    # Model size preset the au/ee sections start from: tiny, quick or paper.
    model_preset: str = "quick"
    # Global seed (data order, initialisation, augmentation).
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    au: VideoTextConfig = field(default_factory=VideoTextConfig)
    ee: PolicyConfig = field(default_factory=PolicyConfig)
    align: AlignConfig = field(default_factory=AlignConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict update (sections merge, leaves replace)."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def experiment_from_dict(data: dict[str, Any], where: str = "config") -> ExperimentConfig:
    """Build and validate an :class:`ExperimentConfig` from a (partial) nested dict."""
    model_preset = data.get("model_preset", "quick")
    base = config_to_dict(
        ExperimentConfig(
            model_preset=model_preset,
            au=video_text_preset(model_preset),
            ee=policy_preset(model_preset),
        )
    )
    config = config_from_dict(ExperimentConfig, _merge(base, data), where)
    validate_experiment(config)
    return config


PRESET_NAMES = ("tiny", "quick", "paper")


def preset_yaml(name: str) -> str:
    """The text of packaged preset ``name``; raises ``UserInputError`` naming the valid choices."""
    if name not in PRESET_NAMES:
        raise UserInputError(f"preset: unknown {name!r}; choose one of {', '.join(PRESET_NAMES)}")
    return (resources.files("mirror_align.config") / "presets" / f"{name}.yaml").read_text()


def load_experiment(source: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read a packaged preset (``tiny``, ``quick``, ``paper``) or any YAML path, then apply the
    ``--set`` overrides."""
    if str(source) in PRESET_NAMES:
        data = yaml.safe_load(preset_yaml(str(source))) or {}
    else:
        data = load_yaml(source)
    data = apply_overrides(data, overrides or [])
    return experiment_from_dict(data, where=str(source))


def validate_experiment(config: ExperimentConfig) -> None:
    """Raise ``UserInputError`` naming the field when sections disagree."""
    validate_video_text(config.au)
    validate_policy(config.ee)
    if config.data.image_size is not None and config.data.image_size < 8:
        raise UserInputError(f"data.image_size: must be >= 8 or null, got {config.data.image_size}")
    if config.data.video_frames < 1:
        raise UserInputError(f"data.video_frames: must be >= 1, got {config.data.video_frames}")
    if config.eval.workers < 1:
        raise UserInputError(f"eval.workers: must be >= 1, got {config.eval.workers}")
    if not 0.0 < config.train.au_share <= 1.0:
        raise UserInputError(f"train.au_share: must be in (0, 1], got {config.train.au_share}")
    if config.train.parallel_runs < 1:
        raise UserInputError(f"train.parallel_runs: must be >= 1, got {config.train.parallel_runs}")
    if config.train.steps < 1 or config.train.batch_size < 1:
        raise UserInputError("train.steps and train.batch_size must be >= 1")
    if not 0.01 <= config.align.tau <= 1.0:
        raise UserInputError(f"align.tau: must be in [0.01, 1], got {config.align.tau}")


def check_generation(config: ExperimentConfig) -> None:
    """Raise ``UserInputError`` unless ``config`` says what to generate (``reproduce``, ``ablate``):
    a null ``data.image_size`` takes the dataset's size, so there is nothing to generate at."""
    if config.data.image_size is None:
        raise UserInputError(
            "data.image_size: reproduce generates data and needs a size (null is for training "
            "on an existing dataset only)"
        )


def is_au_step(step: int, au_share: float) -> bool:
    """Whether the AU task loss applies at ``step`` (0-based): spread evenly, ``au_share`` of steps.

    Step s is an AU step when floor((s + 1) * share) > floor(s * share), so any prefix of n steps
    holds floor(n * share) AU steps (with share 0.2: steps 4, 9, 14, ...).
    """
    return int((step + 1) * au_share + 1e-9) > int(step * au_share + 1e-9)


def loop_steps(config: ExperimentConfig, method: str) -> list[int]:
    """The global steps a method runs, in order: every step, or only the AU steps for the AU
    baseline (so it sees exactly the AU batches of MN). Its length is the run's loop iterations."""
    steps = range(config.train.steps)
    if method == "au":
        return [s for s in steps if is_au_step(s, config.train.au_share)]
    return list(steps)
