"""`mirror-align demo`: alignment probing on synthetic features whose mutual information is known.

For each correlation rho: x ~ N(0, I_d), y = rho x + sqrt(1 - rho^2) eps, so the true mutual
information is I(x; y) = -(d/2) log(1 - rho^2) nats. U = x A and E = y B with random full-rank maps
A [d, du], B [d, de] into different dimensions, which leaves I(U; E) = I(x; y). The features are
written as real files (``u.npy``, ``e.npy``, ``keys.npz``), read back and probed; the probe's
held-out MI lower bound should track the true value until it saturates at log(B).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mirror_align.align.features_io import load_features, load_keys, row_keys, save_array, save_keys
from mirror_align.align.probe import ProbeConfig, probe
from mirror_align.atomic import write_json_atomic
from mirror_align.errors import UserInputError

NAME = "demo"
HELP = "Probe synthetic paired features with known mutual information and print a table."

DEFAULT_RHOS = (0.0, 0.3, 0.6, 0.8, 0.95)


@dataclass
class SyntheticPairs:
    """``u [N, du]`` and ``e [N, de]`` with ``true_mi`` nats between their rows."""

    u: np.ndarray
    e: np.ndarray
    rho: float
    latent_dim: int
    true_mi: float


def true_mutual_information(rho: float, latent_dim: int) -> float:
    """``-(d/2) log(1 - rho^2)`` in nats: the MI of d independent Gaussian pairs of correlation rho."""
    return -0.5 * latent_dim * math.log1p(-(rho**2))


def synthetic_pairs(
    n: int, latent_dim: int, rho: float, du: int, de: int, seed: int
) -> SyntheticPairs:
    """Correlated Gaussian latents mapped by random linear maps into ``du`` and ``de`` dims."""
    if not 0.0 <= rho < 1.0:
        raise UserInputError(f"demo: rho must be in [0, 1), got {rho}")
    if du < latent_dim or de < latent_dim:
        raise UserInputError(
            f"demo: du={du} and de={de} must be >= the latent dim {latent_dim} to keep the MI"
        )
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, latent_dim))
    y = rho * x + math.sqrt(1.0 - rho**2) * rng.standard_normal((n, latent_dim))
    map_u = rng.standard_normal((latent_dim, du)) / math.sqrt(latent_dim)
    map_e = rng.standard_normal((latent_dim, de)) / math.sqrt(latent_dim)
    return SyntheticPairs(
        u=(x @ map_u).astype(np.float32),
        e=(y @ map_e).astype(np.float32),
        rho=rho,
        latent_dim=latent_dim,
        true_mi=true_mutual_information(rho, latent_dim),
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `mirror-align demo`."""
    parser.add_argument(
        "--out", default="out/demo", help="folder for the feature files and demo.json"
    )
    parser.add_argument("--n", type=int, default=4000, help="pairs per correlation")
    parser.add_argument(
        "--latent-dim", type=int, default=16, help="d of the shared Gaussian latent"
    )
    parser.add_argument("--du", type=int, default=64, help="dimension of the synthetic AU features")
    parser.add_argument("--de", type=int, default=48, help="dimension of the synthetic EE features")
    parser.add_argument(
        "--dim", type=int, default=256, help="dimension of the probe's shared space"
    )
    parser.add_argument(
        "--rho", type=float, nargs="+", default=list(DEFAULT_RHOS), help="correlations to probe"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and the probes")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (the demo's matrices are small)"
    )


def _probe_one(args: argparse.Namespace, i: int, rho: float, out: Path) -> dict:
    """Write one rho's synthetic features as files, read them back, probe them: the table row."""
    data = synthetic_pairs(args.n, args.latent_dim, rho, args.du, args.de, args.seed + i)
    folder = out / f"rho_{rho:.2f}"
    save_array(folder / "u.npy", data.u)
    save_array(folder / "e.npy", data.e)
    save_keys(folder / "keys.npz", row_keys(args.n))
    # Read back what was written, so the demo exercises the same path as `mirror-align probe`.
    u = load_features(folder / "u.npy", what="u.npy")
    e = load_features(folder / "e.npy", what="e.npy")
    keys = load_keys(folder / "keys.npz", u.shape[0])
    config = ProbeConfig(pairing="episode", dim=args.dim, seed=args.seed, progress=False)
    result = probe(u, e, keys, config)
    result.save(folder / "result.json")
    print(f"demo: rho={rho:.2f} done ({result.seconds:.1f} s)", file=sys.stderr)
    return {
        "rho": rho,
        "true_mi_nats": data.true_mi,
        "mi_lower_bound_nats": result.mi_lower_bound_nats,
        "log_b": result.log_b,
        "recall_at_1": result.recall_at_1,
        "chance": result.chance,
        "mutual_knn": result.mutual_knn,
        "mutual_knn_chance": result.mutual_knn_chance,
        "cka_linear": result.cka_linear,
        "cka_linear_chance": result.cka_linear_chance,
        "n_train": result.n_train,
        "n_test": result.n_test,
        "epochs": result.epochs_run,
        "result": str(folder / "result.json"),
    }


def run(args: argparse.Namespace) -> int:
    """Write the synthetic features, probe each, write ``demo.json`` and print the table."""
    if args.n < 100:
        raise UserInputError(f"--n: need at least 100 pairs, got {args.n}")
    if args.threads < 1:
        raise UserInputError(f"--threads: must be >= 1, got {args.threads}")
    # Small matrices gain little from a second thread, and OpenMP spin-waits cost a lot on a busy CPU.
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    started = time.perf_counter()
    rows = [_probe_one(args, i, rho, out) for i, rho in enumerate(args.rho)]
    summary = {
        "latent_dim": args.latent_dim,
        "du": args.du,
        "de": args.de,
        "n": args.n,
        "probe_dim": args.dim,
        "seed": args.seed,
        "rows": rows,
        "seconds": time.perf_counter() - started,
    }
    write_json_atomic(out / "demo.json", summary)
    print(f"synthetic pairs: d={args.latent_dim}, du={args.du}, de={args.de}, N={args.n} per rho")
    print(
        f"{'rho':>5} {'true MI':>8} {'probe MI':>9} {'log B':>6} {'R@1':>6} {'chance':>7} "
        f"{'k-NN':>6} {'chance':>7} {'CKA':>6} {'chance':>7}"
    )
    for row in rows:
        print(
            f"{row['rho']:5.2f} {row['true_mi_nats']:8.3f} {row['mi_lower_bound_nats']:9.3f} "
            f"{row['log_b']:6.3f} {row['recall_at_1']:6.3f} {row['chance']:7.4f} "
            f"{row['mutual_knn']:6.3f} {row['mutual_knn_chance']:7.4f} "
            f"{row['cka_linear']:6.3f} {row['cka_linear_chance']:7.4f}"
        )
    print(
        f"MI in nats; the probe's bound is held-out and cannot exceed log B. Wrote {out / 'demo.json'}"
    )
    return 0
