"""What every probing experiment shares: probe settings, run loading and a feature memo.

Features come from :mod:`mirror_align.eval.features` (one row per episode; ``e`` averaged over the
keyframes) and are shared between the experiments of one call by a :class:`FeatureStore`, so each
checkpoint's representations are computed once. Records follow ``docs/experiments.md``; every
experiment is resumable from what its output file already holds (:func:`existing_records`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from mirror_align.align.probe import ProbeConfig
from mirror_align.errors import UserInputError
from mirror_align.eval.features import (
    EpisodeFeatures,
    EpisodeSet,
    au_representations,
    ee_representations,
)
from mirror_align.eval.loading import load_run, resolve_checkpoint, run_from_config
from mirror_align.eval.metrics_log import MetricRecord, read_metrics
from mirror_align.train.checkpoint import list_checkpoints, load_config

# Suffix of the note a figure the probing stage could not make leaves beside its records, with
# the reason: tsne_<run>.skipped.json (Fig. 6), subsets_<comparison>.skipped.json (Fig. 3 right).
SKIPPED_SUFFIX = ".skipped.json"

# (kind "au" or "ee", resolved run folder, step): one checkpoint's model (see checkpoint_key).
Checkpoint = tuple[str, str, int]
KINDS = ("au", "ee")

# Probes cheap enough for every checkpoint: pairing by episode, 256-d, at most 50 epochs.
_CHEAP_PROBE = ProbeConfig(pairing="episode", dim=256, max_epochs=50, progress=False)


def default_probe_config(**overrides: Any) -> ProbeConfig:
    """The probing experiments' :class:`ProbeConfig` (episode pairing, 256-d, <= 50 epochs, no
    progress bars) with ``overrides`` (ProbeConfig field names) applied."""
    return replace(_CHEAP_PROBE, **overrides)


def pair_name(au_run: str | Path, ee_run: str | Path) -> str:
    """The ``run`` of probing records of a pair: ``"<au run>+<ee run>"``."""
    return f"{Path(au_run).name}+{Path(ee_run).name}"


def load_module(run_dir: str | Path, step: int | None, kind: str) -> nn.Module:
    """Model ``kind`` ("au", "ee" or "aligner") of a run at ``step`` (None: latest), in eval mode.

    Step 0 without a checkpoint is the fresh initialisation of ``mirror_align.models.factory.build_models`` (the same seeds
    the training started from), built from the config of the run's first checkpoint.
    """
    run_dir = Path(run_dir)
    found = list_checkpoints(run_dir)
    if step == 0 and all(s != 0 for s, _ in found):
        if not found:
            raise UserInputError(
                f"{run_dir}: no complete checkpoint (train it first with `mirror-align train`)"
            )
        meta = load_config(found[0][1])
        _, _, modules = run_from_config(meta, str(found[0][1] / "config.json"))
        method = meta["method"]
    else:
        run = load_run(run_dir, step)
        modules, method = run.modules, run.method
    if kind not in modules:
        raise UserInputError(f"{run_dir}: a run of method {method!r} has no {kind} model")
    return modules[kind].eval()


def au_clip_frames(run_dir: str | Path) -> int:
    """The clip length the AU model of a run was trained with (``au.num_frames``)."""
    _, folder = resolve_checkpoint(run_dir)
    return int(load_config(folder)["experiment"]["au"]["num_frames"])


def checkpoint_key(kind: str, run_dir: str | Path, step: int) -> Checkpoint:
    """The :data:`Checkpoint` of a run's model ``kind`` at ``step`` (the folder resolved, so that
    two spellings of one run are one checkpoint)."""
    return (kind, str(Path(run_dir).resolve()), int(step))


class FeatureStore:
    """Representations per (model kind, run, step) over one :class:`EpisodeSet`, each computed once.

    :meth:`prefetch` computes many checkpoints in one batch-major pass (``workers`` processes);
    the experiments then read them from the memo."""

    def __init__(
        self,
        episodes: EpisodeSet,
        batch_size: int = 32,
        *,
        progress: bool = True,
        workers: int = 1,
        cache: bool | None = None,
    ) -> None:
        self.episodes = episodes
        self.batch_size = batch_size
        self.progress = progress
        self.workers = workers
        self.cache = episodes.cache if cache is None else cache  # the workers' EpisodeSet
        self._memo: dict[Checkpoint, np.ndarray] = {}

    def prefetch(self, wanted: Sequence[Checkpoint]) -> None:
        """Compute every checkpoint of ``wanted`` (:func:`checkpoint_key`) not yet held, batch by
        batch over all of them (:func:`mirror_align.pipeline.probing.extract.extract_checkpoints`)."""
        from mirror_align.pipeline.probing.extract import extract_checkpoints

        missing = [c for c in dict.fromkeys(wanted) if c not in self._memo]
        if missing:
            self._memo.update(
                extract_checkpoints(
                    self.episodes,
                    missing,
                    self.batch_size,
                    workers=self.workers,
                    cache=self.cache,
                    progress=self.progress,
                )
            )

    def representations(
        self, kind: str, run_dir: str | Path, step: int, module: nn.Module | None = None
    ) -> np.ndarray:
        """``u [N, du]`` (kind "au") or ``e [N, de]`` (kind "ee") of a run's checkpoint ``step``;
        ``module`` skips loading when the caller already holds that checkpoint's model."""
        key = checkpoint_key(kind, run_dir, step)
        if key not in self._memo and module is not None:
            extract = au_representations if kind == "au" else ee_representations
            self._memo[key] = extract(
                module, self.episodes, self.batch_size, progress=self.progress
            )
        self.prefetch([key])
        return self._memo[key]

    def features(
        self, au_run: str | Path, au_step: int, ee_run: str | Path, ee_step: int
    ) -> EpisodeFeatures:
        """Index-aligned features of the AU run at ``au_step`` and the EE run at ``ee_step``."""
        features = self.episodes.empty_features()
        features.u = self.representations("au", au_run, au_step)
        features.e = self.representations("ee", ee_run, ee_step)
        return features


def open_store(
    dataset: str | Path,
    au_run: str | Path,
    splits: Sequence[str] | None = None,
    *,
    cache: bool = True,
    batch_size: int = 32,
    progress: bool = True,
    workers: int = 1,
) -> FeatureStore:
    """A :class:`FeatureStore` over the successful episodes of ``splits`` (None: all) of
    ``dataset``, with the AU run's clip length; ``workers`` processes extract features.

    ``cache`` decodes the episodes into memory once: here with one worker, else in each worker
    (this process then reads only their keys)."""
    here = cache and workers == 1
    episodes = EpisodeSet(str(dataset), splits, au_clip_frames(au_run), cache=here)
    return FeatureStore(episodes, batch_size, progress=progress, workers=workers, cache=cache)


def existing_records(path: Path, run: str) -> list[MetricRecord]:
    """The records of ``run`` already in the probing file ``path`` (none if it does not exist)."""
    if not path.is_file():
        return []
    return [r for r in read_metrics(path)[0] if r.run == run]


def read_json(path: Path) -> Any:
    """The parsed JSON file, or None when it does not exist."""
    return json.loads(path.read_text()) if path.is_file() else None
