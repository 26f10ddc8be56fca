"""Training speed of the reference models: samples/s of forward + backward + optimizer step.

Both models (AU video-text without and with its colour tokens, EE keyframe policy) at the ``tiny``
and ``quick`` presets, on random batches shaped as docs/interfaces.md says, at 1 and 2 torch
threads. For the EE policy it also prints, at the quick preset, training samples/s and
greedy-decoding keyframes/s of the old input path (the real cameras) against the new one (RVT
virtual views, with and without the RVT-2 zoom stage and the colour code), and the virtual-view
renderer's views/s. As a reference measured in the same run, a dense fp32 matmul gives the
machine's GFLOP/s at the same thread count; the ``per_gflops`` column (samples/s divided by it)
is comparable across machines and loads. The load average is printed because other processes on a 2-core machine change every number here.

    .venv/bin/python benchmarks/bench_models.py [--seconds 10] [--threads 1 2] [--ee-paths-only]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

import torch

from mirror_align.config.experiment import load_experiment
from mirror_align.constants import CAMERAS, WORKSPACE_BOUNDS
from mirror_align.models import KeyframePolicy, VideoTextModel, policy_preset, video_text_preset
from mirror_align.models import virtual_views as vv
from mirror_align.models.synthetic import random_au_batch, random_ee_batch

# 249 instruction-like strings, so the text side has the real table's size.
TABLE = [f"do task {t} with the {c} object" for t in range(18) for c in "abcdefghijklmn"][:249]
# AU without / with the motion-gated colour tokens (VideoTextConfig.colour_tokens).
AU_NAMES = {False: "AU", True: "AU+col"}
BUDGET_SECONDS = 360.0  # the quick preset's budget per training (issue 5)


def matmul_gflops(seconds: float) -> float:
    a, b = torch.randn(512, 512), torch.randn(512, 512)
    for _ in range(3):
        a @ b
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        n += 1
    return 2 * 512**3 * n / (time.perf_counter() - start) / 1e9


def train_speed(model: torch.nn.Module, batch: dict, seconds: float) -> float:
    """Samples/s of loss, backward and an AdamW step on one fixed batch."""
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    size = next(iter(batch.values())).shape[0]
    for _ in range(2):
        opt.zero_grad()
        model.loss(batch).backward()
        opt.step()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or steps < 3:
        opt.zero_grad()
        model.loss(batch).backward()
        opt.step()
        steps += 1
    return steps * size / (time.perf_counter() - start)


# EE input paths compared by ``ee_paths``: field changes to the quick preset.
EE_PATHS = {
    "cameras (old)": {
        "input": "cameras",
        "zoom_factor": 1.0,
        "location_tokens": False,
        "colour_bins": 0,
    },
    "virtual views": {"zoom_factor": 1.0, "colour_bins": 0},
    "virtual views + zoom (quick)": {"colour_bins": 0},
    "+ colour code": {"colour_bins": 16},
}


def decode_speed(model: torch.nn.Module, batch: dict, seconds: float) -> float:
    """Keyframes/s of ``predict`` (greedy decoding, including the 3D lifting)."""
    model.eval()
    size = batch["rgb"].shape[0]
    with torch.no_grad():
        model.predict(batch)
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds or steps < 3:
            model.predict(batch)
            steps += 1
    return steps * size / (time.perf_counter() - start)


def render_speed(batch: dict, names: tuple[str, ...], fill: int, seconds: float) -> float:
    """Views/s of ``virtual_views.render`` over the batch's fused 4-camera clouds."""
    points = batch["points"].flatten(1, 3)
    rgb = batch["rgb"].flatten(1, 3).float() / 127.5 - 1.0
    bounds = torch.tensor(WORKSPACE_BOUNDS)
    centre, half = vv.workspace_box(bounds, points.shape[0])
    size = batch["rgb"].shape[2]
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or steps < 3:
        vv.render(points, rgb, centre, half, names, size, fill)
        steps += 1
    return steps * points.shape[0] * len(names) / (time.perf_counter() - start)


def ee_paths(seconds: float, threads: int) -> None:
    """EE training samples/s and decoding keyframes/s per input path, and the renderer's views/s."""
    torch.set_num_threads(threads)
    base = policy_preset("quick")
    size = load_experiment("quick").data.image_size  # the quick dataset's image side
    g = torch.Generator().manual_seed(0)
    batch = random_ee_batch(base.batch_size, len(TABLE), size, generator=g)
    print(f"EE input paths, quick preset, {threads} thread(s), batch {base.batch_size}:")
    print(f"  {'path':<22} {'train samples/s':>15} {'decode keyframes/s':>18}")
    speeds = {}
    for name, changes in EE_PATHS.items():
        torch.manual_seed(0)
        model = KeyframePolicy(
            dataclasses.replace(base, **changes), TABLE, image_size=size, num_views=len(CAMERAS),
            workspace_bounds=WORKSPACE_BOUNDS,
        )  # fmt: skip
        speeds[name] = (train_speed(model, batch, seconds), decode_speed(model, batch, seconds))
        print(f"  {name:<22} {speeds[name][0]:>15.1f} {speeds[name][1]:>18.1f}", flush=True)
    old = speeds["cameras (old)"]
    for name in list(EE_PATHS)[1:]:
        new = speeds[name]
        print(f"  {name} / old: train x{new[0] / old[0]:.2f}, decode x{new[1] / old[1]:.2f}")
    views = render_speed(batch, tuple(base.views), base.view_fill, seconds)
    print(f"  renderer: {views:,.0f} views/s ({len(base.views)} views of {size} px "
          f"from {batch['points'][0].numel() // 3:,} points, {base.view_fill} fill pass)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="timing window per case")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--ee-paths-only", action="store_true", help="only the EE input-path comparison"
    )
    args = parser.parse_args()

    g = torch.Generator().manual_seed(0)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    header = f"{'model':<6} {'preset':<6} {'thr':>3} {'batch':>5} {'params':>9} {'samples/s':>10} {'ref GFLOP/s':>11} {'per_gflops':>10} {'samples/6min':>12}"
    if not args.ee_paths_only:
        print(header)
    for threads in [] if args.ee_paths_only else args.threads:
        torch.set_num_threads(threads)
        reference = matmul_gflops(min(args.seconds, 3.0))
        for preset in ("tiny", "quick"):
            torch.manual_seed(0)
            size = load_experiment(preset).data.image_size  # the preset's dataset image size
            au_cfg = video_text_preset(preset)
            au_batch = random_au_batch(au_cfg.batch_size, len(TABLE), au_cfg.num_frames, size, g)
            # The AU with and without the colour tokens (issue 12: old vs new in one run).
            au_variants = []
            for tokens in (False, True):
                torch.manual_seed(0)
                cfg = dataclasses.replace(au_cfg, colour_tokens=tokens)
                model = VideoTextModel(cfg, TABLE, image_size=size)
                au_variants.append((AU_NAMES[tokens], model, au_batch))
            ee_cfg = policy_preset(preset)
            ee = KeyframePolicy(
                ee_cfg, TABLE, image_size=size, num_views=len(CAMERAS),
                workspace_bounds=WORKSPACE_BOUNDS,
            )  # fmt: skip
            ee_batch = random_ee_batch(ee_cfg.batch_size, len(TABLE), size, generator=g)
            for name, model, batch in (*au_variants, ("EE", ee, ee_batch)):
                bsz = next(iter(batch.values())).shape[0]
                speed = train_speed(model, batch, args.seconds)
                params = sum(p.numel() for p in model.parameters())
                print(
                    f"{name:<6} {preset:<6} {threads:>3} {bsz:>5} {params:>9,} {speed:>10.1f} "
                    f"{reference:>11.1f} {speed / reference:>10.3f} {speed * BUDGET_SECONDS:>12,.0f}",
                    flush=True,
                )
    for threads in args.threads:
        ee_paths(args.seconds, threads)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
