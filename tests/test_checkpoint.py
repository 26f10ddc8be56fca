"""Checkpoint round trips, the latest pointer and config files."""

import json
import random

import numpy as np
import torch
from torch import nn

from mirror_align.train.checkpoint import (
    capture_rng_state,
    latest_checkpoint,
    list_checkpoints,
    load_config,
    load_modules,
    load_train_state,
    load_weights,
    restore_rng_state,
    save_checkpoint,
)


def _modules(seed: int) -> dict[str, nn.Module]:
    torch.manual_seed(seed)
    tied = nn.Linear(4, 4)
    net = nn.Sequential(tied, nn.ReLU(), nn.Linear(4, 2))
    return {"au": net, "aligner": nn.Linear(2, 3)}


def test_round_trip_restores_identical_outputs(tmp_path):
    modules = _modules(0)
    opt = torch.optim.AdamW([p for m in modules.values() for p in m.parameters()], lr=1e-3)
    x = torch.randn(5, 4)
    modules["au"](x).sum().backward()
    opt.step()
    folder = save_checkpoint(tmp_path, 7, modules, {"lr": 1e-3}, {"optimizer": opt.state_dict()})
    restored = _modules(1)
    load_modules(restored, load_weights(folder), str(folder))
    assert torch.equal(restored["au"](x), modules["au"](x))
    assert load_config(folder) == {"lr": 1e-3}
    state = load_train_state(folder)
    assert state["step"] == 7
    opt2 = torch.optim.AdamW([p for m in restored.values() for p in m.parameters()], lr=1e-3)
    opt2.load_state_dict(state["optimizer"])
    assert opt2.state_dict()["state"][0]["step"] == opt.state_dict()["state"][0]["step"]


def test_pointer_moves_and_keep_last_prunes(tmp_path):
    modules = _modules(0)
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, modules, {}, {}, keep_last=2)
    assert latest_checkpoint(tmp_path).name == "step_00000003"
    assert [s for s, _ in list_checkpoints(tmp_path)] == [2, 3]
    assert json.loads((tmp_path / "checkpoints" / "latest.json").read_text())["step"] == 3


def test_no_checkpoint_gives_none(tmp_path):
    assert latest_checkpoint(tmp_path) is None


def test_rng_state_round_trip():
    random.seed(3)
    np.random.seed(3)
    torch.manual_seed(3)
    state = capture_rng_state()
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(99)
    np.random.seed(99)
    torch.manual_seed(99)
    restore_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
