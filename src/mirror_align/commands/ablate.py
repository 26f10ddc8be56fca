"""`mirror-align ablate`: Table 3 (pairing x tau) plus the beyond-the-paper runs, at one seed
(multi-positive loss, MLP projector, the AU with `au.colour_tokens` flipped; `pipeline/manifest.py`)."""

from __future__ import annotations

import argparse

from mirror_align.commands import add_ablation_argument, add_overrides_argument
from mirror_align.config.experiment import PRESET_NAMES

NAME = "ablate"
HELP = "the ablation grid: pairing {episode, instruction, class} x tau {0.02, 0.1, 0.2}, plus multi-positive, MLP and the AU with au.colour_tokens flipped"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="quick", choices=PRESET_NAMES)
    parser.add_argument("--config", default=None, help="a YAML config instead of a preset")
    parser.add_argument("--out", required=True, help="experiment folder (shared with reproduce)")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="generation and rollout processes (default: the config's eval.workers)",
    )
    add_ablation_argument(parser)
    add_overrides_argument(parser)


def run(args: argparse.Namespace) -> int:
    from mirror_align.config.experiment import check_generation, load_experiment
    from mirror_align.errors import UserInputError
    from mirror_align.pipeline.manifest import parse_ablation_parts
    from mirror_align.pipeline.reproduce import reproduce

    config = load_experiment(args.config or args.preset, args.overrides)
    check_generation(config)
    workers = config.eval.workers if args.workers is None else args.workers
    if workers < 1:
        raise UserInputError(f"--workers must be >= 1, got {workers}")
    parts = parse_ablation_parts(args.ablation)
    reproduce(
        config, args.out, [config.seed], ablation=True, parts=parts, workers=workers, main=False
    )
    print(f"ablate: done; report: {args.out}/report.html")
    return 0
