"""Geometric consistency of one keyframe's cameras: do depth, K and extrinsics describe one scene?

Each camera's depth is back-projected with its stored intrinsics and camera-to-world extrinsics
(:func:`~mirror_align.data.geometry.depth_to_points`). Two checks, both on world points:

- **views agree.** Every point seen by camera i is projected into camera j. Where it lands inside
  j's image, j's depth there (bilinear over valid pixels) must match the point's depth in j (within
  ``TOLERANCE``), or be nearer (j's view is occluded there). j seeing *farther* means j looks through
  a surface that i sees: a contradiction. The share of agreeing points among agreeing plus
  contradicting ones must reach ``MIN_AGREEMENT`` for every pair that overlaps.
- **points lie near the workspace.** The median back-projected point of each camera must lie in the
  workspace bounds widened by ``BOUNDS_MARGIN`` (cameras also see the floor and walls, so single
  points may lie anywhere).

Wrong intrinsics (e.g. K scaled by width / W for both axes of a non-square source, issue 14.3),
extrinsics in the wrong direction (world-to-camera) or the wrong axis convention, and depth in the
wrong unit all fail the first check by a wide margin. Pixels at the far plane (nothing seen) are
left out.

Limitation: a point hidden behind another camera's surface counts as occluded, not as evidence. An
error that moves every camera's points *behind* every other camera's surfaces (possible when the
cameras see only one flat surface, e.g. a 5 degree pitch error of one camera above a bare table)
therefore passes. On MirrorBench renders of all 18 tasks and the RLBench-style test scenes, every
non-square scaling error tried was caught.
"""

from __future__ import annotations

import numpy as np

from mirror_align.data.geometry import depth_to_points

# Share of agreeing points among agreeing + contradicting, per camera pair. Measured on MirrorBench
# renders (9 tasks, 16/32/128 px): correct geometry >= 0.70 / 0.85 / 0.92 in every pair; with fy
# and cy off by the factor of issue 14.3 (0.75 or 1.33) every scene's worst pair <= 0.28 / 0.20 /
# 0.13.
MIN_AGREEMENT = 0.5
MIN_OVERLAP = 0.02  # a pair is compared only if this share of i's valid pixels lands in j
BOUNDS_MARGIN = 0.5  # metres added to every side of the workspace bounds
# Per-point tolerance: metres + share of depth + pixel footprints (depth / focal length).
TOLERANCE = (0.01, 0.01, 1.5)
FAR_PLANE_SHARE = 0.995  # depth within 0.5% of a camera's largest value: the far plane


def valid_depth(depth: np.ndarray) -> np.ndarray:
    """bool [H, W]: finite, positive depth short of the far plane (pixels that saw something)."""
    finite = np.isfinite(depth) & (depth > 0)
    if not finite.any():
        return finite
    return finite & (depth < FAR_PLANE_SHARE * depth[finite].max())


def _project(points: np.ndarray, k: np.ndarray, pose: np.ndarray) -> tuple[np.ndarray, ...]:
    """World points [N, 3] -> continuous pixel coordinates (u, v) and depth z [N] in a camera
    (pixel centres at +0.5)."""
    rotation, translation = pose[:3, :3].astype(np.float64), pose[:3, 3].astype(np.float64)
    cam = (points - translation) @ rotation  # R^T (p - t), row-vector form
    z = cam[:, 2]
    safe = np.where(z > 1e-6, z, 1.0)
    u = k[0, 0] * cam[:, 0] / safe + k[0, 1] * cam[:, 1] / safe + k[0, 2]
    v = k[1, 1] * cam[:, 1] / safe + k[1, 2]
    return u, v, z


def _sample(depth: np.ndarray, valid: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bilinear depth at (u, v) over valid pixels only; NaN where no valid neighbour or outside."""
    h, w = depth.shape
    x, y = u - 0.5, v - 0.5
    c0, r0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    fx, fy = x - c0, y - r0
    total = np.zeros(len(u))
    weight = np.zeros(len(u))
    for dc, dr, wgt in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)),
                        (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):  # fmt: skip
        c, r = np.clip(c0 + dc, 0, w - 1), np.clip(r0 + dr, 0, h - 1)
        use = wgt * valid[r, c]
        total += use * depth[r, c]
        weight += use
    inside = (u >= 0) & (u < w) & (v >= 0) & (v < h) & (weight > 1e-6)
    return np.where(inside, total / np.maximum(weight, 1e-12), np.nan)


def pair_agreement(
    points: np.ndarray, depth: np.ndarray, k: np.ndarray, pose: np.ndarray, valid: np.ndarray
) -> tuple[float, float]:
    """(overlap share, agreement share) of world ``points`` [N, 3] seen from camera (k, pose).

    Overlap: share of the points landing in the camera's image on valid pixels. Agreement: among
    those, agreeing / (agreeing + contradicting); NaN without any. j's depth is sampled bilinearly
    over its valid pixels; the tolerance per point is 1 cm + 1% of its depth + 1.5 pixel footprints
    (depth quantisation, resizing, surfaces seen at a slant).
    """
    u, v, z = _project(points, k, pose)
    seen = _sample(depth.astype(np.float64), valid, u, v)
    inside = (z > 1e-6) & np.isfinite(seen)
    overlap = float(inside.mean()) if len(points) else 0.0
    if not inside.any():
        return overlap, float("nan")
    z, seen = z[inside], seen[inside]
    tolerance = TOLERANCE[0] + TOLERANCE[1] * z + TOLERANCE[2] * z / min(abs(k[0, 0]), abs(k[1, 1]))
    agree = np.abs(seen - z) <= tolerance
    contradict = seen > z + tolerance  # this camera sees through the other's surface
    counted = agree.sum() + contradict.sum()
    return overlap, float(agree.sum() / counted) if counted else float("nan")


def check_views(
    depth: np.ndarray,
    intrinsics: np.ndarray,
    extrinsics: np.ndarray,
    cameras: list[str],
    bounds: np.ndarray | list | None = None,
) -> list[str]:
    """Problems (one line each, empty when consistent) of one keyframe's V cameras.

    ``depth`` [V, H, W] metres, ``intrinsics`` [V, 3, 3], ``extrinsics`` [V, 4, 4] camera-to-world
    (OpenCV axes), ``bounds`` [3, 2] workspace rows x, y, z; columns low, high (metres) or None.
    """
    depth = np.asarray(depth, dtype=np.float32)
    masks = [valid_depth(d) for d in depth]
    world = depth_to_points(depth, np.asarray(intrinsics), np.asarray(extrinsics))
    points = [world[i][masks[i]].astype(np.float64) for i in range(len(cameras))]
    problems = []
    if bounds is not None:
        box = np.asarray(bounds, dtype=np.float64)
        low, high = box[:, 0] - BOUNDS_MARGIN, box[:, 1] + BOUNDS_MARGIN
        for name, p in zip(cameras, points, strict=True):
            if len(p) and not np.all((np.median(p, 0) >= low) & (np.median(p, 0) <= high)):
                where = np.round(np.median(p, 0), 2).tolist()
                problems.append(
                    f"camera {name}: its depth back-projects around {where} m, more than "
                    f"{BOUNDS_MARGIN} m outside the workspace bounds {box.tolist()}"
                )
    for i, name_i in enumerate(cameras):
        for j, name_j in enumerate(cameras):
            if i == j or not len(points[i]):
                continue
            overlap, agreement = pair_agreement(
                points[i], depth[j], intrinsics[j], extrinsics[j], masks[j]
            )
            if overlap >= MIN_OVERLAP and agreement < MIN_AGREEMENT:
                problems.append(
                    f"cameras {name_i} and {name_j} disagree: only {100 * agreement:.0f}% of the "
                    f"points {name_i} sees where {name_j} also looks lie on {name_j}'s depth "
                    f"(need {100 * MIN_AGREEMENT:.0f}%); check intrinsics, extrinsics and depth units"
                )
    return problems
