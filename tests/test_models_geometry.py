"""Camera conventions, heatmap-to-3D lifting, Euler/quaternion conversions and rotation bins."""

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from mirror_align.constants import WORKSPACE_BOUNDS
from mirror_align.models import geometry
from mirror_align.models.synthetic import look_at, pinhole, synthetic_cameras

BOUNDS = torch.tensor(WORKSPACE_BOUNDS)


def random_unit_quaternions(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n, 4, generator=g, dtype=torch.float64)
    return q / q.norm(dim=-1, keepdim=True)


def test_look_at_follows_the_opencv_convention():
    eye, target = torch.tensor([1.0, 0.0, 0.5]), torch.tensor([0.0, 0.0, 0.5])
    pose, k = look_at(eye, target), pinhole(64)
    points = torch.tensor(
        [
            [0.0, 0.0, 0.5],  # straight ahead -> principal point
            [0.0, 0.2, 0.5],  # the camera faces -x, so +y is to its right (larger u)
            [0.0, 0.0, 0.3],  # below the optical axis -> lower in the image (larger v)
        ]
    )
    uv, z = geometry.project(points[None], k[None, None], pose[None, None])
    uv, z = uv[0, 0], z[0, 0]
    assert torch.allclose(z, torch.full((3,), 1.0), atol=1e-6)
    assert torch.allclose(uv[0], torch.tensor([32.0, 32.0]), atol=1e-5)
    assert uv[1, 0] > 32.0 and abs(uv[1, 1] - 32.0) < 1e-4
    assert uv[2, 1] > 32.0 and abs(uv[2, 0] - 32.0) < 1e-4


def test_backproject_matches_the_interface_formula_and_inverts_project():
    intrinsics, extrinsics = synthetic_cameras(16)
    intrinsics, extrinsics = intrinsics[None].double(), extrinsics[None].double()
    g = torch.Generator().manual_seed(1)
    depth = 0.5 + torch.rand(1, 4, 16, 16, generator=g, dtype=torch.float64)
    points = geometry.backproject(depth, intrinsics, extrinsics)
    # docs/interfaces.md: p_world = T[:3,:3] @ (d * K^-1 [u, v, 1]) + T[:3, 3], u = col + 0.5.
    row, col, view = 3, 11, 2
    ray = torch.linalg.inv(intrinsics[0, view]) @ torch.tensor([col + 0.5, row + 0.5, 1.0]).double()
    expected = extrinsics[0, view, :3, :3] @ (depth[0, view, row, col] * ray)
    expected = expected + extrinsics[0, view, :3, 3]
    assert torch.allclose(points[0, view, row, col], expected, atol=1e-12)
    uv, z = geometry.project(points[:, view].reshape(1, -1, 3), intrinsics, extrinsics)
    rows, cols = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    assert torch.allclose(uv[0, view, :, 0], cols.flatten().double() + 0.5, atol=1e-9)
    assert torch.allclose(uv[0, view, :, 1], rows.flatten().double() + 0.5, atol=1e-9)
    assert torch.allclose(z[0, view], depth[0, view].flatten(), atol=1e-9)


def test_gaussian_heatmap_peaks_at_the_pixel_holding_the_point():
    uv = torch.tensor([[10.3, 4.9], [0.2, 31.9]])
    maps = geometry.gaussian_heatmaps(uv, 32, 32, sigma=1.5)
    assert torch.allclose(maps.sum(dim=(-1, -2)), torch.ones(2))
    flat = maps.flatten(1).argmax(1)
    assert (flat // 32).tolist() == [4, 31] and (flat % 32).tolist() == [10, 0]


@pytest.mark.parametrize("image_size,pool", [(32, 3), (64, 5), (128, 7)])
def test_lifting_recovers_a_known_point_from_four_views(image_size, pool):
    intrinsics, extrinsics = synthetic_cameras(image_size)
    g = torch.Generator().manual_seed(2)
    lo, hi = BOUNDS[:3], BOUNDS[3:]
    truth = lo + (hi - lo) * (0.25 + 0.5 * torch.rand(6, 3, generator=g))
    b = truth.shape[0]
    intr = intrinsics.expand(b, -1, -1, -1)
    extr = extrinsics.expand(b, -1, -1, -1)
    uv, z = geometry.project(truth[:, None], intr, extr)
    heat = geometry.gaussian_heatmaps(uv[:, :, 0], image_size, image_size, sigma=1.5)
    assert geometry.inside_image(uv, z, image_size, image_size).all()
    # A view that carries no information (uniform heatmap) must not pull the estimate away.
    heat[0, 3] = 1.0 / image_size**2
    lifted = geometry.lift_heatmaps(heat, intr, extr, BOUNDS, grid_step=0.04, pool=pool)
    error = (lifted - truth).norm(dim=-1)
    pixel_metres = 2 * 1.3 * math.tan(math.radians(30)) / image_size  # ~ one pixel at 1.3 m
    assert error.max() < 0.25 * pixel_metres, error


def test_lifting_ignores_views_the_point_falls_outside_of():
    intrinsics, extrinsics = synthetic_cameras(64)
    truth = torch.tensor([[0.1, -0.1, 0.2]])
    uv, _ = geometry.project(truth[:, None], intrinsics[None], extrinsics[None])
    heat = geometry.gaussian_heatmaps(uv[:, :, 0], 64, 64, sigma=1.5)
    # The wrist view's heatmap claims a far corner; the other three views agree on the truth.
    heat[0, 3] = geometry.gaussian_heatmaps(torch.tensor([[2.0, 2.0]]), 64, 64, 1.5)
    lifted = geometry.lift_heatmaps(heat, intrinsics[None], extrinsics[None], BOUNDS)
    assert (lifted - truth).norm() < 0.01


def test_euler_and_matrices_agree_with_scipy_extrinsic_xyz():
    q = random_unit_quaternions(500)
    ours = geometry.quaternion_to_euler(q).numpy()
    ref = Rotation.from_quat(q.numpy()).as_euler("xyz")
    np.testing.assert_allclose(ours, ref, atol=1e-9)
    np.testing.assert_allclose(
        geometry.quaternion_to_matrix(q).numpy(),
        Rotation.from_quat(q.numpy()).as_matrix(),
        atol=1e-12,
    )
    euler = torch.tensor(ref)
    back = Rotation.from_euler("xyz", ref).as_quat()
    ours_q = geometry.euler_to_quaternion(euler).numpy()
    np.testing.assert_allclose(np.abs((ours_q * back).sum(-1)), 1.0, atol=1e-12)


def test_quaternion_round_trips_and_canonical_sign():
    q = random_unit_quaternions(500, seed=3)
    via_matrix = geometry.matrix_to_quaternion(geometry.quaternion_to_matrix(q))
    via_euler = geometry.euler_to_quaternion(geometry.quaternion_to_euler(q))
    for out in (via_matrix, via_euler):
        assert (out[:, 3] >= 0).all()
        assert geometry.rotation_angle_between(q, out).max() < 1e-6
    # Near 180 degrees (w ~ 0) the matrix route must stay accurate.
    flip = torch.tensor([[1.0, 0.0, 0.0, 1e-9], [0.0, 0.6, 0.8, 0.0]], dtype=torch.float64)
    back = geometry.matrix_to_quaternion(geometry.quaternion_to_matrix(flip))
    assert geometry.rotation_angle_between(flip, back).max() < 1e-6


def test_gimbal_lock_keeps_the_rotation():
    euler = torch.tensor([[0.3, math.pi / 2, -0.4], [-1.0, -math.pi / 2, 2.0]], dtype=torch.float64)
    m = geometry.euler_to_matrix(euler)
    again = geometry.euler_to_matrix(geometry.matrix_to_euler(m))
    assert torch.allclose(m, again, atol=1e-7)


def test_rotation_bins_round_trip():
    assert geometry.angle_to_bin(torch.tensor([-math.pi, 0.0, math.pi])).tolist() == [0, 36, 0]
    index = torch.arange(72)
    assert torch.equal(geometry.angle_to_bin(geometry.bin_to_angle(index)), index)
    # Angles on the grid come back exactly; rotations off it within 3 x 2.5 degrees.
    euler = geometry.bin_to_angle(torch.tensor([[10, 30, 70], [0, 19, 35], [71, 53, 1]]))
    bins = geometry.quaternion_to_bins(geometry.euler_to_quaternion(euler))
    assert bins.tolist() == [[10, 30, 70], [0, 19, 35], [71, 53, 1]]
    q = random_unit_quaternions(1000, seed=4).float()
    back = geometry.bins_to_quaternion(geometry.quaternion_to_bins(q))
    worst = torch.rad2deg(geometry.rotation_angle_between(q, back)).max()
    assert 2.5 < worst <= 7.5 + 1e-3


def test_workspace_grid_covers_the_bounds():
    grid = geometry.workspace_grid(BOUNDS, 0.1)
    assert torch.allclose(grid.min(0).values, BOUNDS[:3])
    assert torch.allclose(grid.max(0).values, BOUNDS[3:])
    assert grid.shape[0] == 10 * 10 * 7
