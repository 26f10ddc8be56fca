"""`mirror-align config show`: every field of an experiment config with its comment, as YAML."""

from __future__ import annotations

import argparse

from mirror_align.commands import add_overrides_argument
from mirror_align.config.experiment import PRESET_NAMES

NAME = "config"
HELP = "show an experiment config (a preset or a YAML file, plus --set) with every field's comment"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("show",), help="show: print the resolved config")
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--preset", default=None, choices=PRESET_NAMES, help="a packaged preset (default: quick)"
    )
    source.add_argument("--config", default=None, help="a YAML config file instead of a preset")
    add_overrides_argument(parser, "data.image_size=128")


def run(args: argparse.Namespace) -> int:
    from mirror_align.config.describe import describe
    from mirror_align.config.experiment import load_experiment

    source = args.config or args.preset or "quick"
    config = load_experiment(source, args.overrides)
    print(f"# mirror-align experiment config from {source}" + (
        f" with --set {' '.join(args.overrides)}" if args.overrides else ""
    ))  # fmt: skip
    print("\n".join(describe(config)))
    return 0
