"""The one training loop: ``--method au`` (AU alone), ``ee`` (EE alone) or ``mn`` (both, aligned).

MN minimises paper Eq. 5, ``L = L_AU + lambda_EE L_EE + lambda_align L_align`` (:func:`compute_loss`),
with the AU task loss applied on ``train.au_share`` of the steps (supplement C.3) and the alignment
loss on every step, so its gradient reaches both models. The baselines run the same loop on the
same data: the EE baseline on every step, the AU baseline on exactly the AU steps of MN, with the
same batches, because every batch is a pure function of (seed, step, rank). The only difference is
the alignment.

:func:`train` reads top to bottom: set up (checks, threads, DDP) → data (checked against the
config before decoding, :mod:`mirror_align.train.batches`) → models (sized from the dataset,
:mod:`mirror_align.models.factory`) → optimizer and schedule → resume → the loop → ``run.json``.

Outputs in ``RUN/``: ``checkpoints/`` (see :mod:`mirror_align.train.checkpoint`),
``train_log.jsonl`` and ``tb/`` (every loss term and the MI lower bound), ``run.json`` (summary).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from mirror_align.align.aligner import AlignmentOutput
from mirror_align.align.pairing import key_field
from mirror_align.atomic import write_json_atomic
from mirror_align.config import config_to_dict
from mirror_align.config.experiment import ExperimentConfig, is_au_step, loop_steps
from mirror_align.errors import UserInputError
from mirror_align.eval.offline import TrainingKeyframeMetrics
from mirror_align.models.factory import DataFacts, build_models
from mirror_align.models.layers import ModelOutput
from mirror_align.train.batches import PairStream, open_training_data, warn
from mirror_align.train.checkpoint import (
    capture_rng_state,
    latest_checkpoint,
    load_modules,
    load_train_state,
    load_weights,
    restore_rng_state,
    save_checkpoint,
)
from mirror_align.train.distributed import DistributedContext, init_distributed
from mirror_align.train.optim import build_optimizer, build_scheduler
from mirror_align.train.run_log import RunLog

__all__ = ["PairStream", "TrainResult", "TrainingDiverged", "compute_loss", "train"]


class TrainingDiverged(RuntimeError):
    """A loss term became NaN or infinite; the message names the step and the term."""


@dataclass
class TrainResult:
    """Summary of a finished run."""

    run_dir: Path
    method: str
    steps: int  # loop iterations run in total (over all sessions of a resumed run)
    seconds: float  # wall time of this session
    samples_per_second: float  # pairs per second in this session
    last_terms: dict[str, float]


def run_config_dict(config: ExperimentConfig, method: str, facts: DataFacts) -> dict[str, Any]:
    """What ``config.json`` of every checkpoint holds: enough to rebuild the modules without the
    dataset (the experiment config plus the dataset facts the models were sized from)."""
    return {
        "method": method,
        "experiment": config_to_dict(config),
        "instructions": list(facts.instructions),
        "data_facts": facts.to_dict(),
    }


def compute_loss(
    au: ModelOutput | None,
    ee: ModelOutput | None,
    aligned: AlignmentOutput | None,
    *,
    au_step: bool,
    ee_weight: float,
    align_weight: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Paper Eq. 5: ``L = L_AU + lambda_EE L_EE + lambda_align L_align`` and its logged terms.

    ``L_AU`` counts only when ``au_step`` (supplement C.3: ``train.au_share`` of the steps); a
    model the method does not train is None and its term is absent. ``ee_weight`` is lambda_EE,
    ``align_weight`` lambda_align (the paper: 1 and 0.5). Returns the scalar loss (with gradient)
    and the detached terms ``loss_au``, ``loss_ee``, ``ee/<part>``, ``loss_align``,
    ``mi_lower_bound`` (nats) and ``loss``.
    """
    parts: list[torch.Tensor] = []
    terms: dict[str, torch.Tensor] = {}
    if au is not None and au_step:
        parts.append(au.loss)
        terms["loss_au"] = au.loss.detach()
    if ee is not None:
        parts.append(ee_weight * ee.loss)
        terms["loss_ee"] = ee.loss.detach()
        terms.update({f"ee/{k}": v for k, v in ee.terms.items() if k != "total"})
    if aligned is not None:
        parts.append(align_weight * aligned.loss)
        terms["loss_align"] = aligned.loss.detach()
        terms["mi_lower_bound"] = torch.tensor(aligned.mi_lower_bound)
    if not parts:
        raise ValueError("compute_loss: no loss term on this step")
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    terms["loss"] = total.detach()
    return total, terms


def forward_losses(
    runners: dict[str, nn.Module],
    au_batch: dict | None,
    ee_batch: dict | None,
    *,
    au_step: bool,
    config: ExperimentConfig,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Run the method's models on one step's batches and return :func:`compute_loss` of them."""
    au = runners["au"](au_batch, with_loss=au_step) if "au" in runners else None
    ee = runners["ee"](ee_batch) if "ee" in runners else None
    aligned = None
    if "aligner" in runners:
        device = au.representation.device
        keys = ee_batch[key_field(config.align.pairing)].to(device)
        aligned = runners["aligner"](au.representation, ee.representation, keys)
    return compute_loss(
        au,
        ee,
        aligned,
        au_step=au_step,
        ee_weight=config.train.ee_weight,
        align_weight=config.align.weight,
    )


def update_weights(
    total: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    params: list[torch.Tensor],
    grad_clip: float,
) -> dict[str, torch.Tensor]:
    """One optimisation step on ``total`` (lerobot's ``update_policy``): backward, clip the global
    gradient norm to ``grad_clip`` (0: no clip), step the optimizer and the schedule. Returns
    ``{"grad_norm"}`` (the norm before clipping) when clipping."""
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    out = {}
    if grad_clip > 0:
        out["grad_norm"] = nn.utils.clip_grad_norm_(params, grad_clip).detach()
    optimizer.step()
    scheduler.step()
    return out


def make_optimizer(
    modules: dict[str, nn.Module], config: ExperimentConfig
) -> tuple[torch.optim.Optimizer, list[torch.Tensor]]:
    """The optimizer over every trained module, one learning rate per group (the models' own
    groups, e.g. a slower pretrained text encoder, and the aligner at ``align.lr``); also returns
    the parameters the gradient clip covers."""
    groups: list[dict[str, Any]] = []
    if "au" in modules:
        groups += modules["au"].param_groups(config.au.lr)
    if "ee" in modules:
        groups += modules["ee"].param_groups(config.ee.lr)
    if "aligner" in modules:
        groups.append({"params": list(modules["aligner"].parameters()), "lr": config.align.lr})
    optimizer = build_optimizer(groups, config.train.optimizer, config.train.weight_decay)
    return optimizer, [p for g in groups for p in g["params"]]


def make_scheduler(
    optimizer: torch.optim.Optimizer, config: ExperimentConfig, iterations: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Warm-up then cosine over the run's ``iterations`` loop iterations.

    ``train.warmup_steps`` counts global steps. The AU baseline runs only the AU steps (a share
    ``iterations / train.steps`` of them), so its warm-up is scaled by that share: its learning rate
    then follows the same curve over the global steps as MN's (for ee and mn the share is 1).
    """
    warmup = max(1, round(config.train.warmup_steps * iterations / config.train.steps))
    return build_scheduler(optimizer, iterations, warmup, config.train.min_lr_ratio)


def resume_from(
    checkpoint: Path,
    modules: dict[str, nn.Module],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
) -> int:
    """Load weights, optimizer, schedule and RNG state of ``checkpoint``; returns the loop
    iterations it had completed."""
    load_modules(modules, load_weights(checkpoint), str(checkpoint))
    state = load_train_state(checkpoint)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    restore_rng_state(state["rng"])
    return int(state["iteration"])


def train_state(
    optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LambdaLR, iteration: int
) -> dict[str, Any]:
    """What a checkpoint keeps for :func:`resume_from`: optimizer, schedule, RNG state and the
    loop iterations completed."""
    return {
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": capture_rng_state(),
        "iteration": iteration,
    }


def _check_finite(step: int, terms: dict[str, torch.Tensor]) -> None:
    for name, value in terms.items():
        if not torch.isfinite(value).all():
            raise TrainingDiverged(
                f"step {step}: loss term {name} is {float(value)}; stopped, the last good checkpoint is kept"
            )


def _prepare(
    config: ExperimentConfig, run_dir: Path, ctx: DistributedContext, *, resume: bool
) -> tuple[ExperimentConfig, Path | None]:
    """Threads and the checks that need no data; returns the config this process trains with
    and the checkpoint to resume from (None: a fresh run)."""
    if config.train.threads > 0:
        torch.set_num_threads(config.train.threads)
    previous = latest_checkpoint(run_dir)
    if previous is not None and not resume:
        raise UserInputError(
            f"--out {run_dir} already holds a run; pass --resume to continue it or choose another --out"
        )
    if config.train.batch_size % ctx.world_size:
        raise UserInputError(
            f"train.batch_size ({config.train.batch_size}) must be divisible by the {ctx.world_size} ranks"
        )
    if ctx.enabled:
        # Under DDP the video-text loss also contrasts against every rank's clips, as the aligner does.
        config = replace(config, au=replace(config.au, gather_negatives=True))
    return config, previous


def _wrap_ddp(modules: dict[str, nn.Module], ctx: DistributedContext) -> dict[str, nn.Module]:
    """The modules as the loop calls them: DDP wrappers under torchrun, else themselves."""
    if not ctx.enabled:
        return modules
    return {
        name: DistributedDataParallel(m, find_unused_parameters=True) for name, m in modules.items()
    }


def _write_summary(result: TrainResult) -> None:
    """``RUN/run.json``: method, iterations, this session's time and throughput, last terms."""
    write_json_atomic(
        result.run_dir / "run.json",
        {
            "method": result.method,
            "steps": result.steps,
            "seconds_this_session": round(result.seconds, 2),
            "samples_per_second": round(result.samples_per_second, 2),
            "last_terms": result.last_terms,
        },
    )


def train(
    config: ExperimentConfig,
    method: str,
    run_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    dist_ctx: DistributedContext | None = None,
) -> TrainResult:
    """Train ``method`` into ``run_dir``; with ``resume`` continue from its last checkpoint."""
    ctx = dist_ctx or init_distributed()
    run_dir = Path(run_dir)
    config, previous = _prepare(config, run_dir, ctx, resume=resume)
    report = warn if ctx.is_main else None
    facts, stream = open_training_data(config, method, ctx.rank, ctx.world_size, report)
    modules = build_models(config, facts, method)
    for module in modules.values():
        module.to(ctx.device).train()
    optimizer, params = make_optimizer(modules, config)
    schedule = loop_steps(config, method)
    scheduler = make_scheduler(optimizer, config, len(schedule))
    log = RunLog(run_dir, enabled=ctx.is_main)
    done = 0
    if previous is not None:
        done = resume_from(previous, modules, optimizer, scheduler)
        log.truncate_after(schedule[done - 1] if done else -1)
    runners = _wrap_ddp(modules, ctx)
    saved, keep = run_config_dict(config, method, facts), config.train.keep_checkpoints or None
    # Offline keyframe metrics on val every train.keyframe_metrics_every steps (None: off).
    keyframes = TrainingKeyframeMetrics.for_run(config, run_dir, method, enabled=ctx.is_main)
    start, terms_out = time.perf_counter(), {}
    bar = tqdm(total=len(schedule), initial=done, desc=f"train {method}",
               disable=not (progress and ctx.is_main))  # fmt: skip
    for iteration in range(done, len(schedule)):
        step = schedule[iteration]
        au_step = is_au_step(step, config.train.au_share)
        au_batch, ee_batch = stream.batch(step, need_au="au" in modules, need_ee="ee" in modules)
        total, terms = forward_losses(runners, au_batch, ee_batch, au_step=au_step, config=config)
        _check_finite(step, terms)
        terms.update(update_weights(total, optimizer, scheduler, params, config.train.grad_clip))
        bar.update(1)
        terms_out = {k: float(v) for k, v in terms.items()}
        last = iteration == len(schedule) - 1
        if iteration % config.train.log_every == 0 or last:
            log.write(step, {**terms_out, "lr": scheduler.get_last_lr()[0], "au_step": au_step})
            bar.set_postfix(loss=f"{terms_out['loss']:.3f}")
        if ctx.is_main and ((iteration + 1) % config.train.checkpoint_every == 0 or last):
            state = train_state(optimizer, scheduler, iteration + 1)
            save_checkpoint(run_dir, step + 1, modules, saved, state, keep)
        if keyframes is not None and keyframes.due(iteration, len(schedule)):
            keyframes.run(modules["ee"], step + 1)
    bar.close()
    log.close()
    seconds = time.perf_counter() - start
    rate = (len(schedule) - done) * config.train.batch_size / seconds if seconds > 0 else math.nan
    result = TrainResult(run_dir, method, len(schedule), seconds, rate, terms_out)
    if ctx.is_main:
        _write_summary(result)
    return result
