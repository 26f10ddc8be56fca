"""Training throughput on a busy machine: old vs new OpenMP settings (issue 14.10).

Measures EE and MN training steps/s (random batches shaped like the real ones, the trainer's
LAMB optimizer and step structure, as in ``bench_joint.py``) in fresh processes:

- alone;
- beside a busy 1-core process (a pure-Python loop);
- beside another 2-thread torch job (an EE training loop with the same settings),

for two settings of the measured *and* the competing process:

- old: the environment before the fix (OpenMP's default wait policy: threads spin at barriers);
- new: what ``mirror_align.threads.configure_cpu_threads`` sets before torch loads
  (``OMP_WAIT_POLICY=PASSIVE``, ``KMP_BLOCKTIME=0``).

Both use ``--threads`` torch threads (default 2, the 2-core machine's default). Ratios are against
the same setting alone, and against the best unloaded throughput. Target: >= 0.55x of the unloaded
throughput beside one competing 2-thread job. Other processes on the machine change every number;
the load average is printed.

    .venv/bin/python benchmarks/bench_contention.py [--preset quick] [--seconds 8] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

TARGET = 0.55
SRC = str(Path(__file__).resolve().parents[1] / "src")
SETTINGS = ("old", "new")
LOADS = ("alone", "busy 1-core process", "2-thread torch job")


def setting_env(setting: str, threads: int) -> dict[str, str]:
    """The environment of a measured or competing process under ``setting``."""
    from mirror_align.threads import WAIT_SETTINGS

    env = {k: v for k, v in os.environ.items() if k not in (*WAIT_SETTINGS, "OMP_NUM_THREADS")}
    env["PYTHONPATH"] = SRC
    env["OMP_NUM_THREADS"] = str(threads)
    if setting == "new":
        env.update(WAIT_SETTINGS)
    return env


def build_step(model: str, preset: str, batch: int):
    """A zero-argument callable running one training step of ``model`` ("ee" or "mn")."""
    import torch

    from mirror_align.align import Aligner
    from mirror_align.config.experiment import load_experiment
    from mirror_align.constants import CAMERAS, WORKSPACE_BOUNDS
    from mirror_align.models import KeyframePolicy, VideoTextModel, policy_preset, video_text_preset
    from mirror_align.models.synthetic import random_au_batch, random_ee_batch
    from mirror_align.train.optim import build_optimizer

    table = [f"do task {t} with the {c} object" for t in range(18) for c in "abcdefghijklmn"][:249]
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    size = load_experiment(preset).data.image_size  # the preset's dataset image side
    ee_cfg = policy_preset(preset)
    ee = KeyframePolicy(
        ee_cfg, table, image_size=size, num_views=len(CAMERAS), workspace_bounds=WORKSPACE_BOUNDS
    ).train()
    ee_batch = random_ee_batch(batch, len(table), size, generator=g)
    groups = ee.param_groups(1e-4)
    if model == "mn":
        au_cfg = video_text_preset(preset)
        au = VideoTextModel(au_cfg, table, image_size=size).train()
        aligner = Aligner(au.representation_dim, ee.representation_dim, dim=1024).train()
        au_batch = random_au_batch(batch, len(table), au_cfg.num_frames, size, g)
        groups += au.param_groups(1e-4) + [{"params": list(aligner.parameters()), "lr": 1e-4}]
    optimizer = build_optimizer(groups, "lamb")
    params = [p for group in groups for p in group["params"]]

    def step() -> None:
        if model == "mn":
            au_out = au(au_batch)
            ee_out = ee(ee_batch)
            aligned = aligner(
                au_out.representation, ee_out.representation, ee_batch["instruction_id"]
            )
            loss = au_out.loss + ee_out.loss + 0.5 * aligned.loss
        else:
            loss = ee(ee_batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()

    return step


def worker(args: argparse.Namespace) -> None:
    """Measure steps/s of one model (``--seconds`` > 0) or train forever as a competitor."""
    import torch

    torch.set_num_threads(args.threads)
    step = build_step(args.worker, args.preset, args.batch)
    for _ in range(2):
        step()
    if args.seconds <= 0:
        while True:
            step()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < args.seconds or steps < 3:
        step()
        steps += 1
    print(json.dumps({"steps_per_s": steps / (time.perf_counter() - start)}))


def busy() -> None:
    while True:  # one core of pure-Python work, no OpenMP
        pass


def competitor(load: str, env: dict[str, str], args: argparse.Namespace):
    """Start the competing process of ``load`` (None when alone)."""
    if load == LOADS[0]:
        return None
    me = [sys.executable, __file__, "--preset", args.preset, "--batch", str(args.batch)]
    command = me + ["--busy"] if load == LOADS[1] else me + ["--worker", "ee", "--seconds", "0"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    time.sleep(args.settle)  # let it import torch and reach its steady state
    return process


def measure(model: str, setting: str, load: str, args: argparse.Namespace) -> float:
    """Steps/s of ``model`` under ``setting`` and ``load`` (NaN if the case ran past its limit)."""
    env = setting_env(setting, args.threads)
    other = competitor(load, setting_env(setting, 2), args)
    command = [sys.executable, __file__, "--worker", model, "--seconds", str(args.seconds),
               "--threads", str(args.threads), "--preset", args.preset, "--batch", str(args.batch)]  # fmt: skip
    try:
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, check=True, timeout=args.case_limit
        )
    except subprocess.TimeoutExpired:
        return float("nan")
    finally:
        if other is not None:
            other.kill()
            other.wait()
    return float(json.loads(done.stdout.strip().splitlines()[-1])["steps_per_s"])


def report(results: dict[tuple[str, str, str], float], args: argparse.Namespace) -> None:
    print(
        f"preset {args.preset}, batch {args.batch}, {args.threads} threads, {args.seconds} s/case"
    )
    print(f"{'model':<5} {'setting':<7} {'load':<22} {'steps/s':>8} {'vs alone':>9} {'vs best':>8}")
    for model in args.models:
        alone_values = [results[(model, s, LOADS[0])] for s in SETTINGS]
        best = max((v for v in alone_values if v == v), default=float("nan"))  # NaN: timed out
        for setting in SETTINGS:
            alone = results[(model, setting, LOADS[0])]
            for load in LOADS:
                value = results[(model, setting, load)]
                print(
                    f"{model:<5} {setting:<7} {load:<22} {value:8.2f} {value / alone:8.2f}x "
                    f"{value / best:7.2f}x"
                )
        got = results[(model, "new", LOADS[2])] / best
        verdict = "met" if got >= TARGET else "not met"
        print(f"{model}: new settings beside a 2-thread job: {got:.2f}x of unloaded ({verdict}, "
              f"target >= {TARGET}x)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick", choices=["tiny", "quick"])
    parser.add_argument("--batch", type=int, default=32, help="pairs per step (quick.yaml: 32)")
    parser.add_argument("--seconds", type=float, default=8.0, help="timing window per case")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the measured job")
    parser.add_argument("--settle", type=float, default=4.0, help="competitor start-up, seconds")
    parser.add_argument("--case-limit", type=float, default=240.0, help="seconds per case")
    parser.add_argument("--models", nargs="+", default=["ee", "mn"], choices=["ee", "mn"])
    parser.add_argument("--worker", choices=["ee", "mn"], help=argparse.SUPPRESS)
    parser.add_argument("--busy", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.busy:
        busy()
    if args.worker:
        worker(args)
        return
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    results = {}
    for model in args.models:
        for setting in SETTINGS:
            for load in LOADS:
                results[(model, setting, load)] = measure(model, setting, load, args)
    report(results, args)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    sys.path.insert(0, SRC)
    main()
