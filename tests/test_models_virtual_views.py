"""RVT virtual views: z-buffered orthographic renders, hole filling, exact lifting, and the 3D
augmentation seen through them (on a real MirrorBench dataset)."""

import numpy as np
import pytest
import torch

from mirror_align.data.loaders import EEKeyframeDataset, collate
from mirror_align.models import geometry
from mirror_align.models import virtual_views as vv

BOUNDS = torch.tensor([-0.45, -0.45, 0.0, 0.45, 0.45, 0.6])
NAMES = ("top", "front", "left")


# One torch thread in this module (tests/conftest.py says why).
pytestmark = pytest.mark.usefixtures("one_thread")


def box(batch_size: int = 1):
    return vv.workspace_box(BOUNDS, batch_size)


def test_nearest_point_wins_each_pixel_and_points_outside_are_dropped():
    # Two points on one vertical line: the top view sees the higher, the front view (from +x)
    # the one with the larger x; a third point is outside the box, a fourth is NaN.
    points = torch.tensor(
        [[[0.1, 0.1, 0.2], [0.1, 0.1, 0.4], [0.3, 0.1, 0.2], [0.9, 0.0, 0.3], [np.nan] * 3]]
    )
    rgb = torch.tensor([[[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [1.0, 1.0, 1.0], [1.0] * 3]])
    out = vv.render(points, rgb, *box(), NAMES, 16, fill=0)
    assert out.shape == (1, 3, len(vv.CHANNELS), 16, 16)
    top, front = out[0, 0], out[0, 1]
    uv = vv.view_pixels(vv.to_box(points, *box()), NAMES, 16)[0].floor().long()
    col, row = uv[0, 1]  # top-view pixel of the higher point (same as the lower one)
    assert torch.equal(top[:3, row, col], rgb[0, 1])
    q = vv.to_box(points[:, 1:2], *box())[0, 0]
    assert torch.allclose(top[3:6, row, col], q) and top[7, row, col] == 1
    # Depth from the viewer's face: -1 at the top of the box, +1 at the bottom.
    assert torch.isclose(top[6, row, col], -q[2], atol=1e-5)
    col, row = uv[1, 2]  # front view: the x = 0.3 point hides the two x = 0.1 points
    assert torch.equal(front[:3, row, col], rgb[0, 2])
    # Distinct pixels of the 3 in-box points: top (x, y) 2, front (y, z) 2, left (x, z) 3; the
    # point outside the box and the NaN one drew nothing.
    assert int(out[0, :, 7].sum()) == 2 + 2 + 3
    assert torch.equal(out[0, :, :7] * (1 - out[0, :, 7:8]), torch.zeros_like(out[0, :, :7]))


def test_hole_filling_closes_single_pixel_gaps_from_the_nearest_neighbour():
    # A horizontal plane sampled every other pixel of a 16 px top view: a checkerboard of holes.
    step = 0.9 / 16
    xs = -0.45 + step * (torch.arange(0, 16, 2) + 0.5)
    grid = torch.stack(torch.meshgrid(xs, xs, indexing="ij"), -1).reshape(-1, 2)
    points = torch.cat([grid, torch.full((grid.shape[0], 1), 0.3)], dim=1)[None]
    rgb = torch.rand(points.shape)
    sparse = vv.render(points, rgb, *box(), ("top", "front"), 16, fill=0)[0, 0]
    filled = vv.render(points, rgb, *box(), ("top", "front"), 16, fill=1)[0, 0]
    assert sparse[7].mean() == 0.25 and filled[7].all()
    # Filled pixels copy a real neighbour's features, so every colour is one of the points'.
    colours = set(map(tuple, rgb[0].tolist()))
    assert all(tuple(c) in colours for c in filled[:3].flatten(1).T.tolist())


def test_view_pixels_follow_the_documented_axes():
    q = torch.tensor([[[0.5, -0.25, 0.75]]])
    uv = vv.view_pixels(q, tuple(vv.VIEWS), 64)[0, :, 0]
    s = lambda x: (x + 1) * 32  # noqa: E731 - the documented (q + 1) / 2 * W
    expected = {
        "top": (s(0.5), s(0.25)),  # columns x, rows -y
        "front": (s(-0.25), s(-0.75)),  # columns y, rows -z
        "back": (s(-0.25), s(-0.75)),
        "left": (s(0.5), s(-0.75)),
        "right": (s(0.5), s(-0.75)),
    }
    for i, name in enumerate(vv.VIEWS):
        assert torch.allclose(uv[i], torch.tensor(expected[name])), name


@pytest.mark.parametrize("names, size", [(NAMES, 32), (tuple(vv.VIEWS), 64), (NAMES, 128)])
def test_lifting_recovers_a_point_from_gaussian_heatmaps(names, size):
    g = torch.Generator().manual_seed(0)
    q = torch.rand(16, 1, 3, generator=g) * 1.8 - 0.9
    heat = geometry.gaussian_heatmaps(vv.view_pixels(q, names, size)[:, :, 0], size, size, 1.5)
    found = vv.lift(heat, names)
    voxel = 2.0 / size
    assert (found - q[:, 0]).abs().max() < 0.2 * voxel


def test_score_volume_matches_pointwise_scores_at_voxel_centres():
    g = torch.Generator().manual_seed(1)
    heat = torch.rand(2, 3, 8, 8, generator=g)
    volume = vv.score_volume(heat, NAMES)
    idx = torch.randint(0, 8, (2, 20, 3), generator=g)
    q = (idx.float() + 0.5) / 8 * 2 - 1
    expected = vv.score_points(heat, q, NAMES, "bilinear")
    got = torch.stack([volume[b][tuple(idx[b].T)] for b in range(2)])
    assert torch.allclose(got, expected, atol=1e-5)


def test_a_translation_shifts_the_rendered_views_by_whole_pixels():
    g = torch.Generator().manual_seed(2)
    points = torch.rand(1, 4000, 3, generator=g) * torch.tensor([0.6, 0.6, 0.4]) + torch.tensor(
        [-0.3, -0.3, 0.1]
    )
    rgb = torch.rand(points.shape, generator=g)
    shift = torch.tensor([2 * 0.9 / 32, 0.0, 0.0])  # two top-view pixels along +x (columns)
    a = vv.render(points, rgb, *box(), NAMES, 32, fill=0)[0, 0, :3]
    b = vv.render(points + shift, rgb, *box(), NAMES, 32, fill=0)[0, 0, :3]
    same = (b[:, :, 2:] == a[:, :, :-2]).all(dim=0).float().mean()
    assert same > 0.98


def test_the_loader_augmentation_changes_the_virtual_views(tiny_sim_dataset):
    # Moving the scene and the cameras together changes no camera pixel (DESIGN.md §6); rendered
    # from the moved points, the virtual views change, and the target moves with the scene.
    plain = EEKeyframeDataset(tiny_sim_dataset, "train", augment=False)
    moved = EEKeyframeDataset(tiny_sim_dataset, "train", augment=True, seed=4)
    items = list(range(0, len(plain), max(1, len(plain) // 6)))
    a, b = (collate([ds[i] for i in items]) for ds in (plain, moved))
    assert torch.equal(a["rgb"], b["rgb"])
    n = len(items)
    renders = [
        vv.render(
            x["points"].flatten(1, 3),
            x["rgb"].flatten(1, 3).float() / 127.5 - 1,
            *box(n),
            NAMES,
            32,
        )  # fmt: skip
        for x in (a, b)
    ]
    changed = (renders[0][:, :, :3] != renders[1][:, :, :3]).any(dim=2).float().mean(dim=(2, 3))
    assert (changed > 0.05).all(), changed  # measured: 11-94% of each view's pixels
    # ... and so do the targets' pixels in those views (the heatmap targets).
    qa, qb = (vv.to_box(x["action"][:, None, :3], *box(n)) for x in (a, b))
    assert not torch.allclose(qa, qb)


def test_lift_argmax_equals_the_argmax_of_the_whole_batch_volume():
    """lift scores one sample's volume at a time (speed); the voxel it picks is the argmax of the
    summed planes as one batched zero-started sum gives it, ties included."""
    g = torch.Generator().manual_seed(3)
    heat = torch.rand(5, 3, 16, 16, generator=g).flatten(2).softmax(-1).view(5, 3, 16, 16)
    heat[1] = 0.0  # all ties: the first voxel
    volume = torch.zeros(5, 16, 16, 16)
    for i, name in enumerate(NAMES):
        _, _, col, row = vv.VIEWS[name]
        plane = heat[:, i].flip(1).transpose(1, 2)
        plane = plane.transpose(1, 2) if col > row else plane
        volume = volume + plane.unsqueeze(1 + 3 - col - row)
    assert torch.equal(vv.score_volume(heat, NAMES), volume)
    index = volume.flatten(1).argmax(dim=1)
    expected = torch.stack([index // 256, (index // 16) % 16, index % 16], dim=-1)
    lifted = vv.lift(heat, NAMES, refinements=0)
    assert torch.equal(((lifted + 1.0) / 2.0 * 16 - 0.5).round().long(), expected)
    assert expected[1].tolist() == [0, 0, 0]
