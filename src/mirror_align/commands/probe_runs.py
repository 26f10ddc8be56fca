"""`mirror-align probe-runs`: the probing experiments of trained runs (Fig. 3 left/right, Fig. 6)."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "probe-runs"
HELP = (
    "probe trained runs: Recall@1/MI/k-NN/CKA along training, success vs failure subsets, "
    "t-SNE of the shared space (into --out)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--au", required=True, help="AU run folder (mirror-align train --method au)"
    )
    parser.add_argument(
        "--ee", required=True, help="EE run folder (mirror-align train --method ee)"
    )
    parser.add_argument("--mn", default=None, help="MN run folder for its t-SNE (optional)")
    parser.add_argument("--data", required=True, help="dataset folder (mirror-align generate)")
    parser.add_argument("--out", required=True, help="output folder, e.g. DIR/probing")
    parser.add_argument(
        "--repeats", type=int, default=5, help="subsamples per subset probe (Fig. 3 right)"
    )
    parser.add_argument(
        "--split", default="test", choices=("train", "val", "test"), help="split of the subsets"
    )
    parser.add_argument(
        "--splits",
        default=None,
        help="comma-separated splits of the episodes probed along training; the t-SNE shows the "
        "test ones and fits its baseline probe on the others (default: every split; fewer "
        "episodes are cheaper: EE features cost one greedy decoding per keyframe)",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (0: torch's default)"
    )
    parser.add_argument("--probe-dim", type=int, default=256, help="probe shared-space size")
    parser.add_argument("--max-epochs", type=int, default=50, help="probe epoch limit")
    parser.add_argument("--seed", type=int, default=0, help="probe and t-SNE seed")
    parser.add_argument("--batch-size", type=int, default=32, help="feature extraction batch")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes extracting features, one torch thread each (the numbers do not change)",
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="read each item from disk instead of decoding every episode into memory first",
    )


def run(args: argparse.Namespace) -> int:
    import torch

    from mirror_align.errors import UserInputError
    from mirror_align.pipeline.probing import default_probe_config, run_all

    for option in ("repeats", "probe_dim", "max_epochs", "batch_size", "workers"):
        if getattr(args, option) < 1:
            raise UserInputError(
                f"--{option.replace('_', '-')}: must be >= 1, got {getattr(args, option)}"
            )
    if args.threads < 0:
        raise UserInputError(f"--threads: must be >= 0, got {args.threads}")
    for option in ("au", "ee", "mn", "data"):
        value = getattr(args, option)
        if value is not None and not Path(value).is_dir():
            raise UserInputError(f"--{option}: {value} is not a folder")
    splits = None
    if args.splits is not None:
        splits = [s.strip() for s in args.splits.split(",") if s.strip()]
        bad = [s for s in splits if s not in ("train", "val", "test")]
        if bad or not splits:
            raise UserInputError(f"--splits: {args.splits!r}; choose from train, val, test")
        if set(splits) <= {"test"}:
            raise UserInputError(
                "--splits: the t-SNE shows the test episodes and fits the baseline probe on the "
                "others; add train or val"
            )
    if args.threads:
        torch.set_num_threads(args.threads)
    summary = run_all(
        args.au,
        args.ee,
        args.data,
        args.out,
        mn_run=args.mn,
        repeats=args.repeats,
        split=args.split,
        splits=splits,
        probe_config=default_probe_config(
            dim=args.probe_dim, max_epochs=args.max_epochs, seed=args.seed
        ),
        cache=not args.no_cache,
        batch_size=args.batch_size,
        workers=args.workers,
    )
    print(summary.line())
    return 0
