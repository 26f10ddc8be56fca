"""Cameras, planner and gripper on a real scene: depth geometry, failures, stalls, grasping."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from mirror_align.sim import make_env
from mirror_align.sim.keyframes import keyframe, top_down


@pytest.fixture(scope="module")
def env():
    e = make_env("open_drawer", image_size=96)
    yield e
    e.close()


def _back_project(cam: dict) -> np.ndarray:
    """World xyz [H, W, 3] of every pixel (docs/interfaces.md convention)."""
    h, w = cam["depth"].shape
    v, u = np.mgrid[0:h, 0:w] + 0.5
    rays = np.stack([u, v, np.ones_like(u)], -1) @ np.linalg.inv(cam["intrinsics"]).T
    pts = rays * cam["depth"][..., None]
    ext = cam["extrinsics"].astype(np.float64)
    return pts @ ext[:3, :3].T + ext[:3, 3]


def test_depth_back_projects_onto_table_and_object(env) -> None:
    obs, _ = env.reset(seed=3, options={"variation": 0})
    front = obs["front"]
    assert front["rgb"].dtype == np.uint8 and front["depth"].dtype == np.float32
    pts = _back_project(front)
    # The bottom rows of the front camera see the near edge of the table (x > 0.3), nothing else.
    bottom = pts[-6:].reshape(-1, 3)
    assert np.all(bottom[:, 0] > 0.25)
    np.testing.assert_allclose(bottom[:, 2], 0.0, atol=2e-3)
    # The cabinet's top face (z = 0.33) seen from the left shoulder: project its centre, read the
    # depth there and back-project again.
    cam = obs["left_shoulder"]
    top = np.append(env.physics.body_pos("cabinet")[:2], 0.33)
    ext = cam["extrinsics"].astype(np.float64)
    p_cam = ext[:3, :3].T @ (top - ext[:3, 3])
    assert p_cam[2] > 0  # in front of the camera (OpenCV: +z forward)
    uvw = cam["intrinsics"] @ p_cam
    col, row = int(uvw[0] / uvw[2]), int(uvw[1] / uvw[2])
    assert abs(cam["depth"][row, col] - p_cam[2]) < 0.01
    seen = _back_project(cam)[row, col]
    assert abs(seen[2] - 0.33) < 3e-3
    assert np.linalg.norm(seen[:2] - top[:2]) < 0.02
    # Row 0 is the top of the image: the front camera sees the far table/background up there.
    assert pts[0].mean(axis=0)[0] < pts[-1].mean(axis=0)[0]


def test_unreachable_and_invalid_keyframes_fail_without_raising(env) -> None:
    env.reset(seed=0, options={"variation": 1})
    _, reward, terminated, truncated, info = env.step(
        keyframe([0.9, 0.0, 0.2], top_down(), gripper_open=True, ignore_collisions=False)
    )
    assert terminated and not truncated and not info["success"] and reward == 0.0
    assert info["failure_reason"].startswith("unreachable")
    env.reset(seed=0, options={"variation": 1})
    bad = keyframe([0.0, 0.0, 0.2], top_down(), gripper_open=True, ignore_collisions=False)
    bad["rotation"] = np.zeros(4, np.float32)
    _, _, terminated, _, info = env.step(bad)
    assert terminated and info["failure_reason"].startswith("invalid")
    env.reset(seed=0, options={"variation": 1})
    _, _, terminated, _, info = env.step({"position": [np.nan, 0, 0]})
    assert terminated and info["failure_reason"].startswith("invalid")


def test_blocked_motion_stalls_early(env) -> None:
    env.reset(seed=0, options={"variation": 0})
    env.step(keyframe([-0.3, 0.3, 0.1], top_down(), gripper_open=False, ignore_collisions=False))
    t0 = env.physics.time
    # Pressing the closed fingertips 5 cm into... the table top (z = 0 is the TCP, tips below).
    _, _, _, _, info = env.step(
        keyframe([-0.3, 0.3, 0.0], top_down(), gripper_open=False, ignore_collisions=True)
    )
    assert info["stalled"]
    assert env.gripper.pose()[0][2] > 0.015  # the fingertips rest on the table
    assert env.physics.time - t0 < 0.6


def test_attach_on_grasp_and_release(env) -> None:
    env.reset(seed=5, options={"variation": 2})
    pregrasp, grasp, pull = env.expert_keyframes()
    env.step(pregrasp)
    assert env.gripper.grasped() == []
    env.step(grasp)
    assert env.gripper.grasped() == ["drawer_top"]
    before = env.physics.joint_qpos("drawer_top")
    _, _, terminated, _, info = env.step(pull)
    assert env.physics.joint_qpos("drawer_top") > before + 0.15
    assert info["success"] and terminated
    release = dict(pull, gripper_open=1)
    env.step(release)
    assert env.gripper.grasped() == []
    assert env.video_frames().shape[1:] == (96, 96, 3)


def test_video_is_rendered_from_recorded_states(env) -> None:
    from mirror_align.sim.env import uniform_frame_indices

    env.reset(seed=5, options={"variation": 2})
    first = env.video_frames()
    for action in env.expert_keyframes():
        env.step(action)
    total = env.video_frame_count()
    assert total > 20  # the drawer demo lasts seconds of simulated time
    every = env.video_frames()
    picked = env.video_frames(8)
    assert every.shape == (total, 96, 96, 3) and every.dtype == np.uint8
    np.testing.assert_array_equal(picked, every[uniform_frame_indices(total, 8)])
    np.testing.assert_array_equal(every[0], first[0])
    assert np.abs(every[-1].astype(int) - every[0].astype(int)).mean() > 1.0  # the drawer moved


def test_renderer_closes_cleanly() -> None:
    code = (
        "from mirror_align.sim import make_env\n"
        "env = make_env('open_drawer', image_size=32)\n"
        "env.reset(seed=0)\n"
        "env.close()\n"
        "env.close()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == ""


def test_sample_positions_restarts_a_cornered_draw() -> None:
    from mirror_align.sim.scene import sample_positions

    # Four points 3.73 cm apart in a 7 cm square: the greedy first draw of seed 1 leaves no room.
    args = (4, (0.0, 0.0), (0.07, 0.07), 0.0373)
    with pytest.raises(RuntimeError, match="could not place 4 objects"):
        sample_positions(np.random.default_rng(1), *args, restarts=0)
    points = sample_positions(np.random.default_rng(1), *args)
    again = sample_positions(np.random.default_rng(1), *args)
    assert len(points) == 4 and np.array_equal(np.stack(points), np.stack(again))
    gaps = [np.linalg.norm(p - q) for i, p in enumerate(points) for q in points[i + 1 :]]
    assert min(gaps) >= 0.0373


def test_a_diverged_simulation_ends_the_episode_as_a_failure(env, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # MuJoCo writes its warning to MUJOCO_LOG.TXT in the cwd
    env.reset(seed=5, options={"variation": 2})
    pregrasp = env.expert_keyframes()[0]
    # Fault injection: an absurd velocity on a free joint makes MuJoCo's integrator diverge.
    env.physics.data.qvel[:] = 1e30
    _, _, terminated, _, info = env.step(pregrasp)
    assert terminated and not info["success"]
    assert info["failure_reason"].startswith("simulation unstable")
