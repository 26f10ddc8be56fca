"""Dataset layer speed and size: generation, loaders, bytes on disk, cache memory.

Prints, for the implemented MirrorBench tasks:
- generation episodes/s at 64 and 128 px with 1 and 2 workers, as a ratio to the bare simulator
  (expert rollouts without writing anything) measured in the same run, and the projected time for
  the paper-scale 18 tasks x (100 + 25) episodes at 128 px;
- bytes on disk per episode;
- loader samples/s for AU clips and EE keyframes (with augmentation), cached vs read from disk,
  with the main process's torch threads at the default and at 1 (batch collation with 2 threads
  on a busy 2-core machine is much slower), and a memory-copy reference;
- memory of the in-memory cache, per episode and extrapolated to 18 tasks x 100 episodes at 64 px.

Usage: python benchmarks/bench_data.py [--episodes 12] [--tasks open_drawer,...] [--loaders-only]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mirror_align.data.generate import generate, parse_tasks, plan_jobs, run_expert
from mirror_align.data.reader import DatasetReader

# torch is imported only for the loader part: spawned generation workers re-import this script,
# and importing torch there would be timed as generation start-up.

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


def loader_rate(dataset, batch_size: int, workers: int, batches: int, collate_fn) -> float:
    from torch.utils.data import DataLoader

    from mirror_align.data.loaders import seed_worker

    loader = DataLoader(
        dataset,
        collate_fn=collate_fn,
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


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its reaped children (pool workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def cache_rss_growth(root: str) -> int:
    """RSS growth of a fresh process that builds both cached datasets (bytes)."""
    code = (
        "import sys\n"
        "def rss():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmRSS:'): return int(line.split()[1]) * 1024\n"
        "from mirror_align.data.loaders import AUClipDataset, EEKeyframeDataset\n"
        "before = rss()\n"
        "au = AUClipDataset(sys.argv[1], 'train', clip_frames=8)\n"
        "ee = EEKeyframeDataset(sys.argv[1], 'train')\n"
        "print(rss() - before)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, root], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip().splitlines()[-1])


def copy_bandwidth() -> tuple[float, float]:
    """MB/s of copying 25 MB into newly allocated memory and into memory reused across copies."""
    source = np.ones(25_000_000 // 4, np.float32)
    fresh, reused = [], []
    target = np.empty_like(source)
    for _ in range(5):
        start = time.perf_counter()
        source.copy()
        fresh.append(25 / (time.perf_counter() - start))
        start = time.perf_counter()
        np.copyto(target, source)
        reused.append(25 / (time.perf_counter() - start))
    return float(np.median(fresh)), float(np.median(reused))


def bench_generation(workdir: Path, tasks: list[str], episodes: int, frames: int) -> None:
    """Generation rate and bytes per episode at 64 and 128 px with 1 and 2 workers, then the
    paper-scale projection; leaves ``workdir/gen_64_2`` for the loaders."""
    rates = {}
    for size in (64, 128):
        reference = bare_simulator_rate(tasks, episodes, size, frames)
        print(f"[{size:3d} px] bare simulator (reference): {reference:6.2f} episodes/s")
        for workers in (1, 2):
            out = workdir / f"gen_{size}_{workers}"
            cpu_before = cpu_seconds()
            result = generate(out, tasks, episodes, "train", size, frames, workers,
                              progress=False)  # fmt: skip
            cpu = (cpu_seconds() - cpu_before) / result.generated
            rate = result.episodes_per_second
            rates[(size, workers)] = (rate, cpu)
            per_episode = DatasetReader(out).summary()["bytes_per_episode"]
            print(
                f"[{size:3d} px] generate, {workers} worker(s): {rate:6.2f} episodes/s "
                f"(x{rate / reference:.2f} of the bare simulator), {cpu:.3f} CPU s/episode, "
                f"{per_episode / 1024:.1f} KB/episode on disk, {result.total_failed} failed"
            )
    print_projection(rates, tasks)


def print_projection(rates: dict[tuple[int, int], tuple[float, float]], tasks: list[str]) -> None:
    """The paper-scale generation time at 128 px with 2 workers, two ways."""
    rate = rates[(128, 2)][0]
    cpu = rates[(128, 1)][1]  # in-process run: the per-episode work without worker start-up
    for label, seconds in (
        ("at the measured rate", PAPER_EPISODES / rate),
        (
            "from the 1-worker CPU time per episode spread over 2 idle cores",
            PAPER_EPISODES * cpu / 2,
        ),
    ):
        print(
            f"projection, 18 tasks x 125 episodes at 128 px with 2 workers, {label}: "
            f"{seconds / 60:.1f} min (target {TARGET_SECONDS / 60:.0f} min: "
            f"{'met' if seconds <= TARGET_SECONDS else 'NOT met'}; from {len(tasks)} "
            "implemented task(s), others may have more keyframes)"
        )


def bench_loaders(root: str) -> None:
    """Cache memory and loader rates on the 64 px dataset at ``root`` (the quick-run size)."""
    import torch
    from torch.utils.data import default_collate

    from mirror_align.data.loaders import AUClipDataset, EEKeyframeDataset, collate

    au = AUClipDataset(root, "train", clip_frames=8, train=True)
    ee = EEKeyframeDataset(root, "train", augment=True)
    episodes = len(au)
    cached = au.cached_bytes() + ee.cached_bytes()
    per_episode = cached / episodes
    print(
        f"cache: {cached / 2**20:.1f} MiB for {episodes} episodes at 64 px "
        f"({per_episode / 2**20:.2f} MiB/episode, RSS of a fresh process grew "
        f"{cache_rss_growth(root) / 2**20:.1f} MiB); 18 tasks x 100 episodes -> "
        f"{per_episode * 1800 / 2**30:.2f} GiB"
    )
    au_disk = AUClipDataset(root, "train", clip_frames=8, train=True, cache=False)
    ee_disk = EEKeyframeDataset(root, "train", augment=True, cache=False)
    threads = torch.get_num_threads()
    for name, cached_ds, disk_ds in (("AU clips", au, au_disk), ("EE keyframes", ee, ee_disk)):
        reference = loader_rate(disk_ds, 32, 0, 10, collate)
        rows = [
            (0, threads, default_collate, "default_collate"),
            (0, 1, default_collate, "default_collate"),
            (0, threads, collate, "data.loaders.collate"),
            (2, threads, collate, "data.loaders.collate"),
        ]
        for workers, torch_threads, collate_fn, label in rows:
            torch.set_num_threads(torch_threads)
            rate = loader_rate(cached_ds, 32, workers, 20, collate_fn)
            torch.set_num_threads(threads)
            print(
                f"loader {name}, cached, {workers} workers, {label}, torch {torch_threads} "
                f"thread(s): {rate:8.1f} samples/s (x{rate / reference:.2f} of reading from "
                f"disk: {reference:.1f}/s)"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=12, help="episodes per task per setting")
    parser.add_argument("--tasks", default="all", help="'all' implemented tasks or a list")
    parser.add_argument("--video-frames", type=int, default=32)
    parser.add_argument(
        "--loaders-only",
        action="store_true",
        help="skip the generation measurements (a 64 px dataset is still generated for loaders)",
    )
    args = parser.parse_args()
    tasks = parse_tasks(args.tasks)
    workdir = Path(tempfile.mkdtemp(prefix="bench_data_"))
    print(
        f"tasks: {', '.join(tasks)}; {args.episodes} episodes per task per setting; "
        f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} (other processes skew "
        "absolute rates; ratios compare runs under similar load)"
    )
    try:
        if args.loaders_only:
            generate(workdir / "gen_64_2", tasks, args.episodes, "train", 64, args.video_frames, 2,
                     progress=False)  # fmt: skip
        else:
            bench_generation(workdir, tasks, args.episodes, args.video_frames)
        bench_loaders(str(workdir / "gen_64_2"))
        fresh, reused = copy_bandwidth()
        print(
            f"reference: copying 25 MB into fresh memory {fresh:.0f} MB/s, into reused memory "
            f"{reused:.0f} MB/s"
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
