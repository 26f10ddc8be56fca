"""The EE policy's networks: the multi-view transformer (MVT-like backbone), its heatmap decoder and
the causal action head (ARP). ``models/policy.py`` wires them; see its docstring for the design.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from mirror_align.models.config import PolicyConfig
from mirror_align.models.layers import Block, DecoderBlock, init_weights, patch_embed
from mirror_align.models.motion_colour import soft_colour_assignment
from mirror_align.models.virtual_views import CHANNELS

FOURIER_OCTAVES = 4
# Pixel channels: virtual views (virtual_views.CHANNELS: RGB, xyz, depth, occupancy) or cameras
# (RGB, xyz).
VIRTUAL_CHANNELS = len(CHANNELS)
OCCUPANCY = CHANNELS.index("occupancy")
CAMERA_CHANNELS = 6


class Encoded(NamedTuple):
    """One stage's backbone outputs: ``memory [B, M, D]`` with ``keep [B, M]`` (True = attend),
    the visual tokens ``visual [B, V, N, D]``, the input ``pixels [B, V, C, H, W]`` and the render
    box (``centre``, ``half`` ``[B, 3]`` metres; None for cameras)."""

    memory: torch.Tensor
    keep: torch.Tensor
    visual: torch.Tensor
    pixels: torch.Tensor
    centre: torch.Tensor | None = None
    half: torch.Tensor | None = None


def fourier_features(x: torch.Tensor, octaves: int = FOURIER_OCTAVES) -> torch.Tensor:
    """``x [..., 3]`` in about [-1, 1] -> ``[..., 3 + 6 * octaves]``: x, sin and cos at 2^k * pi."""
    freqs = torch.pi * 2.0 ** torch.arange(octaves, dtype=x.dtype, device=x.device)
    angles = (x.unsqueeze(-1) * freqs).flatten(-2)
    return torch.cat([x, angles.sin(), angles.cos()], dim=-1)


def input_views(cfg: PolicyConfig, num_cameras: int) -> int:
    """Images the backbone reads per stage: the virtual views or the dataset's cameras."""
    return len(cfg.views) if cfg.input == "virtual_views" else num_cameras


def position_stages(cfg: PolicyConfig) -> int:
    """1, or 2 with RVT-2's zoom-in stage (virtual views only)."""
    return 2 if cfg.input == "virtual_views" and cfg.zoom_factor > 1.0 else 1


class ConvStem(nn.Module):
    """Two 3x3 convolutions at full resolution before the patch embedding (``conv_stem``)."""

    def __init__(self, channels: int, width: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.conv2(F.gelu(self.conv1(x))))


class PixelColours(nn.Module):
    """``colour_bins``: a soft assignment of every pixel's RGB to ``bins`` learned prototypes.

    Why (not ARP): the heatmap of "the maroon block" must peak on that block's pixels; the
    decoder's per-pixel skip is linear in RGB, and a linear score cannot single out a colour in
    the middle of the colour cube. The assignments are a learned, nonlinear colour code per pixel
    (``models/motion_colour.py`` uses the same code for the AU's histograms); empty pixels of a
    virtual view (occupancy 0) get zeros.
    """

    def __init__(self, bins: int, occupancy_channel: int | None) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        # Rendered RGB lies in [-1, 1]; the prototypes start spread over that cube.
        self.prototypes = nn.Parameter(torch.rand(bins, 3, generator=g) * 2.0 - 1.0)
        # Half the AU's colour scale, so about 4x its beta for equally sharp assignments.
        self.log_beta = nn.Parameter(torch.tensor(2.3))
        self.occupancy_channel = occupancy_channel

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """``pixels [B, V, C, H, W]`` (RGB first) -> ``[B, V, C + bins, H, W]``."""
        rgb = pixels[:, :, :3].movedim(2, -1)
        assign = soft_colour_assignment(rgb, self.prototypes, self.log_beta).movedim(-1, 2)
        if self.occupancy_channel is not None:
            assign = assign * pixels[:, :, self.occupancy_channel : self.occupancy_channel + 1]
        return torch.cat([pixels, assign], dim=2)


class MultiViewBackbone(nn.Module):
    """Per-view then cross-view attention; also the per-pixel features the heatmaps are read from.

    With the zoom-in stage, both stages share these weights; a learned stage embedding on the
    visual tokens tells them apart (RVT-2 allows shared or separate networks).
    """

    def __init__(self, cfg: PolicyConfig, text_width: int, image_size: int, num_views: int) -> None:
        super().__init__()
        d, p, c = cfg.width, cfg.patch_size, cfg.heatmap_dim
        side = image_size // p
        virtual = cfg.input == "virtual_views"
        channels = VIRTUAL_CHANNELS if virtual else CAMERA_CHANNELS
        self.colours = None
        if cfg.colour_bins:
            self.colours = PixelColours(cfg.colour_bins, OCCUPANCY if virtual else None)
            channels += cfg.colour_bins
        self.patch_size = p
        self.stem = ConvStem(channels, cfg.stem_width) if cfg.conv_stem else None
        self.patch_embed = nn.Conv2d(cfg.stem_width if cfg.conv_stem else channels, d, p, p)
        self.patch_position = nn.Parameter(torch.zeros(side * side, d))
        self.view_embedding = nn.Parameter(torch.zeros(num_views, 1, d))
        self.stage_embedding = nn.Parameter(torch.zeros(position_stages(cfg), 1, 1, d))
        self.view_blocks = nn.ModuleList(
            Block(d, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.view_depth)
        )
        self.language = nn.Linear(text_width, d)
        self.proprio = nn.Linear(8, d)
        # Token types: 0 visual, 1 language, 2 proprioception.
        self.token_type = nn.Parameter(torch.zeros(3, d))
        self.joint_blocks = nn.ModuleList(
            Block(d, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.joint_depth)
        )
        self.norm = nn.LayerNorm(d)
        self.heatmap = HeatmapDecoder(d, p, c, channels)
        init_weights(self)
        for param in (self.patch_position, self.view_embedding, self.token_type):
            nn.init.trunc_normal_(param, std=0.02)
        nn.init.trunc_normal_(self.stage_embedding, std=0.02)

    def patch_positions(self, n: int) -> torch.Tensor:
        """``[n, D]`` patch position embeddings; a smaller (zoomed) grid of n = side^2 patches
        reads the learned grid bilinearly resampled to its side."""
        grid = self.patch_position
        if n == grid.shape[0]:
            return grid
        side, full = round(n**0.5), round(grid.shape[0] ** 0.5)
        maps = grid.T.reshape(1, -1, full, full)
        small = F.interpolate(maps, size=(side, side), mode="bilinear", antialias=True)
        return small.reshape(-1, n).T

    def pixel_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """The per-pixel input of the patch embedding and the heatmap decoder: ``pixels``
        ``[B, V, C, H, W]``, with the colour assignments appended when ``colour_bins`` > 0."""
        return pixels if self.colours is None else self.colours(pixels)

    def forward(
        self, pixels: torch.Tensor, language: torch.Tensor, keep_language: torch.Tensor,
        proprio: torch.Tensor, stage: int = 0,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
        """``pixels [B, V, C, H, W]`` (``pixel_features``), text tokens ``[B, L, Dt]`` with their
        mask ``[B, L]``,
        ``proprio [B, 8]`` (normalised), the position ``stage`` (0, or 1 for the zoomed views).

        Returns the memory tokens ``[B, M, D]`` (visual, language, proprio), their keep mask
        ``[B, M]`` (True = attend) and the visual tokens ``[B, V, N, D]`` after the last layer
        (before the memory's norm), which the heatmap decoder reads.
        """
        b, v, ch, h, w = pixels.shape
        flat = pixels.reshape(b * v, ch, h, w)
        if self.stem is not None:
            flat = self.stem(flat)
        x = patch_embed(flat, self.patch_embed)  # [BV, N, D]
        n, d = x.shape[1:]
        x = x.view(b, v, n, d) + self.patch_positions(n) + self.view_embedding
        x = (x + self.stage_embedding[stage]).reshape(b * v, n, d)
        for block in self.view_blocks:
            x = block(x)
        visual = x.reshape(b, v * n, d) + self.token_type[0]
        text = self.language(language) + self.token_type[1]
        own = self.proprio(proprio).unsqueeze(1) + self.token_type[2]
        tokens = torch.cat([visual, text, own], dim=1)
        keep = torch.ones(b, tokens.shape[1], dtype=torch.bool, device=tokens.device)
        keep[:, v * n : v * n + text.shape[1]] = keep_language
        for block in self.joint_blocks:
            tokens = block(tokens, keep[:, None, None, :])
        visual = tokens[:, : v * n].reshape(b, v, n, d)
        return self.norm(tokens), keep, visual


class HeatmapDecoder(nn.Module):
    """Per-pixel heatmap logits from patch tokens, a per-view query and the raw pixels.

    Each patch token emits the C-dim features of its p*p pixels (a linear map, i.e. a pixel
    shuffle), a per-pixel linear map of the raw pixel channels adds full-resolution detail, and the
    logit of a pixel is the scaled dot product of its features with the view's query. All three
    steps are linear, so the query is folded into the weights first and the C-channel
    full-resolution feature map is never built: on a CPU that map cost more than the transformer.
    """

    def __init__(self, dim: int, patch_size: int, channels: int, pixel_channels: int) -> None:
        super().__init__()
        self.patch_size, self.channels = patch_size, channels
        self.norm = nn.LayerNorm(dim)
        self.to_pixels = nn.Linear(dim, patch_size * patch_size * channels)
        self.pixel_skip = nn.Linear(pixel_channels, channels)

    def forward(
        self, query: torch.Tensor, visual: torch.Tensor, pixels: torch.Tensor
    ) -> torch.Tensor:
        """``query [B, V, C]``, ``visual [B, V, N, D]``, ``pixels [B, V, Ci, H, W]`` -> ``[B, V, H, W]``."""
        b, v, n, d = visual.shape
        p, c = self.patch_size, self.channels
        h, w = pixels.shape[-2:]
        side = w // p
        weight = self.to_pixels.weight.view(p * p, c, d)
        bias = self.to_pixels.bias.view(p * p, c)
        folded = torch.einsum("bvc,kcd->bvkd", query, weight)  # [B, V, p*p, D]
        per_patch = torch.einsum("bvnd,bvkd->bvnk", self.norm(visual), folded)
        per_patch = per_patch + torch.einsum("bvc,kc->bvk", query, bias).unsqueeze(2)
        grid = per_patch.view(b, v, h // p, side, p, p).permute(0, 1, 2, 4, 3, 5)
        logits = grid.reshape(b, v, h, w)
        skip_w = torch.einsum("bvc,ci->bvi", query, self.pixel_skip.weight)  # [B, V, Ci]
        skip = torch.einsum("bvi,bvihw->bvhw", skip_w, pixels)
        skip = skip + (query * self.pixel_skip.bias).sum(-1)[..., None, None]
        return (logits + skip) / c**0.5


class ActionHead(nn.Module):
    """The causal transformer over the action slots and its output heads.

    Slots: ``start``, one position input per stage, then roll, pitch, yaw; slot ``k`` predicts
    token ``k`` of ``[position per stage..., roll, pitch, yaw, (gripper, collision)]``.
    """

    def __init__(self, cfg: PolicyConfig, num_views: int) -> None:
        super().__init__()
        d, bins = cfg.width, cfg.rotation_bins
        self.num_views, self.heatmap_dim = num_views, cfg.heatmap_dim
        self.stages = position_stages(cfg)
        self.num_slots = self.stages + 4
        self.start = nn.Parameter(torch.zeros(d))
        self.slot_position = nn.Parameter(torch.zeros(self.num_slots, d))
        self.position_input = nn.Linear(3 + 6 * FOURIER_OCTAVES, d)
        self.rotation_input = nn.ModuleList(nn.Embedding(bins, d) for _ in range(3))
        # ARP's prompt features: the visual tokens at the point in every view, one vector.
        self.location = nn.Linear(self.num_views * d, d) if cfg.location_tokens else None
        self.blocks = nn.ModuleList(
            DecoderBlock(d, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.action_depth)
        )
        self.norm = nn.LayerNorm(d)
        self.query = nn.ModuleList(
            nn.Linear(d, self.num_views * cfg.heatmap_dim) for _ in range(self.stages)
        )
        self.rotation_heads = nn.ModuleList(nn.Linear(d, bins) for _ in range(3))
        self.gripper_head = nn.Linear(d, 2)
        self.collision_head = nn.Linear(d, 2)
        init_weights(self)
        nn.init.trunc_normal_(self.start, std=0.02)
        nn.init.trunc_normal_(self.slot_position, std=0.02)

    def slot_inputs(
        self,
        batch_size: int,
        positions: list[torch.Tensor],
        rotation_bins: torch.Tensor | None,
        location: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Input sequence ``[B, S, D]``: start, then the known position and rotation tokens.

        ``positions``: the first k stages' points ``[B, 3]`` (workspace-normalised xyz);
        ``rotation_bins [B, k]`` the first k Euler bins; ``location [B, V * D]`` the features at
        the final point, added to the last position input and every slot after it.
        """
        seq = [self.start.expand(batch_size, -1)]
        seq += [self.position_input(fourier_features(p)) for p in positions]
        if rotation_bins is not None:
            seq += [
                self.rotation_input[i](rotation_bins[:, i]) for i in range(rotation_bins.shape[1])
            ]
        x = torch.stack(seq, dim=1) + self.slot_position[: len(seq)]
        if location is not None and self.location is not None and len(seq) > self.stages:
            extra = torch.zeros_like(x)
            extra[:, self.stages :] = self.location(location).unsqueeze(1)
            x = x + extra
        return x

    def forward(
        self, inputs: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(last_block_output, normed_output)``, both ``[B, S, D]``; ``mask [B, 1, S, M]``."""
        x = inputs
        for block in self.blocks:
            x = block(x, memory, mask)
        return x, self.norm(x)

    def heatmap_query(self, slot: torch.Tensor, stage: int) -> torch.Tensor:
        """A position slot's output ``[B, D]`` -> one query per view ``[B, V, C]``."""
        return self.query[stage](slot).view(slot.shape[0], self.num_views, self.heatmap_dim)


def sample_location(visual: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """The visual tokens at a point in every view: ``visual [B, V, N, D]`` (N = side^2) and the
    point's ``grid_sample`` coordinates ``grid [B, V, 2]`` -> ``[B, V * D]`` (bilinear)."""
    b, v, n, d = visual.shape
    side = round(n**0.5)
    maps = visual.reshape(b * v, side, side, d).permute(0, 3, 1, 2)
    values = F.grid_sample(
        maps, grid.reshape(b * v, 1, 1, 2), mode="bilinear", padding_mode="border",
        align_corners=False,
    )  # fmt: skip
    return values.view(b, v * d)


def stage_memory(encs: list[Encoded], slots: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Memory ``[B, M, D]`` of all stages and the slot mask ``[B, 1, slots, M]``: position slot
    k sees stages <= k only (the zoomed render depends on the first point)."""
    memory = torch.cat([e.memory for e in encs], dim=1)
    keep = torch.cat([e.keep for e in encs], dim=1)
    allow = torch.ones(slots, keep.shape[1], dtype=torch.bool, device=keep.device)
    if len(encs) > 1:
        allow[0, encs[0].memory.shape[1] :] = False
    return memory, keep[:, None, None, :] & allow[None, None]
