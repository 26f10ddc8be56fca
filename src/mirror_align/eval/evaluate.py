"""Evaluate a run on whatever applies to its dataset, appended to ``RUN/metrics.jsonl``.

* AU (``au`` and MN's AU side): recognition accuracy (Table 1) on any split of any dataset.
* EE (``ee`` and MN's EE side): the offline keyframe metrics (:mod:`mirror_align.eval.offline`)
  on any split of any dataset, then rollouts (Table 2) only for the tasks MirrorBench implements
  and whose instructions the run knows (:func:`~mirror_align.eval.rollout.rollout_skip_reason`);
  the skipped tasks and why are said in one line. ``episodes_per_task=0`` (``--rollouts 0``,
  ``--no-rollouts``) runs none.

Rollout records per task and evaluation seed: ``success_rate``, ``rollout_episodes`` (for the
standard error) and ``failures_<kind>`` for each kind of
:data:`~mirror_align.eval.failure_analysis.FAILURE_KINDS`; ``task == "all"`` holds the mean success
and the summed counts. Per-episode outcomes go to ``RUN/eval/{recognition,rollouts}_<split>_step<S>.json``
so that the success/failure probing (Fig. 3 right) can select subsets without re-running anything.
All records are appended together at the end, so a run is never half-recorded.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mirror_align.atomic import write_json_atomic
from mirror_align.constants import (
    RECOGNITION,
    RECOGNITION_CEILING,
    RECOGNITION_CLIPS,
    RECOGNITION_SE,
    RECOGNITION_TEXT,
    SUCCESS,
)
from mirror_align.data.reader import DatasetReader
from mirror_align.errors import UserInputError
from mirror_align.eval.failure_analysis import (
    FAILURE_KINDS,
    ROLLOUT_EPISODES,
    failure_counts,
    failure_metric,
)
from mirror_align.eval.loading import LoadedRun, load_run
from mirror_align.eval.metrics_log import MetricRecord, append_metrics
from mirror_align.eval.offline import (
    keyframe_dataset,
    offline_keyframe_metrics,
    offline_records,
    write_tensorboard,
)
from mirror_align.eval.precision import binomial_se, mean_rate_se, pooled_rate
from mirror_align.eval.recognition import RecognitionResult, evaluate_recognition
from mirror_align.eval.rollout import (
    plan_rollouts,
    records_as_dicts,
    rollout_skip_reason,
    run_rollouts,
    success_by_task,
)


@dataclass
class EvaluationSummary:
    """What one evaluation measured (fractions in [0, 1], errors in cm)."""

    run: str
    step: int
    split: str
    recognition: dict[str, float] = field(default_factory=dict)  # task -> accuracy (exact id)
    recognition_text: dict[str, float] = field(default_factory=dict)  # task -> accuracy (by text)
    recognition_ceiling: dict[str, float] = field(default_factory=dict)  # task -> exact-id ceiling
    # Standard errors of the mean over tasks: exact id, by text.
    recognition_se: tuple[float, float] | None = None
    keyframes: dict[str, dict[str, float]] = field(default_factory=dict)  # task|all -> metrics
    success: dict[str, dict[int, float]] = field(default_factory=dict)  # task -> eval seed -> rate
    episodes: dict[str, dict[int, int]] = field(default_factory=dict)  # task -> eval seed -> n
    failures: dict[str, dict[str, int]] = field(default_factory=dict)  # task -> kind -> count
    skipped: dict[str, str] = field(default_factory=dict)  # task -> why it had no rollouts
    notes: list[str] = field(default_factory=list)  # what was not computed and why
    records: list[MetricRecord] = field(default_factory=list)


def run_tasks(run_dir: Path, config_tasks: list[str], dataset_path: str) -> list[str]:
    """The tasks a run is evaluated on: its configured tasks, else those in its dataset."""
    if config_tasks:
        return list(config_tasks)
    reader = DatasetReader(dataset_path)
    present = {entry["task"] for entry in reader.entries.values()}
    return [t for t in reader.meta.tasks if t in present]


def skipped_line(skipped: dict[str, str]) -> str:
    """One line naming the tasks without rollouts, grouped by reason ('' when none)."""
    by_reason: dict[str, list[str]] = {}
    for task, reason in skipped.items():
        by_reason.setdefault(reason, []).append(task)
    parts = [f"{', '.join(tasks)} ({reason})" for reason, tasks in by_reason.items()]
    return f"rollouts skipped for {len(skipped)} task(s): " + "; ".join(parts) if parts else ""


def _tool_frame(run: LoadedRun, data_path: str) -> list[float] | None:
    """The tool frame the policy learnt in: its training dataset's (the evaluated dataset's when
    the training data is gone). Raises ``UserInputError`` when the two datasets disagree."""
    evaluated = DatasetReader(data_path).meta.tool_frame_rotation
    if not Path(run.config.data.path).is_dir():
        return evaluated
    trained = DatasetReader(run.config.data.path).meta.tool_frame_rotation
    if trained != evaluated:
        raise UserInputError(
            f"--data {data_path}: tool_frame_rotation {evaluated} differs from {trained} of the "
            f"run's training data {run.config.data.path}; the policy's rotations would be misread"
        )
    return trained


def _recognition(run, data_path, split, tasks, summary, out_dir) -> None:
    result = evaluate_recognition(
        run.modules["au"], data_path, split, run.config.au.num_frames, tasks
    )
    summary.records += _recognition_records(summary, result)
    write_json_atomic(
        out_dir / f"recognition_{split}_step{run.step}.json",
        {
            "episode_id": result.episode_id.tolist(),
            "task": result.task,
            "instruction_id": result.instruction_id.tolist(),
            "predicted": result.predicted.tolist(),
        },
    )


def _recognition_records(
    summary: EvaluationSummary, result: RecognitionResult
) -> list[MetricRecord]:
    """Fill ``summary``'s recognition fields; the per-task and 'all' records of exact-id and
    by-text accuracy, the duplicate-text ceiling of exact-id accuracy, the clips each was
    measured on ('all': their sum), and the standard error of the exact-id mean."""
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
    clips = Counter(result.task)
    for task, count in {**clips, "all": len(result.task)}.items():
        records.append(
            MetricRecord(
                summary.run, summary.step, summary.split, task, RECOGNITION_CLIPS, count, 0
            )
        )
    records.append(
        MetricRecord(
            summary.run, summary.step, summary.split, "all", RECOGNITION_SE, result.stderr, 0
        )
    )
    return records


def _keyframes(run, data_path, split, tasks, summary) -> None:
    if not DatasetReader(data_path).select(split, tasks):
        summary.notes.append(f"keyframe metrics: no successful {split} demos in {data_path}")
        return
    dataset = keyframe_dataset(data_path, split, tasks)
    result = offline_keyframe_metrics(run.modules["ee"], dataset)
    summary.keyframes = result.per_task
    records = offline_records(result, run.name, run.step, split)
    summary.records.extend(records)
    write_tensorboard(run.run_dir, records)


def _rollouts(run, tasks, split, options: dict, summary, out_dir, progress) -> None:
    cameras = DatasetReader(options["data_path"]).meta.cameras
    for task in tasks:
        reason = rollout_skip_reason(task, run.instructions, cameras)
        if reason:
            summary.skipped[task] = reason
    runnable = [t for t in tasks if t not in summary.skipped]
    if not runnable:
        return
    cfg = run.config
    jobs = plan_rollouts(
        runnable, options["episodes"], options["seeds"], split, options["tool_frame"]
    )
    videos = options["save_videos"]
    rollouts = run_rollouts(
        run.run_dir,
        jobs,
        run.step,
        cfg.eval.max_steps,
        options["workers"] or cfg.eval.workers,
        out_dir / f"videos_step{run.step}" if videos else None,
        videos,
        progress=progress,
    )
    summary.success = success_by_task(rollouts)
    counts = failure_counts(rollouts)
    record = summary.records.append
    for task, by_seed in summary.success.items():
        summary.failures[task] = {
            k: sum(c[k] for c in counts[task].values()) for k in FAILURE_KINDS
        }
        for seed, value in by_seed.items():
            n = sum(1 for r in rollouts if r.task == task and r.eval_seed == seed)
            summary.episodes.setdefault(task, {})[seed] = n
            record(MetricRecord(run.name, run.step, split, task, SUCCESS, value, seed))
            record(MetricRecord(run.name, run.step, split, task, ROLLOUT_EPISODES, n, seed))
            for kind in FAILURE_KINDS:
                count = counts[task][seed][kind]
                record(
                    MetricRecord(run.name, run.step, split, task, failure_metric(kind), count, seed)
                )
    for seed in sorted({r.eval_seed for r in rollouts}):
        mean = float(np.mean([summary.success[t][seed] for t in summary.success]))
        record(MetricRecord(run.name, run.step, split, "all", SUCCESS, mean, seed))
        total = sum(summary.episodes[t][seed] for t in summary.episodes)
        record(MetricRecord(run.name, run.step, split, "all", ROLLOUT_EPISODES, total, seed))
        for kind in FAILURE_KINDS:
            count = sum(counts[t][seed][kind] for t in counts)
            record(
                MetricRecord(run.name, run.step, split, "all", failure_metric(kind), count, seed)
            )
    write_json_atomic(out_dir / f"rollouts_{split}_step{run.step}.json", records_as_dicts(rollouts))


def evaluate_run(
    run_dir: str | Path,
    split: str = "test",
    step: int | None = None,
    episodes_per_task: int | None = None,
    eval_seeds: int | None = None,
    workers: int | None = None,
    save_videos: int = 0,
    dataset_path: str | None = None,
    *,
    progress: bool = True,
) -> EvaluationSummary:
    """Evaluate what applies to the run and its dataset (module docstring); append the metrics.

    ``episodes_per_task`` / ``eval_seeds``: None takes the config's ``eval`` value; 0 episodes
    runs no rollouts. Raises ``UserInputError`` for a negative count or a missing checkpoint.
    """
    for name, value in (("--episodes-per-task", episodes_per_task), ("--eval-seeds", eval_seeds)):
        if value is not None and value < 0:
            raise UserInputError(f"{name}: must be >= 0, got {value}")
    run_dir = Path(run_dir)
    run = load_run(run_dir, step)
    cfg = run.config
    data_path = dataset_path or cfg.data.path
    tasks = run_tasks(run_dir, cfg.data.tasks, data_path)
    summary = EvaluationSummary(run.name, run.step, split)
    out_dir = run_dir / "eval"
    if "au" in run.modules:
        _recognition(run, data_path, split, tasks, summary, out_dir)
    if "ee" in run.modules:
        tool_frame = _tool_frame(run, data_path)
        _keyframes(run, data_path, split, tasks, summary)
        episodes = cfg.eval.episodes_per_task if episodes_per_task is None else episodes_per_task
        seeds = cfg.eval.eval_seeds if eval_seeds is None else eval_seeds
        if episodes > 0 and seeds > 0:
            options = {
                "data_path": data_path,
                "episodes": episodes,
                "seeds": seeds,
                "workers": workers,
                "save_videos": save_videos,
                "tool_frame": tool_frame,
            }
            _rollouts(run, tasks, split, options, summary, out_dir, progress)
    append_metrics(run_dir / "metrics.jsonl", summary.records)
    return summary


KEYFRAME_COLUMNS = (
    ("kf median cm", "position_error_cm_median", 1.0),
    ("kf <=2cm %", "position_within_2cm", 100.0),
    ("stage1 <=5cm %", "stage1_position_within_5cm", 100.0),
    ("yaw ±1 bin %", "rotation_within1_yaw", 100.0),
    ("gripper %", "gripper_accuracy", 100.0),
)


def _row_text(cells: list[str], widths: list[int]) -> str:
    parts = [
        c.ljust(w) if i == 0 else c.rjust(w)
        for i, (c, w) in enumerate(zip(cells, widths, strict=True))
    ]
    return "  ".join(parts)


def _recognition_cells(summary: EvaluationSummary, task: str) -> list[str]:
    """Exact-id %, by-text % and ceiling % of ``task``; the 'all' row adds each ± its SE."""
    columns = (summary.recognition, summary.recognition_text, summary.recognition_ceiling)
    if task == "all":
        values = [float(np.mean(list(c.values()))) if c else None for c in columns]
    else:
        values = [c.get(task) for c in columns]
    cells = ["-" if v is None else f"{100 * v:.1f}" for v in values]
    if task == "all" and summary.recognition_se is not None:
        cells[:2] = [
            f"{c} ± {100 * e:.1f}" for c, e in zip(cells[:2], summary.recognition_se, strict=True)
        ]
    return cells


def format_summary(summary: EvaluationSummary) -> str:
    """A plain-text table per task: recognition %, offline keyframe metrics, rollout success %
    (pooled over evaluation seeds, ± its binomial standard error) and the failure counts; then
    the skipped tasks and notes, one line each."""
    tasks = [t for t in summary.keyframes if t != "all"]
    tasks = sorted(set(summary.recognition) | set(tasks) | set(summary.success))
    head = ["task", "recognition %", "by text %", "ceiling %"]
    head += [*(c[0] for c in KEYFRAME_COLUMNS), "success % ± SE"]
    head.append("failures " + "/".join(k[:4] for k in FAILURE_KINDS))
    rows = [head]
    pooled = {}
    for task in tasks:
        p, n = pooled_rate(summary.success.get(task, {}), summary.episodes.get(task, {}))
        pooled[task] = (p, n)
    for task in [*tasks, "all"]:
        row = [task, *_recognition_cells(summary, task)]
        kf = summary.keyframes.get(task, {})
        row += [
            f"{scale * kf[key]:.1f}" if key in kf else "-" for _, key, scale in KEYFRAME_COLUMNS
        ]
        if task == "all":
            known = [pooled[t] for t in pooled if pooled[t][1] > 0]
            p = float(np.mean([x[0] for x in known])) if known else math.nan
            se = mean_rate_se(known)
            failures = summary.failures.values()
            counts = {k: sum(f[k] for f in failures) for k in FAILURE_KINDS} if failures else None
        else:
            p, n = pooled[task]
            se = binomial_se(p, n)
            counts = summary.failures.get(task)
        row.append("-" if math.isnan(p) else f"{100 * p:.1f} ± {100 * se:.1f}")
        row.append("/".join(str(counts[k]) for k in FAILURE_KINDS) if counts else "-")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = [_row_text(r, widths) for r in rows]
    extra = [skipped_line(summary.skipped), *summary.notes]
    return "\n".join(lines + [line for line in extra if line])
