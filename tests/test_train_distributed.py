"""DDP training on a real 2-process gloo group: one step equals the single-process step."""

import os
import subprocess
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from mirror_align.config.experiment import load_experiment
from mirror_align.data.reader import DatasetReader
from mirror_align.models.factory import build_models
from mirror_align.train.checkpoint import flatten_modules, latest_checkpoint, load_weights
from mirror_align.train.distributed import DistributedContext
from mirror_align.train.trainer import train

# Per-rank randomness inside the models (token masking) and per-rank batch-norm statistics would
# legitimately differ from one process, so the equality check turns them off.
EXACT = [
    "train.steps=1",
    "train.batch_size=8",
    "train.au_share=1.0",
    "train.warmup_steps=1",
    "train.threads=1",
    "train.grad_clip=0",
    "train.optimizer=sgd",
    "au.mask_ratio=0.0",
    "au.video_batch_norm=false",
    "au.gather_negatives=true",
]


def _rank_main(rank: int, store: str, dataset: str, run_dir: str) -> None:
    dist.init_process_group("gloo", store=dist.FileStore(store, 2), rank=rank, world_size=2)
    try:
        config = load_experiment("tiny", [f"data.path={dataset}", *EXACT])
        train(
            config, "mn", run_dir, progress=False, dist_ctx=DistributedContext(rank, 2, rank, "cpu")
        )
    finally:
        dist.destroy_process_group()


def test_one_ddp_step_equals_the_single_process_step(tiny_sim_dataset, tmp_path):
    config = load_experiment("tiny", [f"data.path={tiny_sim_dataset}", *EXACT])
    train(config, "mn", tmp_path / "single", progress=False, dist_ctx=DistributedContext())
    mp.spawn(
        _rank_main,
        args=(str(tmp_path / "store"), str(tiny_sim_dataset), str(tmp_path / "ddp")),
        nprocs=2,
        join=True,
    )
    single = load_weights(latest_checkpoint(tmp_path / "single"))
    ddp = load_weights(latest_checkpoint(tmp_path / "ddp"))
    assert single.keys() == ddp.keys()
    for key, value in single.items():
        torch.testing.assert_close(ddp[key], value, rtol=1e-4, atol=1e-5, msg=key)
    # The step really moved the weights: this is not a comparison of two untouched inits.
    initial = flatten_modules(build_models(config, DatasetReader(tiny_sim_dataset).meta, "mn"))
    changed = [k for k in single if not torch.equal(single[k], initial[k])]
    assert any(k.startswith("au.") for k in changed) and any(k.startswith("ee.") for k in changed)
    assert any(k.startswith("aligner.") for k in changed)


def test_torchrun_cli_runs_and_only_rank0_writes(tiny_sim_dataset, tmp_path):
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--standalone",
        "-m",
        "mirror_align.cli",
        "train",
        "--config",
        "tiny",
        "--method",
        "mn",
        "--out",
        str(out),
        "--set",
        f"data.path={tiny_sim_dataset}",
        "--set",
        "train.steps=2",
        "--set",
        "train.batch_size=4",
        "--set",
        "train.threads=1",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("trained mn") == 1  # only rank 0 prints
    assert latest_checkpoint(out).name == "step_00000002"
    assert len((out / "train_log.jsonl").read_text().splitlines()) == 2
