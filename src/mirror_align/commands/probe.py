"""`mirror-align probe`: alignment probing of two frozen feature files (paper Sec. 2.2)."""

from __future__ import annotations

import argparse
import sys

import torch

from mirror_align.align.features_io import (
    FEATURE_SUFFIXES,
    check_same_rows,
    load_features,
    load_keys,
    row_keys,
)
from mirror_align.align.pairing import DEFAULT_PAIRING, PAIRING_MODES
from mirror_align.align.probe import (
    ProbeConfig,
    ProbeResult,
    min_test_rows,
    probe,
    split_by_episode,
)
from mirror_align.align.projector import PROJECTOR_KINDS
from mirror_align.atomic import write_json_atomic
from mirror_align.errors import UserInputError

NAME = "probe"
HELP = (
    "Train linear probes T_u, T_e on frozen features U, E and report Recall@1, MI bound, k-NN, CKA."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `mirror-align probe`."""
    suffixes = ", ".join(FEATURE_SUFFIXES)
    parser.add_argument("--u", required=True, help=f"AU features [N, du] ({suffixes})")
    parser.add_argument(
        "--e", required=True, help=f"EE features [N, de] ({suffixes}); row i pairs with row i of U"
    )
    parser.add_argument("--u-name", default=None, help="array name inside a multi-array --u file")
    parser.add_argument("--e-name", default=None, help="array name inside a multi-array --e file")
    parser.add_argument(
        "--keys",
        default=None,
        help="a .npz with integer arrays episode_id, instruction_id, task_id of length N "
        "(without it every row is its own episode)",
    )
    parser.add_argument(
        "--pairing", choices=PAIRING_MODES, default=DEFAULT_PAIRING, help="positive-pair key"
    )
    parser.add_argument("--dim", type=int, default=1024, help="dimension of the shared space Z")
    parser.add_argument("--tau", type=float, default=0.1, help="InfoNCE temperature")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the split, pairs and initialisation"
    )
    parser.add_argument(
        "--multi-positive", action="store_true", help="train with the multi-positive loss"
    )
    parser.add_argument(
        "--projector", choices=PROJECTOR_KINDS, default="linear", help="T_u / T_e kind"
    )
    parser.add_argument(
        "--max-epochs", type=int, default=ProbeConfig.max_epochs, help="epoch limit"
    )
    parser.add_argument(
        "--eval-batch-size",
        type=int,
        default=ProbeConfig.eval_batch_size,
        help="B of the MI bound log(B) - L",
    )
    parser.add_argument(
        "--knn-k",
        type=int,
        default=ProbeConfig.knn_k,
        help="k of mutual k-NN; the test split needs >= max(4, k + 2) rows",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    parser.add_argument("--out", required=True, help="where to write the result JSON")


def summary_line(result: ProbeResult) -> str:
    """One human-readable line of the headline numbers, each metric with its chance level."""
    r = result
    return (
        f"probe: Recall@1 {r.recall_at_1:.3f} (u->e {r.recall_at_1_u2e:.3f}, "
        f"e->u {r.recall_at_1_e2u:.3f}, chance {r.chance:.4f}), "
        f"MI >= {r.mi_lower_bound_nats:.3f} nats (log B = {r.log_b:.3f}, chance 0), "
        f"mutual k-NN@{r.mutual_knn_k} {r.mutual_knn:.3f} (chance {r.mutual_knn_chance:.3f}), "
        f"CKA linear {r.cka_linear:.3f} (chance {r.cka_linear_chance:.3f}), "
        f"CKA unbiased {r.cka_unbiased:.3f} (chance 0) "
        f"[n_train {r.n_train}, n_test {r.n_test}, {r.seconds:.1f} s]"
    )


def check_test_size(keys: dict, config: ProbeConfig) -> None:
    """Refuse, in one line, a split whose test rows are too few for mutual k-NN and CKA to mean
    anything (their values would be forced by the sample size: :func:`min_test_rows`)."""
    _, _, test = split_by_episode(keys["episode_id"], config.split, config.seed)
    need = min_test_rows(config.knn_k)
    if test.size < need:
        raise UserInputError(
            f"probe: the test split holds {test.size} row(s) of {len(keys['episode_id'])}; "
            f"mutual k-NN (k={config.knn_k}) and CKA need >= {need} (max(4, k + 2)), else their "
            "values are fixed by the sample size: give more rows or a smaller --knn-k"
        )


def run(args: argparse.Namespace) -> int:
    """Load, validate, probe, write ``--out`` atomically and print one summary line on stderr."""
    u = load_features(args.u, args.u_name, what="--u")
    e = load_features(args.e, args.e_name, what="--e")
    n = check_same_rows(u, e)
    keys = row_keys(n) if args.keys is None else load_keys(args.keys, n)
    if not 0.01 <= args.tau <= 1.0:
        raise UserInputError(f"--tau: {args.tau} is outside [0.01, 1]")
    if args.threads is not None:
        if args.threads < 1:
            raise UserInputError(f"--threads: must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    for option in ("dim", "max_epochs", "eval_batch_size", "knn_k"):
        if getattr(args, option) < 1:
            raise UserInputError(
                f"--{option.replace('_', '-')}: must be >= 1, got {getattr(args, option)}"
            )
    config = ProbeConfig(
        pairing=args.pairing,
        dim=args.dim,
        projector=args.projector,
        tau=args.tau,
        multi_positive=args.multi_positive,
        max_epochs=args.max_epochs,
        eval_batch_size=max(2, args.eval_batch_size),
        knn_k=args.knn_k,
        seed=args.seed,
    )
    check_test_size(keys, config)
    result = probe(u, e, keys, config)
    record = result.to_dict()
    record["inputs"] = {
        "u": str(args.u),
        "e": str(args.e),
        "keys": None if args.keys is None else str(args.keys),
    }
    write_json_atomic(args.out, record)
    print(summary_line(result), file=sys.stderr)
    print(f"probe: wrote {args.out}", file=sys.stderr)
    return 0
