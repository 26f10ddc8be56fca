"""`reproduce` and `ablate`: every experiment of the paper into one folder, resumable stage by stage.

Stages (:mod:`mirror_align.pipeline.stages`): data (generate + verify) → training runs (AU, EE, MN
per seed; :mod:`mirror_align.pipeline.manifest` plans them; ``train.parallel_runs`` at a time in
1-thread processes, :mod:`mirror_align.pipeline.parallel`) → evaluation → probing (Fig. 3
left/right, Fig. 6) → ablation grid and beyond-the-paper runs → report. A stage whose outputs are
complete is skipped; an interrupted training run continues from its last checkpoint; a generation
resumes episode by episode. Stage times go to ``timings.json`` across invocations
(:mod:`mirror_align.pipeline.timings`). The folder layout is ``docs/experiments.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import replace
from pathlib import Path

from mirror_align.atomic import write_json_atomic
from mirror_align.config import config_to_dict
from mirror_align.config.experiment import ExperimentConfig
from mirror_align.constants import PAPER_AU_SHARE
from mirror_align.pipeline import stages
from mirror_align.pipeline.folder_config import check_same_experiment
from mirror_align.pipeline.manifest import (
    ABLATION_PARTS,
    RunSpec,
    extend_manifest,
    plan_runs,
    write_manifest,
)
from mirror_align.pipeline.parallel import train_in_parallel
from mirror_align.pipeline.timings import StageTimes


def reproduce(
    base: ExperimentConfig,
    out: str | Path,
    seeds: list[int],
    *,
    ablation: bool = True,
    parts: Collection[str] = tuple(ABLATION_PARTS),
    workers: int = 2,
    log: Callable[[str], None] = print,
    main: bool = True,
) -> dict[str, float]:
    """Run (or resume) every stage into ``out``; returns the content of ``timings.json``.

    ``main=False`` (``mirror-align ablate``) adds the ablation and beyond runs to an existing
    folder's manifest and runs only those (no main runs, no probing). Raises
    :class:`~mirror_align.errors.UserInputError` when ``out`` holds runs made with other
    settings (:func:`~mirror_align.pipeline.folder_config.check_same_experiment`). ``workers`` processes
    generate episodes, roll out policies and extract the probing features. ``parts``: which
    :data:`~mirror_align.pipeline.manifest.ABLATION_PARTS` the ablation runs (all by default).
    """
    out = Path(out)
    base = replace(base, data=replace(base.data, path=str(out / "data")))
    check_same_experiment(base, out)  # one folder, one set of settings: its Δs compare like to like
    out.mkdir(parents=True, exist_ok=True)
    if main or not (out / "config.json").is_file():  # `ablate` keeps the main runs' record
        write_json_atomic(
            out / "config.json",
            {"experiment": config_to_dict(base), "versions": stages.versions()},
        )
    runs = plan_runs(base, seeds, ablation=ablation, main=main, parts=parts)
    if ablation and "share" in parts and not any(spec.group == "share" for spec in runs):
        log(
            f"share: train.au_share is already the paper's {PAPER_AU_SHARE:g}, so the main runs "
            "are that comparison; no share runs"
        )
    if main:
        write_manifest(out, base.preset, seeds, runs)
    else:  # `ablate` adds its runs to an existing experiment folder's manifest
        runs = extend_manifest(out, base.preset, seeds, runs)
    times = StageTimes(out / "timings.json")

    todo = [spec for spec in runs if main or spec.group != "main"]
    if todo:  # an `ablate` with nothing to run needs no dataset
        with times.stage("data"):
            stages.ensure_dataset(base, workers, log)
    _train_all(base, todo, out, times, log)
    for spec in todo:
        with times.stage(f"evaluate {spec.name}"):
            stages.evaluate_stage(spec, out / "runs" / spec.name, workers, log)
    if main:
        with times.stage("probing"):
            stages.probing_stage(out, base, seeds[0], log, workers)
    with times.stage("report", redone=True):
        stages.report_stage(out, log)
    return times.rounded()


def _train_all(
    base: ExperimentConfig, runs: list[RunSpec], out: Path, times: StageTimes, log: Callable
) -> None:
    """Train every run that is not complete: ``train.parallel_runs`` at a time in 1-thread worker
    processes (one stage, timed by its wall clock), or one after another in this process."""
    jobs = [(spec, spec.configure(base), out / "runs" / spec.name) for spec in runs]
    pending = []
    for spec, config, run_dir in jobs:
        if stages.run_is_complete(run_dir, config, spec.method):
            log(f"train {spec.name}: complete, skipped")
        else:
            pending.append((spec, config, run_dir))
    if base.train.parallel_runs > 1 and len(pending) > 1:
        with times.stage(f"train {len(pending)} runs ({base.train.parallel_runs} in parallel)"):
            train_in_parallel(pending, base.train.parallel_runs, log)
        return
    for spec, config, run_dir in pending:
        with times.stage(f"train {spec.name}"):
            stages.train_stage(spec, config, run_dir, log)
