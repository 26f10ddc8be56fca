"""The EE model: an ARP-like autoregressive keyframe policy on a multi-view transformer.

After ARP on RVT-2/MVT (paper Sec. 4.1, supplement C.2, Table 5), re-implemented from their
descriptions. Per sample (docs/interfaces.md, EE batch):

* **Inputs**: the V cameras' ``rgb`` and ``points`` (world xyz of every pixel, normalised to
  [-1, 1] over the workspace), ``proprio`` and the instruction (``instruction_id`` -> tokens).
  ``depth`` is not read: ``points`` already holds it, back-projected with the camera poses.
* **Backbone**: a Conv2d patch embedding per view (6 channels: RGB + xyz), ``view_depth`` layers
  of attention within each view, then ``joint_depth`` layers over all views' tokens, the
  language tokens and one proprioception token.
* **Action head**: a causal transformer over 5 action slots that cross-attends to the backbone's
  tokens. Slot inputs are ``[start, position, roll, pitch, yaw]`` (ground truth in training, i.e.
  teacher forcing; the model's own greedy choices at inference), and slot i predicts token i:

  ====  ==========================  ==============================================================
  slot  predicts                    how
  ====  ==========================  ==============================================================
  0     position                    a heatmap per view: the slot's output, projected to one query
                                    per view, dotted with per-pixel features; trained with
                                    cross-entropy against a Gaussian around the target's projection
                                    into that view (views it falls outside of are left out);
                                    lifted to 3D by ``geometry.lift_heatmaps``
  1-3   roll, pitch, yaw            72 bins of 5 degrees each (``geometry``), in that order
  4     gripper_open, collisions    two 2-class tokens read in parallel (ARP's chunk of 2)
  ====  ==========================  ==============================================================

* **Representation** ``e``: the output of the action head's last block over the 5 slots,
  mean-pooled (before the final norm and the output heads).
* **Loss**: the sum of the six token cross-entropies; ``loss_terms`` gives each one.

Not reproduced: RVT-2's zoom-in refinement stage and MVT's virtual re-rendered views; the four real
cameras are used directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from mirror_align.errors import UserInputError
from mirror_align.models import geometry
from mirror_align.models.config import PolicyConfig, check_bounds, validate_policy
from mirror_align.models.layers import (
    Block,
    DecoderBlock,
    ModelOutput,
    batch_to_device,
    init_weights,
)
from mirror_align.models.text import TextFeatures, make_text_encoder, param_groups_with_text

REQUIRED_KEYS = ("rgb", "points", "intrinsics", "extrinsics", "proprio", "instruction_id")
LOSS_TERMS = ("position", "roll", "pitch", "yaw", "gripper_open", "ignore_collisions")
NUM_SLOTS = 5
FOURIER_OCTAVES = 4
# Normalised point coordinates are clipped here so that far-plane pixels stay bounded.
POINT_CLIP = 2.0


class Encoded(NamedTuple):
    """Backbone outputs: ``memory [B, M, D]`` with ``mask [B, 1, 1, M]`` (True = attend), the
    visual tokens ``visual [B, V, N, D]`` and the network's input ``pixels [B, V, 6, H, W]``."""

    memory: torch.Tensor
    mask: torch.Tensor
    visual: torch.Tensor
    pixels: torch.Tensor


def fourier_features(x: torch.Tensor, octaves: int = FOURIER_OCTAVES) -> torch.Tensor:
    """``x [..., 3]`` in about [-1, 1] -> ``[..., 3 + 6 * octaves]``: x, sin and cos at 2^k * pi."""
    freqs = torch.pi * 2.0 ** torch.arange(octaves, dtype=x.dtype, device=x.device)
    angles = (x.unsqueeze(-1) * freqs).flatten(-2)
    return torch.cat([x, angles.sin(), angles.cos()], dim=-1)


class MultiViewBackbone(nn.Module):
    """Per-view then cross-view attention; also the per-pixel features the heatmaps are read from."""

    def __init__(self, cfg: PolicyConfig, text_width: int, image_size: int, num_views: int) -> None:
        super().__init__()
        d, p, c = cfg.width, cfg.patch_size, cfg.heatmap_dim
        side = image_size // p
        self.patch_size = p
        self.patch_embed = nn.Conv2d(6, d, p, p)
        self.patch_position = nn.Parameter(torch.zeros(side * side, d))
        self.view_embedding = nn.Parameter(torch.zeros(num_views, 1, d))
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
        self.heatmap = HeatmapDecoder(d, p, c)
        init_weights(self)
        for param in (self.patch_position, self.view_embedding, self.token_type):
            nn.init.trunc_normal_(param, std=0.02)

    def forward(
        self, pixels: torch.Tensor, text: TextFeatures, proprio: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``pixels [B, V, 6, H, W]``, text features, ``proprio [B, 8]`` (normalised).

        Returns the memory tokens ``[B, M, D]`` (visual, language, proprio), their attention mask
        ``[B, 1, 1, M]`` (True = attend) and the visual tokens ``[B, V, N, D]`` after the last
        layer (before the memory's norm), which the heatmap decoder reads.
        """
        b, v, ch, h, w = pixels.shape
        flat = pixels.reshape(b * v, ch, h, w)
        x = self.patch_embed(flat).flatten(2).transpose(1, 2)  # [BV, N, D]
        n, d = x.shape[1:]
        x = x.view(b, v, n, d) + self.patch_position + self.view_embedding
        x = x.reshape(b * v, n, d)
        for block in self.view_blocks:
            x = block(x)
        visual = x.reshape(b, v * n, d) + self.token_type[0]
        language = self.language(text.tokens) + self.token_type[1]
        own = self.proprio(proprio).unsqueeze(1) + self.token_type[2]
        tokens = torch.cat([visual, language, own], dim=1)
        keep = torch.ones(b, tokens.shape[1], dtype=torch.bool, device=tokens.device)
        keep[:, v * n : v * n + language.shape[1]] = text.mask
        mask = keep[:, None, None, :]
        for block in self.joint_blocks:
            tokens = block(tokens, mask)
        memory = self.norm(tokens)
        visual = tokens[:, : v * n].reshape(b, v, n, d)
        return memory, mask, visual


class HeatmapDecoder(nn.Module):
    """Per-pixel heatmap logits from patch tokens, a per-view query and the raw pixels.

    Each patch token emits the C-dim features of its p*p pixels (a linear map, i.e. a pixel
    shuffle), a per-pixel linear map of the raw RGB + xyz adds full-resolution detail, and the logit
    of a pixel is the scaled dot product of its features with the view's query. All three steps are
    linear, so the query is folded into the weights first and the C-channel full-resolution feature
    map is never built: on a CPU that map cost more than the whole transformer.
    """

    def __init__(self, dim: int, patch_size: int, channels: int) -> None:
        super().__init__()
        self.patch_size, self.channels = patch_size, channels
        self.norm = nn.LayerNorm(dim)
        self.to_pixels = nn.Linear(dim, patch_size * patch_size * channels)
        self.pixel_skip = nn.Linear(6, channels)

    def forward(
        self, query: torch.Tensor, visual: torch.Tensor, pixels: torch.Tensor
    ) -> torch.Tensor:
        """``query [B, V, C]``, ``visual [B, V, N, D]``, ``pixels [B, V, 6, H, W]`` -> ``[B, V, H, W]``."""
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
        skip_w = torch.einsum("bvc,ci->bvi", query, self.pixel_skip.weight)  # [B, V, 6]
        skip = torch.einsum("bvi,bvihw->bvhw", skip_w, pixels)
        skip = skip + (query * self.pixel_skip.bias).sum(-1)[..., None, None]
        return (logits + skip) / c**0.5


class ActionHead(nn.Module):
    """The causal transformer over the 5 action slots and its output heads."""

    def __init__(self, cfg: PolicyConfig, num_views: int) -> None:
        super().__init__()
        d, bins = cfg.width, cfg.rotation_bins
        self.num_views, self.heatmap_dim = num_views, cfg.heatmap_dim
        self.start = nn.Parameter(torch.zeros(d))
        self.slot_position = nn.Parameter(torch.zeros(NUM_SLOTS, d))
        self.position_input = nn.Linear(3 + 6 * FOURIER_OCTAVES, d)
        self.rotation_input = nn.ModuleList(nn.Embedding(bins, d) for _ in range(3))
        self.blocks = nn.ModuleList(
            DecoderBlock(d, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.action_depth)
        )
        self.norm = nn.LayerNorm(d)
        self.query = nn.Linear(d, num_views * cfg.heatmap_dim)
        self.rotation_heads = nn.ModuleList(nn.Linear(d, bins) for _ in range(3))
        self.gripper_head = nn.Linear(d, 2)
        self.collision_head = nn.Linear(d, 2)
        init_weights(self)
        nn.init.trunc_normal_(self.start, std=0.02)
        nn.init.trunc_normal_(self.slot_position, std=0.02)

    def slot_inputs(
        self, batch_size: int, position: torch.Tensor | None, rotation_bins: torch.Tensor | None
    ) -> torch.Tensor:
        """Input sequence ``[B, S, D]``: start, then the known position and rotation tokens.

        ``position [B, 3]`` is normalised xyz; ``rotation_bins [B, k]`` the first k Euler bins.
        """
        seq = [self.start.expand(batch_size, -1)]
        if position is not None:
            seq.append(self.position_input(fourier_features(position)))
            if rotation_bins is not None:
                for i in range(rotation_bins.shape[1]):
                    seq.append(self.rotation_input[i](rotation_bins[:, i]))
        x = torch.stack(seq, dim=1)
        return x + self.slot_position[: x.shape[1]]

    def forward(
        self, inputs: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(last_block_output, normed_output)``, both ``[B, S, D]``."""
        x = inputs
        for block in self.blocks:
            x = block(x, memory, mask)
        return x, self.norm(x)

    def heatmap_query(self, slot0: torch.Tensor) -> torch.Tensor:
        """``slot0 [B, D]`` -> one query per view ``[B, V, C]``."""
        return self.query(slot0).view(slot0.shape[0], self.num_views, self.heatmap_dim)


class KeyframePolicy(nn.Module):
    """EE reference model. ``KeyframePolicy(config, instructions, image_size=S, num_views=V,
    workspace_bounds=(x_min, y_min, z_min, x_max, y_max, z_max))``; ``instructions[i]`` is the text
    of instruction id ``i`` (the instruction table). The keywords are facts of the dataset
    (:func:`mirror_align.models.factory.build_models` reads them from its metadata)."""

    def __init__(
        self,
        config: PolicyConfig,
        instructions: Sequence[str],
        *,
        image_size: int,
        num_views: int,
        workspace_bounds: Sequence[float],
    ) -> None:
        super().__init__()
        validate_policy(config)
        check_bounds("workspace_bounds", tuple(workspace_bounds))
        if image_size % config.patch_size:
            raise UserInputError(
                f"patch_size: {config.patch_size} must divide the image size ({image_size})"
            )
        self.config = config
        self.image_size, self.num_views = image_size, num_views
        self.num_instructions = len(instructions)
        self.text = make_text_encoder(config.text, instructions)
        self.backbone = MultiViewBackbone(config, self.text.token_width, image_size, num_views)
        self.head = ActionHead(config, num_views)
        self.register_buffer(
            "bounds", torch.tensor(tuple(workspace_bounds), dtype=torch.float32), persistent=False
        )

    @property
    def representation_dim(self) -> int:
        """Size of ``e``."""
        return self.config.width

    @property
    def device(self) -> torch.device:
        return self.bounds.device

    # ------------------------------------------------------------ inputs and targets

    def _check(self, batch: Mapping[str, torch.Tensor], need_action: bool = False) -> None:
        required = REQUIRED_KEYS + (("action",) if need_action else ())
        missing = [k for k in required if k not in batch]
        if missing:
            raise UserInputError(
                f"batch: missing key(s) {', '.join(missing)} (EE batch, docs/interfaces.md)"
            )
        want = (self.num_views, self.image_size, self.image_size)
        for key in ("rgb", "points"):
            shape = tuple(batch[key].shape)
            if len(shape) != 5 or shape[1:4] != want or shape[4] != 3:
                raise UserInputError(
                    f"batch[{key!r}]: expected [B, {want[0]}, {want[1]}, {want[2]}, 3] "
                    f"(image_size={self.image_size}, num_views={self.num_views}), got {shape}"
                )
        if batch["rgb"].dtype != torch.uint8:
            raise UserInputError(f"batch['rgb']: expected uint8, got {batch['rgb'].dtype}")
        ids = batch["instruction_id"]
        if ids.numel() and (ids.min() < 0 or ids.max() >= self.num_instructions):
            raise UserInputError(
                f"batch['instruction_id']: ids must be in [0, {self.num_instructions})"
            )

    def encode(self, batch: Mapping[str, torch.Tensor]) -> Encoded:
        """The backbone pass over one batch."""
        self._check(batch)
        rgb = batch["rgb"].float().div(255.0).mul(2.0).sub(1.0)
        points = geometry.normalize_points(torch.nan_to_num(batch["points"].float()), self.bounds)
        points = points.clamp(-POINT_CLIP, POINT_CLIP)
        pixels = torch.cat([rgb, points], dim=-1).permute(0, 1, 4, 2, 3)  # [B, V, 6, H, W]
        proprio = batch["proprio"].float()
        proprio = torch.cat(
            [geometry.normalize_points(proprio[:, :3], self.bounds), proprio[:, 3:]], dim=-1
        )
        text = self.text(batch["instruction_id"].long())
        memory, mask, visual = self.backbone(pixels, text, proprio)
        return Encoded(memory, mask, visual, pixels)

    def heatmap_logits(self, slot0: torch.Tensor, enc: Encoded) -> torch.Tensor:
        """Position logits ``[B, V, H, W]`` from the output of action slot 0."""
        return self.backbone.heatmap(self.head.heatmap_query(slot0), enc.visual, enc.pixels)

    def action_targets(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The target tokens of ``batch['action']``.

        ``pixel [B, V]`` (row * W + col of the pixel holding the target's projection), ``visible
        [B, V]`` (in front of the camera and inside the image), ``uv [B, V, 2]``, ``rotation [B, 3]``
        bins, ``gripper_open [B]`` and ``ignore_collisions [B]`` classes (0/1).
        """
        cfg = self.config
        action = batch["action"].float()
        uv, z = geometry.project(action[:, None, :3], batch["intrinsics"], batch["extrinsics"])
        uv, z = uv[:, :, 0], z[:, :, 0]
        s = self.image_size
        visible = geometry.inside_image(uv, z, s, s)
        col = uv[..., 0].floor().clamp(0, s - 1).long()
        row = uv[..., 1].floor().clamp(0, s - 1).long()
        return {
            "uv": uv,
            "visible": visible,
            "pixel": row * s + col,
            "rotation": geometry.quaternion_to_bins(action[:, 3:7], cfg.rotation_resolution),
            "gripper_open": (action[:, 7] > 0.5).long(),
            "ignore_collisions": (action[:, 8] > 0.5).long(),
        }

    # ------------------------------------------------------------ training

    def forward(self, batch: Mapping[str, torch.Tensor]) -> ModelOutput:
        """Teacher-forced pass: the summed loss, its six terms and ``e``."""
        batch = batch_to_device(dict(batch), self.device)
        self._check(batch, need_action=True)
        enc = self.encode(batch)
        target = self.action_targets(batch)
        position = geometry.normalize_points(batch["action"][:, :3].float(), self.bounds)
        inputs = self.head.slot_inputs(enc.memory.shape[0], position, target["rotation"])
        last, out = self.head(inputs, enc.memory, enc.mask)

        cfg = self.config
        logits = self.heatmap_logits(out[:, 0], enc).flatten(2)  # [B, V, HW]
        heat = geometry.gaussian_heatmaps(
            target["uv"], self.image_size, self.image_size, cfg.heatmap_sigma
        ).flatten(2)
        ce = -(heat * logits.log_softmax(-1)).sum(-1)  # [B, V]
        visible = target["visible"].to(ce.dtype)
        # Mean over each sample's visible views, then over samples: a per-sample mean keeps the loss
        # decomposable over the batch, so DDP's averaging of per-rank losses equals the global loss.
        per_sample = (ce * visible).sum(1) / visible.sum(1).clamp_min(1.0)
        terms = {"position": per_sample.mean()}
        for i, name in enumerate(("roll", "pitch", "yaw")):
            rot_logits = self.head.rotation_heads[i](out[:, 1 + i])
            terms[name] = F.cross_entropy(rot_logits, target["rotation"][:, i])
        terms["gripper_open"] = F.cross_entropy(
            self.head.gripper_head(out[:, 4]), target["gripper_open"]
        )
        terms["ignore_collisions"] = F.cross_entropy(
            self.head.collision_head(out[:, 4]), target["ignore_collisions"]
        )
        loss = torch.stack([terms[n] for n in LOSS_TERMS]).sum()
        logged = {name: value.detach() for name, value in terms.items()}
        logged["total"] = loss.detach()
        return ModelOutput(loss=loss, representation=last.mean(dim=1), terms=logged)

    def loss(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The sum of the token cross-entropies (scalar)."""
        return self.forward(batch).loss

    def loss_terms(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Each token cross-entropy (nats, detached) by name, plus ``total``."""
        return self.forward(batch).terms

    # ------------------------------------------------------------ inference

    def decode(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Greedy autoregressive decoding.

        Returns ``position [B, 3]`` (metres), ``heatmaps [B, V, H, W]`` (probabilities),
        ``pixel [B, V]`` (argmax of each view's heatmap), ``rotation [B, 3]`` bins,
        ``gripper_open [B]``, ``ignore_collisions [B]`` and ``e [B, D]``.
        """
        batch = batch_to_device(dict(batch), self.device)
        cfg = self.config
        enc = self.encode(batch)
        memory, mask = enc.memory, enc.mask
        b = memory.shape[0]
        _, out = self.head(self.head.slot_inputs(b, None, None), memory, mask)
        logits = self.heatmap_logits(out[:, 0], enc)
        heatmaps = logits.flatten(2).softmax(-1).view_as(logits)
        xyz = geometry.lift_heatmaps(
            heatmaps,
            batch["intrinsics"].float(),
            batch["extrinsics"].float(),
            self.bounds,
            cfg.lift_grid_step,
            cfg.lift_refinements,
            cfg.lift_pool,
        )
        position = geometry.normalize_points(xyz, self.bounds)
        bins = torch.zeros(b, 0, dtype=torch.long, device=memory.device)
        for i in range(3):
            _, out = self.head(self.head.slot_inputs(b, position, bins), memory, mask)
            choice = self.head.rotation_heads[i](out[:, 1 + i]).argmax(-1)
            bins = torch.cat([bins, choice[:, None]], dim=1)
        last, out = self.head(self.head.slot_inputs(b, position, bins), memory, mask)
        return {
            "position": xyz,
            "heatmaps": heatmaps,
            "pixel": logits.flatten(2).argmax(-1),
            "rotation": bins,
            "gripper_open": self.head.gripper_head(out[:, 4]).argmax(-1),
            "ignore_collisions": self.head.collision_head(out[:, 4]).argmax(-1),
            "e": last.mean(dim=1),
        }

    @torch.no_grad()
    def predict(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The next keyframe ``[B, 9]``: xyz (m), quaternion xyzw (w >= 0), gripper_open,
        ignore_collisions (0/1 floats), by greedy decoding."""
        tokens = self.decode(batch)
        quat = geometry.bins_to_quaternion(tokens["rotation"], self.config.rotation_resolution)
        return torch.cat(
            [
                tokens["position"],
                quat.to(tokens["position"].dtype),
                tokens["gripper_open"][:, None].float(),
                tokens["ignore_collisions"][:, None].float(),
            ],
            dim=1,
        )

    def represent(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``e [B, width]``: the last action-head block over the action slots, mean-pooled.

        In training mode the slots hold the ground-truth action (teacher forcing, the same pass as
        the loss); in eval mode they hold the greedy decoding, so the label is never read.
        """
        if self.training:
            return self.forward(batch).representation
        return self.decode(batch)["e"]

    def param_groups(self, lr: float) -> list[dict]:
        """Optimizer groups: the text encoder at ``text.lr_scale`` x lr when pretrained."""
        return param_groups_with_text(self, self.text, self.config.text, lr)
