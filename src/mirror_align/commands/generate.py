"""`mirror-align generate`: MirrorBench demonstrations with the scripted experts into a dataset."""

from __future__ import annotations

import argparse
import sys

from mirror_align.constants import SPLITS
from mirror_align.sim import TASK_NAMES

NAME = "generate"
HELP = "Generate expert demonstrations (parallel, resumable) into a dataset folder."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasks", default="all", help="'all' or a comma-separated list of tasks")
    parser.add_argument(
        "--episodes-per-task", type=int, required=True, help="episodes per task (paper: 100/25)"
    )
    parser.add_argument("--split", default="train", choices=list(SPLITS))
    parser.add_argument(
        "--image-size", type=int, default=128, help="camera image size, pixels (64 or 128)"
    )
    parser.add_argument(
        "--video-frames", type=int, default=32, help="front-camera frames kept per AU video"
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--out", required=True, help="dataset folder (created, or resumed)")


def run(args: argparse.Namespace) -> int:
    from mirror_align.data.generate import generate, parse_tasks

    tasks = parse_tasks(args.tasks)
    if args.tasks.strip() == "all":
        if len(tasks) < len(TASK_NAMES):
            print(
                f"generate: --tasks all = the {len(tasks)} of {len(TASK_NAMES)} tasks implemented "
                f"so far: {', '.join(tasks)}",
                file=sys.stderr,
            )
    result = generate(
        args.out,
        tasks,
        args.episodes_per_task,
        split=args.split,
        image_size=args.image_size,
        video_frames=args.video_frames,
        workers=args.workers,
    )
    requested = len(tasks) * args.episodes_per_task
    print(
        f"generate: {result.generated} episodes in {result.seconds:.1f} s "
        f"({result.episodes_per_second:.2f} episodes/s, {args.workers} worker(s)); "
        f"{result.skipped} already present; {result.total_failed} of {requested} expert demos "
        f"failed (recorded, excluded from training); {args.split} split of {args.out}"
    )
    return 0
