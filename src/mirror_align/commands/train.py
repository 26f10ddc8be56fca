"""`mirror-align train`: train the AU model, the EE policy, or both with the aligner (MN)."""

from __future__ import annotations

import argparse
import sys

from mirror_align.commands import add_overrides_argument
from mirror_align.constants import METHODS

NAME = "train"
HELP = "train --method au (video-text), ee (keyframe policy) or mn (both, aligned; the paper)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", required=True, help="a packaged preset (tiny, quick, paper) or a YAML path"
    )
    parser.add_argument("--method", required=True, choices=METHODS, help="what to train")
    parser.add_argument("--out", required=True, help="run folder (checkpoints, logs)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--seed", type=int, default=None, help="override the config's seed")
    add_overrides_argument(parser)


def run(args: argparse.Namespace) -> int:
    from mirror_align.config.experiment import load_experiment
    from mirror_align.train.distributed import init_distributed, shutdown_distributed
    from mirror_align.train.trainer import TrainingDiverged, train

    overrides = list(args.overrides) + ([f"seed={args.seed}"] if args.seed is not None else [])
    config = load_experiment(args.config, overrides)
    ctx = init_distributed()
    try:
        result = train(config, args.method, args.out, resume=args.resume, dist_ctx=ctx)
    except TrainingDiverged as err:
        print(f"mirror-align train: {err}", file=sys.stderr)
        return 1
    finally:
        shutdown_distributed()
    if ctx.is_main:
        terms = ", ".join(
            f"{k}={v:.4f}" for k, v in result.last_terms.items() if k.startswith("loss")
        )
        print(
            f"trained {result.method}: {result.steps} steps in {result.seconds:.1f} s "
            f"({result.samples_per_second:.1f} pairs/s); {terms}; run in {result.run_dir}"
        )
    return 0
