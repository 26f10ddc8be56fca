"""`mirror-align reproduce`: generate, train, evaluate, probe, ablate and report, resumably."""

from __future__ import annotations

import argparse
import time

from mirror_align.commands import add_ablation_argument, add_overrides_argument
from mirror_align.config.experiment import PRESET_NAMES

NAME = "reproduce"
HELP = "run every experiment of the paper into one folder and write the report (resumable)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--preset",
        default="quick",
        choices=PRESET_NAMES,
        help="a packaged preset (mirror-align config show --preset NAME)",
    )
    parser.add_argument("--config", default=None, help="a YAML config instead of a preset")
    parser.add_argument("--out", required=True, help="experiment folder (re-run to resume)")
    parser.add_argument(
        "--seeds", type=int, default=1, help="training seeds of the main comparison"
    )
    parser.add_argument(
        "--skip-ablation", action="store_true", help="skip Table 3 and the beyond-the-paper runs"
    )
    add_ablation_argument(parser)
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="generation and rollout processes (default: the config's eval.workers)",
    )
    add_overrides_argument(parser)


def run(args: argparse.Namespace) -> int:
    from mirror_align.config.experiment import check_generation, load_experiment
    from mirror_align.errors import UserInputError
    from mirror_align.pipeline.manifest import parse_ablation_parts
    from mirror_align.pipeline.reproduce import reproduce

    if args.seeds < 1:
        raise UserInputError(f"--seeds must be >= 1, got {args.seeds}")
    parts = parse_ablation_parts(args.ablation)
    if args.skip_ablation and args.ablation != "all":
        raise UserInputError("--skip-ablation and --ablation contradict each other: give one")
    config = load_experiment(args.config or args.preset, args.overrides)
    check_generation(config)
    workers = config.eval.workers if args.workers is None else args.workers
    if workers < 1:
        raise UserInputError(f"--workers must be >= 1, got {workers}")
    started = time.perf_counter()
    seeds = [config.seed + i for i in range(args.seeds)]
    reproduce(
        config, args.out, seeds, ablation=not args.skip_ablation, parts=parts, workers=workers
    )
    minutes = (time.perf_counter() - started) / 60
    print(
        f"reproduce: done in {minutes:.1f} min; report: {args.out}/report.html and {args.out}/report.md"
    )
    return 0
