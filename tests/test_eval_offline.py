"""`evaluate` on what applies to the dataset (issues 13.1, 11.7): offline keyframe metrics on any
dataset, rollouts only for MirrorBench tasks, `--rollouts 0` / `--no-rollouts`, and the val
keyframe metrics every N training steps."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from byod_data import write_byod_dataset
from mirror_align.cli import main
from mirror_align.config.experiment import load_experiment
from mirror_align.eval.failure_analysis import FAILURE_KINDS
from mirror_align.eval.keyframe_metrics import KEYFRAME_METRICS, STAGE1_METRICS
from mirror_align.eval.loading import load_run
from mirror_align.eval.metrics_log import read_metrics
from mirror_align.eval.offline import (
    KEYFRAME_COUNT,
    TrainingKeyframeMetrics,
    by_keyframe_metric,
    parse_keyframe_metric,
)
from mirror_align.train.checkpoint import latest_checkpoint, load_weights
from mirror_align.train.trainer import train


def _config(data, *overrides):
    return load_experiment(
        "tiny",
        [f"data.path={data}", "data.tasks=[]", "train.batch_size=4", "train.threads=1",
         *overrides],
    )  # fmt: skip


@pytest.fixture(scope="module")
def byod_data(tmp_path_factory):
    return write_byod_dataset(tmp_path_factory.mktemp("byod") / "data")


@pytest.fixture(scope="module")
def byod_mn_run(byod_data, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "mn"
    train(_config(byod_data, "train.steps=5"), "mn", run, progress=False)
    return run


def test_keyframe_metric_names_round_trip():
    assert parse_keyframe_metric(by_keyframe_metric("gripper_accuracy", 3)) == (
        "gripper_accuracy",
        3,
    )
    assert parse_keyframe_metric("position_error_cm_median") == ("position_error_cm_median", None)


def test_evaluate_mn_on_a_user_dataset_keeps_recognition_and_adds_keyframe_metrics(
    byod_mn_run, capsys
):
    assert main(["evaluate", str(byod_mn_run), "--split", "test"]) == 0
    out = capsys.readouterr().out
    # One line names the skipped tasks and why (stack_cups is MirrorBench's name, not its data).
    skipped = [line for line in out.splitlines() if line.startswith("rollouts skipped")]
    assert len(skipped) == 1
    assert "wipe_table (not a MirrorBench task)" in skipped[0] and "stack_cups (" in skipped[0]
    records, torn = read_metrics(byod_mn_run / "metrics.jsonl")
    assert torn == 0
    test = {(r.task, r.metric): r.value for r in records if r.split == "test"}
    for task in ("wipe_table", "stack_cups", "all"):
        assert 0.0 <= test[(task, "recognition_accuracy")] <= 1.0
        # The tiny EE has the zoom stage, so its first stage's metrics are recorded too.
        for name in (*KEYFRAME_METRICS, *STAGE1_METRICS, KEYFRAME_COUNT):
            assert (task, name) in test
    assert (
        test[("all", KEYFRAME_COUNT)]
        == test[("wipe_table", KEYFRAME_COUNT)] + test[("stack_cups", KEYFRAME_COUNT)]
    )
    indices = {parse_keyframe_metric(r.metric)[1] for r in records if r.split == "test"}
    assert indices == {None, 0, 1, 2, 3}  # episodes have 2-4 keyframes
    counts = {k: test[("all", by_keyframe_metric(KEYFRAME_COUNT, k))] for k in (0, 1, 2, 3)}
    assert sum(counts.values()) == test[("all", KEYFRAME_COUNT)]
    assert not any(r.metric == "success_rate" for r in records)
    assert not (byod_mn_run / "eval" / "rollouts_test_step5.json").exists()
    assert list((byod_mn_run / "tb").glob("events.out.tfevents.*"))


@pytest.fixture(scope="module")
def sim_ee_run(tiny_sim_dataset, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "ee"
    config = load_experiment(
        "tiny", [f"data.path={tiny_sim_dataset}", "train.steps=2", "train.batch_size=4"]
    )
    train(config, "ee", run, progress=False)
    return run


@pytest.mark.parametrize("flag", [["--no-rollouts"], ["--rollouts", "0"]])
def test_no_rollouts_is_honoured(sim_ee_run, flag, capsys):
    before = (
        read_metrics(sim_ee_run / "metrics.jsonl")[0]
        if (sim_ee_run / "metrics.jsonl").exists()
        else []
    )
    assert main(["evaluate", str(sim_ee_run), *flag]) == 0
    assert "rollouts skipped" not in capsys.readouterr().out
    records = read_metrics(sim_ee_run / "metrics.jsonl")[0][len(before) :]
    assert {r.task for r in records} == {"open_drawer", "push_buttons", "all"}
    assert not any(r.metric == "success_rate" for r in records)
    assert any(r.metric == "position_error_cm_median" for r in records)
    assert not (sim_ee_run / "eval" / "rollouts_test_step2.json").exists()


def test_evaluate_refuses_a_negative_rollout_count(sim_ee_run, capsys):
    assert main(["evaluate", str(sim_ee_run), "--rollouts", "-1"]) == 2
    assert "--episodes-per-task: must be >= 0" in capsys.readouterr().err


def test_training_measures_val_keyframes_every_n_steps_without_changing_training(
    byod_data, tmp_path
):
    plain, measured = tmp_path / "plain", tmp_path / "measured"
    train(_config(byod_data, "train.steps=5"), "ee", plain, progress=False)
    config = _config(byod_data, "train.steps=5", "train.keyframe_metrics_every=2")
    train(config, "ee", measured, progress=False)
    records, _ = read_metrics(measured / "metrics.jsonl")
    median = [r for r in records if r.metric == "position_error_cm_median" and r.task == "all"]
    assert [r.step for r in median] == [2, 4, 5]  # every 2 steps and the last
    assert {r.split for r in records} == {"val"}
    a = load_weights(latest_checkpoint(plain))
    b = load_weights(latest_checkpoint(measured))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert list((measured / "tb").glob("events.out.tfevents.*"))
    assert json.loads((measured / "run.json").read_text())["steps"] == 5
    # The DataLoader inside draws from torch's global generator: the measurement must not move it.
    metrics = TrainingKeyframeMetrics.for_run(config, tmp_path / "again", "ee")
    policy = load_run(measured).modules["ee"]
    state = torch.get_rng_state()
    result = metrics.run(policy, 5)
    assert torch.equal(state, torch.get_rng_state())
    assert result.counts["all"] == 9  # 3 val episodes (2, 3, 4 keyframes)
    assert TrainingKeyframeMetrics.for_run(config, tmp_path, "au") is None


def test_rollouts_record_failure_analysis_and_episode_counts(sim_ee_run, capsys):
    args = ["evaluate", str(sim_ee_run), "--rollouts", "1", "--eval-seeds", "1", "--workers", "1"]
    assert main(args) == 0
    assert "success % ± SE" in capsys.readouterr().out
    rollouts = json.loads((sim_ee_run / "eval" / "rollouts_test_step2.json").read_text())
    assert len(rollouts) == 2
    for r in rollouts:
        if r["success"]:
            assert r["failure_kind"] == "" and r["first_bad_keyframe"] == -1
        else:
            assert r["failure_kind"] in FAILURE_KINDS and r["failure_detail"]
            assert r["first_bad_keyframe"] < r["steps"]
    records, _ = read_metrics(sim_ee_run / "metrics.jsonl")
    last = {(r.task, r.metric): r.value for r in records if r.metric.startswith(("fail", "roll"))}
    for task in ("open_drawer", "push_buttons"):
        assert last[(task, "rollout_episodes")] == 1
        failed = sum(not r["success"] for r in rollouts if r["task"] == task)
        assert sum(last[(task, f"failures_{k}")] for k in FAILURE_KINDS) == failed
    assert last[("all", "rollout_episodes")] == 2


class _ExpertInToolFrame:
    """A stand-in policy that plays the scripted expert's plan expressed in tool frame ``emit``,
    and checks that the proprio it is given is in frame ``expect``: the roller must convert both
    ways."""

    def __init__(self, roller, task, emit, expect):
        self.roller, self.task, self.emit, self.expect, self.plan = roller, task, emit, expect, []
        self.reached = []  # degrees between the gripper and the previous keyframe's orientation

    def predict(self, batch):
        from mirror_align.data.tool_frame import to_tool_frame
        from mirror_align.sim import action_to_array

        env = self.roller.envs[self.task]
        if env.keyframe_count == 0:  # right after reset: the plan of this scene
            self.plan = [action_to_array(a) for a in env.expert_keyframes()]
        raw = env._observation()["proprio"]
        proprio = torch.from_numpy(to_tool_frame(raw, self.expect))
        assert torch.allclose(batch["proprio"][0], proprio, atol=1e-5)
        step = min(env.keyframe_count, len(self.plan) - 1)
        if step > 0:
            dot = abs(float(np.dot(raw[3:7], self.plan[step - 1][3:7])))
            self.reached.append(float(np.degrees(2 * np.arccos(min(1.0, dot)))))
        return torch.from_numpy(to_tool_frame(self.plan[step], self.emit))[None]


def test_rollouts_undo_the_tool_frame_before_the_env_sees_an_action(sim_ee_run):
    from dataclasses import replace

    from mirror_align.eval.rollout import _Roller, plan_rollouts

    frame = (0.0, -float(np.sqrt(0.5)), 0.0, float(np.sqrt(0.5)))
    job = plan_rollouts(["open_drawer"], 1, 1, "test", frame)[0]
    roller = _Roller(str(sim_ee_run), None, 25, None, 0)
    try:
        roller.policy = _ExpertInToolFrame(roller, "open_drawer", frame, frame)
        played = roller(job)
        assert played.success, played.failure_detail
        assert roller.policy.reached and max(roller.policy.reached) < 5.0  # expert's orientations
        # The same tool-frame actions, read by a roller told there is no tool frame: 90 deg off.
        roller.policy = _ExpertInToolFrame(roller, "open_drawer", frame, None)
        roller(replace(job, tool_frame=None))
        assert min(roller.policy.reached) > 60.0
    finally:
        roller.close()
