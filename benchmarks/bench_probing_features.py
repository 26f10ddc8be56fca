"""Speed of probing's feature extraction: one checkpoint at a time vs batch-major (not a test).

Times ``au_representations`` / ``ee_representations`` per checkpoint (the extraction before
``pipeline/probing/extract.py``) against ``extract_checkpoints`` over the same checkpoints (every
checkpoint of the AU and EE runs, and the MN run's latest), with 1 and ``--workers`` processes,
and checks that the rows are bit-identical. Run it with one torch thread, as the probing stage is.

Usage: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_probing_features.py
    --experiment out/quick --splits val [--workers 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from mirror_align.eval.features import EpisodeSet, au_representations, ee_representations
from mirror_align.pipeline.probing import (
    au_clip_frames,
    checkpoint_key,
    extract_checkpoints,
    load_module,
)
from mirror_align.train.checkpoint import list_checkpoints


def wanted_checkpoints(runs: Path) -> list[tuple[str, str, int]]:
    """Step 0 and every checkpoint of ``au_s0`` (AU) and ``ee_s0`` (EE), and ``mn_s0``'s latest
    (both models): what the probing stage of a one-seed experiment extracts."""
    wanted = []
    for kind in ("au", "ee"):
        run = runs / f"{kind}_s0"
        steps = [0] + [s for s, _ in list_checkpoints(run)]
        wanted += [checkpoint_key(kind, run, s) for s in steps]
    mn_step = list_checkpoints(runs / "mn_s0")[-1][0]
    return wanted + [checkpoint_key(kind, runs / "mn_s0", mn_step) for kind in ("au", "ee")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", required=True, help="a reproduce folder (runs/, data/)")
    parser.add_argument("--data", default=None, help="dataset folder (default: EXPERIMENT/data)")
    parser.add_argument("--splits", default="val", help="comma-separated splits")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    runs = Path(args.experiment) / "runs"
    data = args.data or str(Path(args.experiment) / "data")
    episodes = EpisodeSet(data, args.splits.split(","), au_clip_frames(runs / "au_s0"))
    wanted = wanted_checkpoints(runs)
    print(f"{len(episodes)} episodes, {episodes.num_keyframes} keyframes, {len(wanted)} models")

    started = time.perf_counter()
    alone = {}
    for key in wanted:
        kind, run, step = key
        extract = au_representations if kind == "au" else ee_representations
        alone[key] = extract(load_module(run, step, kind), episodes, 32, progress=False)
    base = time.perf_counter() - started
    print(f"one checkpoint at a time: {base:.1f} s")
    for workers in sorted({1, args.workers}):
        started = time.perf_counter()
        got = extract_checkpoints(episodes, wanted, 32, workers=workers, progress=False)
        seconds = time.perf_counter() - started
        same = all(np.array_equal(got[k], alone[k]) for k in wanted)
        print(
            f"batch-major, {workers} worker(s): {seconds:.1f} s ({base / seconds:.2f}x), "
            f"rows {'bit-identical' if same else 'DIFFERENT'}"
        )


if __name__ == "__main__":
    main()
