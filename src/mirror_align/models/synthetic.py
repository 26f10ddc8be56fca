"""Random batches shaped exactly as docs/interfaces.md says, for tests and benchmarks.

The cameras are geometrically real (OpenCV convention, looking at the workspace) and ``points`` is
the back-projection of ``depth``, so the policy's projection, heatmap targets and lifting see the
same geometry they will see on simulator data. Images and depths are noise.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from mirror_align.constants import WORKSPACE_BOUNDS
from mirror_align.models import geometry

# Camera centres and look-at points (metres) in the order front, left_shoulder, right_shoulder,
# wrist; roughly where a tabletop benchmark puts them.
CAMERA_RIGS = (
    ((1.1, 0.0, 0.7), (0.0, 0.0, 0.15)),
    ((0.3, 0.9, 0.9), (0.0, 0.0, 0.1)),
    ((0.3, -0.9, 0.9), (0.0, 0.0, 0.1)),
    ((0.25, 0.05, 0.95), (0.05, 0.0, 0.0)),
)


def look_at(eye: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Camera-to-world ``[4, 4]`` (OpenCV: x right, y down, z forward) at ``eye`` facing ``target``."""
    forward = F.normalize(target - eye, dim=0)
    up = torch.tensor([0.0, 0.0, 1.0], dtype=eye.dtype)
    right = F.normalize(torch.linalg.cross(forward, up), dim=0)
    down = torch.linalg.cross(forward, right)
    pose = torch.eye(4, dtype=eye.dtype)
    pose[:3, :3] = torch.stack([right, down, forward], dim=1)
    pose[:3, 3] = eye
    return pose


def pinhole(image_size: int, fov_deg: float = 60.0) -> torch.Tensor:
    """``[3, 3]`` intrinsics of a square image with horizontal field of view ``fov_deg``."""
    f = 0.5 * image_size / math.tan(math.radians(fov_deg) / 2.0)
    c = 0.5 * image_size
    return torch.tensor([[f, 0.0, c], [0.0, f, c], [0.0, 0.0, 1.0]])


def synthetic_cameras(image_size: int, num_views: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """``(intrinsics [V, 3, 3], extrinsics [V, 4, 4])`` of the fixed rig ``CAMERA_RIGS``."""
    rigs = CAMERA_RIGS[:num_views]
    extrinsics = torch.stack([look_at(torch.tensor(e), torch.tensor(t)) for e, t in rigs])
    intrinsics = pinhole(image_size).expand(len(rigs), 3, 3).clone()
    return intrinsics, extrinsics


def random_au_batch(
    batch_size: int,
    num_instructions: int,
    frames: int = 8,
    image_size: int = 64,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """An AU batch: ``video`` uint8 ``[B, T, H, W, 3]`` and the id keys (int64 ``[B]``)."""
    g = generator
    return {
        "video": torch.randint(
            0, 256, (batch_size, frames, image_size, image_size, 3), dtype=torch.uint8, generator=g
        ),
        "instruction_id": torch.randint(0, num_instructions, (batch_size,), generator=g),
        "task_id": torch.randint(0, 18, (batch_size,), generator=g),
        "episode_id": torch.arange(batch_size),
    }


def random_ee_batch(
    batch_size: int,
    num_instructions: int,
    image_size: int = 64,
    num_views: int = 4,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """An EE batch with consistent geometry: ``points`` back-projects ``depth``; the target position
    lies inside the workspace; quaternions are random unit xyzw."""
    g = generator
    b, v, s = batch_size, num_views, image_size
    intrinsics, extrinsics = synthetic_cameras(s, v)
    intrinsics = intrinsics.expand(b, v, 3, 3).contiguous()
    extrinsics = extrinsics.expand(b, v, 4, 4).contiguous()
    depth = 0.6 + 0.8 * torch.rand(b, v, s, s, generator=g)
    points = geometry.backproject(depth, intrinsics, extrinsics)
    lo = torch.tensor(WORKSPACE_BOUNDS[:3])
    hi = torch.tensor(WORKSPACE_BOUNDS[3:])
    # Targets in the inner half of the workspace, where every camera of the rig sees them.
    position = lo + (hi - lo) * (0.25 + 0.5 * torch.rand(b, 3, generator=g))
    quat = geometry.canonical_quaternion(F.normalize(torch.randn(b, 4, generator=g), dim=-1))
    flags = torch.randint(0, 2, (b, 2), generator=g).float()
    proprio_pos = lo + (hi - lo) * torch.rand(b, 3, generator=g)
    proprio_quat = F.normalize(torch.randn(b, 4, generator=g), dim=-1)
    return {
        "rgb": torch.randint(0, 256, (b, v, s, s, 3), dtype=torch.uint8, generator=g),
        "depth": depth.float(),
        "points": points.float(),
        "intrinsics": intrinsics.float(),
        "extrinsics": extrinsics.float(),
        "proprio": torch.cat([proprio_pos, proprio_quat, flags[:, :1]], dim=1).float(),
        "action": torch.cat([position, quat, flags], dim=1).float(),
        "instruction_id": torch.randint(0, num_instructions, (b,), generator=g),
        "task_id": torch.randint(0, 18, (b,), generator=g),
        "episode_id": torch.arange(b),
        "keyframe_index": torch.randint(0, 10, (b,), generator=g),
    }
