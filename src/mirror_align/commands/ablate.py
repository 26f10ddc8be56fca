"""`mirror-align ablate`: Table 3 (pairing x tau) plus the beyond-the-paper runs, at one seed
(multi-positive loss, MLP projector, the AU with `au.colour_tokens` flipped; `pipeline/manifest.py`)."""

from __future__ import annotations

import argparse

from mirror_align.commands import add_ablation_argument, add_overrides_argument
from mirror_align.config.experiment import PRESET_NAMES

NAME = "ablate"
HELP = (
    "add the ablation to a reproduce folder: pairing {episode, instruction, class} x tau "
    "{0.02, 0.1, 0.2}, the beyond-the-paper runs and MN/AU at the paper's AU share"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--preset",
        default=None,
        choices=PRESET_NAMES,
        help="a packaged preset (default: the folder's own config.json, else quick)",
    )
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
    from mirror_align.config.experiment import (
        check_generation,
        experiment_from_dict,
        load_experiment,
    )
    from mirror_align.config.loader import apply_overrides
    from mirror_align.errors import UserInputError
    from mirror_align.pipeline.folder_config import saved_experiment
    from mirror_align.pipeline.manifest import parse_ablation_parts
    from mirror_align.pipeline.reproduce import reproduce

    parts = parse_ablation_parts(args.ablation)
    saved = saved_experiment(args.out)
    if args.preset is None and args.config is None and saved is not None:
        # The folder's own settings, so that the new runs compare like to like with its main runs.
        data = apply_overrides(saved, args.overrides)
        config = experiment_from_dict(data, where=f"{args.out}/config.json")
    else:
        config = load_experiment(args.config or args.preset or "quick", args.overrides)
    check_generation(config)
    workers = config.eval.workers if args.workers is None else args.workers
    if workers < 1:
        raise UserInputError(f"--workers must be >= 1, got {workers}")
    reproduce(
        config, args.out, [config.seed], ablation=True, parts=parts, workers=workers, main=False
    )
    print(f"ablate: done; report: {args.out}/report.html")
    return 0
