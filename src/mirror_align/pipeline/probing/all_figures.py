"""All three probing experiments of trained runs over one set of episodes (``probe-runs``,
``reproduce``): Fig. 3 left, Fig. 3 right and Fig. 6, sharing one :class:`FeatureStore`."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from mirror_align.align.probe import ProbeConfig
from mirror_align.constants import SPLITS
from mirror_align.errors import UserInputError
from mirror_align.pipeline.probing.common import Checkpoint, default_probe_config, open_store
from mirror_align.pipeline.probing.fig3_left import (
    AlongTrainingOutcome,
    along_training_needs,
    probe_along_training,
)
from mirror_align.pipeline.probing.fig3_right import (
    ComparisonOutcome,
    probe_success_subsets,
    success_subsets_needs,
)
from mirror_align.pipeline.probing.fig6_tsne import TsneOutcome, tsne_needs, tsne_points


@dataclass
class ProbingSummary:
    """What :func:`run_all` did."""

    out: Path
    along: AlongTrainingOutcome
    subsets: list[ComparisonOutcome]
    tsne: TsneOutcome
    seconds: float

    def line(self) -> str:
        """One summary line."""
        missing = sum(outcome.status == "missing" for outcome in self.subsets)
        skipped = f", {len(self.tsne.skipped)} t-SNE skipped" if self.tsne.skipped else ""
        return (
            f"probing: {len(self.along.pairs)} checkpoint pairs, "
            f"{len(self.subsets) - missing}/{len(self.subsets)} subset comparisons, "
            f"{len(self.tsne.points)} t-SNE file(s){skipped} in {self.out} [{self.seconds:.1f} s]"
        )


def _subset_text(outcome: ComparisonOutcome) -> str:
    if outcome.status == "written":
        means = ", ".join(f"{k} {v:.3f}" for k, v in outcome.recall_at_1.items())
        return f"{outcome.comparison}: n={outcome.n_per_subset} per subset, Recall@1 {means}"
    if outcome.status == "present":
        return f"{outcome.comparison}: already in subsets.jsonl"
    return f"{outcome.comparison}: MISSING ({outcome.reason})"


def _check_splits(splits: Sequence[str] | None) -> None:
    if splits is not None and set(splits) <= {"test"}:
        raise UserInputError(
            "probing splits: the t-SNE shows the test episodes and fits the baseline probe on "
            "the others; add train or val"
        )


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def _value(x: float) -> str:
    """A metric as printed: NaN means undefined (too few test rows, or collapsed)."""
    return "undefined" if math.isnan(x) else f"{x:.3f}"


def _along_lines(along: AlongTrainingOutcome) -> list[str]:
    """What Fig. 3 left did, and its last probe's numbers, each beside its chance level."""
    lines = [
        f"probing: along training {along.run}: steps {[p.step for p in along.pairs]} "
        f"({len(along.results)} probed, {len(along.skipped_steps)} already done)"
    ]
    if along.results:
        step = max(along.results)
        last = along.results[step]
        lines.append(
            f"probing: step {step}: Recall@1 {last['recall_at_1']:.3f} "
            f"(chance {last['chance']:.3f}), MI >= {last['mi_lower_bound_nats']:.3f} nats, "
            f"mutual k-NN {_value(last['mutual_knn'])} (chance {_value(last['mutual_knn_chance'])}), "
            f"CKA {_value(last['cka_linear'])} (chance {_value(last['cka_linear_chance'])})"
        )
    return lines


def _needs(
    au_run: str | Path, ee_run: str | Path, out: Path, mn_run: str | Path | None, split: str
) -> list[Checkpoint]:
    """Every checkpoint whose features the three parts of :func:`run_all` still need."""
    return (
        along_training_needs(au_run, ee_run, out / "along_training.jsonl")
        + success_subsets_needs(au_run, ee_run, out / "subsets.jsonl", split)
        + tsne_needs(out, mn_run, au_run, ee_run)
    )


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
    *,
    cache: bool = True,
    batch_size: int = 32,
    progress: bool = True,
    workers: int = 1,
    log: Callable[[str], None] | None = None,
) -> ProbingSummary:
    """Fig. 3 left (``out/along_training.jsonl``), Fig. 3 right (``out/subsets.jsonl``) and Fig. 6
    (``out/tsne_<run>.npz``: the MN run when given, and the baseline pair) over one set of
    episodes: the successful ones of ``splits`` (None: all) plus ``split`` for the subsets.

    ``probe_config`` (default :func:`default_probe_config`, with ``seed``) is used as is for the
    probes of Fig. 3; the t-SNE's baseline probe pairs by instruction. Each part is resumable.
    ``log`` receives one line per finished part (default: stderr).

    The features of every checkpoint the three parts still need are extracted first, in one
    batch-major pass (:mod:`.extract`) over ``workers`` 1-thread processes (1: this process); the
    numbers do not depend on ``workers``.
    """
    if log is None:
        log = _to_stderr
    _check_splits(splits)
    started = time.perf_counter()
    out = Path(out)
    config = probe_config or default_probe_config(seed=seed)
    opened = None if splits is None else sorted(set(splits) | {split}, key=SPLITS.index)
    store = open_store(
        data, au_run, opened, cache=cache, batch_size=batch_size, progress=progress, workers=workers
    )
    shared = {"store": store, "progress": progress}  # every part reads the same features
    store.prefetch(_needs(au_run, ee_run, out, mn_run, split))

    along = probe_along_training(
        au_run, ee_run, data, out / "along_training.jsonl", config, splits, **shared
    )
    for line in _along_lines(along):
        log(line)
    subsets = probe_success_subsets(
        au_run, ee_run, data, out / "subsets.jsonl", split, repeats, config, **shared
    )
    for outcome in subsets:
        log(f"probing: subsets {_subset_text(outcome)}")
    baseline = replace(config, pairing="instruction")
    tsne = tsne_points(data, out, mn_run, au_run, ee_run, baseline, seed=config.seed, **shared)
    log(f"probing: t-SNE {', '.join(str(p) for p in tsne.points.values())}")
    for name, reason in tsne.skipped.items():
        log(f"probing: t-SNE of {name} SKIPPED ({reason})")
    return ProbingSummary(out, along, subsets, tsne, time.perf_counter() - started)
