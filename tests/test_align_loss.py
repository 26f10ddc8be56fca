"""The alignment loss against a plain reference, its numerical safety, the temperature and the aligner."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import mirror_align.align.fused_loss as fused_module
from mirror_align.align import (
    Aligner,
    AlignmentLoss,
    alignment_loss,
    make_projector,
    mi_lower_bound,
)
from mirror_align.align.fused_loss import _FusedInfoNCE
from mirror_align.errors import UserInputError

IMPLEMENTATIONS = ("fused", "autograd")
# The fused function has two ways to stabilise its exponentials (one shared shift by 1/tau, or
# per-row and per-column maxima); "fused-rowmax" forces the second one.
VARIANTS = ("fused", "fused-rowmax", "autograd")


# One torch thread in this module (tests/conftest.py says why).
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def implementation(request, monkeypatch):
    """The ``implementation`` argument for a variant, forcing the fused per-row path if asked."""
    variant = request.param
    if variant == "fused-rowmax":
        monkeypatch.setattr(fused_module, "SHARED_SHIFT_FRACTION", 0.0)
        return "fused"
    return variant


def reference_loss(
    u: torch.Tensor, e: torch.Tensor, tau: float, keys: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eq. 2 written out row by row: two separate products and explicit soft-target cross-entropy.

    Each anchor's target puts equal weight on its positives (column i alone without keys). Returns
    ``(loss, u2e, e2u)``.
    """
    u_hat = u / u.norm(dim=1, keepdim=True)
    e_hat = e / e.norm(dim=1, keepdim=True)
    sim_u2e = (u_hat @ e_hat.T) / tau
    sim_e2u = (e_hat @ u_hat.T) / tau
    batch = u.shape[0]
    terms = {"u2e": [], "e2u": []}
    for name, sims in (("u2e", sim_u2e), ("e2u", sim_e2u)):
        for i in range(batch):
            if keys is None:
                target = torch.zeros(batch, dtype=u.dtype)
                target[i] = 1.0
            else:
                target = (keys == keys[i]).to(u.dtype)
                target = target / target.sum()
            terms[name].append(F.cross_entropy(sims[i : i + 1], target.unsqueeze(0)))
    u2e = torch.stack(terms["u2e"]).mean()
    e2u = torch.stack(terms["e2u"]).mean()
    return 0.5 * (u2e + e2u), u2e, e2u


def make_batch(batch: int, dim: int = 6, seed: int = 0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    u = torch.randn(batch, dim, generator=gen, dtype=dtype)
    # Correlated partners, so that the positives matter for the value and the gradient.
    e = 0.7 * u + 0.5 * torch.randn(batch, dim, generator=gen, dtype=dtype)
    keys = torch.randint(0, max(1, batch // 3), (batch,), generator=gen)
    return u.requires_grad_(), e.requires_grad_(), keys


@pytest.mark.parametrize("implementation", VARIANTS, indirect=True)
@pytest.mark.parametrize("multi_positive", [False, True], ids=["single", "multi"])
@pytest.mark.parametrize("tau", [0.01, 0.1, 0.5])
@pytest.mark.parametrize("batch", [1, 2, 7, 64])
def test_loss_and_gradients_match_reference(implementation, multi_positive, tau, batch):
    u, e, keys = make_batch(batch, seed=batch)
    if batch > 1:
        assert keys.unique().numel() < batch, "the keys should repeat"
    keys = keys if multi_positive else None
    loss, parts = alignment_loss(u, e, tau, keys, implementation=implementation)
    grad_u, grad_e = torch.autograd.grad(loss, (u, e))
    ref_loss, ref_u2e, ref_e2u = reference_loss(u, e, tau, keys)
    ref_grad_u, ref_grad_e = torch.autograd.grad(ref_loss, (u, e))

    assert loss.dtype == torch.float64
    torch.testing.assert_close(loss, ref_loss, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(parts["u2e"], ref_u2e, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(parts["e2u"], ref_e2u, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(grad_u, ref_grad_u, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(grad_e, ref_grad_e, rtol=1e-8, atol=1e-10)
    assert int(parts["batch_size"]) == batch


@pytest.mark.parametrize("implementation", ["fused", "fused-rowmax"], indirect=True)
@pytest.mark.parametrize("multi_positive", [False, True], ids=["single", "multi"])
def test_fused_gradcheck_including_temperature(implementation, multi_positive):
    u, e, keys = make_batch(6, dim=4, seed=3)
    keys = keys if multi_positive else None
    tau = torch.tensor(0.2, dtype=torch.float64, requires_grad=True)

    def fused(a, b, t):
        return alignment_loss(a, b, t, keys, implementation=implementation)[0]

    assert torch.autograd.gradcheck(fused, (u, e, tau))


@pytest.mark.parametrize("implementation", VARIANTS, indirect=True)
def test_temperature_gradient_matches_reference(implementation):
    u, e, keys = make_batch(9, seed=5)
    tau = torch.tensor(0.07, dtype=torch.float64, requires_grad=True)
    loss, _ = alignment_loss(u, e, tau, keys, implementation=implementation)
    (grad_tau,) = torch.autograd.grad(loss, tau)
    step = 1e-6
    plus = reference_loss(u, e, 0.07 + step, keys)[0]
    minus = reference_loss(u, e, 0.07 - step, keys)[0]
    assert grad_tau.abs() > 1e-3
    torch.testing.assert_close(grad_tau, (plus - minus) / (2 * step), rtol=1e-6, atol=1e-8)


def test_fused_and_autograd_agree_in_float32():
    u, e, keys = make_batch(128, dim=32, seed=9, dtype=torch.float32)
    for k in (None, keys):
        fused, _ = alignment_loss(u, e, 0.05, k, implementation="fused")
        plain, _ = alignment_loss(u, e, 0.05, k, implementation="autograd")
        grads_fused = torch.autograd.grad(fused, (u, e))
        grads_plain = torch.autograd.grad(plain, (u, e))
        torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-5)
        for a, b in zip(grads_fused, grads_plain, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_gradient_to_one_side_only_and_no_grad_mode():
    u, e, keys = make_batch(10, seed=2)
    frozen = e.detach()
    loss, _ = alignment_loss(u, frozen, 0.1, keys)
    (grad_u,) = torch.autograd.grad(loss, u)
    ref_grad_u = torch.autograd.grad(reference_loss(u, frozen, 0.1, keys)[0], u)[0]
    torch.testing.assert_close(grad_u, ref_grad_u, rtol=1e-8, atol=1e-10)
    with torch.no_grad():
        value, _ = alignment_loss(u, e, 0.1, keys)
    assert not value.requires_grad
    torch.testing.assert_close(value, loss.detach(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("tau", [0.01, 0.1, 0.5])
def test_multi_positive_equals_single_positive_with_unique_keys(tau):
    u, e, _ = make_batch(33, seed=4)
    unique_keys = torch.randperm(33, generator=torch.Generator().manual_seed(1)) * 7 + 100
    for implementation in IMPLEMENTATIONS:
        single, single_parts = alignment_loss(u, e, tau, implementation=implementation)
        multi, multi_parts = alignment_loss(u, e, tau, unique_keys, implementation=implementation)
        grads_single = torch.autograd.grad(single, (u, e))
        grads_multi = torch.autograd.grad(multi, (u, e))
        torch.testing.assert_close(multi, single, rtol=1e-14, atol=1e-14)
        torch.testing.assert_close(multi_parts["u2e"], single_parts["u2e"], rtol=1e-14, atol=1e-14)
        for a, b in zip(grads_multi, grads_single, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-15)
    # The fused path runs the same arithmetic in both modes: equal to the last bit.
    single, _ = alignment_loss(u, e, tau, implementation="fused")
    multi, _ = alignment_loss(u, e, tau, unique_keys, implementation="fused")
    assert torch.equal(single, multi)


def test_repeated_keys_change_the_loss():
    """A check that multi-positive mode is not silently single-positive."""
    u, e, keys = make_batch(12, seed=6)
    single, _ = alignment_loss(u, e, 0.1)
    multi, _ = alignment_loss(u, e, 0.1, keys)
    assert (single - multi).abs() > 1e-3


def _assert_finite(*tensors):
    for t in tensors:
        assert torch.isfinite(t).all(), t


@pytest.mark.parametrize("implementation", VARIANTS, indirect=True)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("multi_positive", [False, True], ids=["single", "multi"])
def test_no_nan_at_low_temperature_large_norms_and_identical_rows(
    implementation, dtype, multi_positive
):
    gen = torch.Generator().manual_seed(0)
    batch, dim = 48, 16
    keys = torch.arange(batch) // 4 if multi_positive else None
    cases = {
        "tau=0.01": torch.randn(2, batch, dim, generator=gen),
        "norms 1e4": 1e4 * F.normalize(torch.randn(2, batch, dim, generator=gen), dim=-1),
        "identical rows": torch.ones(2, batch, dim),
        # Every pair nearly anti-aligned except the positives: the largest logit spread.
        "spread": torch.stack([torch.eye(batch, dim) - 0.5, torch.eye(batch, dim) - 0.5]),
    }
    for name, (u, e) in cases.items():
        u = u.to(dtype).requires_grad_()
        e = e.to(dtype).requires_grad_()
        tau = torch.tensor(0.01, dtype=dtype, requires_grad=True)
        loss, parts = alignment_loss(u, e, tau, keys, implementation=implementation)
        grads = torch.autograd.grad(loss, (u, e, tau))
        _assert_finite(loss, parts["u2e"], parts["e2u"], *grads)
        if name == "identical rows":
            # All logits are equal: every anchor's softmax is uniform, whatever its positives.
            torch.testing.assert_close(
                loss.double(), torch.tensor(math.log(batch), dtype=torch.float64)
            )


def test_learnable_tau_stays_clamped_receives_gradient_and_recovers():
    criterion = AlignmentLoss(tau=0.05, learnable_tau=True, tau_min=0.02, tau_max=0.5)
    assert criterion.log_scale.requires_grad
    optimizer = torch.optim.Adam(criterion.parameters(), lr=0.2)
    gen = torch.Generator().manual_seed(0)
    # Perfectly aligned pairs reward a colder temperature; independent ones a warmer one.
    aligned = torch.randn(32, 6, generator=gen)
    independent = (torch.randn(32, 6, generator=gen), torch.randn(32, 6, generator=gen))
    seen = []
    for step in range(120):
        u, e = (aligned, aligned) if step < 60 else independent
        optimizer.zero_grad()
        loss, _ = criterion(u, e)
        loss.backward()
        if step in (0, 60):
            assert criterion.log_scale.grad is not None
            assert criterion.log_scale.grad.abs() > 1e-4
        optimizer.step()
        seen.append(float(criterion.tau.detach()))
        if step == 59:
            assert seen[-1] == pytest.approx(0.02, rel=1e-6), "tau should have reached tau_min"
    assert min(seen) >= 0.02 * (1 - 1e-6)
    assert max(seen) <= 0.5 * (1 + 1e-6)
    # After sitting at the lower bound, the gradient must still be able to move it back up.
    assert seen[-1] > 0.1


def test_fixed_tau_is_a_buffer():
    criterion = AlignmentLoss(tau=2.0)
    assert not any(True for _ in criterion.parameters())
    assert float(criterion.tau) == pytest.approx(2.0)


@pytest.mark.parametrize("projector", ["linear", "mlp"])
@pytest.mark.parametrize("multi_positive", [False, True], ids=["single", "multi"])
def test_aligner_outputs_and_mi_bound(projector, multi_positive):
    torch.manual_seed(0)
    batch = 12
    aligner = Aligner(
        40, 24, projector=projector, multi_positive=multi_positive, learnable_tau=True
    )
    u, e = torch.randn(batch, 40), torch.randn(batch, 24)
    keys = torch.arange(batch) // 3
    out = aligner(u, e, keys=keys)
    assert out.z_u.shape == (batch, 1024) and out.z_e.shape == (batch, 1024)
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert out.mi_lower_bound == pytest.approx(math.log(batch) - float(out.loss.detach()), abs=1e-6)
    assert out.mi_lower_bound <= math.log(batch)
    assert float(out.loss.detach()) == pytest.approx(0.5 * (out.u2e + out.e2u), abs=1e-6)
    assert out.tau == pytest.approx(0.1)
    out.loss.backward()
    for name, parameter in aligner.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    expected, _ = alignment_loss(
        aligner.project_u(u), aligner.project_e(e), 0.1, keys if multi_positive else None
    )
    torch.testing.assert_close(out.loss.detach(), expected.detach())


def test_mi_lower_bound_is_log_batch_minus_loss():
    assert mi_lower_bound(torch.tensor(1.5), 64) == pytest.approx(math.log(64) - 1.5)
    assert mi_lower_bound(0.0, 8) == pytest.approx(math.log(8))


def test_make_projector_kinds():
    assert isinstance(make_projector(5, 7, "linear"), torch.nn.Linear)
    assert make_projector(5, 7, "mlp")(torch.randn(3, 5)).shape == (3, 7)
    with pytest.raises(UserInputError, match="projector.*'conv'.*linear, mlp"):
        make_projector(5, 7, "conv")


@pytest.mark.parametrize(
    ("u_shape", "e_shape", "keys", "match"),
    [
        ((4, 8), (5, 8), None, r"same B and D.*\(4, 8\) and \(5, 8\)"),
        ((4, 8), (4, 9), None, r"same B and D.*\(4, 8\) and \(4, 9\)"),
        ((4,), (4,), None, r"\[B, D\]"),
        ((0, 8), (0, 8), None, "empty"),
        ((4, 8), (4, 8), torch.arange(3), r"keys must be a 1-D tensor of 4 .*shape \(3,\)"),
        ((4, 8), (4, 8), torch.zeros(4, 2, dtype=torch.long), r"keys .* shape \(4, 2\)"),
        ((4, 8), (4, 8), torch.zeros(4), "keys must be integers"),
    ],
)
def test_bad_shapes_raise_user_input_error(u_shape, e_shape, keys, match):
    with pytest.raises(UserInputError, match=match):
        alignment_loss(torch.randn(*u_shape), torch.randn(*e_shape), 0.1, keys)


def test_bad_options_raise_user_input_error():
    u = torch.randn(4, 8)
    with pytest.raises(UserInputError, match="tau must be a positive"):
        alignment_loss(u, u, 0.0)
    with pytest.raises(UserInputError, match="implementation 'cuda'.*auto, fused, autograd"):
        alignment_loss(u, u, 0.1, implementation="cuda")
    with pytest.raises(UserInputError, match="tau.*outside"):
        AlignmentLoss(tau=5.0, learnable_tau=True)
    with pytest.raises(UserInputError, match="multi-positive mode needs the pairing keys"):
        AlignmentLoss(multi_positive=True)(u, u)
    with pytest.raises(UserInputError, match="multi-positive mode needs the pairing keys"):
        Aligner(8, 8, dim=16, multi_positive=True)(u, u)


def test_fused_function_is_used_by_default(monkeypatch):
    calls = []
    original = _FusedInfoNCE.apply

    def counting(*args):
        calls.append(args[0].shape)
        return original(*args)

    monkeypatch.setattr(_FusedInfoNCE, "apply", counting)
    alignment_loss(torch.randn(5, 3), torch.randn(5, 3), 0.1)
    alignment_loss(torch.randn(5, 3), torch.randn(5, 3), 0.1, implementation="autograd")
    assert calls == [torch.Size([5, 3])]


def test_fused_refuses_double_backward():
    u, e, _ = make_batch(5, seed=8)
    loss, _ = alignment_loss(u, e, 0.1, implementation="fused")
    (grad_u,) = torch.autograd.grad(loss, u, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|does not require grad|double"):
        torch.autograd.grad(grad_u.sum(), e)
    plain, _ = alignment_loss(u, e, 0.1, implementation="autograd")
    (grad_u,) = torch.autograd.grad(plain, u, create_graph=True)
    assert torch.autograd.grad(grad_u.sum(), e)[0].abs().sum() > 0


@pytest.mark.parametrize("implementation", ["fused", "fused-rowmax"], indirect=True)
@pytest.mark.parametrize("multi_positive", [False, True], ids=["single", "multi"])
@pytest.mark.parametrize("tau", [0.01, 0.1, 0.5])
def test_fused_module_computes_the_definition_to_1e_10(implementation, multi_positive, tau):
    """align/fused_loss.py promises the numbers of align/loss.py's definition: value, both
    directions and the gradients w.r.t. the features and the temperature."""
    u, e, keys = make_batch(96, dim=16, seed=11)
    keys = keys if multi_positive else None
    results = {}
    for name in (implementation, "autograd"):
        t = torch.tensor(tau, dtype=torch.float64, requires_grad=True)
        loss, parts = alignment_loss(u, e, t, keys, implementation=name)
        results[name] = (loss, parts["u2e"], parts["e2u"], *torch.autograd.grad(loss, (u, e, t)))
    for fused, definition in zip(results[implementation], results["autograd"], strict=True):
        torch.testing.assert_close(fused, definition, rtol=1e-10, atol=1e-10)
