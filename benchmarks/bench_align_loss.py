"""Forward + backward time of the fused alignment loss against the definition, measured in the same run.

Three implementations of the same numbers, timed with interleaved repeats:

* "naive": what one would write first: normalise, two products ``u @ e.T`` and ``e @ u.T`` and two
  ``F.cross_entropy`` calls, differentiated by autograd (single-positive only);
* "definition": ``alignment_loss(..., implementation="autograd")``, the loss as written in
  ``align/loss.py`` (single- and multi-positive);
* "fused": ``alignment_loss`` on one process (``align/fused_loss.py``, the closed-form gradient),
  in single-positive mode and in multi-positive mode with keys that repeat (groups of about 4, as
  when pairing by instruction).

Printed ratios (time / time, lower is faster for the second-named): definition/fused (the
speed-up the fused module buys), fused/naive and fused multi/single. Targets: fused <= 0.7x naive
at B=1024, D=1024; multi-positive <= 1.15x single-positive.

    .venv/bin/python benchmarks/bench_align_loss.py [--sizes 256x128,1024x1024] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from mirror_align.align import alignment_loss

DEFAULT_SIZES = [(b, d) for b in (256, 1024, 4096) for d in (128, 1024)]
TAU = 0.1
TARGET_SIZE = (1024, 1024)
TARGET_VS_NAIVE = 0.7
TARGET_MULTI_VS_SINGLE = 1.15
METHOD_NAMES = ("naive", "definition", "definition_multi", "fused", "fused_multi")


def naive_loss(u: torch.Tensor, e: torch.Tensor, tau: float) -> torch.Tensor:
    u_hat, e_hat = F.normalize(u, dim=-1), F.normalize(e, dim=-1)
    target = torch.arange(u.shape[0])
    return 0.5 * (
        F.cross_entropy(u_hat @ e_hat.T / tau, target)
        + F.cross_entropy(e_hat @ u_hat.T / tau, target)
    )


def methods(u, e, keys) -> dict[str, Callable[[], object]]:
    def step(fn):
        return lambda: torch.autograd.grad(fn(), (u, e))

    return {
        "naive": step(lambda: naive_loss(u, e, TAU)),
        "fused": step(lambda: alignment_loss(u, e, TAU, implementation="fused")[0]),
        "fused_multi": step(lambda: alignment_loss(u, e, TAU, keys, implementation="fused")[0]),
        "definition": step(lambda: alignment_loss(u, e, TAU, implementation="autograd")[0]),
        "definition_multi": step(
            lambda: alignment_loss(u, e, TAU, keys, implementation="autograd")[0]
        ),
    }


def time_size(batch: int, dim: int, budget_s: float) -> dict[str, float]:
    """Median and fastest seconds per forward+backward of every method; repeats are interleaved
    so that load from other processes hits all methods alike."""
    gen = torch.Generator().manual_seed(0)
    u = torch.randn(batch, dim, generator=gen).requires_grad_()
    e = (0.5 * u.detach() + torch.randn(batch, dim, generator=gen)).requires_grad_()
    keys = torch.randint(0, max(1, batch // 4), (batch,), generator=gen)
    fns = methods(u, e, keys)
    estimate = {}
    for name, fn in fns.items():  # warm-up, and a first estimate of the cost
        start = time.perf_counter()
        fn()
        estimate[name] = time.perf_counter() - start
    repeats = int(min(50, max(5, budget_s / sum(estimate.values()))))
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    # The fastest repeat is what the code costs when nothing else competes for the cores.
    minima = {f"min_{name}": min(values) for name, values in samples.items()}
    return medians | minima | {"repeats": repeats}


def parse_sizes(text: str) -> list[tuple[int, int]]:
    try:
        return [tuple(int(v) for v in item.split("x")) for item in text.split(",")]
    except ValueError:
        sys.exit(f"--sizes: expected BxD[,BxD...], e.g. 1024x1024, got {text!r}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=parse_sizes, default=DEFAULT_SIZES, help="BxD list")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads")
    parser.add_argument("--budget", type=float, default=6.0, help="seconds of repeats per size")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, tau={TAU}, "
        f"median ms (min = fastest repeat); load average at start {load:.2f} on {os.cpu_count()} cores"
    )
    header = (
        f"{'B':>5} {'D':>5} {'rep':>3} {'naive':>8} {'def':>8} {'def_mul':>8} {'fused':>8} "
        f"{'fus_mul':>8} {'def/fused':>9} {'multi def/fus':>13} {'fused/naive':>11} "
        f"{'fus mul/sgl':>11} {'min def/fus':>11}"
    )
    print(header)
    print("-" * len(header))
    results = {}
    for batch, dim in args.sizes:
        t = time_size(batch, dim, args.budget)
        results[(batch, dim)] = t
        ms = {name: t[name] * 1e3 for name in METHOD_NAMES}
        print(
            f"{batch:>5} {dim:>5} {t['repeats']:>3} {ms['naive']:>8.1f} {ms['definition']:>8.1f} "
            f"{ms['definition_multi']:>8.1f} {ms['fused']:>8.1f} {ms['fused_multi']:>8.1f} "
            f"{t['definition'] / t['fused']:>9.2f} "
            f"{t['definition_multi'] / t['fused_multi']:>13.2f} "
            f"{t['fused'] / t['naive']:>11.2f} {t['fused_multi'] / t['fused']:>11.2f} "
            f"{t['min_definition'] / t['min_fused']:>11.2f}",
            flush=True,
        )
    for label, prefix in (("median", ""), ("fastest repeat", "min_")):
        if TARGET_SIZE in results:
            t = results[TARGET_SIZE]
            ratio = t[f"{prefix}fused"] / t[f"{prefix}naive"]
            verdict = "met" if ratio <= TARGET_VS_NAIVE else "NOT met"
            print(
                f"target fused <= {TARGET_VS_NAIVE}x naive at B=1024, D=1024 ({label}): "
                f"{ratio:.2f}x, {verdict}; the definition takes "
                f"{t[f'{prefix}definition'] / t[f'{prefix}fused']:.2f}x the fused time"
            )
        ratios = {k: t[f"{prefix}fused_multi"] / t[f"{prefix}fused"] for k, t in results.items()}
        worst = max(ratios, key=ratios.get)
        verdict = "met" if ratios[worst] <= TARGET_MULTI_VS_SINGLE else "NOT met"
        print(
            f"target multi <= {TARGET_MULTI_VS_SINGLE}x single at every size ({label}): worst "
            f"{ratios[worst]:.2f}x (B={worst[0]}, D={worst[1]}), {verdict}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
