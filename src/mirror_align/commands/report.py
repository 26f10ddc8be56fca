"""`mirror-align report DIR`: Tables 1-3, the figures and the verdict, from a `reproduce` folder."""

from __future__ import annotations

import argparse

NAME = "report"
HELP = "write DIR/report.md and a self-contained DIR/report.html from a `reproduce` folder"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="folder written by `mirror-align reproduce --out DIR`")
    parser.add_argument(
        "--split", default="test", choices=("train", "val", "test"), help="evaluation split"
    )


def run(args: argparse.Namespace) -> int:
    from mirror_align.report.render import render_report

    paths = render_report(args.dir, split=args.split)
    print(paths.verdict)
    print(f"report: {paths.markdown} and {paths.html} ({len(paths.figures)} figure(s))")
    return 0
