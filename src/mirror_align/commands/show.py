"""`mirror-align show`: a picture of all 4 cameras at every keyframe of an expert demo."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from mirror_align.errors import UserInputError
from mirror_align.sim import CAMERAS, make_env

NAME = "show"
HELP = "Save a grid of the 4 cameras at every keyframe of an expert demo (and its front video)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", required=True, help="task name (see `mirror-align tasks`)")
    parser.add_argument("--variation", type=int, default=0, help="variation index")
    parser.add_argument("--seed", type=int, default=0, help="scene seed")
    parser.add_argument("--image-size", type=int, default=128, help="pixels per side")
    parser.add_argument("--out", required=True, help="output PNG path")
    parser.add_argument("--video", default=None, help="optional MP4 of the front-camera video")


def _atomic_path(path: Path) -> Path:
    return path.with_name(f".{path.stem}.tmp{path.suffix}")


def run(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if args.image_size < 16:
        raise UserInputError(f"--image-size must be >= 16, got {args.image_size}")
    env = make_env(args.task, image_size=args.image_size)
    try:
        obs, info = env.reset(seed=args.seed, options={"variation": args.variation})
        shots = [obs]
        for action in env.expert_keyframes():
            obs, _, terminated, truncated, info = env.step(action)
            shots.append(obs)
            if terminated or truncated:
                break
        frames = env.video_frames()
    finally:
        env.close()
    fig, axes = plt.subplots(
        len(CAMERAS), len(shots), figsize=(2.0 * len(shots), 2.0 * len(CAMERAS)), squeeze=False
    )
    for col, shot in enumerate(shots):
        for row, cam in enumerate(CAMERAS):
            ax = axes[row][col]
            ax.imshow(shot[cam]["rgb"])
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 0:
                ax.set_ylabel(cam)
            if row == 0:
                ax.set_title("reset" if col == 0 else f"keyframe {col}", fontsize=9)
    fig.suptitle(f"{info['instruction']}  (seed {args.seed}, success={info['success']})")
    fig.tight_layout()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = _atomic_path(out)
    fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    os.replace(tmp, out)
    print(f"wrote {out} ({len(shots)} columns, success={info['success']})")
    if args.video:
        import imageio.v2 as imageio

        video = Path(args.video)
        tmpv = _atomic_path(video)
        imageio.mimwrite(tmpv, list(frames), fps=env.video_fps, macro_block_size=1)
        os.replace(tmpv, video)
        print(f"wrote {video} ({len(frames)} frames)")
    return 0
