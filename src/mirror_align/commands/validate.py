"""`mirror-align validate`: run the scripted experts over many seeds and report success per task."""

from __future__ import annotations

import argparse
import atexit
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from mirror_align.errors import UserInputError
from mirror_align.headless import configure_headless_rendering
from mirror_align.sim import TASK_NAMES, get_task, implemented_tasks, is_implemented, make_env

NAME = "validate"
HELP = "Run the scripted experts over seeds spread across all variations; report success per task."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasks", default="all", help="'all' (implemented tasks) or a,b,c")
    parser.add_argument("--episodes", type=int, default=50, help="episodes per task")
    parser.add_argument("--image-size", type=int, default=64, help="pixels per side")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes")
    parser.add_argument("--out", default=None, help="write a JSON report here (atomically)")


def parse_tasks(text: str) -> list[str]:
    """'all' -> implemented tasks; 'a,b' -> validated names."""
    if text == "all":
        return implemented_tasks()
    names = [t.strip() for t in text.split(",") if t.strip()]
    for n in names:
        if n not in TASK_NAMES:
            raise UserInputError(
                f"--tasks: unknown task {n!r}; valid: all, {', '.join(TASK_NAMES)}"
            )
        if not is_implemented(n):
            raise UserInputError(f"--tasks: task {n!r} is not implemented yet")
    if not names:
        raise UserInputError("--tasks: empty list")
    return names


def run_episode(task: str, seed: int, variation: int, image_size: int) -> dict:
    """One expert episode (in a worker process); returns its outcome record."""
    env = _ENVS.get((task, image_size))
    if env is None:
        env = _ENVS[(task, image_size)] = make_env(task, image_size=image_size)
    _, info = env.reset(seed=seed, options={"variation": variation})
    steps = 0
    for action in env.expert_keyframes():
        _, _, terminated, truncated, info = env.step(action)
        steps += 1
        if terminated or truncated:
            break
    return {
        "task": task,
        "seed": seed,
        "variation": variation,
        "success": bool(info["success"]),
        "keyframes": steps,
        "failure_reason": info.get("failure_reason"),
    }


_ENVS: dict = {}


def _close_envs() -> None:
    for env in _ENVS.values():
        env.close()
    _ENVS.clear()


def _worker_init() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["LP_NUM_THREADS"] = "1"
    configure_headless_rendering()  # this worker's entry point: before it imports mujoco
    # Renderers must be closed explicitly, or EGL prints errors when the worker exits.
    atexit.register(_close_envs)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    if args.episodes < 1:
        raise UserInputError(f"--episodes must be >= 1, got {args.episodes}")
    if args.workers < 1:
        raise UserInputError(f"--workers must be >= 1, got {args.workers}")
    names = parse_tasks(args.tasks)
    jobs = []
    for name in names:
        n_var = get_task(name).variation_count
        jobs += [(name, seed, seed % n_var, args.image_size) for seed in range(args.episodes)]
    start = time.perf_counter()
    records = []
    with ProcessPoolExecutor(max_workers=args.workers, initializer=_worker_init) as pool:
        futures = [pool.submit(run_episode, *job) for job in jobs]
        for fut in tqdm(futures, desc="validate", unit="episode"):
            records.append(fut.result())
    elapsed = time.perf_counter() - start
    per_task = {}
    for name in names:
        rec = [r for r in records if r["task"] == name]
        per_task[name] = {
            "episodes": len(rec),
            "successes": sum(r["success"] for r in rec),
            "success_rate": sum(r["success"] for r in rec) / len(rec),
            "failed": [
                {k: r[k] for k in ("seed", "variation", "failure_reason")}
                for r in rec
                if not r["success"]
            ],
        }
    for name, s in per_task.items():
        print(f"{name:<30} {s['successes']:>4}/{s['episodes']:<4} {100 * s['success_rate']:.1f}%")
    total = sum(s["successes"] for s in per_task.values())
    print(
        f"validate: {total}/{len(records)} expert episodes succeeded over {len(names)} tasks "
        f"in {elapsed:.1f}s ({len(records) / elapsed:.2f} episodes/s)"
    )
    if args.out:
        report = {
            "image_size": args.image_size,
            "episodes_per_task": args.episodes,
            "seconds": elapsed,
            "tasks": per_task,
            "episodes": records,
        }
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text(json.dumps(report, indent=2))
        os.replace(tmp, out)
    return 0
