"""Distributed negatives on a real 2-process gloo group equal the single-process loss on the global batch.

One spawn runs every distributed check and saves what each rank computed; the tests compare those
results with single-process computations on the concatenated batch: equal shards (5 + 5 rows),
uneven shards (6 + 4, a DDP run's last partial batch) and an empty rank (10 + 0). Inputs that do
not fit together across ranks must raise the same error on every rank. Collectives time out after
COLLECTIVE_TIMEOUT_S and the spawn is killed after SPAWN_TIMEOUT_S, so nothing can hang.
"""

from __future__ import annotations

import os
import re
import time
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from mirror_align.align import Aligner, alignment_loss
from mirror_align.errors import UserInputError

WORLD = 2
GLOBAL_BATCH = 10
DIM = 7
DU, DE = 9, 5
TAU = 0.1
EVEN, UNEVEN, EMPTY_RANK = (5, 5), (6, 4), (10, 0)
COLLECTIVE_TIMEOUT_S = 60
SPAWN_TIMEOUT_S = 240


def global_batch():
    """A fixed float64 batch; keys repeat across the two halves (the ranks' shards)."""
    gen = torch.Generator().manual_seed(0)
    u = torch.randn(GLOBAL_BATCH, DIM, generator=gen, dtype=torch.float64)
    e = 0.6 * u + 0.6 * torch.randn(GLOBAL_BATCH, DIM, generator=gen, dtype=torch.float64)
    keys = torch.tensor([0, 1, 2, 0, 3, 1, 4, 0, 2, 5])
    raw_u = torch.randn(GLOBAL_BATCH, DU, generator=gen, dtype=torch.float64)
    raw_e = torch.randn(GLOBAL_BATCH, DE, generator=gen, dtype=torch.float64)
    return u, e, keys, raw_u, raw_e


DDP_CASES = [
    ("ddp_linear", {"projector": "linear"}, False),
    ("ddp_mlp_multi", {"projector": "mlp", "multi_positive": True, "learnable_tau": True}, True),
]


def make_aligner(**kwargs) -> Aligner:
    torch.manual_seed(123)
    return Aligner(DU, DE, dim=1024, **kwargs).double()


def shard(x: torch.Tensor, rank: int, sizes: tuple[int, ...] = EVEN) -> torch.Tensor:
    """Rank ``rank``'s rows when rank r holds ``sizes[r]`` consecutive rows."""
    start = sum(sizes[:rank])
    return x[start : start + sizes[rank]]


def _loss_and_grads(rank: int, sizes: tuple[int, ...], keys: torch.Tensor | None) -> dict:
    u, e, _, _, _ = global_batch()
    local_u = shard(u, rank, sizes).clone().requires_grad_()
    local_e = shard(e, rank, sizes).clone().requires_grad_()
    local_keys = None if keys is None else shard(keys, rank, sizes)
    loss, parts = alignment_loss(local_u, local_e, TAU, local_keys)
    loss.backward()
    return {
        "loss": loss.detach(),
        "u2e": parts["u2e"],
        "e2u": parts["e2u"],
        "batch_size": int(parts["batch_size"]),
        "grad_u": local_u.grad,
        "grad_e": local_e.grad,
    }


def _ddp_step(rank: int, sizes: tuple[int, ...], kwargs: dict, *, with_keys: bool) -> dict:
    _, _, keys, raw_u, raw_e = global_batch()
    model = DistributedDataParallel(make_aligner(**kwargs))
    out = model(
        shard(raw_u, rank, sizes),
        shard(raw_e, rank, sizes),
        keys=shard(keys, rank, sizes) if with_keys else None,
    )
    out.loss.backward()
    return {
        "loss": out.loss.detach(),
        "grads": {n: p.grad.clone() for n, p in model.module.named_parameters()},
    }


def _error_on_every_rank(rank: int) -> dict[str, str]:
    """Inputs that do not fit together across ranks: each case must raise on both ranks."""
    u, e, keys, _, _ = global_batch()
    cases = {
        # Rank 1's features are one column wider.
        "dim": lambda: alignment_loss(
            shard(u, rank)[:, : DIM - rank], shard(e, rank)[:, : DIM - rank]
        ),
        # Only rank 0 passes keys.
        "keys": lambda: alignment_loss(
            shard(u, rank), shard(e, rank), TAU, None if rank else shard(keys, rank)
        ),
        # Only rank 1's inputs are bad (z_e has one row fewer).
        "local": lambda: alignment_loss(shard(u, rank), shard(e, rank)[: 5 - rank]),
        "empty": lambda: alignment_loss(u[:0], e[:0]),
    }
    messages = {}
    for name, call in cases.items():
        try:
            call()
            messages[name] = ""
        except UserInputError as error:
            messages[name] = str(error)
    return messages


def _worker(rank: int, store_path: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    store = dist.FileStore(store_path, WORLD)
    dist.init_process_group(
        "gloo",
        store=store,
        rank=rank,
        world_size=WORLD,
        timeout=timedelta(seconds=COLLECTIVE_TIMEOUT_S),
    )
    try:
        u, e, keys, _, _ = global_batch()
        results = {}
        for mode, all_keys in (("single", None), ("multi", keys)):
            results[mode] = _loss_and_grads(rank, EVEN, all_keys)
            results[f"uneven_{mode}"] = _loss_and_grads(rank, UNEVEN, all_keys)
            results[f"empty_rank_{mode}"] = _loss_and_grads(rank, EMPTY_RANK, all_keys)
        # gather=False: only the local rows, as on one process.
        local_loss, _ = alignment_loss(shard(u, rank), shard(e, rank), TAU, gather=False)
        results["local_loss"] = local_loss
        try:
            alignment_loss(shard(u, rank), shard(e, rank), TAU, implementation="fused")
            results["fused_refused"] = False
        except UserInputError:
            results["fused_refused"] = True
        results["errors"] = _error_on_every_rank(rank)

        for name, kwargs, with_keys in DDP_CASES:
            results[name] = _ddp_step(rank, EVEN, kwargs, with_keys=with_keys)
            results[f"uneven_{name}"] = _ddp_step(rank, UNEVEN, kwargs, with_keys=with_keys)
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def rank_results(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("gloo")
    context = mp.spawn(
        _worker, args=(str(out_dir / "store"), str(out_dir)), nprocs=WORLD, join=False
    )
    deadline = time.monotonic() + SPAWN_TIMEOUT_S
    # join() raises if a rank failed (and then stops the others); it returns True once all exited.
    while not context.join(timeout=max(0.0, deadline - time.monotonic())):
        if time.monotonic() >= deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"the gloo ranks did not finish within {SPAWN_TIMEOUT_S} s")
    return [torch.load(out_dir / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


def single_process(mode: str):
    u, e, keys, _, _ = global_batch()
    u.requires_grad_()
    e.requires_grad_()
    loss, parts = alignment_loss(u, e, TAU, keys if mode == "multi" else None)
    grad_u, grad_e = torch.autograd.grad(loss, (u, e))
    return loss.detach(), parts, grad_u, grad_e


@pytest.mark.parametrize("mode", ["single", "multi"])
def test_mean_rank_loss_equals_global_loss(rank_results, mode):
    loss, parts, _, _ = single_process(mode)
    per_rank = torch.stack([r[mode]["loss"] for r in rank_results])
    torch.testing.assert_close(per_rank.mean(), loss, rtol=1e-12, atol=1e-12)
    for part in ("u2e", "e2u"):
        mean_part = torch.stack([r[mode][part] for r in rank_results]).mean()
        torch.testing.assert_close(mean_part, parts[part], rtol=1e-12, atol=1e-12)
    assert all(r[mode]["batch_size"] == GLOBAL_BATCH for r in rank_results)
    # The ranks see different anchors, so their losses differ: the gather really happened.
    assert (per_rank[0] - per_rank[1]).abs() > 1e-6


@pytest.mark.parametrize("mode", ["single", "multi"])
def test_rank_gradients_over_world_equal_global_gradient_slices(rank_results, mode):
    _, _, grad_u, grad_e = single_process(mode)
    for rank, result in enumerate(rank_results):
        torch.testing.assert_close(
            result[mode]["grad_u"] / WORLD, shard(grad_u, rank), rtol=1e-10, atol=1e-12
        )
        torch.testing.assert_close(
            result[mode]["grad_e"] / WORLD, shard(grad_e, rank), rtol=1e-10, atol=1e-12
        )


def test_without_gather_each_rank_uses_only_its_rows(rank_results):
    u, e, _, _, _ = global_batch()
    for rank, result in enumerate(rank_results):
        expected, _ = alignment_loss(shard(u, rank), shard(e, rank), TAU)
        torch.testing.assert_close(result["local_loss"], expected, rtol=1e-12, atol=1e-12)
        assert result["fused_refused"]


@pytest.mark.parametrize(
    ("name", "kwargs", "with_keys"),
    [
        ("ddp_linear", {"projector": "linear"}, False),
        (
            "ddp_mlp_multi",
            {"projector": "mlp", "multi_positive": True, "learnable_tau": True},
            True,
        ),
    ],
)
def test_ddp_aligner_gradients_equal_single_process(rank_results, name, kwargs, with_keys):
    _, _, keys, raw_u, raw_e = global_batch()
    aligner = make_aligner(**kwargs)
    out = aligner(raw_u, raw_e, keys=keys if with_keys else None)
    out.loss.backward()
    torch.testing.assert_close(
        torch.stack([r[name]["loss"] for r in rank_results]).mean(),
        out.loss.detach(),
        rtol=1e-12,
        atol=1e-12,
    )
    expected = dict(aligner.named_parameters())
    if kwargs.get("learnable_tau"):
        assert "criterion.log_scale" in expected
    for result in rank_results:
        assert result[name]["grads"].keys() == expected.keys()
        for param_name, grad in result[name]["grads"].items():
            assert expected[param_name].grad.abs().sum() > 0, param_name
            torch.testing.assert_close(
                grad, expected[param_name].grad, rtol=1e-9, atol=1e-12, msg=param_name
            )


@pytest.mark.parametrize(("layout", "sizes"), [("uneven", UNEVEN), ("empty_rank", EMPTY_RANK)])
@pytest.mark.parametrize("mode", ["single", "multi"])
def test_uneven_ranks_equal_global_loss_and_gradients(rank_results, layout, sizes, mode):
    """6 + 4 rows (and 10 + 0): the mean over ranks is still the loss of the 10 rows on one process,
    and each rank's gradient is still world times its slice of the single-process gradient."""
    loss, parts, grad_u, grad_e = single_process(mode)
    results = [r[f"{layout}_{mode}"] for r in rank_results]
    torch.testing.assert_close(
        torch.stack([r["loss"] for r in results]).mean(), loss, rtol=1e-12, atol=1e-12
    )
    for part in ("u2e", "e2u"):
        mean_part = torch.stack([r[part] for r in results]).mean()
        torch.testing.assert_close(mean_part, parts[part], rtol=1e-12, atol=1e-12)
    for rank, result in enumerate(results):
        assert result["batch_size"] == GLOBAL_BATCH
        assert result["grad_u"].shape == (sizes[rank], DIM)
        for name, grad in (("grad_u", grad_u), ("grad_e", grad_e)):
            torch.testing.assert_close(
                result[name] / WORLD, shard(grad, rank, sizes), rtol=1e-10, atol=1e-12
            )


@pytest.mark.parametrize(("name", "kwargs", "with_keys"), DDP_CASES)
def test_uneven_ddp_aligner_gradients_equal_single_process(rank_results, name, kwargs, with_keys):
    _, _, keys, raw_u, raw_e = global_batch()
    aligner = make_aligner(**kwargs)
    out = aligner(raw_u, raw_e, keys=keys if with_keys else None)
    out.loss.backward()
    results = [r[f"uneven_{name}"] for r in rank_results]
    torch.testing.assert_close(
        torch.stack([r["loss"] for r in results]).mean(), out.loss.detach(), rtol=1e-12, atol=1e-12
    )
    for result in results:
        for param_name, parameter in aligner.named_parameters():
            torch.testing.assert_close(
                result["grads"][param_name], parameter.grad, rtol=1e-9, atol=1e-12, msg=param_name
            )


@pytest.mark.parametrize(
    ("case", "match"),
    [
        ("dim", r"every rank must pass features of one size D; got D = \[7, 6\]"),
        ("keys", r"pass keys on every rank or on none; ranks passing keys: \[True, False\]"),
        ("local", r"same B and D, got \(5, 7\) and \(4, 7\) \(rank 1 of 2\)"),
        ("empty", r"empty on every rank"),
    ],
)
def test_inputs_that_do_not_fit_together_raise_on_every_rank(rank_results, case, match):
    """Before any feature gather, so that no rank aborts or hangs in a collective."""
    messages = [r["errors"][case] for r in rank_results]
    for message in messages:
        assert message.startswith("alignment loss: ")
        assert re.search(match, message), message
    assert messages[0] == messages[1]
