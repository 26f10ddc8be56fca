"""CLI subcommands, one module each (see :mod:`mirror_align.cli`)."""

from __future__ import annotations

import argparse


def add_overrides_argument(
    parser: argparse.ArgumentParser, example: str = "train.steps=200"
) -> None:
    """``--set KEY=VALUE`` (repeatable) into ``args.overrides``: every command that loads an
    experiment config takes it the same way (:func:`mirror_align.config.loader.apply_overrides`)."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override a config field, e.g. --set {example} (repeatable)",
    )
