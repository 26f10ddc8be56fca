"""The training loop on a real (tiny) generated dataset: methods, logs, resume, NaN handling."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from mirror_align.align.aligner import AlignmentOutput
from mirror_align.config.experiment import is_au_step, load_experiment, loop_steps
from mirror_align.models.layers import ModelOutput
from mirror_align.train.batches import PairStream
from mirror_align.train.checkpoint import latest_checkpoint, list_checkpoints, load_weights
from mirror_align.train.run_log import read_run_log
from mirror_align.train.trainer import TrainingDiverged, compute_loss, train


def _config(dataset, *overrides):
    base = [f"data.path={dataset}", "train.steps=5", "train.batch_size=4", "train.log_every=1"]
    return load_experiment("tiny", base + list(overrides))


def test_au_share_spreads_steps_evenly():
    active = [s for s in range(20) if is_au_step(s, 0.2)]
    assert active == [4, 9, 14, 19]
    assert sum(is_au_step(s, 1.0) for s in range(7)) == 7


def _outputs(l_au: float, l_ee: float, l_align: float):
    """Model outputs whose losses are leaves, so the gradient of L is readable per term."""
    leaves = [torch.tensor(v, requires_grad=True) for v in (l_au, l_ee, l_align)]
    rep = torch.zeros(2, 3)
    au = ModelOutput(loss=leaves[0], representation=rep)
    ee = ModelOutput(loss=leaves[1], representation=rep, terms={"position": torch.tensor(0.25)})
    aligned = AlignmentOutput(
        loss=leaves[2], z_u=rep, z_e=rep, u2e=l_align, e2u=l_align,
        mi_lower_bound=0.5, tau=0.1,
    )  # fmt: skip
    return leaves, au, ee, aligned


def test_compute_loss_is_eq5_with_the_au_loss_on_au_steps_only():
    leaves, au, ee, aligned = _outputs(2.0, 3.0, 4.0)
    total, terms = compute_loss(au, ee, aligned, au_step=True, ee_weight=1.0, align_weight=0.5)
    assert float(total.detach()) == 2.0 + 1.0 * 3.0 + 0.5 * 4.0
    total.backward()
    assert [float(x.grad) for x in leaves] == [1.0, 1.0, 0.5]  # dL/dL_AU, lambda_EE, lambda_align
    assert set(terms) == {
        "loss_au",
        "loss_ee",
        "ee/position",
        "loss_align",
        "mi_lower_bound",
        "loss",
    }
    assert not any(t.requires_grad for t in terms.values())

    leaves, au, ee, aligned = _outputs(2.0, 3.0, 4.0)
    total, terms = compute_loss(au, ee, aligned, au_step=False, ee_weight=2.0, align_weight=0.1)
    assert float(total.detach()) == pytest.approx(2.0 * 3.0 + 0.1 * 4.0)
    assert "loss_au" not in terms
    # The baselines: one model, no alignment term.
    total, terms = compute_loss(au, None, None, au_step=True, ee_weight=1.0, align_weight=0.5)
    assert float(total.detach()) == 2.0 and set(terms) == {"loss_au", "loss"}
    total, terms = compute_loss(None, ee, None, au_step=False, ee_weight=1.0, align_weight=0.5)
    assert float(total.detach()) == 3.0 and "loss_align" not in terms


def test_mn_logs_every_term_and_checkpoints(tiny_sim_dataset, tmp_path):
    config = _config(tiny_sim_dataset, "train.checkpoint_every=2")
    result = train(config, "mn", tmp_path / "run", progress=False)
    assert result.steps == 5
    log = read_run_log(tmp_path / "run")
    assert [r["step"] for r in log] == [0, 1, 2, 3, 4]
    for record in log:
        assert {"loss", "loss_ee", "loss_align", "mi_lower_bound", "ee/position"} <= set(record)
    assert "loss_au" in log[4] and "loss_au" not in log[0]  # step 4 is the first AU step
    assert [s for s, _ in list_checkpoints(tmp_path / "run")] == [2, 4, 5]
    weights = load_weights(latest_checkpoint(tmp_path / "run"))
    assert any(k.startswith("aligner.project_u") for k in weights)
    assert json.loads((tmp_path / "run" / "run.json").read_text())["method"] == "mn"


def test_baselines_read_the_same_batches_as_mn(tiny_sim_dataset):
    config = _config(tiny_sim_dataset, "train.steps=10")
    assert loop_steps(config, "au") == [4, 9]
    assert loop_steps(config, "ee") == list(range(10))
    mn = PairStream(config, "mn")
    au = PairStream(config, "au")
    ee = PairStream(config, "ee")
    for step in (0, 4, 9):
        mn_au, mn_ee = mn.batch(step, need_au=True, need_ee=True)
        only_au, _ = au.batch(step, need_au=True, need_ee=False)
        _, only_ee = ee.batch(step, need_au=False, need_ee=True)
        assert torch.equal(mn_au["video"], only_au["video"])
        assert torch.equal(mn_ee["points"], only_ee["points"])


def test_existing_run_needs_resume(tiny_sim_dataset, tmp_path):
    from mirror_align.errors import UserInputError

    config = _config(tiny_sim_dataset, "train.steps=1")
    train(config, "ee", tmp_path / "run", progress=False)
    with pytest.raises(UserInputError, match="--resume"):
        train(config, "ee", tmp_path / "run", progress=False)


def test_non_finite_loss_stops_and_keeps_last_checkpoint(tiny_sim_dataset, tmp_path, monkeypatch):
    from mirror_align.models import KeyframePolicy

    config = _config(tiny_sim_dataset, "train.checkpoint_every=2")
    original = KeyframePolicy.forward
    calls = {"n": 0}

    def poisoned(self, batch):  # fault injection: the 4th forward returns a NaN loss
        out = original(self, batch)
        calls["n"] += 1
        if calls["n"] == 4:
            out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(KeyframePolicy, "forward", poisoned)
    with pytest.raises(TrainingDiverged, match="step 3: loss term loss_ee is nan"):
        train(config, "ee", tmp_path / "run", progress=False)
    assert latest_checkpoint(tmp_path / "run").name == "step_00000002"


def _train_cmd(dataset, out, *extra):
    return [
        sys.executable,
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
        f"data.path={dataset}",
        "--set",
        "train.steps=6",
        "--set",
        "train.batch_size=4",
        "--set",
        "train.log_every=1",
        "--set",
        "train.checkpoint_every=2",
        "--set",
        "train.threads=1",
        *extra,
    ]


def test_killed_run_resumes_to_the_same_weights_and_curve(tiny_sim_dataset, tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    subprocess.run(
        _train_cmd(tiny_sim_dataset, tmp_path / "full"), check=True, env=env, capture_output=True
    )
    proc = subprocess.Popen(
        _train_cmd(tiny_sim_dataset, tmp_path / "killed"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 240
    while latest_checkpoint(tmp_path / "killed") is None and time.time() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert latest_checkpoint(tmp_path / "killed") is not None
    subprocess.run(
        _train_cmd(tiny_sim_dataset, tmp_path / "killed", "--resume"),
        check=True,
        env=env,
        capture_output=True,
    )
    full = load_weights(latest_checkpoint(tmp_path / "full"))
    resumed = load_weights(latest_checkpoint(tmp_path / "killed"))
    assert full.keys() == resumed.keys()
    for key in full:
        torch.testing.assert_close(resumed[key], full[key], rtol=0, atol=0, msg=key)
    curve_full = [(r["step"], r["loss"]) for r in read_run_log(tmp_path / "full")]
    curve_resumed = [(r["step"], r["loss"]) for r in read_run_log(tmp_path / "killed")]
    assert curve_resumed == curve_full
