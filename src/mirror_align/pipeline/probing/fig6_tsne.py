"""Paper Fig. 6: t-SNE of the shared space, for the MN run and for the baseline pair.

The MN run is shown in its own aligner's space; the baseline pair (separately trained AU and EE
models, which share no space) in the space of a probe fitted first on other episodes, as the paper
does. Each writes ``probing/tsne_<run>.npz`` (docs/experiments.md).

Collapsed representations (every row the same direction, a known failure of contrastive training)
would make scikit-learn's Barnes-Hut t-SNE crash the interpreter (segfault), so they are never
handed to it: :func:`tsne_embedding` raises :class:`~mirror_align.align.metrics.CollapsedError`,
and :func:`tsne_points` then skips that figure and writes ``probing/tsne_<run>.skipped.json`` with
the reason, which the report shows in place of the panel.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch

from mirror_align.align.metrics import CollapsedError, check_not_collapsed
from mirror_align.align.probe import ProbeConfig, fit_probe
from mirror_align.atomic import atomic_path, write_json_atomic
from mirror_align.errors import UserInputError
from mirror_align.eval.features import EpisodeFeatures
from mirror_align.eval.loading import load_run, resolve_checkpoint
from mirror_align.pipeline.probing.common import (
    KINDS,
    SKIPPED_SUFFIX,
    Checkpoint,
    FeatureStore,
    checkpoint_key,
    default_probe_config,
    open_store,
    pair_name,
)


def tsne_embedding(
    z_u: np.ndarray, z_e: np.ndarray, seed: int = 0, perplexity: float = 30.0
) -> np.ndarray:
    """2-D t-SNE ``[N_u + N_e, 2]`` of the unit-normalised rows of ``z_u`` then ``z_e``.

    Rows are L2-normalised because the shared space compares by cosine similarity. The perplexity
    is capped at (n - 1) / 3 so that small sets work. Raises :class:`CollapsedError` (a
    UserInputError) when every normalised row is the same (scikit-learn would divide its PCA
    initialisation by a zero spread and segfault), UserInputError on NaN/inf or fewer than 6 rows.
    """
    from sklearn.manifold import TSNE

    z = np.concatenate([z_u, z_e]).astype(np.float64)
    n = z.shape[0]
    if n < 6:
        raise UserInputError(f"t-SNE: need at least 3 episodes (6 points), got {n} points")
    if not np.isfinite(z).all():
        raise UserInputError("t-SNE: the shared-space points contain NaN or inf")
    z /= np.linalg.norm(z, axis=1, keepdims=True) + 1e-12
    check_not_collapsed(z, "t-SNE")
    tsne = TSNE(2, perplexity=min(perplexity, (n - 1) / 3), init="pca", random_state=seed)
    return tsne.fit_transform(z).astype(np.float32)


def save_tsne(path: str | Path, points: np.ndarray, features: EpisodeFeatures) -> None:
    """Write ``points [2N, 2]`` (AU rows then EE rows of ``features``) with ``instruction_id``,
    ``task_id``, ``episode_id`` (each [2N]) and ``model`` [2N] (0 = AU, 1 = EE), atomically."""
    n = len(features)
    if points.shape != (2 * n, 2):
        raise ValueError(f"points must be [{2 * n}, 2], got {points.shape}")
    arrays = {
        "points": points.astype(np.float32),
        "instruction_id": np.tile(features.instruction_id, 2),
        "task_id": np.tile(features.task_id, 2),
        "episode_id": np.tile(features.episode_id, 2),
        "model": np.repeat(np.array([0, 1], dtype=np.int64), n),
    }
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)


def _check_shown(shown: EpisodeFeatures, show_splits: Sequence[str]) -> None:
    if len(shown) < 3:
        raise UserInputError(
            f"t-SNE: {len(shown)} successful episode(s) in {', '.join(show_splits)}; need >= 3"
        )


# z_u [N, d], z_e [N, d] of N shown episodes, and those episodes' features (for the keys).
Projected = tuple[np.ndarray, np.ndarray, EpisodeFeatures]


def mn_shared_space(
    store: FeatureStore, mn_run: str | Path, show_splits: Sequence[str]
) -> Projected:
    """``z_u``, ``z_e`` of the shown episodes in the MN run's own aligner space (latest checkpoint)."""
    run = load_run(mn_run)
    if "aligner" not in run.modules:
        raise UserInputError(f"{mn_run}: method {run.method!r} has no aligner (need mn)")
    features = store.episodes.empty_features()
    features.u = store.representations("au", run.run_dir, run.step, run.modules["au"])
    features.e = store.representations("ee", run.run_dir, run.step, run.modules["ee"])
    shown = features.in_splits(show_splits)
    _check_shown(shown, show_splits)
    aligner = run.modules["aligner"].eval()
    with torch.no_grad():
        z_u = aligner.project_u(torch.from_numpy(shown.u)).numpy()
        z_e = aligner.project_e(torch.from_numpy(shown.e)).numpy()
    return z_u, z_e, shown


def baseline_shared_space(
    store: FeatureStore,
    au_run: str | Path,
    ee_run: str | Path,
    show_splits: Sequence[str],
    probe_config: ProbeConfig,
) -> Projected:
    """``z_u``, ``z_e`` of the shown episodes in the space of a probe fitted on the other episodes
    (latest checkpoints of the AU and EE runs)."""
    au_step, _ = resolve_checkpoint(au_run)
    ee_step, _ = resolve_checkpoint(ee_run)
    features = store.features(au_run, au_step, ee_run, ee_step)
    fit_rows = ~np.isin(features.split, list(show_splits))
    if not fit_rows.any():
        raise UserInputError(
            f"t-SNE: no episodes outside {', '.join(show_splits)} to fit the baseline probe on"
        )
    shown = features.in_splits(show_splits)
    _check_shown(shown, show_splits)
    fit = features.select(fit_rows)
    fitted = fit_probe(fit.u, fit.e, fit.keys(), probe_config)
    z_u, z_e = fitted.project(shown.u, shown.e)
    return z_u, z_e, shown


@dataclass
class TsneOutcome:
    """What :func:`tsne_points` left in its folder: run name -> points file, or -> the reason its
    figure was skipped (the reason is also in ``tsne_<run>.skipped.json``)."""

    points: dict[str, Path] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def tsne_points(
    dataset: str | Path,
    out_dir: str | Path,
    mn_run: str | Path | None = None,
    au_run: str | Path | None = None,
    ee_run: str | Path | None = None,
    probe_config: ProbeConfig | None = None,
    show_splits: Sequence[str] = ("test",),
    seed: int = 0,
    perplexity: float = 30.0,
    store: FeatureStore | None = None,
    *,
    overwrite: bool = False,
    progress: bool = True,
) -> TsneOutcome:
    """Write ``out_dir/tsne_<run>.npz`` for the MN run and/or the baseline pair (latest checkpoints).

    The points are the successful episodes of ``show_splits``, which neither the MN aligner nor the
    baseline probe was fitted on. Baseline: a probe (``probe_config``, default pairing by
    instruction as the paper's probes; seeded with ``seed``) is fitted on the episodes of the other
    splits, then projects the shown ones. A run whose shared-space points collapsed is skipped
    with a ``tsne_<run>.skipped.json`` note instead. Existing files (points or note) are kept unless
    ``overwrite``.
    """
    out_dir = Path(out_dir)
    if (au_run is None) != (ee_run is None):
        raise UserInputError("t-SNE: the baseline needs both an AU run and an EE run")
    # (record name, the run that fixes the clip length, the projection of the shown episodes)
    jobs: list[tuple[str, str | Path, Callable[[FeatureStore], Projected]]] = []
    if mn_run is not None:
        project_mn = partial(mn_shared_space, mn_run=mn_run, show_splits=show_splits)
        jobs.append((Path(mn_run).name, mn_run, project_mn))
    if au_run is not None and ee_run is not None:
        config = replace(probe_config or default_probe_config(pairing="instruction"), seed=seed)
        project_pair = partial(
            baseline_shared_space,
            au_run=au_run,
            ee_run=ee_run,
            show_splits=show_splits,
            probe_config=config,
        )
        jobs.append((pair_name(au_run, ee_run), au_run, project_pair))
    outcome = TsneOutcome()
    for name, clip_run, project in jobs:
        path, note = _files(out_dir, name)
        if not overwrite and (path.is_file() or note.is_file()):
            _record_existing(outcome, name, path, note)
            continue
        if store is None:
            store = open_store(dataset, clip_run, None, progress=progress)
        _embed(outcome, name, project(store), path, note, seed, perplexity)
    return outcome


def _files(out_dir: Path, name: str) -> tuple[Path, Path]:
    """The points file and the skipped note of run ``name``."""
    return out_dir / f"tsne_{name}.npz", out_dir / f"tsne_{name}{SKIPPED_SUFFIX}"


def tsne_needs(
    out_dir: str | Path,
    mn_run: str | Path | None = None,
    au_run: str | Path | None = None,
    ee_run: str | Path | None = None,
    *,
    overwrite: bool = False,
) -> list[Checkpoint]:
    """The checkpoints whose features :func:`tsne_points` (same arguments) will read: the latest
    of each run whose points file or note is not yet in ``out_dir`` (for
    :meth:`FeatureStore.prefetch`)."""
    out_dir = Path(out_dir)

    def pending(name: str) -> bool:
        return overwrite or not any(f.is_file() for f in _files(out_dir, name))

    wanted = []
    if mn_run is not None and pending(Path(mn_run).name):
        step, _ = resolve_checkpoint(mn_run)
        wanted += [checkpoint_key(kind, mn_run, step) for kind in KINDS]
    if au_run is not None and ee_run is not None and pending(pair_name(au_run, ee_run)):
        for kind, run in (("au", au_run), ("ee", ee_run)):
            wanted.append(checkpoint_key(kind, run, resolve_checkpoint(run)[0]))
    return wanted


def _embed(
    outcome: TsneOutcome,
    name: str,
    projected: Projected,
    path: Path,
    note: Path,
    seed: int,
    perplexity: float,
) -> None:
    """Write the t-SNE points of ``projected`` to ``path``, or the note saying why they collapsed."""
    z_u, z_e, shown = projected
    try:
        points = tsne_embedding(z_u, z_e, seed, perplexity)
    except CollapsedError as error:
        write_json_atomic(note, {"run": name, "reason": str(error)})
        path.unlink(missing_ok=True)
        outcome.skipped[name] = str(error)
        return
    save_tsne(path, points, shown)
    note.unlink(missing_ok=True)
    outcome.points[name] = path


def _record_existing(outcome: TsneOutcome, name: str, path: Path, note: Path) -> None:
    if path.is_file():
        outcome.points[name] = path
    else:
        outcome.skipped[name] = str(json.loads(note.read_text()).get("reason", "skipped"))
