"""Half-precision features: the alignment loss is computed in float32 and never drops below 0.

The reference for a float16/bfloat16 batch is the float64 loss of the *same* values (upcast), so
the only difference allowed is float32 rounding: a few ulps of the largest logit, 1/tau.
"""

from __future__ import annotations

import math

import pytest
import torch

import mirror_align.align.fused_loss as fused_module
from mirror_align.align import alignment_loss, mi_lower_bound

HALF = (torch.float16, torch.bfloat16)
TAU = 0.1
# Float32 accuracy of a loss whose logits reach 1/tau: a few ulps of 1/tau.
LOSS_ATOL = 16 * torch.finfo(torch.float32).eps / TAU


# One torch thread in this module (tests/conftest.py says why).
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(params=["fused", "fused-rowmax", "autograd"])
def implementation(request, monkeypatch):
    """Both implementations, and the fused one with its per-row/column shift forced."""
    if request.param == "fused-rowmax":
        monkeypatch.setattr(fused_module, "SHARED_SHIFT_FRACTION", 0.0)
        return "fused"
    return request.param


def overflow_batch(dtype):
    """The reported case: 32 rows of randn(32, 1024) * 3000 with u = e. Every element fits in
    float16 (|x| < 65504), but every row norm (about 96000) overflows it."""
    x = (torch.randn(32, 1024, generator=torch.Generator().manual_seed(0)) * 3000).to(dtype)
    assert torch.isfinite(x).all()
    assert torch.isinf(torch.linalg.vector_norm(x, dim=1)).all() or dtype == torch.bfloat16
    return x, x.clone()


def correlated_batch(dtype, batch=48, dim=64, norm=200.0):
    gen = torch.Generator().manual_seed(1)
    u = torch.randn(batch, dim, generator=gen)
    e = 0.7 * u + 0.5 * torch.randn(batch, dim, generator=gen)
    return (norm / 8 * u).to(dtype), (norm / 8 * e).to(dtype)


def keys_for(batch, multi_positive):
    return torch.arange(batch) // 4 if multi_positive else None


def loss_and_grads(u, e, keys, implementation):
    u, e = u.clone().requires_grad_(), e.clone().requires_grad_()
    loss, parts = alignment_loss(u, e, TAU, keys, implementation=implementation)
    grad_u, grad_e = torch.autograd.grad(loss, (u, e))
    return loss, parts, grad_u, grad_e


@pytest.mark.parametrize("dtype", HALF, ids=["fp16", "bf16"])
@pytest.mark.parametrize("multi_positive", [False, True], ids=["single", "multi"])
@pytest.mark.parametrize("make", [overflow_batch, correlated_batch], ids=["overflow", "correlated"])
def test_half_loss_equals_float64_loss_of_the_same_values(
    implementation, dtype, multi_positive, make
):
    u, e = make(dtype)
    keys = keys_for(u.shape[0], multi_positive)
    loss, parts, grad_u, grad_e = loss_and_grads(u, e, keys, implementation)
    ref, ref_parts = alignment_loss(u.double(), e.double(), TAU, keys, implementation="autograd")

    assert loss.dtype == torch.float32
    assert grad_u.dtype == dtype and grad_e.dtype == dtype
    assert torch.isfinite(grad_u.float()).all() and torch.isfinite(grad_e.float()).all()
    torch.testing.assert_close(loss.double(), ref, rtol=1e-5, atol=LOSS_ATOL)
    for part in ("u2e", "e2u"):
        torch.testing.assert_close(parts[part].double(), ref_parts[part], rtol=1e-5, atol=LOSS_ATOL)
        assert parts[part] >= 0
    # Not log B: the old float16 path lost every feature to an overflowing norm (3.4657 here).
    assert abs(float(loss.detach()) - math.log(u.shape[0])) > 0.1
    assert mi_lower_bound(loss.detach(), int(parts["batch_size"])) <= math.log(u.shape[0])


@pytest.mark.parametrize("dtype", HALF, ids=["fp16", "bf16"])
@pytest.mark.parametrize("multi_positive", [False, True], ids=["single", "multi"])
def test_half_gradients_equal_float64_gradients_to_the_dtypes_precision(
    implementation, dtype, multi_positive
):
    u, e = correlated_batch(dtype, norm=8.0)  # unit-variance elements: gradients up to ~4e-4
    keys = keys_for(u.shape[0], multi_positive)
    _, _, grad_u, grad_e = loss_and_grads(u, e, keys, implementation)
    _, _, ref_u, ref_e = loss_and_grads(u.double(), e.double(), keys, "autograd")
    rtol = 4 * torch.finfo(dtype).eps  # the float32 gradient, rounded once to the dtype
    for grad, ref in ((grad_u, ref_u), (grad_e, ref_e)):
        assert ref.abs().max() > 1e-4
        torch.testing.assert_close(grad.double(), ref, rtol=rtol, atol=rtol * ref.abs().max())


@pytest.mark.parametrize("dtype", HALF, ids=["fp16", "bf16"])
@pytest.mark.parametrize("multi_positive", [False, True], ids=["single", "multi"])
def test_fused_and_definition_agree_in_half_precision(dtype, multi_positive):
    for make in (overflow_batch, correlated_batch):
        u, e = make(dtype)
        keys = keys_for(u.shape[0], multi_positive)
        fused, fused_parts, *_ = loss_and_grads(u, e, keys, "fused")
        plain, plain_parts, *_ = loss_and_grads(u, e, keys, "autograd")
        torch.testing.assert_close(fused, plain, rtol=1e-5, atol=LOSS_ATOL)
        torch.testing.assert_close(
            fused_parts["u2e"], plain_parts["u2e"], rtol=1e-5, atol=LOSS_ATOL
        )


@pytest.mark.parametrize("dtype", [torch.float32, *HALF], ids=["fp32", "fp16", "bf16"])
@pytest.mark.parametrize("multi_positive", [False, True], ids=["single", "multi"])
def test_loss_is_never_negative_when_it_is_near_zero(implementation, dtype, multi_positive):
    """Identical, well-separated pairs at cold temperatures: the loss is ~0 and rounding used to
    push the fused value below 0 (float32 -5e-6, float16 -0.012, bfloat16 -0.125)."""
    for seed in range(12):
        x = torch.randn(16, 64, generator=torch.Generator().manual_seed(seed)).to(dtype)
        keys = torch.arange(16) if multi_positive else None  # unique keys: the bound is 0
        for tau in (0.01, 0.05, 0.1):
            loss, parts = alignment_loss(x, x, tau, keys, implementation=implementation)
            assert float(loss) >= 0 and float(parts["u2e"]) >= 0 and float(parts["e2u"]) >= 0
            assert mi_lower_bound(loss, 16) <= math.log(16)
