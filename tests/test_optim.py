"""Optimizer construction and the warm-up + cosine schedule."""

import pytest
import torch

from mirror_align.errors import UserInputError
from mirror_align.train.optim import build_optimizer, build_scheduler, warmup_cosine_factor


def test_schedule_shape():
    factors = [warmup_cosine_factor(s, 100, 10, 0.1) for s in range(101)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[10:], factors[11:], strict=False))
    assert factors[100] == pytest.approx(0.1)


def test_lamb_reduces_a_quadratic_and_scheduler_state_round_trips():
    param = torch.nn.Parameter(torch.full((4,), 3.0))
    optimizer = build_optimizer([{"params": [param], "lr": 0.05}], "lamb")
    scheduler = build_scheduler(optimizer, total_steps=50, warmup_steps=5)
    start = float((param.detach() ** 2).sum())
    for _ in range(20):
        optimizer.zero_grad()
        (param**2).sum().backward()
        optimizer.step()
        scheduler.step()
    assert float((param.detach() ** 2).sum()) < start
    copy = build_scheduler(build_optimizer([{"params": [param], "lr": 0.05}]), 50, 5)
    copy.load_state_dict(scheduler.state_dict())
    assert copy.get_last_lr() == scheduler.get_last_lr()


def test_unknown_optimizer_lists_choices():
    with pytest.raises(UserInputError, match="lamb, adamw, sgd"):
        build_optimizer([{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 1.0}], "sgdx")
