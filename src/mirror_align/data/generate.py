"""Generate MirrorBench demonstrations with the scripted experts, in parallel and resumably.

Each job is one episode: (task, variation, seed). The seed fixes the scene, and the job's
``episode_id`` is its seed, so a re-run knows exactly which episodes exist. Workers write their
episode files themselves (temporary name + rename); the parent process owns the index.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mirror_align.data.episode_io import write_episode
from mirror_align.data.schema import SPLITS, DatasetMeta, Episode, Instruction
from mirror_align.errors import UserInputError
from mirror_align.workers import spawn_map

# Disjoint seed ranges: split base + TASK_SEED_STRIDE * task_id + episode index.
SPLIT_SEED_BASE = {"train": 0, "val": 10_000_000, "test": 20_000_000}
TASK_SEED_STRIDE = 100_000


@dataclass(frozen=True)
class Job:
    """One episode to generate."""

    task: str
    task_id: int
    variation: int
    seed: int
    split: str

    @property
    def episode_id(self) -> int:
        return self.seed


def parse_tasks(spec: str) -> list[str]:
    """``all`` or a comma-separated list -> implemented task names, in ``TASK_NAMES`` order."""
    from mirror_align.sim import TASK_NAMES, implemented_tasks

    implemented = implemented_tasks()
    if spec.strip() == "all":
        return implemented
    names = [name.strip() for name in spec.split(",") if name.strip()]
    if not names:
        raise UserInputError("--tasks: give 'all' or a comma-separated list of task names")
    unknown = [n for n in names if n not in TASK_NAMES]
    if unknown:
        raise UserInputError(
            f"--tasks: unknown task(s) {', '.join(unknown)}; valid tasks: {', '.join(TASK_NAMES)}"
        )
    missing = [n for n in names if n not in implemented]
    if missing:
        raise UserInputError(
            f"--tasks: {', '.join(missing)} not implemented in the simulator yet; "
            f"implemented: {', '.join(implemented)}"
        )
    return [n for n in TASK_NAMES if n in names]


def bench_meta(image_size: int, video_frames: int, config: dict[str, Any]) -> DatasetMeta:
    """Dataset metadata for MirrorBench: all 18 tasks and the 249-row instruction table."""
    from mirror_align.sim import CAMERAS, TASK_NAMES, WORKSPACE_BOUNDS, instruction_table

    return DatasetMeta(
        tasks=list(TASK_NAMES),
        instructions=[Instruction(*row) for row in instruction_table()],
        image_size=image_size,
        cameras=list(CAMERAS),
        video_frames=video_frames,
        workspace_bounds=np.asarray(WORKSPACE_BOUNDS, dtype=float).tolist(),
        source="mirrorbench",
        config=config,
    )


def plan_jobs(tasks: list[str], episodes_per_task: int, split: str) -> list[Job]:
    """Episode i of each task: variation ``i % n_variations``, seed from the split's range."""
    from mirror_align.sim import TASK_NAMES, get_task

    if split not in SPLITS:
        raise UserInputError(f"--split {split!r} is not one of {', '.join(SPLITS)}")
    if not 1 <= episodes_per_task < TASK_SEED_STRIDE:
        raise UserInputError(f"--episodes-per-task must be in 1..{TASK_SEED_STRIDE - 1}")
    jobs = []
    for task in tasks:
        task_id = TASK_NAMES.index(task)
        variations = get_task(task).variation_count
        base = SPLIT_SEED_BASE[split] + TASK_SEED_STRIDE * task_id
        for i in range(episodes_per_task):
            jobs.append(Job(task, task_id, i % variations, base + i, split))
    return jobs


def run_expert(env: Any, job: Job, video_frames: int) -> Episode:
    """Reset ``env`` to the job's scene, run the scripted expert, return the episode record."""
    from mirror_align.sim import CAMERAS

    obs, info = env.reset(seed=job.seed, options={"variation": job.variation})
    observations, actions = [], []
    failure = ""
    success = False
    for action in env.expert_keyframes():
        observations.append(obs)
        actions.append(action)
        obs, _, terminated, truncated, info = env.step(action)
        success = bool(info["success"])
        if terminated or truncated:
            if not success:
                failure = info.get("failure_reason") or "episode truncated"
            break
    if not success and not failure:
        failure = "the expert's keyframes ended without success"
    return Episode.from_steps(
        task=job.task,
        variation_id=job.variation,
        seed=job.seed,
        split=job.split,
        success=success,
        video=env.video_frames(video_frames),
        observations=observations,
        actions=actions,
        cameras=CAMERAS,
        episode_id=job.episode_id,
        instruction_id=int(info["instruction_id"]),
        failure_reason=failure,
    )


class _Worker:
    """Per-process state: one env per task, created on first use and reused."""

    def __init__(self, out: str, meta: DatasetMeta, image_size: int, video_frames: int) -> None:
        self.out, self.meta = out, meta
        self.image_size, self.video_frames = image_size, video_frames
        self.envs: dict[str, Any] = {}

    def __call__(self, job: Job) -> dict[str, Any]:
        from mirror_align.sim import make_env

        if job.task not in self.envs:
            self.envs[job.task] = make_env(job.task, image_size=self.image_size)
        try:
            episode = run_expert(self.envs[job.task], job, self.video_frames)
        except UserInputError:
            raise  # already one line naming what to fix
        except Exception as error:  # a scene that cannot be built is a task bug: say which one
            raise RuntimeError(
                f"{job.task} variation {job.variation} seed {job.seed} ({job.split}): {error}"
            ) from error
        return write_episode(self.out, episode, self.meta)

    def close(self) -> None:
        for env in self.envs.values():
            env.close()
        self.envs.clear()


def _make_worker(out: str, meta: dict, image_size: int, video_frames: int) -> _Worker:
    """A pool worker's state (:func:`mirror_align.workers.spawn_map` builds one per process)."""
    return _Worker(out, DatasetMeta.from_dict(meta), image_size, video_frames)


@dataclass
class GenerateResult:
    generated: int  # episodes written by this run
    failed: int  # of which the expert failed
    skipped: int  # already present from an earlier run
    seconds: float
    total_failed: int  # failed demos of the requested jobs, including earlier runs

    @property
    def episodes_per_second(self) -> float:
        return self.generated / self.seconds if self.seconds > 0 else 0.0


def generate(
    out: str | Path,
    tasks: list[str],
    episodes_per_task: int,
    split: str = "train",
    image_size: int = 128,
    video_frames: int = 32,
    workers: int = 1,
    progress: bool = True,
) -> GenerateResult:
    """Generate (or finish generating) ``episodes_per_task`` episodes of each task into ``out``."""
    from tqdm import tqdm

    from mirror_align.data.writer import DatasetWriter

    if image_size < 16:
        raise UserInputError(f"--image-size {image_size} must be >= 16 (64 or 128 recommended)")
    if video_frames < 1:
        raise UserInputError(f"--video-frames {video_frames} must be >= 1")
    if workers < 1:
        raise UserInputError(f"--workers {workers} must be >= 1")
    jobs = plan_jobs(tasks, episodes_per_task, split)
    config = {
        "command": "generate",
        "tasks": tasks,
        "episodes_per_task": episodes_per_task,
        "split": split,
        "image_size": image_size,
        "video_frames": video_frames,
    }
    meta = bench_meta(image_size, video_frames, config)
    writer = DatasetWriter(out, meta)
    pending = [job for job in jobs if not writer.has_episode(job.episode_id)]
    skipped = len(jobs) - len(pending)
    failed = 0
    start = time.perf_counter()
    bar = tqdm(
        total=len(jobs), initial=skipped, desc=f"generate {split}", unit="episode",
        file=sys.stderr, disable=not progress, smoothing=0.1,
    )  # fmt: skip
    try:
        if workers == 1 or len(pending) <= 1:
            worker = _Worker(str(out), writer.meta, image_size, video_frames)
            try:
                for job in pending:
                    entry = worker(job)
                    writer.register(entry)
                    failed += not entry["success"]
                    bar.update(1)
            finally:
                worker.close()
        else:
            init = (str(out), writer.meta.to_dict(), image_size, video_frames)
            for entry in spawn_map(_make_worker, init, pending, workers, ordered=False):
                writer.register(entry)
                failed += not entry["success"]
                bar.update(1)
    finally:
        bar.close()
        writer.close()
    seconds = time.perf_counter() - start
    total_failed = sum(
        not writer.entries[job.episode_id]["success"]
        for job in jobs
        if job.episode_id in writer.entries
    )
    return GenerateResult(len(pending), failed, skipped, seconds, total_failed)


def result_dict(result: GenerateResult) -> dict[str, Any]:
    return {**asdict(result), "episodes_per_second": result.episodes_per_second}
