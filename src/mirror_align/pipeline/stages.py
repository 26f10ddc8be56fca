"""The stages of ``reproduce``, each a library call that skips or resumes what is already done.

data (generate + verify) -> per run: train, evaluate -> probing (Fig. 3 left/right, Fig. 6) ->
report. Every stage reads and writes only the experiment folder (docs/experiments.md).
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from pathlib import Path

# Training and evaluation are imported here, not in their stages, so that the import time (seconds
# on a cold start) is not counted as the first run's stage time in timings.json.
from mirror_align.config.experiment import ExperimentConfig, loop_steps
from mirror_align.errors import UserInputError
from mirror_align.eval.evaluate import evaluate_run
from mirror_align.eval.metrics_log import read_metrics
from mirror_align.pipeline.manifest import RunSpec
from mirror_align.train.checkpoint import latest_checkpoint
from mirror_align.train.trainer import train

Log = Callable[[str], None]


def ensure_dataset(config: ExperimentConfig, workers: int, log: Log) -> None:
    """Generate every split (resumes; a complete split is a no-op), then verify the whole dataset."""
    from mirror_align.data.generate import generate
    from mirror_align.data.verify import verify_dataset
    from mirror_align.sim import TASK_NAMES

    tasks = config.data.generate_tasks or list(TASK_NAMES)
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


def train_stage(
    spec: RunSpec, config: ExperimentConfig, run_dir: Path, log: Log, *, progress: bool = True
) -> None:
    """Train the run to its last step: skipped when complete, resumed from its last checkpoint."""
    if run_is_complete(run_dir, config, spec.method):
        log(f"train {spec.name}: complete, skipped")
        return
    resume = latest_checkpoint(run_dir) is not None
    result = train(config, spec.method, run_dir, resume=resume, progress=progress)
    log(f"train {spec.name}: {result.steps} steps, {result.seconds:.0f} s")


def evaluate_stage(spec: RunSpec, run_dir: Path, workers: int, log: Log) -> None:
    """Evaluate the run's latest checkpoint on the test split, unless that is already recorded."""
    folder = latest_checkpoint(run_dir)
    if folder is None:
        raise UserInputError(f"{run_dir}: no checkpoint to evaluate (train it first)")
    if is_evaluated(run_dir, int(folder.name.split("_")[1]), "test"):
        log(f"evaluate {spec.name}: done before, skipped")
        return
    evaluate_run(run_dir, "test", workers=workers)
    log(f"evaluate {spec.name}: written to {run_dir / 'metrics.jsonl'}")


def probing_stage(
    out: Path, config: ExperimentConfig, seed: int, log: Log, workers: int = 1
) -> None:
    """Fig. 3 left/right and Fig. 6 from the seed's AU and EE baselines and its MN run, into
    ``out/probing`` (what ``mirror-align probe-runs`` does), with one torch thread as that
    command's default: small probes gain nothing from more, and results stay comparable. The
    features (most of the time: one greedy decoding per keyframe and checkpoint) are extracted in
    ``workers`` 1-thread processes, which gives the same numbers."""
    import torch

    from mirror_align.pipeline.probing import run_all

    runs = out / "runs"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        summary = run_all(
            runs / f"au_s{seed}",
            runs / f"ee_s{seed}",
            config.data.path,
            out / "probing",
            mn_run=runs / f"mn_s{seed}",
            splits=list(config.eval.probe_splits),
            workers=workers,
        )
    finally:
        torch.set_num_threads(threads)
    log(summary.line())
    log(f"probing: written to {out / 'probing'}")


def report_stage(out: Path, log: Log) -> None:
    """``out/report.md``, ``out/report.html`` and the figures."""
    from mirror_align.report.render import render_report

    paths = render_report(out)
    log(f"report: {', '.join(str(p) for p in paths)}")


def versions() -> dict[str, str]:
    """Versions of this package and of what its numbers depend on (recorded in config.json)."""
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
