"""`mirror-align evaluate RUN`: recognition accuracy, offline keyframe metrics and rollout success
(what applies to the run's dataset), into RUN/metrics.jsonl."""

from __future__ import annotations

import argparse

NAME = "evaluate"
HELP = (
    "evaluate a trained run: AU recognition (Table 1), EE offline keyframe metrics (any dataset) "
    "and rollout success in MirrorBench (Table 2)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="run folder made by `mirror-align train`")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
    rollouts = parser.add_mutually_exclusive_group()
    rollouts.add_argument(
        "--episodes-per-task",
        "--rollouts",
        dest="episodes_per_task",
        type=int,
        default=None,
        help="rollouts per task and evaluation seed (default: the run's eval.episodes_per_task; "
        "0: none)",
    )
    rollouts.add_argument(
        "--no-rollouts",
        dest="episodes_per_task",
        action="store_const",
        const=0,
        help="run no rollouts (same as --rollouts 0)",
    )
    parser.add_argument(
        "--eval-seeds", type=int, default=None, help="evaluation seeds (mean ± std)"
    )
    parser.add_argument("--workers", type=int, default=None, help="rollout worker processes")
    parser.add_argument(
        "--save-videos", type=int, default=0, metavar="K", help="save K rollout videos per task"
    )
    parser.add_argument(
        "--data", default=None, help="dataset folder (default: the run's data.path)"
    )


def run(args: argparse.Namespace) -> int:
    from mirror_align.eval.evaluate import evaluate_run, format_summary

    summary = evaluate_run(
        args.run,
        split=args.split,
        step=args.step,
        episodes_per_task=args.episodes_per_task,
        eval_seeds=args.eval_seeds,
        workers=args.workers,
        save_videos=args.save_videos,
        dataset_path=args.data,
    )
    print(format_summary(summary))
    print(
        f"evaluated {summary.run} at step {summary.step} on {summary.split}; metrics in {args.run}/metrics.jsonl"
    )
    return 0
