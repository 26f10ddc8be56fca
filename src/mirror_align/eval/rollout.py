"""Rollouts of the EE policy in MirrorBench (Table 2): success per task, per evaluation seed.

Evaluation seed ``s`` rolls out, for each task, ``episodes_per_task`` scenes of the split's seed range
(episode i: variation ``i % n_variations``, scene seed ``split base + s * episodes_per_task + i``),
so seed 0 uses exactly the scenes of the generated split and later seeds use fresh scenes of it.
Each rollout runs at most ``max_steps`` keyframe steps. Worker processes each load the policy once.

The policy reads the instruction by its text's row in the run's own instruction table (so a run
trained on a dataset whose table is not MirrorBench's is rolled out only on tasks whose MirrorBench
instructions it knows, :func:`rollout_skip_reason`), and orientations in its training dataset's
tool frame (:mod:`mirror_align.data.tool_frame`), converted back before the env sees them. Each
failed rollout is diagnosed against the scripted expert's plan for the same scene
(:mod:`mirror_align.eval.failure_analysis`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from mirror_align.data.tool_frame import from_tool_frame, to_tool_frame
from mirror_align.errors import UserInputError
from mirror_align.eval.failure_analysis import diagnose
from mirror_align.workers import spawn_map


@dataclass(frozen=True)
class RolloutJob:
    """One rollout: a task's scene (seed, variation) under evaluation seed ``eval_seed``."""

    task: str
    eval_seed: int
    index: int  # episode index within (task, eval_seed)
    seed: int  # scene seed
    variation: int
    # The policy's tool frame (xyzw; None: identity): that of its training dataset, which
    # evaluate resolves once (mirror_align.data.tool_frame).
    tool_frame: tuple[float, ...] | None = None


@dataclass
class RolloutRecord:
    """The outcome of one rollout."""

    task: str
    eval_seed: int
    index: int
    seed: int
    variation: int
    instruction_id: int
    success: bool
    steps: int  # keyframe steps taken
    failure_reason: str
    # Failure analysis (mirror_align.eval.failure_analysis): the first keyframe that left the
    # scripted expert's plan for the same scene (-1: none did) and how; "" for successes.
    first_bad_keyframe: int = -1
    failure_kind: str = ""
    failure_detail: str = ""


def rollout_skip_reason(
    task: str, instructions: Sequence[str], cameras: Sequence[str]
) -> str | None:
    """Why ``task`` cannot be rolled out in MirrorBench by a run with the instruction table
    ``instructions`` trained on a dataset with ``cameras``; None when it can.

    A rollout needs MirrorBench to implement the task, the dataset's cameras to be MirrorBench's
    (the policy reads them in that order), and every MirrorBench instruction of the task to be in
    the run's table (the policy reads an instruction by its row; a user dataset that reuses a task
    name with its own wording has no row for MirrorBench's).
    """
    from mirror_align.sim import CAMERAS, TASK_NAMES, instruction_table, is_implemented

    if task not in TASK_NAMES:
        return "not a MirrorBench task"
    if not is_implemented(task):
        return "not implemented in MirrorBench"
    if list(cameras) != list(CAMERAS):
        return f"the dataset's cameras are not MirrorBench's {', '.join(CAMERAS)}"
    known = set(instructions)
    if any(text not in known for _, name, _, text in instruction_table() if name == task):
        return "the run's instruction table lacks MirrorBench's instructions for it"
    return None


def plan_rollouts(
    tasks: list[str],
    episodes_per_task: int,
    eval_seeds: int,
    split: str = "test",
    tool_frame: Sequence[float] | None = None,
) -> list[RolloutJob]:
    """Every rollout of an evaluation on ``split``'s seed range, in a fixed order; the policy reads
    orientations in ``tool_frame`` (xyzw, None: identity)."""
    from mirror_align.data.generate import SPLIT_SEED_BASE, TASK_SEED_STRIDE
    from mirror_align.sim import TASK_NAMES, get_task

    if split not in SPLIT_SEED_BASE:
        raise UserInputError(f"--split {split!r} is not one of {', '.join(SPLIT_SEED_BASE)}")
    if episodes_per_task < 1 or eval_seeds < 1:
        raise UserInputError("--episodes-per-task and --eval-seeds must be >= 1")
    jobs = []
    frame = None if tool_frame is None else tuple(float(x) for x in tool_frame)
    for task in tasks:
        base = SPLIT_SEED_BASE[split] + TASK_SEED_STRIDE * TASK_NAMES.index(task)
        variations = get_task(task).variation_count
        for s in range(eval_seeds):
            for i in range(episodes_per_task):
                seed = base + s * episodes_per_task + i
                jobs.append(RolloutJob(task, s, i, seed, i % variations, frame))
    return jobs


def observation_batch(obs: dict, instruction_id: int) -> dict[str, torch.Tensor]:
    """One env observation as an EE batch of size 1 (docs/interfaces.md)."""
    from mirror_align.data.geometry import depth_to_points
    from mirror_align.sim import CAMERAS

    views = [obs[c] for c in CAMERAS]
    points = [depth_to_points(v["depth"], v["intrinsics"], v["extrinsics"]) for v in views]
    batch = {
        "rgb": np.stack([v["rgb"] for v in views]),
        "depth": np.stack([v["depth"] for v in views]).astype(np.float32),
        "points": np.stack(points).astype(np.float32),
        "intrinsics": np.stack([v["intrinsics"] for v in views]).astype(np.float32),
        "extrinsics": np.stack([v["extrinsics"] for v in views]).astype(np.float32),
        "proprio": np.asarray(obs["proprio"], dtype=np.float32),
    }
    out = {k: torch.from_numpy(np.ascontiguousarray(v))[None] for k, v in batch.items()}
    out["instruction_id"] = torch.tensor([instruction_id], dtype=torch.int64)
    return out


class _Roller:
    """Per-process state: the policy and one env per task."""

    def __init__(
        self, run_dir: str, step: int | None, max_steps: int, video_dir: str | None, videos: int
    ) -> None:
        from mirror_align.eval.loading import load_run

        run = load_run(run_dir, step)
        if "ee" not in run.modules:
            raise UserInputError(f"{run_dir}: method {run.method!r} has no EE policy to roll out")
        self.policy = run.modules["ee"]
        self.instruction_ids = {text: i for i, text in enumerate(run.instructions)}
        self.image_size = run.facts.image_size
        self.max_steps = max_steps
        self.video_dir = Path(video_dir) if video_dir else None
        self.videos = videos
        self.envs: dict = {}

    @torch.no_grad()
    def __call__(self, job: RolloutJob) -> RolloutRecord:
        from mirror_align.sim import action_to_array, array_to_action, make_env

        if job.task not in self.envs:
            self.envs[job.task] = make_env(job.task, image_size=self.image_size)
        env = self.envs[job.task]
        obs, info = env.reset(seed=job.seed, options={"variation": job.variation})
        expert = np.array([action_to_array(a) for a in env.expert_keyframes()]).reshape(-1, 9)
        instruction = self.instruction_ids[info["instruction"]]
        success, steps, reason, taken = False, 0, "", []
        while steps < self.max_steps:
            steps += 1
            obs["proprio"] = to_tool_frame(obs["proprio"], job.tool_frame)
            action = self.policy.predict(observation_batch(obs, instruction))[0].numpy()
            action = from_tool_frame(action, job.tool_frame)
            taken.append(action)
            obs, _, terminated, truncated, info = env.step(array_to_action(action))
            success = bool(info["success"])
            if terminated or truncated:
                break
        diagnosis = None
        if not success:
            reason = info.get("failure_reason") or "not solved within the step budget"
            diagnosis = diagnose(np.array(taken), expert, info.get("failure_reason"))
        if self.video_dir is not None and job.index < self.videos and job.eval_seed == 0:
            import imageio.v2 as imageio

            self.video_dir.mkdir(parents=True, exist_ok=True)
            name = f"{job.task}_{job.index:03d}_{'success' if success else 'failure'}.mp4"
            imageio.mimwrite(self.video_dir / name, env.video_frames(), fps=10)
        return RolloutRecord(
            job.task,
            job.eval_seed,
            job.index,
            job.seed,
            job.variation,
            instruction,
            success,
            steps,
            reason,
            diagnosis.keyframe if diagnosis else -1,
            diagnosis.kind if diagnosis else "",
            diagnosis.detail if diagnosis else "",
        )

    def close(self) -> None:
        for env in self.envs.values():
            env.close()
        self.envs.clear()


def _make_roller(
    run_dir: str, step: int | None, max_steps: int, video_dir: str | None, videos: int
) -> _Roller:
    """A rollout worker's state, one torch thread (:func:`mirror_align.workers.spawn_map`)."""
    torch.set_num_threads(1)
    from mirror_align.headless import configure_headless_rendering

    configure_headless_rendering()
    return _Roller(run_dir, step, max_steps, video_dir, videos)


def run_rollouts(
    run_dir: str | Path,
    jobs: list[RolloutJob],
    step: int | None = None,
    max_steps: int = 25,
    workers: int = 1,
    video_dir: str | Path | None = None,
    videos_per_task: int = 0,
    *,
    progress: bool = True,
) -> list[RolloutRecord]:
    """Run ``jobs`` with the run's policy in ``workers`` processes; records in job order."""
    args = (str(run_dir), step, max_steps, str(video_dir) if video_dir else None, videos_per_task)
    bar = tqdm(total=len(jobs), desc="rollouts", unit="episode", disable=not progress)
    records: list[RolloutRecord] = []
    if workers <= 1:
        threads = torch.get_num_threads()
        roller = _make_roller(*args)
        try:
            for job in jobs:
                records.append(roller(job))
                bar.update(1)
        finally:
            roller.close()
            torch.set_num_threads(threads)
    else:
        for record in spawn_map(_make_roller, args, jobs, workers, ordered=True):
            records.append(record)
            bar.update(1)
    bar.close()
    return records


def success_by_task(records: list[RolloutRecord]) -> dict[str, dict[int, float]]:
    """``{task: {eval_seed: success rate}}``."""
    table: dict[str, dict[int, list[bool]]] = {}
    for r in records:
        table.setdefault(r.task, {}).setdefault(r.eval_seed, []).append(r.success)
    return {t: {s: float(np.mean(v)) for s, v in seeds.items()} for t, seeds in table.items()}


def records_as_dicts(records: list[RolloutRecord]) -> list[dict]:
    """JSON-ready rollout records."""
    return [asdict(r) for r in records]
