"""`mirror-align reproduce`: generate, train, evaluate, probe, ablate and report, resumably."""

from __future__ import annotations

import argparse
import time

NAME = "reproduce"
HELP = "run every experiment of the paper into one folder and write the report (resumable)"
PRESETS = ("tiny", "quick", "paper")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="quick", choices=PRESETS, help="configs/<preset>.yaml")
    parser.add_argument("--config", default=None, help="a YAML config instead of a preset")
    parser.add_argument("--out", required=True, help="experiment folder (re-run to resume)")
    parser.add_argument(
        "--seeds", type=int, default=1, help="training seeds of the main comparison"
    )
    parser.add_argument(
        "--skip-ablation", action="store_true", help="skip Table 3 and the beyond-the-paper runs"
    )
    parser.add_argument("--workers", type=int, default=2, help="generation and rollout processes")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field (repeatable)",
    )


def preset_path(preset: str):
    """``configs/<preset>.yaml`` of the working directory, else of the source checkout."""
    from pathlib import Path

    import mirror_align
    from mirror_align.errors import UserInputError

    candidates = [
        Path("configs") / f"{preset}.yaml",
        Path(mirror_align.__file__).resolve().parents[2] / "configs" / f"{preset}.yaml",
    ]
    for path in candidates:
        if path.is_file():
            return path
    raise UserInputError(
        f"--preset {preset}: no {preset}.yaml in {' or '.join(str(c.parent) for c in candidates)}; "
        "pass --config PATH"
    )


def run(args: argparse.Namespace) -> int:
    from mirror_align.errors import UserInputError
    from mirror_align.eval.reproduce import reproduce
    from mirror_align.train.run_config import load_experiment

    if args.seeds < 1:
        raise UserInputError(f"--seeds must be >= 1, got {args.seeds}")
    config = load_experiment(args.config or preset_path(args.preset), args.overrides)
    started = time.perf_counter()
    seeds = [config.seed + i for i in range(args.seeds)]
    reproduce(config, args.out, seeds, ablation=not args.skip_ablation, workers=args.workers)
    minutes = (time.perf_counter() - started) / 60
    print(
        f"reproduce: done in {minutes:.1f} min; report: {args.out}/report.html and {args.out}/report.md"
    )
    return 0
