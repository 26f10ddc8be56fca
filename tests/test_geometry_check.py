"""The geometric consistency check of one keyframe's cameras (issue 14.3), on real renders and on
the usual ways converted data goes wrong."""

from __future__ import annotations

import numpy as np
import pytest

from data_fixtures import BOUNDS, camera, table_depth
from mirror_align.data.geometry_check import check_views

CAMS = ["front", "left_shoulder", "right_shoulder", "wrist"]
SIZE = 24


def _views():
    cams = [camera(SIZE, yaw) for yaw in (0.0, 1.5, -1.5, 3.0)]
    depth = np.stack([table_depth(k, pose, SIZE) for k, pose in cams])
    return depth, np.stack([c[0] for c in cams]), np.stack([c[1] for c in cams])


def test_consistent_views_pass():
    depth, k, pose = _views()
    assert check_views(depth, k, pose, CAMS, BOUNDS) == []


def test_far_plane_pixels_are_left_out():
    depth, k, pose = _views()
    depth[:, :4] = 6.0  # the top rows see nothing: they hold the far plane
    assert check_views(depth, k, pose, CAMS, BOUNDS) == []


@pytest.mark.parametrize(
    "damage, expected",
    [
        ("depth in millimetres", "outside the workspace bounds"),
        ("world-to-camera extrinsics", "disagree"),
        ("one camera pitched up 10 degrees", "disagree"),
        ("one camera pitched down 10 degrees", "disagree"),
    ],
)
def test_wrong_conversions_are_named(damage, expected):
    depth, k, pose = _views()
    if damage == "depth in millimetres":
        depth = depth * 1000
    elif damage == "world-to-camera extrinsics":
        pose = np.linalg.inv(pose).astype(np.float32)
    else:
        angle = np.deg2rad(10 if "up" in damage else -10)
        c, s = np.cos(angle), np.sin(angle)
        pose[1, :3, :3] = pose[1, :3, :3] @ np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    problems = check_views(depth, k, pose, CAMS, BOUNDS)
    assert problems and expected in problems[0]


@pytest.mark.parametrize("y_scale", [1.0, 0.75, 4 / 3])
def test_real_renders_pass_and_non_square_scaling_errors_fail(tiny_sim_dataset, y_scale):
    """MirrorBench renders (32 px) pass; fy and cy off by the factor of issue 14.3 (a 4:3 source
    with all of K scaled by size / W) fail in every episode."""
    from mirror_align.data.reader import DatasetReader

    reader = DatasetReader(tiny_sim_dataset)
    for episode_id in sorted(reader.entries):
        episode = reader.read(episode_id)
        k = episode.intrinsics[0].copy()
        k[:, 1] *= y_scale
        problems = check_views(
            episode.depth[0],
            k,
            episode.extrinsics[0],
            list(reader.meta.cameras),
            reader.meta.workspace_bounds,
        )
        if y_scale == 1.0:
            assert problems == [], (episode_id, problems)
        else:
            assert problems and "disagree" in problems[0], episode_id
