"""`reproduce`: every experiment of the paper into one folder, resumable stage by stage.

Stages: data (generate + verify) → training runs (AU, EE, MN per seed) → evaluation → probing
(Fig. 3 left/right, Fig. 6) → ablation grid and beyond-the-paper runs → report. A stage whose outputs
are complete is skipped; an interrupted training run continues from its last checkpoint; a
generation resumes episode by episode. The folder layout is ``docs/experiments.md``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mirror_align.atomic import write_json_atomic
from mirror_align.config import config_to_dict
from mirror_align.config.experiment import ExperimentConfig, loop_steps_count
from mirror_align.errors import UserInputError
from mirror_align.eval.metrics_log import read_metrics
from mirror_align.train.checkpoint import latest_checkpoint

ABLATION_PAIRINGS = ("episode", "instruction", "class")
ABLATION_TAUS = (0.02, 0.1, 0.2)
PROBE_CHECKPOINTS = 5  # checkpoints along training of the seed-0 baselines (Fig. 3 left)


@dataclass(frozen=True)
class RunSpec:
    """One training run of the experiment: what the manifest records about it."""

    name: str
    method: str
    seed: int
    group: str  # main | ablation | beyond
    pairing: str
    tau: float
    projector: str
    multi_positive: bool

    def configure(self, base: ExperimentConfig) -> ExperimentConfig:
        """The base config with this run's seed and aligner settings."""
        align = replace(
            base.align,
            pairing=self.pairing,
            tau=self.tau,
            projector=self.projector,
            multi_positive=self.multi_positive,
        )
        train = base.train
        if self.group == "main" and self.seed == base.seed and self.method in ("au", "ee"):
            # Keep checkpoints along training for probing the baselines (Fig. 3 left).
            every = max(1, loop_steps_count(base, self.method) // PROBE_CHECKPOINTS)
            train = replace(train, checkpoint_every=every, keep_checkpoints=0)
        return replace(base, seed=self.seed, align=align, train=train)


def plan_runs(
    config: ExperimentConfig, seeds: list[int], ablation: bool, main: bool = True
) -> list[RunSpec]:
    """The main comparison for every seed, then (unless skipped) the ablation and beyond runs."""
    a = config.align
    runs = []
    if main:
        runs = [
            RunSpec(f"{m}_s{s}", m, s, "main", a.pairing, a.tau, a.projector, a.multi_positive)
            for s in seeds
            for m in ("au", "ee", "mn")
        ]
    if ablation:
        first = seeds[0]
        for pairing in ABLATION_PAIRINGS:
            for tau in ABLATION_TAUS:
                runs.append(
                    RunSpec(
                        f"ablation_{pairing}_t{tau:g}",
                        "mn",
                        first,
                        "ablation",
                        pairing,
                        tau,
                        a.projector,
                        False,
                    )
                )
        runs.append(
            RunSpec(
                f"mn_multi_s{first}", "mn", first, "beyond", a.pairing, a.tau, a.projector, True
            )
        )
        runs.append(
            RunSpec(f"mn_mlp_s{first}", "mn", first, "beyond", a.pairing, a.tau, "mlp", False)
        )
    return runs


def write_manifest(out: Path, preset: str, seeds: list[int], runs: list[RunSpec]) -> None:
    """``DIR/manifest.json`` (docs/experiments.md)."""
    write_json_atomic(
        out / "manifest.json",
        {
            "preset": preset,
            "seeds": seeds,
            "runs": [
                {
                    "name": r.name,
                    "method": r.method,
                    "seed": r.seed,
                    "group": r.group,
                    "pairing": r.pairing,
                    "tau": r.tau,
                    "projector": r.projector,
                    "multi_positive": r.multi_positive,
                }
                for r in runs
            ],
        },
    )


def ensure_dataset(config: ExperimentConfig, workers: int, log: Callable[[str], None]) -> None:
    """Generate every split (resumes; a complete split is a no-op), then verify the whole dataset."""
    from mirror_align.data.generate import generate
    from mirror_align.data.verify import verify_dataset
    from mirror_align.sim import TASK_NAMES

    tasks = config.data.tasks or list(TASK_NAMES)
    for split, count in config.data.episodes_per_task.items():
        result = generate(
            config.data.path,
            tasks,
            count,
            split,
            config.data.image_size,
            config.data.video_frames,
            workers,
        )
        log(
            f"data {split}: {result.generated} new, {result.skipped} present, {result.total_failed} failed demos"
        )
    problems, checked = verify_dataset(config.data.path)
    if problems:
        raise UserInputError(f"dataset {config.data.path} failed verification: {problems[0]}")
    log(f"data verified: {checked} episodes")


def run_is_complete(run_dir: Path, config: ExperimentConfig, method: str) -> bool:
    """Whether the run's last checkpoint is at its final step."""
    from mirror_align.train.trainer import loop_steps

    folder = latest_checkpoint(run_dir)
    if folder is None:
        return False
    return int(folder.name.split("_")[1]) == loop_steps(config, method)[-1] + 1


def is_evaluated(run_dir: Path, step: int, split: str) -> bool:
    """Whether ``RUN/metrics.jsonl`` already holds this step's evaluation of ``split``."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return False
    records, _ = read_metrics(path)
    return any(r.step == step and r.split == split and r.task == "all" for r in records)


def reproduce(
    base: ExperimentConfig,
    out: str | Path,
    seeds: list[int],
    ablation: bool = True,
    workers: int = 2,
    log: Callable[[str], None] = print,
    main: bool = True,
) -> dict[str, Any]:
    """Run (or resume) every stage into ``out``; returns a summary with per-stage seconds."""
    from mirror_align.eval.evaluate import evaluate_run
    from mirror_align.train.trainer import train

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    base = replace(base, data=replace(base.data, path=str(out / "data")))
    write_json_atomic(
        out / "config.json", {"experiment": config_to_dict(base), "versions": _versions()}
    )
    runs = plan_runs(base, seeds, ablation, main)
    if not main:  # `ablate` adds its runs to an existing experiment folder's manifest
        known = {r.name for r in runs}
        runs = [r for r in _manifest_runs(out) if r.name not in known] + runs
    write_manifest(out, base.preset, seeds, runs)
    timings: dict[str, float] = {}
    started = time.perf_counter()

    t = time.perf_counter()
    ensure_dataset(base, workers, log)
    timings["data"] = time.perf_counter() - t

    for spec in runs:
        if not main and spec.group == "main":
            continue
        config = spec.configure(base)
        run_dir = out / "runs" / spec.name
        t = time.perf_counter()
        if run_is_complete(run_dir, config, spec.method):
            log(f"train {spec.name}: complete, skipped")
        else:
            resume = latest_checkpoint(run_dir) is not None
            result = train(config, spec.method, run_dir, resume=resume)
            log(f"train {spec.name}: {result.steps} steps, {result.seconds:.0f} s")
        timings[f"train {spec.name}"] = time.perf_counter() - t
        t = time.perf_counter()
        step = int(latest_checkpoint(run_dir).name.split("_")[1])
        if is_evaluated(run_dir, step, "test"):
            log(f"evaluate {spec.name}: done before, skipped")
        else:
            evaluate_run(run_dir, "test", workers=workers)
            log(f"evaluate {spec.name}: written to {run_dir / 'metrics.jsonl'}")
        timings[f"evaluate {spec.name}"] = time.perf_counter() - t

    if main:
        t = time.perf_counter()
        _probing_stage(out, base, seeds[0], log)
        timings["probing"] = time.perf_counter() - t

    t = time.perf_counter()
    _report_stage(out, log)
    timings["report"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - started
    write_json_atomic(out / "timings.json", {k: round(v, 1) for k, v in timings.items()})
    return timings


def _probing_stage(
    out: Path, config: ExperimentConfig, seed: int, log: Callable[[str], None]
) -> None:
    """Fig. 3 left/right and Fig. 6 from the seed's baselines and MN run (`mirror-align probe-runs`)."""
    from mirror_align.cli import main

    runs = out / "runs"
    argv = [
        "probe-runs",
        "--au", str(runs / f"au_s{seed}"),
        "--ee", str(runs / f"ee_s{seed}"),
        "--mn", str(runs / f"mn_s{seed}"),
        "--data", config.data.path,
        "--out", str(out / "probing"),
        "--splits", ",".join(config.eval.probe_splits),
    ]  # fmt: skip
    if main(argv) != 0:
        raise UserInputError(f"probing failed: mirror-align {' '.join(argv)}")
    log(f"probing: written to {out / 'probing'}")


def _report_stage(out: Path, log: Callable[[str], None]) -> None:
    from mirror_align.report.render import render_report

    paths = render_report(out)
    log(f"report: {', '.join(str(p) for p in paths)}")


def _versions() -> dict[str, str]:
    import platform

    import torch

    from mirror_align import __version__
    from mirror_align.headless import import_mujoco

    mujoco = import_mujoco()  # GL set-up first: rollouts in this process render later

    return {
        "mirror_align": __version__,
        "torch": torch.__version__,
        "mujoco": mujoco.__version__,
        "python": platform.python_version(),
    }


def load_manifest(out: str | Path) -> dict[str, Any]:
    """``DIR/manifest.json`` as a dict."""
    path = Path(out) / "manifest.json"
    if not path.is_file():
        raise UserInputError(f"{path} not found; run `mirror-align reproduce --out {out}` first")
    return json.loads(path.read_text())


def _manifest_runs(out: Path) -> list[RunSpec]:
    """Runs already listed in ``out/manifest.json`` (none if it does not exist yet)."""
    path = out / "manifest.json"
    if not path.is_file():
        return []
    return [RunSpec(**r) for r in json.loads(path.read_text())["runs"]]
