"""`mirror-align import-rlbench SRC --out DIR`: convert RLBench/PerAct demos into a dataset."""

from __future__ import annotations

import argparse
import time

from mirror_align.constants import SPLITS

NAME = "import-rlbench"
HELP = (
    "Convert RLBench/PerAct demonstrations (standard on-disk layout) into a mirror-align dataset."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "src",
        help="folder holding <task>/all_variations/episodes/episode<N>/ (or train/, val/, test/ "
        "folders in that layout)",
    )
    parser.add_argument("--out", required=True, help="dataset folder to create or resume")
    parser.add_argument("--tasks", nargs="+", default=None, help="task folder names (default: all)")
    parser.add_argument("--image-size", type=int, default=128, help="output image size, pixels")
    parser.add_argument(
        "--video-frames", type=int, default=32, help="front-camera frames kept per AU video"
    )
    parser.add_argument(
        "--split",
        default="train",
        choices=list(SPLITS),
        help="split of SRC when it has no train/val/test subfolders",
    )
    parser.add_argument(
        "--no-geometry-check",
        action="store_true",
        help="import episodes whose cameras' depth, intrinsics and extrinsics disagree (checked "
        "on keyframe 0 of every episode by default)",
    )


def run(args: argparse.Namespace) -> int:
    from mirror_align.data.rlbench import import_rlbench

    tasks = None
    if args.tasks:
        tasks = [t for item in args.tasks for t in item.split(",") if t]
    start = time.perf_counter()
    counts = import_rlbench(
        args.src,
        args.out,
        tasks=tasks,
        image_size=args.image_size,
        video_frames=args.video_frames,
        split=args.split,
        check_geometry=not args.no_geometry_check,
    )
    elapsed = time.perf_counter() - start
    print(
        f"import-rlbench: {counts['imported']} episodes imported, {counts['skipped']} already "
        f"present, {counts['total']} in {args.src}; {elapsed:.1f} s -> {args.out}"
    )
    return 0
