"""Back-projection of depth to world points and the ARP/PerAct scene augmentation (numpy)."""

from __future__ import annotations

import numpy as np


def depth_to_points(
    depth: np.ndarray, intrinsics: np.ndarray, extrinsics: np.ndarray
) -> np.ndarray:
    """World xyz of every pixel.

    ``depth`` float [..., H, W] metres along the optical axis; ``intrinsics`` [..., 3, 3] pixels with
    pixel centres at (col + 0.5, row + 0.5); ``extrinsics`` [..., 4, 4] camera-to-world, OpenCV
    axes. Returns float32 [..., H, W, 3] metres.
    """
    depth = np.asarray(depth, dtype=np.float32)
    h, w = depth.shape[-2:]
    u = np.arange(w, dtype=np.float32) + 0.5
    v = np.arange(h, dtype=np.float32) + 0.5
    fx = intrinsics[..., 0, 0, None, None]
    fy = intrinsics[..., 1, 1, None, None]
    cx = intrinsics[..., 0, 2, None, None]
    cy = intrinsics[..., 1, 2, None, None]
    # Full pinhole inverse without skew: x = (u - cx) / fx, y = (v - cy) / fy.
    x = (u[None, :] - cx) / fx * depth
    y = (v[:, None] - cy) / fy * depth
    cam = np.stack([x, y, depth], axis=-1).reshape(*depth.shape[:-2], h * w, 3)
    rot = np.asarray(extrinsics[..., :3, :3], dtype=np.float32)
    trans = np.asarray(extrinsics[..., None, :3, 3], dtype=np.float32)
    world = np.matmul(cam, np.swapaxes(rot, -1, -2)) + trans  # batched GEMM, not einsum
    return world.reshape(*depth.shape, 3).astype(np.float32, copy=False)


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product ``a * b`` of xyzw quaternions (rotation b first, then a)."""
    ax, ay, az, aw = np.moveaxis(np.asarray(a, dtype=np.float64), -1, 0)
    bx, by, bz, bw = np.moveaxis(np.asarray(b, dtype=np.float64), -1, 0)
    return np.stack(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ],
        axis=-1,
    )


def yaw_transform(yaw: float, translation: np.ndarray) -> np.ndarray:
    """The 4x4 world transform: rotate by ``yaw`` radians about the world z axis, then translate."""
    c, s = np.cos(yaw), np.sin(yaw)
    transform = np.eye(4)
    transform[:3, :3] = [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]
    transform[:3, 3] = translation
    return transform


def transform_pose_vector(vector: np.ndarray, yaw: float, translation: np.ndarray) -> np.ndarray:
    """Apply the scene transform to a proprio [8] or action [9] vector (xyz, quat xyzw, ...)."""
    out = np.array(vector, dtype=np.float64)
    transform = yaw_transform(yaw, translation)
    out[:3] = transform[:3, :3] @ out[:3] + transform[:3, 3]
    q_yaw = np.array([0.0, 0.0, np.sin(yaw / 2), np.cos(yaw / 2)])
    q = quat_multiply(q_yaw, out[3:7])
    out[3:7] = q / np.linalg.norm(q)
    return out.astype(np.float32)


def sample_scene_augmentation(
    rng: np.random.Generator,
    max_translation: float,
    max_yaw_degrees: float,
    targets: list[np.ndarray],
    bounds: np.ndarray | None,
    attempts: int = 10,
) -> tuple[float, np.ndarray]:
    """Draw (yaw radians, translation [3]) uniformly; redraw until every target position stays in
    ``bounds`` ([3, 2]: rows x, y, z; columns low, high) as PerAct does, falling back to the identity after ``attempts``."""
    for _ in range(attempts):
        translation = rng.uniform(-max_translation, max_translation, size=3)
        yaw = float(np.deg2rad(rng.uniform(-max_yaw_degrees, max_yaw_degrees)))
        if bounds is None:
            return yaw, translation
        transform = yaw_transform(yaw, translation)
        inside = True
        for target in targets:
            p = transform[:3, :3] @ np.asarray(target[:3], np.float64) + transform[:3, 3]
            inside &= bool(np.all(p >= bounds[:, 0]) and np.all(p <= bounds[:, 1]))
        if inside:
            return yaw, translation
    return 0.0, np.zeros(3)
