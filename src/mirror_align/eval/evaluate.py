"""Evaluate a run: recognition (AU) and rollout success (EE), appended to ``RUN/metrics.jsonl``.

Per-episode outcomes go to ``RUN/eval/{recognition,rollouts}_<split>_step<step>.json`` so that the
success/failure probing (Fig. 3 right) can select subsets without re-running anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mirror_align.atomic import write_json_atomic
from mirror_align.constants import RECOGNITION, SUCCESS
from mirror_align.data.reader import DatasetReader
from mirror_align.eval.loading import load_run
from mirror_align.eval.metrics_log import MetricRecord, append_metrics
from mirror_align.eval.recognition import evaluate_recognition
from mirror_align.eval.rollout import plan_rollouts, records_as_dicts, run_rollouts, success_by_task


@dataclass
class EvaluationSummary:
    """What one evaluation measured (fractions in [0, 1])."""

    run: str
    step: int
    split: str
    recognition: dict[str, float] = field(default_factory=dict)  # task -> accuracy
    success: dict[str, dict[int, float]] = field(default_factory=dict)  # task -> eval seed -> rate


def run_tasks(run_dir: Path, config_tasks: list[str], dataset_path: str) -> list[str]:
    """The tasks a run is evaluated on: its configured tasks, else those in its dataset."""
    if config_tasks:
        return list(config_tasks)
    reader = DatasetReader(dataset_path)
    present = {entry["task"] for entry in reader.entries.values()}
    return [t for t in reader.meta.tasks if t in present]


def evaluate_run(
    run_dir: str | Path,
    split: str = "test",
    step: int | None = None,
    episodes_per_task: int | None = None,
    eval_seeds: int | None = None,
    workers: int | None = None,
    save_videos: int = 0,
    dataset_path: str | None = None,
    progress: bool = True,
) -> EvaluationSummary:
    """Evaluate what the run's method has (AU, EE or both) and append the metrics."""
    run_dir = Path(run_dir)
    run = load_run(run_dir, step)
    cfg = run.config
    data_path = dataset_path or cfg.data.path
    tasks = run_tasks(run_dir, cfg.data.tasks, data_path)
    summary = EvaluationSummary(run.name, run.step, split)
    records: list[MetricRecord] = []
    out_dir = run_dir / "eval"
    if "au" in run.modules:
        result = evaluate_recognition(run.modules["au"], data_path, split, cfg.au.num_frames, tasks)
        summary.recognition = result.per_task
        for task, value in result.per_task.items():
            records.append(MetricRecord(run.name, run.step, split, task, RECOGNITION, value, 0))
        records.append(MetricRecord(run.name, run.step, split, "all", RECOGNITION, result.mean, 0))
        write_json_atomic(
            out_dir / f"recognition_{split}_step{run.step}.json",
            {
                "episode_id": result.episode_id.tolist(),
                "task": result.task,
                "instruction_id": result.instruction_id.tolist(),
                "predicted": result.predicted.tolist(),
            },
        )
    if "ee" in run.modules:
        jobs = plan_rollouts(
            tasks,
            episodes_per_task or cfg.eval.episodes_per_task,
            eval_seeds or cfg.eval.eval_seeds,
            split,
        )
        rollouts = run_rollouts(
            run_dir,
            jobs,
            run.step,
            cfg.eval.max_steps,
            workers or cfg.eval.workers,
            out_dir / f"videos_step{run.step}" if save_videos else None,
            save_videos,
            progress,
        )
        summary.success = success_by_task(rollouts)
        seeds = sorted({r.eval_seed for r in rollouts})
        for task, by_seed in summary.success.items():
            for seed, value in by_seed.items():
                records.append(MetricRecord(run.name, run.step, split, task, SUCCESS, value, seed))
        for seed in seeds:
            mean = float(np.mean([summary.success[t][seed] for t in summary.success]))
            records.append(MetricRecord(run.name, run.step, split, "all", SUCCESS, mean, seed))
        write_json_atomic(
            out_dir / f"rollouts_{split}_step{run.step}.json", records_as_dicts(rollouts)
        )
    append_metrics(run_dir / "metrics.jsonl", records)
    return summary


def format_summary(summary: EvaluationSummary) -> str:
    """A plain-text table: task, recognition accuracy, success mean ± std over evaluation seeds."""
    tasks = sorted(set(summary.recognition) | set(summary.success))
    lines = [f"{'task':32s} {'recognition %':>14s} {'success % (mean ± std)':>24s}"]
    for task in tasks + ["all"]:
        if task == "all":
            rec = np.mean(list(summary.recognition.values())) if summary.recognition else None
            per_seed = [np.mean([s[k] for s in summary.success.values()]) for k in _seeds(summary)]
        else:
            rec = summary.recognition.get(task)
            per_seed = list(summary.success.get(task, {}).values())
        rec_text = f"{100 * rec:.1f}" if rec is not None else "-"
        suc_text = (
            f"{100 * np.mean(per_seed):.1f} ± {100 * np.std(per_seed):.1f}" if per_seed else "-"
        )
        lines.append(f"{task:32s} {rec_text:>14s} {suc_text:>24s}")
    return "\n".join(lines)


def _seeds(summary: EvaluationSummary) -> list[int]:
    seeds = {s for by_seed in summary.success.values() for s in by_seed}
    return sorted(seeds)
