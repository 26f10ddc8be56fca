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


def add_ablation_argument(parser: argparse.ArgumentParser) -> None:
    """``--ablation PARTS``: which parts of the ablation to run, a comma list of
    :data:`~mirror_align.pipeline.manifest.ABLATION_PARTS` (parsed by ``parse_ablation_parts``)."""
    from mirror_align.pipeline.manifest import ABLATION_PARTS

    parser.add_argument(
        "--ablation",
        default="all",
        metavar="PARTS",
        help=f"parts of the ablation to run, a comma list of {', '.join(ABLATION_PARTS)} "
        "(table3: pairing x tau; beyond: multi-positive, MLP projector, AU colour tokens; share: "
        "MN and AU at the paper's AU share); default all",
    )
