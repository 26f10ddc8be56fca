"""Parallel training runs (reproduce's train.parallel_runs): real spawned 1-thread processes give
the same weights as training the same runs one after another with one thread."""

from dataclasses import replace

import torch

from mirror_align.config.experiment import load_experiment
from mirror_align.pipeline.manifest import plan_runs
from mirror_align.pipeline.parallel import longest_first, train_in_parallel
from mirror_align.train.checkpoint import latest_checkpoint, load_weights
from mirror_align.train.trainer import train


def test_parallel_runs_equal_sequential_one_thread_runs(tiny_sim_dataset, tmp_path):
    config = load_experiment(
        "tiny", [f"data.path={tiny_sim_dataset}", "train.steps=6", "train.checkpoint_every=3"]
    )
    specs = [s for s in plan_runs(config, [0], ablation=False) if s.method in ("au", "ee")]
    jobs = [(s, s.configure(config), tmp_path / "parallel" / s.name) for s in specs]
    lines: list[str] = []
    train_in_parallel(jobs, 2, lines.append)
    assert sorted(line.split(":")[0] for line in lines) == ["train au_s0", "train ee_s0"]

    torch.set_num_threads(1)
    for spec, run_config, run_dir in jobs:
        alone = tmp_path / "sequential" / spec.name
        one_thread = replace(run_config, train=replace(run_config.train, threads=1))
        train(one_thread, spec.method, alone, progress=False)
        got = load_weights(latest_checkpoint(run_dir))
        want = load_weights(latest_checkpoint(alone))
        assert got.keys() == want.keys()
        for name in want:
            torch.testing.assert_close(got[name], want[name], rtol=0, atol=0, msg=name)


def test_longest_runs_are_scheduled_first(tmp_path):
    config = load_experiment("tiny")
    specs = plan_runs(config, [0, 1], ablation=False)  # au, ee, mn per seed
    jobs = [(s, config, tmp_path / s.name) for s in specs]
    order = [spec.name for spec, _, _ in longest_first(jobs)]
    assert order == ["mn_s0", "mn_s1", "ee_s0", "ee_s1", "au_s0", "au_s1"]
