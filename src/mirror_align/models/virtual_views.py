"""RVT's virtual views: the cameras' point cloud re-rendered orthographically over a box.

RVT (Goyal et al., CoRL 2023) and RVT-2 (RSS 2024), which ARP's MVT backbone uses, do not read the
real camera images: they fuse every camera's RGB-D into one point cloud in the workspace frame and
render it from fixed virtual viewpoints looking at the workspace cube. Re-implemented here from
that description (no code reused); measured in DESIGN.md §6: an orthographic top view halved the
position error of the same small network compared with the real front camera.

**Boxes.** A render box is a centre ``[B, 3]`` and a half-extent ``[B, 3]`` (metres). Points are
normalised to ``q = (p - centre) / half`` in ``[-1, 1]^3``; points outside the box are dropped.
Stage 1 renders the workspace box; RVT-2's zoom-in stage renders a smaller box around the first
prediction (``zoom_box``).

**Views.** ``VIEWS[name] = (depth_axis, viewer_side, col_axis, row_axis)``: the view looks along
``depth_axis`` from the ``viewer_side`` (+1: from +inf), its image columns follow ``col_axis``
(left to right = increasing) and its rows ``row_axis`` (top to bottom = decreasing). A point's
pixel coordinates (pixel centres at +0.5) are ``u = (q[col] + 1) / 2 * W`` and
``v = (1 - q[row]) / 2 * H``; in ``grid_sample``'s [-1, 1] coordinates (``align_corners=False``)
that is simply ``(q[col], -q[row])``. No camera matrices are needed, so heatmaps lift to 3D exactly
(``lift``).

**Pixels** (``render``): 8 channels per pixel, ``CHANNELS``: RGB in [-1, 1], the box-normalised
xyz of the nearest point, its depth from the viewer's face of the box in [-1, 1] (-1 nearest),
and occupancy (1 where a point, or a hole-filled neighbour, landed; all other channels 0 when 0).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# name -> (depth axis, viewer side, column axis, row axis); axes 0, 1, 2 = world x, y, z.
# The front camera of MirrorBench looks from +x (sim/scene.py); "front" looks from there too.
VIEWS: dict[str, tuple[int, int, int, int]] = {
    "top": (2, 1, 0, 1),
    "front": (0, 1, 1, 2),
    "back": (0, -1, 1, 2),
    "left": (1, 1, 0, 2),
    "right": (1, -1, 0, 2),
}
CHANNELS: tuple[str, ...] = ("r", "g", "b", "x", "y", "z", "depth", "occupancy")
# Depth keys are quantised to 2^DEPTH_BITS levels and packed above the point index, so one integer
# amin per pixel finds the nearest point and names it (a z-buffer without a second pass).
DEPTH_BITS = 20
EMPTY_KEY = 1 << 62


def workspace_box(bounds: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(centre [B, 3], half [B, 3])`` of the workspace ``bounds [6]`` (min xyz, max xyz)."""
    lo, hi = bounds[:3], bounds[3:]
    return ((lo + hi) / 2).expand(batch_size, 3), ((hi - lo) / 2).expand(batch_size, 3)


def zoom_box(
    centre: torch.Tensor, bounds: torch.Tensor, factor: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The box ``factor`` times smaller than the workspace in every axis, centred on ``centre``."""
    half = (bounds[3:] - bounds[:3]) / (2.0 * factor)
    return centre, half.expand_as(centre)


def view_axes(names: tuple[str, ...] | list[str]) -> torch.Tensor:
    """``[V, 4]`` int64 rows of ``VIEWS`` for ``names``."""
    return torch.tensor([VIEWS[n] for n in names], dtype=torch.long)


def to_box(points: torch.Tensor, centre: torch.Tensor, half: torch.Tensor) -> torch.Tensor:
    """Metres ``[B, ..., 3]`` -> box-normalised ``q`` (``[-1, 1]`` inside the box)."""
    shape = (points.shape[0],) + (1,) * (points.ndim - 2) + (3,)
    return (points - centre.view(shape)) / half.view(shape)


def from_box(q: torch.Tensor, centre: torch.Tensor, half: torch.Tensor) -> torch.Tensor:
    """Inverse of ``to_box``."""
    shape = (q.shape[0],) + (1,) * (q.ndim - 2) + (3,)
    return q * half.view(shape) + centre.view(shape)


def view_grid(q: torch.Tensor, names: tuple[str, ...] | list[str]) -> torch.Tensor:
    """``q [B, P, 3]`` -> each view's ``grid_sample`` coordinates ``[B, V, P, 2]`` (x, y)."""
    axes = view_axes(names).to(q.device)
    col = q.index_select(-1, axes[:, 2]).transpose(1, 2)  # [B, V, P]
    row = q.index_select(-1, axes[:, 3]).transpose(1, 2)
    return torch.stack([col, -row], dim=-1)


def view_pixels(q: torch.Tensor, names: tuple[str, ...] | list[str], size: int) -> torch.Tensor:
    """``q [B, P, 3]`` -> pixel coordinates ``uv [B, V, P, 2]`` (pixel centres at +0.5)."""
    return (view_grid(q, names) + 1.0) * (size / 2.0)


def render(
    points: torch.Tensor,
    rgb: torch.Tensor,
    centre: torch.Tensor,
    half: torch.Tensor,
    names: tuple[str, ...] | list[str],
    size: int,
    fill: int = 1,
) -> torch.Tensor:
    """Z-buffered orthographic renders of a point cloud.

    Args:
        points: ``[B, P, 3]`` world xyz, metres (NaN or non-finite points are dropped).
        rgb: ``[B, P, 3]`` colours in [-1, 1].
        centre, half: the render box ``[B, 3]`` each (metres).
        names: view names, keys of ``VIEWS``.
        size: image side in pixels.
        fill: hole-closing passes; each gives an empty pixel the nearest (smallest depth) of its
            3x3 neighbours, so sparse points (a far surface seen at 64 px) make no holes.

    Returns ``[B, V, 8, size, size]`` (``CHANNELS``).
    """
    b, p, _ = points.shape
    v, device = len(names), points.device
    q = to_box(points, centre, half).reshape(b * p, 3)
    # Only the points inside the box are rendered (NaN compares False, so it is dropped too);
    # selecting them first makes a zoomed render, which keeps a few percent, cheap.
    kept = (q.abs() <= 1.0).all(dim=-1).nonzero().squeeze(1)  # global point ids
    qk = q.index_select(0, kept)
    axes = view_axes(names).to(device)
    half_size = size / 2.0
    col = ((qk.index_select(1, axes[:, 2]) + 1.0) * half_size).long().clamp_(0, size - 1)
    row = ((1.0 - qk.index_select(1, axes[:, 3])) * half_size).long().clamp_(0, size - 1)
    along = qk.index_select(1, axes[:, 0]) * axes[:, 1].to(qk.dtype)  # [N, V], +1 nearest
    levels = (1 << DEPTH_BITS) - 1
    depth = ((1.0 - along) * (levels / 2.0)).long().clamp_(0, levels)  # 0 at the viewer's face
    image = (kept // p)[:, None] * v + torch.arange(v, device=device)  # [N, V]
    pixel = (image * size + row) * size + col
    key = depth * (b * p) + kept[:, None]
    zbuf = torch.full((b * v * size * size,), EMPTY_KEY, dtype=torch.long, device=device)
    zbuf.scatter_reduce_(0, pixel.flatten(), key.flatten(), reduce="amin")
    hit = zbuf < EMPTY_KEY
    winner = torch.where(hit, zbuf % (b * p), torch.zeros_like(zbuf))
    feats = torch.cat([rgb.reshape(b * p, 3).to(q.dtype), q], dim=-1).index_select(0, winner)
    zdepth = (zbuf // (b * p)).to(q.dtype) * (2.0 / levels) - 1.0
    occupancy = hit.to(q.dtype)
    out = torch.cat([feats, zdepth[:, None], occupancy[:, None]], dim=1) * occupancy[:, None]
    out = out.view(b * v, size, size, len(CHANNELS)).permute(0, 3, 1, 2)
    for _ in range(fill):
        out = _fill_holes(out)
    return out.reshape(b, v, len(CHANNELS), size, size)


def _fill_holes(images: torch.Tensor) -> torch.Tensor:
    """One pass: each empty pixel takes the nearest occupied 3x3 neighbour. ``[N, 8, H, W]``."""
    n, c, h, w = images.shape
    occupied = images[:, -1:] > 0
    # max-pool of the negated depth finds the neighbour nearest the viewer; empty pixels rank last.
    score = torch.where(occupied, -images[:, 6:7], torch.full_like(images[:, 6:7], -1e9))
    best, index = F.max_pool2d(score, 3, stride=1, padding=1, return_indices=True)
    neighbour = images.flatten(2).gather(2, index.flatten(2).expand(-1, c, -1)).view(n, c, h, w)
    take = (~occupied) & (best > -1e8)
    return torch.where(take, neighbour, images)


def score_volume(heatmaps: torch.Tensor, names: tuple[str, ...] | list[str]) -> torch.Tensor:
    """The summed heatmap score at every voxel centre of the box: ``[B, V, R, R]`` -> ``[B, R, R, R]``
    (axes x, y, z; voxel i of an axis is ``q = (i + 0.5) / R * 2 - 1``)."""
    b, v, r, _ = heatmaps.shape
    volume = None
    for i, name in enumerate(names):
        _, _, col_axis, row_axis = VIEWS[name]
        # rows run top (q = +1) to bottom: flip so index i means q increasing along row_axis.
        plane = heatmaps[:, i].flip(1).transpose(1, 2)  # [B, col index, row index]
        if col_axis > row_axis:
            plane = plane.transpose(1, 2)
        missing = 3 - col_axis - row_axis
        plane = plane.unsqueeze(1 + missing)
        # The first plane starts the sum: adding it to zeros gives the same values (0 + x == x),
        # at the cost of one more pass over the whole volume.
        volume = plane if volume is None else volume + plane
    return volume.expand(b, r, r, r)


def score_points(
    heatmaps: torch.Tensor, q: torch.Tensor, names: tuple[str, ...] | list[str], mode: str
) -> torch.Tensor:
    """Summed heatmap score of box points ``q [B, P, 3]``: ``[B, P]`` (0 outside the box)."""
    b, v, h, w = heatmaps.shape
    grid = view_grid(q, names)  # [B, V, P, 2]
    values = F.grid_sample(
        heatmaps.reshape(b * v, 1, h, w),
        grid.reshape(b * v, 1, -1, 2),
        mode=mode,
        padding_mode="zeros",
        align_corners=False,
    ).view(b, v, -1)
    inside = (q.abs() <= 1.0).all(dim=-1)
    return values.sum(dim=1) * inside.to(values.dtype)


def lift(
    heatmaps: torch.Tensor,
    names: tuple[str, ...] | list[str],
    refinements: int = 3,
    coarse: int = 64,
) -> torch.Tensor:
    """The box point maximising the sum of the views' heatmap scores at its projections.

    ``heatmaps [B, V, R, R]`` (probabilities per view). The exact argmax over every voxel centre
    (``score_volume``; heatmaps wider than ``coarse`` px are max-pooled to it first, which bounds
    the volume at ``coarse^3`` per sample), then ``refinements`` rounds of a 5x5x5 search (+-2 steps; the first step is half a voxel, each
    round halves it) on bicubically sampled heatmaps (bicubic, not bilinear: a bilinear surface
    peaks only at texel centres; geometry.lift_heatmaps measured the same). Returns ``q [B, 3]``.
    """
    b, _, r, _ = heatmaps.shape
    maps = heatmaps
    if r > coarse:
        maps = F.adaptive_max_pool2d(heatmaps.flatten(0, 1), coarse).view(b, -1, coarse, coarse)
    n = maps.shape[-1]
    # One sample's volume at a time: a whole batch's (1 MB each at 64 px) falls out of the cache,
    # which made this argmax ~3x slower (probing's greedy decoding spent a third of its time here).
    flat = torch.cat([score_volume(one, names).flatten(1).argmax(dim=1) for one in maps.split(1)])
    index = torch.stack([flat // (n * n), (flat // n) % n, flat % n], dim=-1)
    best = (index.to(heatmaps.dtype) + 0.5) / n * 2.0 - 1.0
    step = 1.0 / n  # half a voxel (voxels are 2 / n wide in q units)
    offsets = torch.linspace(-2.0, 2.0, 5, dtype=heatmaps.dtype, device=heatmaps.device)
    cube = torch.stack(torch.meshgrid(offsets, offsets, offsets, indexing="ij"), -1).view(-1, 3)
    for _ in range(refinements):
        candidates = (best[:, None, :] + cube * step).clamp(-1.0, 1.0)  # +-1 voxel first
        scores = score_points(heatmaps, candidates, names, "bicubic")
        best = candidates[torch.arange(b), scores.argmax(dim=1)]
        step /= 2.0
    return best
