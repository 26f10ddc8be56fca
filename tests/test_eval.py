"""Evaluation end to end on the tiny preset: recognition + rollouts into metrics.jsonl."""

import json

import pytest

from mirror_align.cli import main
from mirror_align.config.experiment import load_experiment
from mirror_align.eval.metrics_log import read_metrics
from mirror_align.eval.rollout import plan_rollouts
from mirror_align.train.trainer import train


def test_rollout_plan_uses_the_split_seed_range_and_spreads_variations():
    from mirror_align.data.generate import plan_jobs

    jobs = plan_rollouts(["open_drawer"], 4, 2, "test")
    generated = plan_jobs(["open_drawer"], 4, "test")
    assert [(j.seed, j.variation) for j in jobs[:4]] == [(g.seed, g.variation) for g in generated]
    assert [j.variation for j in jobs] == [0, 1, 2, 0, 0, 1, 2, 0]
    assert len({j.seed for j in jobs}) == 8


@pytest.fixture(scope="module")
def tiny_mn_run(tiny_sim_dataset, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "mn"
    config = load_experiment(
        "tiny",
        [f"data.path={tiny_sim_dataset}", "train.steps=5", "train.batch_size=4"],
    )
    train(config, "mn", run, progress=False)
    return run


def test_evaluate_writes_per_task_metrics_and_episode_outcomes(tiny_mn_run):
    code = main(
        [
            "evaluate",
            str(tiny_mn_run),
            "--episodes-per-task",
            "1",
            "--eval-seeds",
            "2",
            "--workers",
            "1",
        ]
    )
    assert code == 0
    records, torn = read_metrics(tiny_mn_run / "metrics.jsonl")
    assert torn == 0
    keys = {(r.task, r.metric, r.seed) for r in records}
    for task in ("open_drawer", "push_buttons", "all"):
        assert (task, "recognition_accuracy", 0) in keys
        assert (task, "success_rate", 0) in keys and (task, "success_rate", 1) in keys
    assert all(r.step == 5 and r.split == "test" for r in records)
    rates = [r for r in records if r.metric in ("recognition_accuracy", "success_rate")]
    assert all(0.0 <= r.value <= 1.0 for r in rates)
    rollouts = json.loads((tiny_mn_run / "eval" / "rollouts_test_step5.json").read_text())
    assert len(rollouts) == 4 and all(1 <= r["steps"] <= 25 for r in rollouts)
    recognition = json.loads((tiny_mn_run / "eval" / "recognition_test_step5.json").read_text())
    assert len(recognition["predicted"]) == 4  # 2 tasks x 2 test episodes


def test_evaluate_without_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "no complete checkpoint" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "typo")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"mirror-align evaluate: error: {tmp_path / 'typo'}: no such run folder "
        "(a `mirror-align train --out` folder)"
    )
