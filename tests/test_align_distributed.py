"""Distributed negatives on a real 2-process gloo group equal the single-process loss on the global batch.

One spawn runs every distributed check and saves what each rank computed; the tests compare those
results with single-process computations on the concatenated batch.
"""

from __future__ import annotations

import os

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


def global_batch():
    """A fixed float64 batch; keys repeat across the two halves (the ranks' shards)."""
    gen = torch.Generator().manual_seed(0)
    u = torch.randn(GLOBAL_BATCH, DIM, generator=gen, dtype=torch.float64)
    e = 0.6 * u + 0.6 * torch.randn(GLOBAL_BATCH, DIM, generator=gen, dtype=torch.float64)
    keys = torch.tensor([0, 1, 2, 0, 3, 1, 4, 0, 2, 5])
    raw_u = torch.randn(GLOBAL_BATCH, DU, generator=gen, dtype=torch.float64)
    raw_e = torch.randn(GLOBAL_BATCH, DE, generator=gen, dtype=torch.float64)
    return u, e, keys, raw_u, raw_e


def make_aligner(**kwargs) -> Aligner:
    torch.manual_seed(123)
    return Aligner(DU, DE, dim=1024, **kwargs).double()


def shard(x: torch.Tensor, rank: int) -> torch.Tensor:
    per_rank = x.shape[0] // WORLD
    return x[rank * per_rank : (rank + 1) * per_rank]


def _worker(rank: int, store_path: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    store = dist.FileStore(store_path, WORLD)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=WORLD)
    try:
        u, e, keys, raw_u, raw_e = global_batch()
        results = {}
        for mode, all_keys in (("single", None), ("multi", keys)):
            local_u = shard(u, rank).clone().requires_grad_()
            local_e = shard(e, rank).clone().requires_grad_()
            local_keys = None if all_keys is None else shard(all_keys, rank)
            loss, parts = alignment_loss(local_u, local_e, TAU, local_keys)
            loss.backward()
            results[mode] = {
                "loss": loss.detach(),
                "u2e": parts["u2e"],
                "e2u": parts["e2u"],
                "batch_size": int(parts["batch_size"]),
                "grad_u": local_u.grad,
                "grad_e": local_e.grad,
            }
        # gather=False: only the local rows, as on one process.
        local_loss, _ = alignment_loss(shard(u, rank), shard(e, rank), TAU, gather=False)
        results["local_loss"] = local_loss
        try:
            alignment_loss(shard(u, rank), shard(e, rank), TAU, implementation="fused")
            results["fused_refused"] = False
        except UserInputError:
            results["fused_refused"] = True

        for name, kwargs, with_keys in (
            ("ddp_linear", {"projector": "linear"}, False),
            (
                "ddp_mlp_multi",
                {"projector": "mlp", "multi_positive": True, "learnable_tau": True},
                True,
            ),
        ):
            model = DistributedDataParallel(make_aligner(**kwargs))
            out = model(
                shard(raw_u, rank),
                shard(raw_e, rank),
                keys=shard(keys, rank) if with_keys else None,
            )
            out.loss.backward()
            results[name] = {
                "loss": out.loss.detach(),
                "grads": {n: p.grad.clone() for n, p in model.module.named_parameters()},
            }
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def rank_results(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("gloo")
    mp.spawn(_worker, args=(str(out_dir / "store"), str(out_dir)), nprocs=WORLD, join=True)
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
