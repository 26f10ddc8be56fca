"""Probing experiments over trained runs: paper Fig. 3 left and right, and Fig. 6.

* :func:`probe_along_training` (Fig. 3 left, plus mutual k-NN and CKA): checkpoints of a separately
  trained AU run and EE run, paired by training progress, are probed on one fixed set of episodes.
* :func:`probe_success_subsets` (Fig. 3 right): probes on equal-size subsets of the test episodes,
  AU correctly vs incorrectly recognised and EE successful vs failed rollouts.
* :func:`tsne_points` (Fig. 6): t-SNE of the shared space of the MN run (its own aligner) and of
  the baseline pair (a probe fitted first, as the paper does).
* :func:`run_all`: the three over one set of episodes (``mirror-align probe-runs``, ``reproduce``).

Records follow ``docs/experiments.md``. Every function is resumable: what its output files already
hold is not computed again. Features come from :mod:`mirror_align.eval.features` (one row per
episode; ``e`` averaged over the keyframes) and are shared between experiments by a
:class:`FeatureStore`.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from mirror_align.align.probe import ProbeConfig, fit_probe, probe, probe_subsets
from mirror_align.atomic import atomic_path
from mirror_align.data.schema import SPLITS
from mirror_align.errors import UserInputError
from mirror_align.eval.features import (
    EpisodeFeatures,
    EpisodeSet,
    au_representations,
    ee_representations,
)
from mirror_align.eval.loading import load_run, resolve_checkpoint, run_from_config
from mirror_align.eval.metrics_log import MetricRecord, append_metrics, read_metrics
from mirror_align.train.checkpoint import list_checkpoints, load_config

# along_training.jsonl metric name -> ProbeResult field.
ALONG_TRAINING_METRICS: dict[str, str] = {
    "probe_recall_at_1": "recall_at_1",
    "probe_recall_at_1_u2e": "recall_at_1_u2e",
    "probe_recall_at_1_e2u": "recall_at_1_e2u",
    "probe_chance": "chance",
    "probe_mi_lower_bound_nats": "mi_lower_bound_nats",
    "mutual_knn": "mutual_knn",
    "cka_linear": "cka_linear",
    "cka_unbiased": "cka_unbiased",
}
SUBSET_METRIC = "subset_recall_at_1"
# Comparison -> its two subsets (the ``split`` field of subsets.jsonl).
SUBSET_COMPARISONS: dict[str, tuple[str, str]] = {
    "au": ("au_correct", "au_incorrect"),
    "ee": ("ee_success", "ee_failure"),
}
MIN_SUBSET_ROWS = 8  # what probe_subsets needs in the smallest subset


def default_probe_config(**overrides: object) -> ProbeConfig:
    """Probes cheap enough for every checkpoint: pairing by episode, 256-d, at most 50 epochs."""
    settings: dict[str, object] = {
        "pairing": "episode",
        "dim": 256,
        "max_epochs": 50,
        "progress": False,
    }
    settings.update(overrides)
    return ProbeConfig(**settings)  # type: ignore[arg-type]


def pair_name(au_run: str | Path, ee_run: str | Path) -> str:
    """The ``run`` of probing records of a pair: ``"<au run>+<ee run>"``."""
    return f"{Path(au_run).name}+{Path(ee_run).name}"


@dataclass(frozen=True)
class CheckpointPair:
    """An AU and an EE checkpoint at one training progress ``step`` (0 = fresh initialisation)."""

    step: int
    au_step: int
    ee_step: int


def pair_checkpoints(au_steps: Sequence[int], ee_steps: Sequence[int]) -> list[CheckpointPair]:
    """Step 0 (both freshly initialised), then for each EE step s the AU checkpoint with the largest
    step <= s (the fresh AU model when there is none)."""
    pairs = [CheckpointPair(0, 0, 0)]
    for step in sorted(set(ee_steps) - {0}):
        au = max((a for a in au_steps if a <= step), default=0)
        pairs.append(CheckpointPair(step, au, step))
    return pairs


def load_module(run_dir: str | Path, step: int | None, kind: str) -> nn.Module:
    """Model ``kind`` ("au", "ee" or "aligner") of a run at ``step`` (None: latest), in eval mode.

    Step 0 without a checkpoint is the fresh initialisation of ``build_models`` (the same seeds
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


class FeatureStore:
    """Representations per (model kind, run, step) over one :class:`EpisodeSet`, each computed once."""

    def __init__(self, episodes: EpisodeSet, batch_size: int = 32, progress: bool = True) -> None:
        self.episodes = episodes
        self.batch_size = batch_size
        self.progress = progress
        self._memo: dict[tuple[str, str, int], np.ndarray] = {}

    def representations(
        self, kind: str, run_dir: str | Path, step: int, module: nn.Module | None = None
    ) -> np.ndarray:
        """``u [N, du]`` (kind "au") or ``e [N, de]`` (kind "ee") of a run's checkpoint ``step``;
        ``module`` skips loading when the caller already holds that checkpoint's model."""
        key = (kind, str(Path(run_dir).resolve()), int(step))
        if key not in self._memo:
            model = module if module is not None else load_module(run_dir, step, kind)
            extract = au_representations if kind == "au" else ee_representations
            self._memo[key] = extract(model, self.episodes, self.batch_size, self.progress)
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
    cache: bool = True,
    batch_size: int = 32,
    progress: bool = True,
) -> FeatureStore:
    """A :class:`FeatureStore` over the successful episodes of ``splits`` (None: all) of
    ``dataset``, with the AU run's clip length."""
    episodes = EpisodeSet(str(dataset), splits, au_clip_frames(au_run), cache=cache)
    return FeatureStore(episodes, batch_size, progress)


def _append(path: Path, records: list[MetricRecord]) -> None:
    # A torn last line (a crash mid-write) must not swallow the first new record.
    if path.is_file() and path.stat().st_size:
        with open(path, "rb") as handle:
            handle.seek(-1, 2)
            torn = handle.read(1) != b"\n"
        if torn:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write("\n")
    append_metrics(path, records)


def _existing(path: Path, run: str) -> list[MetricRecord]:
    if not path.is_file():
        return []
    return [r for r in read_metrics(path)[0] if r.run == run]


# ---------------------------------------------------------------- Fig. 3 left: along training


@dataclass
class AlongTrainingOutcome:
    """What :func:`probe_along_training` did; ``results`` holds the probes run in this call."""

    run: str
    pairs: list[CheckpointPair]
    skipped_steps: list[int]  # already complete in the file
    results: dict[int, dict] = field(default_factory=dict)  # step -> ProbeResult.to_dict()


def probe_along_training(
    au_run: str | Path,
    ee_run: str | Path,
    dataset: str | Path,
    out_jsonl: str | Path,
    probe_config: ProbeConfig | None = None,
    splits: Sequence[str] | None = None,
    store: FeatureStore | None = None,
    progress: bool = True,
) -> AlongTrainingOutcome:
    """Probe every checkpoint pair of ``au_run`` and ``ee_run`` (:func:`pair_checkpoints`) on the
    successful episodes of ``splits`` (None: all splits; the probe splits them by episode) and
    append the :data:`ALONG_TRAINING_METRICS` records to ``out_jsonl``.

    Rows pair by episode. Records: ``run=pair_name``, ``step`` = the pair's step, ``split="all"``
    (or the splits joined by "+"), ``task="all"``, ``seed`` = the probe seed. Steps whose every
    metric is already in the file are skipped.
    """
    config = probe_config or default_probe_config()
    out_jsonl = Path(out_jsonl)
    name = pair_name(au_run, ee_run)
    au_steps = [s for s, _ in list_checkpoints(au_run)]
    ee_steps = [s for s, _ in list_checkpoints(ee_run)]
    for run_dir, steps in ((au_run, au_steps), (ee_run, ee_steps)):
        if not steps:
            raise UserInputError(
                f"{run_dir}: no complete checkpoint (train it first with `mirror-align train`)"
            )
    pairs = pair_checkpoints(au_steps, ee_steps)
    have: dict[int, set[str]] = {}
    for record in _existing(out_jsonl, name):
        have.setdefault(record.step, set()).add(record.metric)
    done = [p.step for p in pairs if have.get(p.step, set()) >= set(ALONG_TRAINING_METRICS)]
    outcome = AlongTrainingOutcome(name, pairs, done)
    todo = [p for p in pairs if p.step not in done]
    if not todo:
        return outcome
    if store is None:
        store = open_store(dataset, au_run, splits, progress=progress)
    split_label = "all" if splits is None else "+".join(splits)
    for pair in tqdm(todo, desc="probe along training", unit="ckpt", disable=not progress):
        features = store.features(au_run, pair.au_step, ee_run, pair.ee_step)
        if splits is not None:
            features = features.in_splits(splits)
        result = probe(features.u, features.e, features.keys(), config)
        records = [
            MetricRecord(
                name,
                pair.step,
                split_label,
                "all",
                metric,
                float(getattr(result, attr)),
                config.seed,
            )
            for metric, attr in ALONG_TRAINING_METRICS.items()
        ]
        _append(out_jsonl, records)
        outcome.results[pair.step] = result.to_dict()
    return outcome


# ------------------------------------------------------------ Fig. 3 right: success subsets


def outcome_masks(
    episode_id: np.ndarray,
    recognition: Mapping | None = None,
    rollouts: Sequence[Mapping] | None = None,
) -> dict[str, np.ndarray]:
    """Boolean masks ``[N]`` over the rows' ``episode_id`` of the subsets the outcomes define.

    ``recognition`` is a ``recognition_<split>_step<S>.json`` (``au_correct``/``au_incorrect``:
    predicted == instruction_id or not); ``rollouts`` a ``rollouts_<split>_step<S>.json``
    (``ee_success``/``ee_failure`` of the evaluation-seed-0 rollout whose scene seed is the
    episode_id). Episodes without an outcome are in neither subset.
    """
    episode_id = np.asarray(episode_id, dtype=np.int64)
    masks: dict[str, np.ndarray] = {}
    if recognition is not None:
        correct = {
            int(ep): int(p) == int(t)
            for ep, p, t in zip(
                recognition["episode_id"],
                recognition["predicted"],
                recognition["instruction_id"],
                strict=True,
            )
        }
        known = np.array([int(ep) in correct for ep in episode_id], dtype=bool)
        hit = np.array([correct.get(int(ep), False) for ep in episode_id], dtype=bool)
        masks["au_correct"], masks["au_incorrect"] = known & hit, known & ~hit
    if rollouts is not None:
        success = {int(r["seed"]): bool(r["success"]) for r in rollouts if int(r["eval_seed"]) == 0}
        known = np.array([int(ep) in success for ep in episode_id], dtype=bool)
        hit = np.array([success.get(int(ep), False) for ep in episode_id], dtype=bool)
        masks["ee_success"], masks["ee_failure"] = known & hit, known & ~hit
    return masks


@dataclass
class ComparisonOutcome:
    """One subset comparison: ``status`` is "written", "present" (already in the file) or
    "missing" (``reason`` says why; nothing was written)."""

    comparison: str
    status: str
    sizes: dict[str, int] = field(default_factory=dict)  # subset -> episodes available
    n_per_subset: int = 0  # rows each probe used (the smallest subset)
    recall_at_1: dict[str, float] = field(default_factory=dict)  # subset -> mean over repeats
    reason: str = ""


def probe_subset_comparison(
    features: EpisodeFeatures,
    comparison: str,
    masks: Mapping[str, np.ndarray],
    run: str,
    step: int,
    out_jsonl: str | Path,
    probe_config: ProbeConfig | None = None,
    repeats: int = 5,
) -> ComparisonOutcome:
    """Probe the two subsets of ``comparison`` ("au" or "ee") at equal sizes and append one
    ``subset_recall_at_1`` record per subset and repeat (``seed`` = probe seed + repeat).

    A subset with fewer than :data:`MIN_SUBSET_ROWS` episodes (or without outcomes) writes nothing
    and returns status "missing" with the reason.
    """
    config = probe_config or default_probe_config()
    names = SUBSET_COMPARISONS[comparison]
    if any(n not in masks for n in names):
        return ComparisonOutcome(comparison, "missing", reason="no per-episode outcomes")
    sizes = {n: int(np.count_nonzero(masks[n])) for n in names}
    if min(sizes.values()) < MIN_SUBSET_ROWS:
        text = ", ".join(f"{n} has {k}" for n, k in sizes.items())
        return ComparisonOutcome(
            comparison,
            "missing",
            sizes,
            reason=f"{text} episode(s); equal-size probing needs >= {MIN_SUBSET_ROWS} in each",
        )
    result = probe_subsets(
        features.u,
        features.e,
        features.keys(),
        {n: np.asarray(masks[n], dtype=bool) for n in names},
        config,
        repeats,
    )
    records = [
        MetricRecord(
            run, step, n, "all", SUBSET_METRIC, float(values[n]["recall_at_1"]), config.seed + r
        )
        for r, values in enumerate(result.runs)
        for n in names
    ]
    _append(Path(out_jsonl), records)
    means = {n: result.summary[n]["recall_at_1"]["mean"] for n in names}
    return ComparisonOutcome(comparison, "written", sizes, result.n_per_subset, means)


def _read_json(path: Path) -> object | None:
    return json.loads(path.read_text()) if path.is_file() else None


def probe_success_subsets(
    au_run: str | Path,
    ee_run: str | Path,
    dataset: str | Path,
    out_jsonl: str | Path,
    split: str = "test",
    repeats: int = 5,
    probe_config: ProbeConfig | None = None,
    store: FeatureStore | None = None,
    progress: bool = True,
) -> list[ComparisonOutcome]:
    """Fig. 3 right on the successful episodes of ``split``, with the latest checkpoints.

    AU correct vs incorrect comes from the AU run's ``eval/recognition_<split>_step<S>.json`` and EE
    success vs failure from the EE run's ``eval/rollouts_<split>_step<S>.json`` (written by
    ``mirror-align evaluate`` at the latest checkpoint S). Records: ``run=pair_name``,
    ``step`` = the EE checkpoint step, ``split`` = the subset. A comparison already in the file is
    kept; one that cannot be made (no outcome file, a subset under :data:`MIN_SUBSET_ROWS`) is
    reported as "missing" and writes nothing.
    """
    config = probe_config or default_probe_config()
    out_jsonl = Path(out_jsonl)
    name = pair_name(au_run, ee_run)
    au_step, _ = resolve_checkpoint(au_run)
    ee_step, _ = resolve_checkpoint(ee_run)
    sources = {
        "au": Path(au_run) / "eval" / f"recognition_{split}_step{au_step}.json",
        "ee": Path(ee_run) / "eval" / f"rollouts_{split}_step{ee_step}.json",
    }
    present = {r.split for r in _existing(out_jsonl, name) if r.metric == SUBSET_METRIC}
    outcomes: dict[str, ComparisonOutcome] = {}
    for comparison, path in sources.items():
        if set(SUBSET_COMPARISONS[comparison]) <= present:
            outcomes[comparison] = ComparisonOutcome(comparison, "present")
        elif not path.is_file():
            outcomes[comparison] = ComparisonOutcome(
                comparison, "missing", reason=f"{path} not found (run `mirror-align evaluate`)"
            )
    todo = [c for c in sources if c not in outcomes]
    if todo:
        if store is None:
            store = open_store(dataset, au_run, [split], progress=progress)
        features = store.features(au_run, au_step, ee_run, ee_step).in_splits([split])
        masks = outcome_masks(
            features.episode_id,
            _read_json(sources["au"]) if "au" in todo else None,  # type: ignore[arg-type]
            _read_json(sources["ee"]) if "ee" in todo else None,  # type: ignore[arg-type]
        )
        for comparison in todo:
            outcomes[comparison] = probe_subset_comparison(
                features, comparison, masks, name, ee_step, out_jsonl, config, repeats
            )
    return [outcomes[c] for c in sources]


# ------------------------------------------------------------------------- Fig. 6: t-SNE


def tsne_embedding(
    z_u: np.ndarray, z_e: np.ndarray, seed: int = 0, perplexity: float = 30.0
) -> np.ndarray:
    """2-D t-SNE ``[N_u + N_e, 2]`` of the unit-normalised rows of ``z_u`` then ``z_e``.

    Rows are L2-normalised because the shared space compares by cosine similarity. The perplexity
    is capped at (n - 1) / 3 so that small sets work.
    """
    from sklearn.manifold import TSNE

    z = np.concatenate([z_u, z_e]).astype(np.float64)
    n = z.shape[0]
    if n < 6:
        raise UserInputError(f"t-SNE: need at least 3 episodes (6 points), got {n} points")
    z /= np.linalg.norm(z, axis=1, keepdims=True) + 1e-12
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
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Path]:
    """Write ``out_dir/tsne_<run>.npz`` for the MN run and/or the baseline pair (latest checkpoints).

    The points are the successful episodes of ``show_splits``, which neither the MN aligner nor the
    baseline probe was fitted on. MN: its own aligner's ``z_u``, ``z_e``. Baseline: a probe
    (``probe_config``, default pairing by instruction as the paper's probes) is fitted on the
    episodes of the other splits, then projects the shown ones. Existing files are kept unless
    ``overwrite``. Returns run name -> path of every file present.
    """
    out_dir = Path(out_dir)
    jobs: list[tuple[str, str]] = []
    if mn_run is not None:
        jobs.append((Path(mn_run).name, "mn"))
    if au_run is not None and ee_run is not None:
        jobs.append((pair_name(au_run, ee_run), "pair"))
    elif (au_run is None) != (ee_run is None):
        raise UserInputError("t-SNE: the baseline needs both an AU run and an EE run")
    written: dict[str, Path] = {}
    for name, kind in jobs:
        path = out_dir / f"tsne_{name}.npz"
        written[name] = path
        if path.is_file() and not overwrite:
            continue
        source = au_run if kind == "pair" else mn_run
        if store is None:
            store = open_store(dataset, source, None, progress=progress)  # type: ignore[arg-type]
        if kind == "mn":
            run = load_run(mn_run)  # type: ignore[arg-type]
            features = store.episodes.empty_features()
            features.u = store.representations("au", run.run_dir, run.step, run.modules["au"])
            features.e = store.representations("ee", run.run_dir, run.step, run.modules["ee"])
            shown = features.in_splits(show_splits)
            _check_shown(shown, show_splits)
            if "aligner" not in run.modules:
                raise UserInputError(f"{mn_run}: method {run.method!r} has no aligner (need mn)")
            aligner = run.modules["aligner"].eval()
            with torch.no_grad():
                z_u = aligner.project_u(torch.from_numpy(shown.u)).numpy()
                z_e = aligner.project_e(torch.from_numpy(shown.e)).numpy()
        else:
            au_step, _ = resolve_checkpoint(au_run)  # type: ignore[arg-type]
            ee_step, _ = resolve_checkpoint(ee_run)  # type: ignore[arg-type]
            features = store.features(au_run, au_step, ee_run, ee_step)  # type: ignore[arg-type]
            fit_rows = ~np.isin(features.split, list(show_splits))
            if not fit_rows.any():
                raise UserInputError(
                    f"t-SNE: no episodes outside {', '.join(show_splits)} to fit the baseline probe on"
                )
            shown = features.in_splits(show_splits)
            _check_shown(shown, show_splits)
            fit = features.select(fit_rows)
            config = probe_config or default_probe_config(pairing="instruction")
            fitted = fit_probe(fit.u, fit.e, fit.keys(), replace(config, seed=seed))
            z_u, z_e = fitted.project(shown.u, shown.e)
        save_tsne(path, tsne_embedding(z_u, z_e, seed, perplexity), shown)
    return written


# ------------------------------------------------------------------------- all three


@dataclass
class ProbingSummary:
    """What :func:`run_all` did."""

    out: Path
    along: AlongTrainingOutcome
    subsets: list[ComparisonOutcome]
    tsne: dict[str, Path]
    seconds: float

    def line(self) -> str:
        """One summary line."""
        missing = sum(outcome.status == "missing" for outcome in self.subsets)
        return (
            f"probing: {len(self.along.pairs)} checkpoint pairs, "
            f"{len(self.subsets) - missing}/{len(self.subsets)} subset comparisons, "
            f"{len(self.tsne)} t-SNE file(s) in {self.out} [{self.seconds:.1f} s]"
        )


def _subset_text(outcome: ComparisonOutcome) -> str:
    if outcome.status == "written":
        means = ", ".join(f"{k} {v:.3f}" for k, v in outcome.recall_at_1.items())
        return f"{outcome.comparison}: n={outcome.n_per_subset} per subset, Recall@1 {means}"
    if outcome.status == "present":
        return f"{outcome.comparison}: already in subsets.jsonl"
    return f"{outcome.comparison}: MISSING ({outcome.reason})"


def run_all(
    au_run: str | Path,
    ee_run: str | Path,
    data: str | Path,
    out: str | Path,
    mn_run: str | Path | None = None,
    repeats: int = 5,
    split: str = "test",
    splits: Sequence[str] | None = None,
    probe_config: ProbeConfig | None = None,
    seed: int = 0,
    cache: bool = True,
    batch_size: int = 32,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> ProbingSummary:
    """Fig. 3 left (``out/along_training.jsonl``), Fig. 3 right (``out/subsets.jsonl``) and Fig. 6
    (``out/tsne_<run>.npz``: the MN run when given, and the baseline pair) over one set of
    episodes: the successful ones of ``splits`` (None: all) plus ``split`` for the subsets.

    ``probe_config`` (default :func:`default_probe_config`, with ``seed``) is used as is for the
    probes of Fig. 3; the t-SNE's baseline probe pairs by instruction. Each part is resumable.
    ``log`` receives one line per finished part (default: stderr).
    """
    if log is None:

        def log(message: str) -> None:
            print(message, file=sys.stderr)

    if splits is not None and set(splits) <= {"test"}:
        raise UserInputError(
            "probing splits: the t-SNE shows the test episodes and fits the baseline probe on "
            "the others; add train or val"
        )
    started = time.perf_counter()
    out = Path(out)
    config = probe_config or default_probe_config(seed=seed)
    opened = None if splits is None else sorted(set(splits) | {split}, key=SPLITS.index)
    store = open_store(data, au_run, opened, cache, batch_size, progress)

    along = probe_along_training(
        au_run, ee_run, data, out / "along_training.jsonl", config, splits, store, progress
    )
    log(
        f"probing: along training {along.run}: steps {[p.step for p in along.pairs]} "
        f"({len(along.results)} probed, {len(along.skipped_steps)} already done)"
    )
    if along.results:
        step = max(along.results)
        last = along.results[step]
        log(
            f"probing: step {step}: Recall@1 {last['recall_at_1']:.3f} "
            f"(chance {last['chance']:.3f}), MI >= {last['mi_lower_bound_nats']:.3f} nats, "
            f"mutual k-NN {last['mutual_knn']:.3f}, CKA {last['cka_linear']:.3f}"
        )
    subsets = probe_success_subsets(
        au_run, ee_run, data, out / "subsets.jsonl", split, repeats, config, store, progress
    )
    for outcome in subsets:
        log(f"probing: subsets {_subset_text(outcome)}")
    tsne = tsne_points(
        data,
        out,
        mn_run=mn_run,
        au_run=au_run,
        ee_run=ee_run,
        probe_config=replace(config, pairing="instruction"),
        seed=config.seed,
        store=store,
        progress=progress,
    )
    log(f"probing: t-SNE {', '.join(str(p) for p in tsne.values())}")
    return ProbingSummary(out, along, subsets, tsne, time.perf_counter() - started)
