"""Speed of alignment probing and of chunked retrieval (not a test: prints times and ratios).

1. Probing 10k pairs at D=1024 (du = de = dim = 1024), target < 60 s on 2 cores.
2. Chunked Recall@k against a full-matrix reference at a size where N x N still fits (same run),
   then chunked Recall@k at N=100k, with the memory a full N x N float32 matrix would need.

Usage: .venv/bin/python benchmarks/bench_probe.py [--n 10000] [--d 1024] [--recall-n 100000]
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import time

import numpy as np
import torch
import torch.nn.functional as F

from mirror_align.align.features_io import row_keys
from mirror_align.align.metrics import chunk_rows, recall_at_k
from mirror_align.align.probe import ProbeConfig, probe
from mirror_align.commands.demo import synthetic_pairs

PROBE_TARGET_S = 60.0


def peak_rss_gib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def full_matrix_recall1(u: torch.Tensor, e: torch.Tensor) -> float:
    """The naive reference: one N x N similarity matrix, argmax both ways."""
    sims = F.normalize(u, dim=1) @ F.normalize(e, dim=1).T
    rows = torch.arange(u.shape[0])
    u2e = (sims.argmax(1) == rows).double().mean().item()
    e2u = (sims.argmax(0) == rows).double().mean().item()
    return 0.5 * (u2e + e2u)


def matmul_gflops(d: int) -> float:
    """Reference measured in the same run: float32 GFLOP/s of a [2048, d] x [d, d] product."""
    a, b = torch.randn(2048, d), torch.randn(d, d)
    a @ b
    start = time.perf_counter()
    repeats = 10
    for _ in range(repeats):
        a @ b
    return 2 * 2048 * d * d * repeats / (time.perf_counter() - start) / 1e9


def bench_probe(n: int, d: int, seed: int) -> None:
    data = synthetic_pairs(n, 64, 0.8, d, d, seed)
    config = ProbeConfig(pairing="episode", dim=d, seed=seed, progress=False)
    start = time.perf_counter()
    result = probe(data.u, data.e, row_keys(n), config)
    seconds = time.perf_counter() - start
    gflops = matmul_gflops(d)
    # Projector matmuls dominate: forward + backward (3x) of both T_u, T_e on the train pairs.
    flops = result.epochs_run * 6.0 * result.n_train * d * (result.du + result.de)
    ideal = flops / (gflops * 1e9)
    print(
        f"matmul reference (same run): {gflops:.1f} GFLOP/s; probe projector work {flops / 1e9:.0f} GFLOP "
        f"= {ideal:.1f} s if compute-bound; probe/ideal ratio {seconds / ideal:.2f}"
    )
    print(
        f"probe: N={n} pairs, du=de=dim={d}, {result.epochs_run} epochs (best {result.best_epoch}), "
        f"{seconds:.1f} s; target {PROBE_TARGET_S:.0f} s; ratio {seconds / PROBE_TARGET_S:.2f} "
        f"(Recall@1 {result.recall_at_1:.3f}, MI {result.mi_lower_bound_nats:.2f} of log B {result.log_b:.2f}, "
        f"true MI {data.true_mi:.1f} nats), {seconds / result.epochs_run:.2f} s/epoch incl. validation"
    )


def bench_recall(n_ref: int, n_big: int, dim: int, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    u = torch.randn(n_ref, dim, generator=gen)
    e = u + 2.0 * torch.randn(n_ref, dim, generator=gen)
    start = time.perf_counter()
    reference = full_matrix_recall1(u, e)
    t_full = time.perf_counter() - start
    start = time.perf_counter()
    chunked = recall_at_k(u, e, (1,))[1].mean
    t_chunked = time.perf_counter() - start
    print(
        f"recall@1 N={n_ref} D={dim}: full matrix {t_full:.2f} s ({n_ref**2 * 4 / 2**30:.2f} GiB), "
        f"chunked {t_chunked:.2f} s, ratio chunked/full {t_chunked / t_full:.2f}, equal: {math.isclose(reference, chunked)}"
    )
    del u, e
    u = torch.randn(n_big, dim, generator=gen)
    e = u + 2.0 * torch.randn(n_big, dim, generator=gen)
    keys = np.arange(n_big) // 10
    before = peak_rss_gib()
    start = time.perf_counter()
    result = recall_at_k(u, e, (1, 5, 10), keys=keys, progress=True)
    seconds = time.perf_counter() - start
    chunk = chunk_rows(n_big)
    print(
        f"recall@{{1,5,10}} N={n_big} D={dim}, strict and key-aware: {seconds:.1f} s; "
        f"R@1 {result[1].mean:.3f}, key R@1 {result[1].key_mean:.3f}"
    )
    print(
        f"memory: a full {n_big}x{n_big} float32 matrix needs {n_big**2 * 4 / 2**30:.1f} GiB; "
        f"one chunk is {chunk}x{n_big} = {chunk * n_big * 4 / 2**20:.0f} MiB; "
        f"process peak RSS {before:.2f} GiB before, {peak_rss_gib():.2f} GiB after"
    )
    extrapolated = t_full * (n_big / n_ref) ** 2
    print(
        f"full-matrix time extrapolated to N={n_big} (if it fitted): {extrapolated:.0f} s; "
        f"ratio chunked/extrapolated {seconds / extrapolated:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="pairs to probe")
    parser.add_argument("--d", type=int, default=1024, help="feature and shared-space dimension")
    parser.add_argument(
        "--recall-ref-n", type=int, default=10_000, help="N of the full-matrix reference"
    )
    parser.add_argument("--recall-n", type=int, default=100_000, help="N of the large chunked run")
    parser.add_argument("--recall-dim", type=int, default=128, help="D of the retrieval runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument("--skip-recall", action="store_true", help="time only the probe")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}"
    )
    bench_probe(args.n, args.d, args.seed)
    if not args.skip_recall:
        bench_recall(args.recall_ref_n, args.recall_n, args.recall_dim, args.seed)


if __name__ == "__main__":
    main()
