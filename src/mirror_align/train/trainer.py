"""The one training loop: ``--method au`` (AU alone), ``ee`` (EE alone) or ``mn`` (both, aligned).

MN minimises paper Eq. 5, ``L = L_AU + lambda_EE L_EE + lambda_align L_align``, with the AU task
loss applied on ``train.au_share`` of the steps (supplement C.3) and the alignment loss on every
step, so its gradient reaches both models. The baselines run the same loop on the same data: the
EE baseline on every step, the AU baseline on exactly the AU steps of MN, with the same batches,
because every batch is a pure function of (seed, step, rank). The only difference is the alignment.

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

from mirror_align.align.pairing import key_field
from mirror_align.atomic import write_json_atomic
from mirror_align.config import config_to_dict
from mirror_align.config.experiment import ExperimentConfig, is_au_step
from mirror_align.data.loaders import AUClipDataset, EEKeyframeDataset, collate
from mirror_align.data.paired import PairedBatchSampler
from mirror_align.errors import UserInputError
from mirror_align.eval.offline import TrainingKeyframeMetrics
from mirror_align.models.factory import build_models
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


def run_config_dict(config: ExperimentConfig, method: str, instructions: list[str]) -> dict:
    """What ``config.json`` of every checkpoint holds: enough to rebuild the modules."""
    return {"method": method, "experiment": config_to_dict(config), "instructions": instructions}


class PairStream:
    """The batch of every step as a pure function of (seed, step).

    Index pairs of the global batch come from :class:`PairedBatchSampler` (epoch = step //
    batches_per_epoch); rank r of N reads rows ``[r*B/N, (r+1)*B/N)`` of it. Every item's
    augmentation RNG is re-seeded from (step, its row in the global batch), so a resumed run, and a
    DDP run, read exactly the samples of the uninterrupted single-process run.
    """

    def __init__(
        self, config: ExperimentConfig, method: str, rank: int = 0, world_size: int = 1
    ) -> None:
        data = config.data
        tasks = data.tasks or None
        # The AU baseline never reads EE images (and vice versa), but needs the other side's keys
        # to draw the same pairs as MN: that side is opened without its cache.
        self.au = AUClipDataset(
            data.path,
            "train",
            config.au.num_frames,
            True,
            tasks,
            False,
            data.cache and method != "ee",
            config.seed,
        )
        self.ee = EEKeyframeDataset(
            data.path,
            "train",
            data.augment,
            tasks,
            False,
            data.cache and method != "au",
            config.seed,
        )
        self.sampler = PairedBatchSampler(
            self.au, self.ee, config.train.batch_size, config.align.pairing, config.seed
        )
        self.local = config.train.batch_size // world_size
        self.first_row = rank * self.local
        self._epoch, self._batches = -1, []

    def pairs(self, step: int) -> list[tuple[int, int]]:
        """This rank's (au_index, ee_index) pairs at ``step``."""
        epoch, offset = divmod(step, len(self.sampler))
        if epoch != self._epoch:
            self.sampler.set_epoch(epoch)
            self._epoch, self._batches = epoch, list(self.sampler)
        return self._batches[offset][self.first_row : self.first_row + self.local]

    def batch(self, step: int, need_au: bool, need_ee: bool) -> tuple[dict | None, dict | None]:
        """Collated (AU batch, EE batch) of this rank at ``step``; a side not needed is None."""
        au_items, ee_items = [], []
        for row, (i, j) in enumerate(self.pairs(step), start=self.first_row):
            item_seed = step * 100_003 + row
            if need_au:
                self.au.reseed(item_seed)
                au_items.append(self.au[i])
            if need_ee:
                self.ee.reseed(item_seed)
                ee_items.append(self.ee[j])
        return (collate(au_items) if need_au else None), (collate(ee_items) if need_ee else None)


def _unwrap(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, DistributedDataParallel) else module


def _check_finite(step: int, terms: dict[str, torch.Tensor]) -> None:
    for name, value in terms.items():
        if not torch.isfinite(value).all():
            raise TrainingDiverged(
                f"step {step}: loss term {name} is {float(value)}; stopped, the last good checkpoint is kept"
            )


def loop_steps(config: ExperimentConfig, method: str) -> list[int]:
    """The global steps a method runs: all of them, or only the AU steps for the AU baseline."""
    steps = range(config.train.steps)
    if method == "au":
        return [s for s in steps if is_au_step(s, config.train.au_share)]
    return list(steps)


def train(
    config: ExperimentConfig,
    method: str,
    run_dir: str | Path,
    resume: bool = False,
    progress: bool = True,
    dist_ctx: DistributedContext | None = None,
) -> TrainResult:
    """Train ``method`` into ``run_dir``; with ``resume`` continue from its last checkpoint."""
    ctx = dist_ctx or init_distributed()
    run_dir = Path(run_dir)
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
    stream = PairStream(config, method, ctx.rank, ctx.world_size)
    instructions = stream.ee.reader.instruction_texts()
    modules = build_models(config, instructions, method)
    for module in modules.values():
        module.to(ctx.device).train()
    groups: list[dict[str, Any]] = []
    if "au" in modules:
        groups += modules["au"].param_groups(config.au.lr)
    if "ee" in modules:
        groups += modules["ee"].param_groups(config.ee.lr)
    if "aligner" in modules:
        groups.append({"params": list(modules["aligner"].parameters()), "lr": config.align.lr})
    optimizer = build_optimizer(groups, config.train.optimizer, config.train.weight_decay)
    schedule = loop_steps(config, method)
    warmup = max(1, round(config.train.warmup_steps * len(schedule) / config.train.steps))
    scheduler = build_scheduler(optimizer, len(schedule), warmup, config.train.min_lr_ratio)
    log = RunLog(run_dir, enabled=ctx.is_main)
    done = 0
    if previous is not None:
        load_modules(modules, load_weights(previous), str(previous))
        state = load_train_state(previous)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        restore_rng_state(state["rng"])
        done = int(state["iteration"])
        log.truncate_after(schedule[done - 1] if done else -1)
    runners = modules
    if ctx.enabled:
        runners = {
            name: DistributedDataParallel(m, find_unused_parameters=True)
            for name, m in modules.items()
        }
    meta = run_config_dict(config, method, instructions)
    pairing_key = key_field(config.align.pairing)
    keyframes = TrainingKeyframeMetrics.for_run(config, run_dir, method, ctx.is_main)

    def checkpoint(iteration: int) -> None:
        if ctx.is_main:
            state = {
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": capture_rng_state(),
                "iteration": iteration,
            }
            keep = config.train.keep_checkpoints or None
            save_checkpoint(run_dir, schedule[iteration - 1] + 1, modules, meta, state, keep)

    start, terms_out = time.perf_counter(), {}
    bar = tqdm(
        total=len(schedule),
        initial=done,
        desc=f"train {method}",
        disable=not (progress and ctx.is_main),
    )
    for iteration in range(done, len(schedule)):
        step = schedule[iteration]
        au_step = is_au_step(step, config.train.au_share)
        au_batch, ee_batch = stream.batch(step, "au" in modules, "ee" in modules)
        terms: dict[str, torch.Tensor] = {}
        total = torch.zeros((), device=ctx.device)
        if "au" in modules:
            au_out = runners["au"](au_batch, with_loss=au_step)
            if au_step:
                total = total + au_out.loss
                terms["loss_au"] = au_out.loss.detach()
        if "ee" in modules:
            ee_out = runners["ee"](ee_batch)
            total = total + config.train.ee_weight * ee_out.loss
            terms["loss_ee"] = ee_out.loss.detach()
            terms.update({f"ee/{k}": v for k, v in ee_out.terms.items() if k != "total"})
        if "aligner" in modules:
            keys = ee_batch[pairing_key].to(ctx.device)
            aligned = runners["aligner"](au_out.representation, ee_out.representation, keys)
            total = total + config.align.weight * aligned.loss
            terms["loss_align"] = aligned.loss.detach()
            terms["mi_lower_bound"] = torch.tensor(aligned.mi_lower_bound)
        terms["loss"] = total.detach()
        _check_finite(step, terms)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        params = [p for g in groups for p in g["params"]]
        if config.train.grad_clip > 0:
            terms["grad_norm"] = torch.nn.utils.clip_grad_norm_(
                params, config.train.grad_clip
            ).detach()
        optimizer.step()
        scheduler.step()
        bar.update(1)
        terms_out = {k: float(v) for k, v in terms.items()}
        if iteration % config.train.log_every == 0 or iteration == len(schedule) - 1:
            log.write(step, {**terms_out, "lr": scheduler.get_last_lr()[0], "au_step": au_step})
            bar.set_postfix(loss=f"{terms_out['loss']:.3f}")
        last = iteration == len(schedule) - 1
        if (iteration + 1) % config.train.checkpoint_every == 0 or last:
            checkpoint(iteration + 1)
        if keyframes is not None and keyframes.due(iteration, len(schedule)):
            keyframes.run(modules["ee"], step + 1)
    bar.close()
    log.close()
    seconds = time.perf_counter() - start
    ran = len(schedule) - done
    result = TrainResult(
        run_dir=run_dir,
        method=method,
        steps=len(schedule),
        seconds=seconds,
        samples_per_second=ran * config.train.batch_size / seconds if seconds > 0 else math.nan,
        last_terms=terms_out,
    )
    if ctx.is_main:
        write_json_atomic(
            run_dir / "run.json",
            {
                "method": method,
                "steps": result.steps,
                "seconds_this_session": round(seconds, 2),
                "samples_per_second": round(result.samples_per_second, 2),
                "last_terms": terms_out,
            },
        )
    return result
