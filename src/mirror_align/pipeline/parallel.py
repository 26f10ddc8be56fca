"""Independent training runs (seeds, ablation cells) as parallel 1-thread worker processes.

Why (issues 14.10 and 15): the models are small, so one torch process gains little from a second
thread, and on 2 cores two 1-thread processes were measured at about 1.4x the throughput of one
2-thread process. So ``reproduce`` trains up to ``train.parallel_runs`` runs at once, each in its
own spawned process with one torch thread (:func:`mirror_align.workers.spawn_map`), and then
evaluates them one after another in this process (rollouts have their own worker pool).

Every run stays resumable on its own: a worker trains it with ``resume=True`` when it has a
checkpoint, and a run that is complete is never sent to a worker. A run trained in parallel uses
``train.threads = 1``; its numbers then equal a 1-thread sequential run's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from mirror_align.config.experiment import ExperimentConfig
from mirror_align.pipeline.manifest import RunSpec
from mirror_align.pipeline.stages import train_stage
from mirror_align.workers import spawn_map

# (the run's plan, its config, its folder)
TrainJob = tuple[RunSpec, ExperimentConfig, Path]

# Relative cost of a run by method, for longest-first scheduling: MN trains both models, and an EE
# step costs about twice an AU step (benchmarks/bench_models.py).
METHOD_COST = {"mn": 3, "ee": 2, "au": 1}


class _RunTrainer:
    """Worker state: trains one run per job (:func:`stages.train_stage`); returns its log lines."""

    def __call__(self, job: TrainJob) -> list[str]:
        spec, config, run_dir = job
        lines: list[str] = []
        # No per-run bar: several workers' bars would garble the terminal; the parent shows one.
        train_stage(spec, config, run_dir, lines.append, progress=False)
        return lines

    def close(self) -> None:
        """Nothing to release (the trainer closes its own logs)."""


def longest_first(jobs: list[TrainJob]) -> list[TrainJob]:
    """The jobs, most expensive method first (stable within a method).

    With fewer workers than runs, a long run started last runs alone at the end: on the quick
    preset MN started after AU and then trained alone on one core for about 4 minutes.
    """
    return sorted(jobs, key=lambda job: -METHOD_COST.get(job[0].method, 0))


def train_in_parallel(jobs: list[TrainJob], workers: int, log: Callable[[str], None]) -> None:
    """Train every job, ``workers`` at a time, each in a spawned 1-thread process.

    Raises what a run raised (the other workers are stopped); the runs that finished keep their
    checkpoints, and the rest resume from theirs on the next invocation.
    """
    single = [
        (spec, replace(c, train=replace(c.train, threads=1)), d)
        for spec, c, d in longest_first(jobs)
    ]
    bar = tqdm(total=len(single), desc=f"train ({workers} runs in parallel)", unit="run")
    try:
        for lines in spawn_map(_RunTrainer, (), single, min(workers, len(single)), ordered=False):
            bar.update(1)
            for line in lines:
                log(f"{line} (1 thread, parallel)")
    finally:
        bar.close()
