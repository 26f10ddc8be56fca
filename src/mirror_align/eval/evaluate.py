"""Evaluate a run: recognition (AU) and rollout success (EE), appended to ``RUN/metrics.jsonl``.

Per-episode outcomes go to ``RUN/eval/{recognition,rollouts}_<split>_step<step>.json`` so that the
success/failure probing (Fig. 3 right) can select subsets without re-running anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mirror_align.atomic import write_json_atomic
from mirror_align.constants import RECOGNITION_CEILING, RECOGNITION_SE, RECOGNITION_TEXT
from mirror_align.data.reader import DatasetReader
from mirror_align.eval.loading import load_run
from mirror_align.eval.metrics_log import MetricRecord, append_metrics
from mirror_align.eval.recognition import RecognitionResult, evaluate_recognition
from mirror_align.eval.rollout import plan_rollouts, records_as_dicts, run_rollouts, success_by_task

RECOGNITION = "recognition_accuracy"
SUCCESS = "success_rate"


@dataclass
class EvaluationSummary:
    """What one evaluation measured (fractions in [0, 1])."""

    run: str
    step: int
    split: str
    recognition: dict[str, float] = field(default_factory=dict)  # task -> accuracy (exact id)
    recognition_text: dict[str, float] = field(default_factory=dict)  # task -> accuracy (by text)
    recognition_ceiling: dict[str, float] = field(default_factory=dict)  # task -> exact-id ceiling
    # Standard errors of the mean over tasks: exact id, by text.
    recognition_se: tuple[float, float] | None = None
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
        records += _recognition_records(summary, result)
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


def _recognition_records(
    summary: EvaluationSummary, result: RecognitionResult
) -> list[MetricRecord]:
    """Fill ``summary``'s recognition fields; the per-task and 'all' metric records."""
    summary.recognition = result.per_task
    summary.recognition_text = result.per_task_text
    summary.recognition_ceiling = result.ceiling
    summary.recognition_se = (result.stderr, result.stderr_text)
    records = []
    for name, per_task in (
        (RECOGNITION, summary.recognition),
        (RECOGNITION_TEXT, summary.recognition_text),
        (RECOGNITION_CEILING, summary.recognition_ceiling),
    ):
        for task, value in {**per_task, "all": float(np.mean(list(per_task.values())))}.items():
            records.append(
                MetricRecord(summary.run, summary.step, summary.split, task, name, value, 0)
            )
    records.append(
        MetricRecord(
            summary.run, summary.step, summary.split, "all", RECOGNITION_SE, result.stderr, 0
        )
    )
    return records


def format_summary(summary: EvaluationSummary) -> str:
    """A plain-text table per task: recognition by exact id and by text, the exact-id ceiling, and
    success mean ± std over evaluation seeds; the 'all' row gives recognition ± its standard error.
    """
    tasks = sorted(set(summary.recognition) | set(summary.success))
    head = ("recognition %", "by text %", "ceiling %", "success % (mean ± std)")
    lines = [f"{'task':32s} {head[0]:>14s} {head[1]:>14s} {head[2]:>9s} {head[3]:>24s}"]
    columns = (summary.recognition, summary.recognition_text, summary.recognition_ceiling)
    se = summary.recognition_se or (None, None)
    for task in tasks + ["all"]:
        if task == "all":
            rec = [np.mean(list(c.values())) if c else None for c in columns]
            per_seed = [np.mean([s[k] for s in summary.success.values()]) for k in _seeds(summary)]
        else:
            rec = [c.get(task) for c in columns]
            per_seed = list(summary.success.get(task, {}).values())
        texts = [f"{100 * r:.1f}" if r is not None else "-" for r in rec]
        if task == "all":
            texts[:2] = [
                t if e is None else f"{t} ± {100 * e:.1f}"
                for t, e in zip(texts[:2], se, strict=True)
            ]
        suc_text = (
            f"{100 * np.mean(per_seed):.1f} ± {100 * np.std(per_seed):.1f}" if per_seed else "-"
        )
        lines.append(f"{task:32s} {texts[0]:>14s} {texts[1]:>14s} {texts[2]:>9s} {suc_text:>24s}")
    return "\n".join(lines)


def _seeds(summary: EvaluationSummary) -> list[int]:
    seeds = {s for by_seed in summary.success.values() for s in by_seed}
    return sorted(seeds)
