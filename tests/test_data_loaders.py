"""AU/EE loaders, augmentation geometry, worker seeding and the paired sampler."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, default_collate

from data_fixtures import TASKS, write_dataset
from mirror_align.data.geometry import depth_to_points, quat_multiply
from mirror_align.data.loaders import (
    AUClipDataset,
    EEKeyframeDataset,
    collate,
    seed_worker,
    uniform_clip_indices,
)
from mirror_align.data.paired import PairedBatchSampler, PairedDataset, check_pair_batch
from mirror_align.errors import UserInputError


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("loaders") / "ds"
    write_dataset(root, per_task=4, splits=("train", "test"), failed_every=5)
    return str(root)


def test_clip_indices_cover_the_video_uniformly():
    np.testing.assert_array_equal(uniform_clip_indices(32, 4, None), [4, 12, 20, 28])
    np.testing.assert_array_equal(uniform_clip_indices(3, 6, None), [0, 0, 1, 1, 2, 2])
    rng = np.random.default_rng(0)
    draws = np.stack([uniform_clip_indices(32, 4, rng) for _ in range(200)])
    for segment in range(4):  # each draw stays in its own segment and explores all of it
        assert set(draws[:, segment]) == set(range(8 * segment, 8 * segment + 8))


def test_au_batch_follows_the_contract(dataset):
    au = AUClipDataset(dataset, "train", clip_frames=5, train=False)
    batch = next(iter(DataLoader(au, batch_size=3)))
    assert batch["video"].dtype == torch.uint8 and batch["video"].shape == (3, 5, 16, 16, 3)
    for key in ("instruction_id", "task_id", "episode_id"):
        assert batch[key].dtype == torch.int64 and batch[key].shape == (3,)
    # Evaluation clips are deterministic and are the stored frames at the segment centres.
    episode = au.reader.read(int(batch["episode_id"][0]))
    np.testing.assert_array_equal(batch["video"][0].numpy(), episode.video[[1, 3, 6, 8, 10]])
    assert torch.equal(au[0]["video"], au[0]["video"])
    jittered = AUClipDataset(dataset, "train", clip_frames=5, train=True, seed=1)
    assert any(not torch.equal(jittered[0]["video"], jittered[0]["video"]) for _ in range(10))


def test_failed_demos_are_excluded_unless_asked(dataset):
    reader_entries = AUClipDataset(dataset, None, include_failed=True).entries
    failed = [e for e in reader_entries if not e["success"]]
    assert failed, "the fixture must contain failed demos"
    ids = {e["episode_id"] for e in AUClipDataset(dataset, None).entries}
    assert ids.isdisjoint(e["episode_id"] for e in failed)
    assert len(ids) + len(failed) == len(reader_entries)
    with pytest.raises(UserInputError, match="split 'dev' is not one of train, val, test"):
        AUClipDataset(dataset, "dev")


def test_ee_batch_follows_the_contract(dataset):
    ee = EEKeyframeDataset(dataset, "train", augment=False)
    expected_len = sum(e["num_keyframes"] for e in ee.entries)
    assert len(ee) == expected_len
    batch = next(iter(DataLoader(ee, batch_size=4)))
    shapes = {
        "rgb": ((4, 4, 16, 16, 3), torch.uint8),
        "depth": ((4, 4, 16, 16), torch.float32),
        "points": ((4, 4, 16, 16, 3), torch.float32),
        "intrinsics": ((4, 4, 3, 3), torch.float32),
        "extrinsics": ((4, 4, 4, 4), torch.float32),
        "proprio": ((4, 8), torch.float32),
        "action": ((4, 9), torch.float32),
        "instruction_id": ((4,), torch.int64),
        "task_id": ((4,), torch.int64),
        "episode_id": ((4,), torch.int64),
        "keyframe_index": ((4,), torch.int64),
    }
    assert set(batch) == set(shapes)
    for key, (shape, dtype) in shapes.items():
        assert tuple(batch[key].shape) == shape and batch[key].dtype == dtype, key
    # Sample (episode, k) pairs observation k with action k of the stored episode.
    episode = ee.reader.read(int(batch["episode_id"][1]))
    k = int(batch["keyframe_index"][1])
    np.testing.assert_array_equal(batch["action"][1].numpy(), episode.actions[k])
    np.testing.assert_array_equal(batch["proprio"][1].numpy(), episode.proprio[k])


def test_points_back_project_through_the_pinhole_model():
    k = np.array([[20.0, 0, 8], [0, 20.0, 8], [0, 0, 1]], dtype=np.float32)
    pose = np.eye(4, dtype=np.float32)
    pose[:3, 3] = [0.1, 0.2, 1.0]
    depth = np.full((16, 16), 2.0, dtype=np.float32)
    points = depth_to_points(depth, k, pose)
    # Pixel (row 3, col 11) has centre (11.5, 3.5): x = (11.5 - 8) / 20 * 2, y = (3.5 - 8) / 20 * 2.
    np.testing.assert_allclose(points[3, 11], [0.1 + 0.35, 0.2 - 0.45, 3.0], atol=1e-6)
    # Projecting the points back gives the pixel centres.
    cam = points.reshape(-1, 3) - pose[:3, 3]
    uv = (cam @ k.T)[:, :2] / cam[:, 2:]
    rows, cols = np.mgrid[0:16, 0:16]
    np.testing.assert_allclose(uv, np.stack([cols, rows], -1).reshape(-1, 2) + 0.5, atol=1e-4)


def _rigid_fit(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """R, t with b = a @ R.T + t (least squares, Kabsch)."""
    ca, cb = a.mean(0), b.mean(0)
    u, _, vt = np.linalg.svd((a - ca).T @ (b - cb))
    d = np.sign(np.linalg.det(vt.T @ u.T))
    rot = vt.T @ np.diag([1, 1, d]) @ u.T
    return rot, cb - rot @ ca


def test_augmentation_moves_scene_and_targets_together(dataset):
    plain = EEKeyframeDataset(dataset, "train", augment=False)
    moved = EEKeyframeDataset(dataset, "train", augment=True, seed=3)
    bounds = np.asarray(plain.meta.workspace_bounds)
    yaws = []
    for index in range(len(plain)):
        a, b = plain[index], moved[index]
        torch.testing.assert_close(a["rgb"], b["rgb"])
        torch.testing.assert_close(a["depth"], b["depth"])
        pa, pb = (
            a["points"].reshape(-1, 3).double().numpy(),
            b["points"].reshape(-1, 3).double().numpy(),
        )
        rot, shift = _rigid_fit(pa, pb)
        # A yaw about world z plus a translation of at most 0.125 m per axis.
        np.testing.assert_allclose(rot[2], [0, 0, 1], atol=1e-4)
        yaw = np.degrees(np.arctan2(rot[1, 0], rot[0, 0]))
        assert abs(yaw) <= 45.0 + 1e-3 and np.all(np.abs(shift) <= 0.125 + 1e-4)
        yaws.append(yaw)
        # The same transform moved the cameras, the gripper and the target.
        ext_a, ext_b = a["extrinsics"].double().numpy(), b["extrinsics"].double().numpy()
        np.testing.assert_allclose(ext_b[:, :3, :3], rot @ ext_a[:, :3, :3], atol=1e-4)
        for key in ("proprio", "action"):
            va, vb = a[key].double().numpy(), b[key].double().numpy()
            np.testing.assert_allclose(vb[:3], rot @ va[:3] + shift, atol=1e-4)
            q_yaw = np.array([0, 0, np.sin(np.radians(yaw) / 2), np.cos(np.radians(yaw) / 2)])
            np.testing.assert_allclose(vb[3:7], quat_multiply(q_yaw, va[3:7]), atol=1e-4)
            np.testing.assert_array_equal(vb[7:], va[7:])
        # So every camera sees the target at the same pixel as before.
        for sample_ in (a, b):
            ext = sample_["extrinsics"].double().numpy()
            cam = np.einsum(
                "vji,vj->vi", ext[:, :3, :3], sample_["action"][:3].double().numpy() - ext[:, :3, 3]
            )
            sample_["uv"] = np.einsum("vij,vj->vi", sample_["intrinsics"].double().numpy(), cam)
        np.testing.assert_allclose(
            b["uv"][:, :2] / b["uv"][:, 2:], a["uv"][:, :2] / a["uv"][:, 2:], atol=1e-3
        )
        target = b["action"][:3].numpy()
        assert np.all(target >= bounds[:, 0] - 1e-6) and np.all(target <= bounds[:, 1] + 1e-6)
    assert np.std(yaws) > 10.0  # draws vary across samples


def test_cache_matches_disk_and_reports_its_size(dataset):
    cached = EEKeyframeDataset(dataset, "test", cache=True)
    direct = EEKeyframeDataset(dataset, "test", cache=False)
    assert direct.cached_bytes() == 0 and cached.cached_bytes() > 0
    for index in (0, len(cached) - 1):
        for key, value in cached[index].items():
            torch.testing.assert_close(value, direct[index][key])


def _worker_draws(dataset: str, seed: int) -> list[bytes]:
    au = AUClipDataset(dataset, "train", clip_frames=6, train=True)
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(
        au,
        sampler=[0] * 8,
        batch_size=1,
        num_workers=2,
        worker_init_fn=seed_worker,
        generator=generator,
        multiprocessing_context="fork",
    )
    return [batch["video"].numpy().tobytes() for batch in loader]


def test_workers_are_seeded_per_worker_and_reproducibly(dataset):
    draws = _worker_draws(dataset, seed=0)
    # Batches alternate between the two workers; forked copies of one generator would repeat.
    assert draws[0::2] != draws[1::2]
    assert draws == _worker_draws(dataset, seed=0)
    assert draws != _worker_draws(dataset, seed=1)


@pytest.mark.parametrize("pairing", ["episode", "instruction", "class"])
def test_paired_batches_are_positive_pairs(dataset, pairing):
    au = AUClipDataset(dataset, "train", clip_frames=4)
    ee = EEKeyframeDataset(dataset, "train")
    sampler = PairedBatchSampler(au, ee, batch_size=6, pairing=pairing, seed=5)
    loader = DataLoader(PairedDataset(au, ee), batch_sampler=sampler, collate_fn=collate)
    batches = list(loader)
    assert len(batches) == len(ee) // 6
    for au_batch, ee_batch in batches:
        assert au_batch["video"].shape[0] == ee_batch["rgb"].shape[0] == 6
        assert bool(check_pair_batch(au_batch, ee_batch, pairing).all())
    first = [list(b) for b in PairedBatchSampler(au, ee, 6, pairing, seed=5)]
    again = [list(b) for b in PairedBatchSampler(au, ee, 6, pairing, seed=5)]
    assert first == again
    sampler.set_epoch(1)
    assert [list(b) for b in sampler] != first
    assert [list(b) for b in PairedBatchSampler(au, ee, 6, pairing, seed=5, rank=1)] != first


def test_ee_side_is_uniform_over_tasks(dataset):
    au = AUClipDataset(dataset, "train", clip_frames=2)
    ee = EEKeyframeDataset(dataset, "train")
    per_task = np.bincount(ee.key_arrays()["task_id"], minlength=len(TASKS))
    assert per_task.max() > per_task.min()  # tasks have different numbers of transitions
    sampler = PairedBatchSampler(au, ee, batch_size=64, seed=0, batches_per_epoch=30)
    tasks = ee.key_arrays()["task_id"][[e for batch in sampler for _, e in batch]]
    share = np.bincount(tasks, minlength=len(TASKS)) / len(tasks)
    np.testing.assert_allclose(share, 1 / len(TASKS), atol=0.04)


def test_collate_matches_default_collate(dataset):
    au = AUClipDataset(dataset, "train", clip_frames=3, train=False)
    ee = EEKeyframeDataset(dataset, "train")
    items = [(au[i], ee[i]) for i in range(4)]
    ours, reference = collate(items), default_collate(items)
    for mine, theirs in zip(ours, reference, strict=True):
        assert set(mine) == set(theirs)
        for key in mine:
            assert mine[key].dtype == theirs[key].dtype
            torch.testing.assert_close(mine[key], theirs[key])


def test_flags_are_keyword_only(dataset):
    """`AUClipDataset(root, "train", 8, True, None, False)` reads as nothing: flags must be named."""
    with pytest.raises(TypeError):
        AUClipDataset(dataset, "train", 5, False)
    with pytest.raises(TypeError):
        EEKeyframeDataset(dataset, "train", True)
    assert len(EEKeyframeDataset(dataset, "train", augment=False, cache=False)) > 0


def test_targets_outside_counts_without_clipping(dataset):
    ee = EEKeyframeDataset(dataset, "train", cache=False)
    actions = np.concatenate(
        [ee._load(entry)["actions"] for entry in ee.entries]
    )  # every stored target, unaugmented
    bounds = (-0.1, -0.45, 0.0, 0.45, 0.45, 0.6)
    lo, hi = np.array(bounds[:3]), np.array(bounds[3:])
    expected = int(np.sum(np.any((actions[:, :3] < lo) | (actions[:, :3] > hi), axis=1)))
    assert 0 < expected < len(actions)
    assert ee.targets_outside(bounds) == expected
    cached = EEKeyframeDataset(dataset, "train", cache=True)
    assert cached.targets_outside(bounds) == expected
    assert cached.targets_outside((-1, -1, -1, 1, 1, 1)) == 0
    assert np.array_equal(cached._arrays(0)["actions"], ee._arrays(0)["actions"])  # not clipped
