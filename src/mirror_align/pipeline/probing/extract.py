"""Features of many checkpoints over one :class:`EpisodeSet`, batch by batch (batch-major).

Extracting one checkpoint at a time (:func:`mirror_align.eval.features.au_representations`,
``ee_representations``) reads and collates every batch once per checkpoint and, for the EE models,
renders its first-stage virtual views once per checkpoint, though neither depends on the weights:
on the quick preset that was about a fifth of the probing stage. Here each batch is prepared once
and run through every checkpoint's model of its kind, the EE models sharing the workspace render
(``PolicyModel.decode(batch, renders)``). With ``workers`` > 1 the batches are shared out among
spawned 1-thread processes (:func:`mirror_align.workers.spawn_map`).

The batches are those of the one-at-a-time functions (per split, ``batch_size`` rows, in dataset
order) and every model sees each batch whole, so the rows are the same numbers, bit for bit
(``tests/test_experiments.py`` checks it, with and without workers).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from mirror_align.eval.features import EpisodeSet, batch_at, episode_means
from mirror_align.pipeline.probing.common import KINDS, Checkpoint, load_module

# (kind, index of the split in EpisodeSet.parts, first row of the batch): one unit of work.
Job = tuple[str, int, int]


class BatchRunner:
    """Every wanted checkpoint's model over one batch at a time (a :func:`spawn_map` worker state).

    ``episodes`` is the :class:`EpisodeSet` itself (in-process) or the keyword arguments that open
    it again (``root``, ``splits``, ``clip_frames``, ``cache``: plain data a spawned worker gets).
    """

    def __init__(
        self, episodes: EpisodeSet | dict, wanted: Sequence[Checkpoint], batch_size: int
    ) -> None:
        if isinstance(episodes, dict):  # a spawned worker: one torch thread, as many as cores
            torch.set_num_threads(1)
            episodes = EpisodeSet(**episodes)
        self.episodes = episodes
        self.batch_size = batch_size
        self.models = {
            kind: [load_module(run, step, kind) for k, run, step in wanted if k == kind]
            for kind in KINDS
        }

    def __call__(self, job: Job) -> list[np.ndarray]:
        """The rows of batch ``job`` for every model of its kind (in ``wanted`` order): ``u`` per
        episode (AU) or ``e`` per keyframe (EE), float32."""
        kind, part, start = job
        split = self.episodes.parts[part]
        batch = batch_at(split.au if kind == "au" else split.ee, start, self.batch_size)
        renders: dict = {}  # the EE models' shared first-stage render of this batch
        with torch.inference_mode():
            return [
                (m.represent(batch) if kind == "au" else m.represent(batch, renders))
                .float()
                .cpu()
                .numpy()
                for m in self.models[kind]
            ]

    def close(self) -> None:
        """Nothing to release (the pool protocol asks for it)."""


def _jobs(episodes: EpisodeSet, kinds: Iterable[str], batch_size: int) -> list[Job]:
    jobs = []
    for kind in kinds:
        for index, part in enumerate(episodes.parts):
            rows = len(part.au) if kind == "au" else len(part.ee)
            jobs.extend((kind, index, start) for start in range(0, rows, batch_size))
    return jobs


def extract_checkpoints(
    episodes: EpisodeSet,
    wanted: Sequence[Checkpoint],
    batch_size: int = 32,
    *,
    workers: int = 1,
    cache: bool | None = None,
    progress: bool = True,
) -> dict[Checkpoint, np.ndarray]:
    """``u [N, du]`` (kind "au") or ``e [N, de]`` (kind "ee", averaged over each episode's
    keyframes) float32 of every checkpoint in ``wanted``, over the episodes of ``episodes``.

    ``workers`` > 1 runs the batches in that many spawned 1-thread processes (each opens the
    dataset itself, decoding it into memory when ``cache``; None: as ``episodes`` does); 1 runs
    them here. Models are put in eval mode; the numbers do not depend on
    ``workers``.
    """
    wanted = list(dict.fromkeys(wanted))
    kinds = [k for k in KINDS if any(c[0] == k for c in wanted)]
    jobs = _jobs(episodes, kinds, batch_size)
    if workers > 1 and len(jobs) > 1:
        from mirror_align.workers import spawn_map

        opening = {name: getattr(episodes, name) for name in ("root", "splits", "clip_frames")}
        opening["cache"] = episodes.cache if cache is None else cache
        args = (opening, wanted, batch_size)
        results = spawn_map(BatchRunner, args, jobs, workers, ordered=True)
    else:
        results = map(BatchRunner(episodes, wanted, batch_size), jobs)
    rows: dict[tuple[str, int], list[list[np.ndarray]]] = {}
    bar = tqdm(total=len(jobs), desc="features", unit="batch", disable=not progress, leave=False)
    for (kind, part, _), outputs in zip(jobs, results, strict=True):
        rows.setdefault((kind, part), []).append(outputs)
        bar.update(1)
    bar.close()
    return _assemble(episodes, wanted, rows)


def _assemble(
    episodes: EpisodeSet,
    wanted: Sequence[Checkpoint],
    rows: dict[tuple[str, int], list[list[np.ndarray]]],
) -> dict[Checkpoint, np.ndarray]:
    """Per checkpoint, its batches' rows joined per split (EE keyframes averaged per episode, as
    ``ee_representations`` does), then the splits joined."""
    out = {}
    for kind in KINDS:
        mine = [c for c in wanted if c[0] == kind]
        for m, checkpoint in enumerate(mine):
            parts = []
            for index, part in enumerate(episodes.parts):
                joined = np.concatenate([outputs[m] for outputs in rows[(kind, index)]])
                parts.append(joined if kind == "au" else episode_means(episodes, part, joined))
            out[checkpoint] = np.concatenate(parts).astype(np.float32)
    return out
