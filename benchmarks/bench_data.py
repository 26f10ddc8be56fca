"""Dataset layer speed and size: generation, loaders, bytes on disk, cache memory.

Prints, for the implemented MirrorBench tasks:
- generation episodes/s at 64 and 128 px with 1 and 2 workers, as a ratio to the bare simulator
  (expert rollouts without writing anything) measured in the same run, and the projected time for
  the paper-scale 18 tasks x (100 + 25) episodes at 128 px;
- bytes on disk per episode;
- loader samples/s for AU clips and EE keyframes (with augmentation), cached vs read from disk;
- memory of the in-memory cache, per episode and extrapolated to 18 tasks x 100 episodes at 64 px.

Usage: python benchmarks/bench_data.py [--episodes 12] [--tasks open_drawer,...]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from torch.utils.data import DataLoader

from mirror_align.data.generate import generate, parse_tasks, plan_jobs, run_expert
from mirror_align.data.loaders import AUClipDataset, EEKeyframeDataset, seed_worker
from mirror_align.data.reader import DatasetReader

PAPER_EPISODES = 18 * (100 + 25)
TARGET_SECONDS = 15 * 60


def bare_simulator_rate(tasks: list[str], episodes: int, size: int, frames: int) -> float:
    """Episodes/s of expert rollouts with observations, nothing written (the reference)."""
    from mirror_align.sim import make_env

    jobs = plan_jobs(tasks, episodes, "train")
    envs = {task: make_env(task, image_size=size) for task in tasks}
    run_expert(envs[jobs[0].task], jobs[0], frames)  # warm-up: GL context, shaders
    start = time.perf_counter()
    for job in jobs:
        run_expert(envs[job.task], job, frames)
    seconds = time.perf_counter() - start
    for env in envs.values():
        env.close()
    return len(jobs) / seconds


def loader_rate(dataset, batch_size: int, workers: int, batches: int) -> float:
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        worker_init_fn=seed_worker,
        persistent_workers=workers > 0,
    )
    seen = 0
    start = None
    for epoch in range(100):
        for i, batch in enumerate(loader):
            if start is None and (i >= 1 or epoch > 0):  # skip worker start-up
                start = time.perf_counter()
            elif start is not None:
                seen += len(batch["task_id"])
            if seen >= batches * batch_size:
                return seen / (time.perf_counter() - start)
    return seen / (time.perf_counter() - start)


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=12, help="episodes per task per setting")
    parser.add_argument("--tasks", default="all", help="'all' implemented tasks or a list")
    parser.add_argument("--video-frames", type=int, default=32)
    args = parser.parse_args()
    tasks = parse_tasks(args.tasks)
    workdir = Path(tempfile.mkdtemp(prefix="bench_data_"))
    print(
        f"tasks: {', '.join(tasks)}; {args.episodes} episodes per task per setting; {os.cpu_count()} cores"
    )
    try:
        rates = {}
        for size in (64, 128):
            reference = bare_simulator_rate(tasks, args.episodes, size, args.video_frames)
            print(f"[{size:3d} px] bare simulator (reference): {reference:6.2f} episodes/s")
            for workers in (1, 2):
                out = workdir / f"gen_{size}_{workers}"
                result = generate(out, tasks, args.episodes, "train", size, args.video_frames,
                                  workers, progress=False)  # fmt: skip
                rate = result.episodes_per_second
                rates[(size, workers)] = rate
                per_episode = DatasetReader(out).summary()["bytes_per_episode"]
                print(
                    f"[{size:3d} px] generate, {workers} worker(s): {rate:6.2f} episodes/s "
                    f"(x{rate / reference:.2f} of the bare simulator), "
                    f"{per_episode / 1024:.1f} KB/episode on disk, {result.total_failed} failed"
                )
        best = rates[(128, 2)]
        projected = PAPER_EPISODES / best
        print(
            f"projection: 18 tasks x 125 episodes at 128 px with 2 workers: {projected / 60:.1f} min "
            f"(target {TARGET_SECONDS / 60:.0f} min: "
            f"{'met' if projected <= TARGET_SECONDS else 'NOT met'}; measured on "
            f"{len(tasks)} implemented task(s), others may have more keyframes)"
        )

        # Loaders on the 64 px dataset (the quick-run size).
        root = str(workdir / "gen_64_2")
        before = rss_bytes()
        au = AUClipDataset(root, "train", clip_frames=8, train=True)
        ee = EEKeyframeDataset(root, "train", augment=True)
        grown = rss_bytes() - before
        episodes = len(au)
        cached = au.cached_bytes() + ee.cached_bytes()
        per_episode = cached / episodes
        print(
            f"cache: {cached / 2**20:.1f} MiB for {episodes} episodes at 64 px "
            f"({per_episode / 2**20:.2f} MiB/episode, RSS grew {grown / 2**20:.1f} MiB); "
            f"18 tasks x 100 episodes -> {per_episode * 1800 / 2**30:.2f} GiB"
        )
        au_disk = AUClipDataset(root, "train", clip_frames=8, train=True, cache=False)
        ee_disk = EEKeyframeDataset(root, "train", augment=True, cache=False)
        for name, cached_ds, disk_ds in (("AU clips", au, au_disk), ("EE keyframes", ee, ee_disk)):
            reference = loader_rate(disk_ds, 32, 0, 10)
            for workers in (0, 2):
                rate = loader_rate(cached_ds, 32, workers, 20)
                print(
                    f"loader {name}, cached, {workers} workers: {rate:8.1f} samples/s "
                    f"(x{rate / reference:.2f} of reading from disk with 0 workers: "
                    f"{reference:.1f}/s)"
                )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
