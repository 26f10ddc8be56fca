"""The EE model: an ARP-like autoregressive keyframe policy on an RVT-2-like multi-view transformer.

After ARP on RVT-2/MVT (paper Sec. 4.1, supplement C.2, Table 5), re-implemented from their
descriptions. Per sample (docs/interfaces.md, EE batch):

* **Inputs**: the V cameras' ``rgb`` and ``points`` (world xyz of every pixel, after the loader's
  3D augmentation), ``proprio`` and the instruction (``instruction_id`` -> tokens).
* **Virtual views** (``input="virtual_views"``, the default; RVT): all cameras' points, the wrist
  included, form one cloud that ``models/virtual_views.py`` renders orthographically over the
  workspace box from fixed viewpoints (``views``: top, front, left); each pixel holds RGB, the
  box-normalised xyz of the nearest point, its depth and occupancy. Because the views are fixed
  in the workspace, moving the cloud and the action (3D augmentation) moves the pixels.
  ``input="cameras"`` reads the real images instead (RGB + normalised xyz per pixel).
* **Backbone** (``models/mvt.py``): a Conv2d patch embedding per view (optionally after a conv
  stem), ``view_depth`` layers of attention within each view, then ``joint_depth`` layers over all
  views' tokens, the language tokens and one proprioception token.
* **Zoom-in stage** (RVT-2; ``zoom_factor`` > 1): the cloud is rendered again over a box
  ``zoom_factor`` times smaller around the first point (in training: the true point plus
  ``zoom_noise`` Gaussian noise, so that stage learns to correct an imprecise first stage) and
  encoded by the same backbone (with a stage embedding).
* **Action head**: a causal transformer over the action slots that cross-attends to the backbone's
  tokens. Slots are ``[start, position per stage, roll, pitch, yaw]`` (ground truth in training,
  i.e. teacher forcing; the model's own greedy choices at inference); slot k predicts token k:
  the position of each stage as a heatmap per view (the slot's output, projected to one query per
  view, dotted with per-pixel features; cross-entropy against a Gaussian around the target's
  projection, views it falls outside of left out), then roll, pitch and yaw (72 bins of 5 degrees),
  then gripper_open and ignore_collisions (two 2-class tokens in parallel, ARP's chunk of 2). The
  first position slot sees only the first stage's tokens (the zoomed render depends on its point).
  Virtual-view heatmaps lift to 3D exactly (``virtual_views.lift``: the point maximising the sum of
  the views' scores at its projections); camera heatmaps by ``geometry.lift_heatmaps``.
* **Location tokens** (``location_tokens``; ARP's prompt features): the last stage's visual tokens
  sampled at the (true or decoded) point in every view are added to the inputs of the slots that
  predict rotation, gripper and collision.
* **Representation** ``e``: the output of the action head's last block over its slots,
  mean-pooled (before the final norm and the output heads).
* **Loss**: the sum of the token cross-entropies (``loss_term_names``); ``loss_terms`` gives each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mirror_align.errors import UserInputError
from mirror_align.models import geometry
from mirror_align.models import virtual_views as vv
from mirror_align.models.config import PolicyConfig, check_bounds, validate_policy
from mirror_align.models.layers import ModelOutput, batch_to_device, row_normals
from mirror_align.models.mvt import (
    ActionHead,
    Encoded,
    MultiViewBackbone,
    input_views,
    position_stages,
    sample_location,
    stage_memory,
)
from mirror_align.models.text import make_text_encoder, param_groups_with_text

REQUIRED_KEYS = ("rgb", "points", "proprio", "instruction_id")
CAMERA_KEYS = ("intrinsics", "extrinsics")
LOSS_TERMS = (
    "position", "position_zoom", "roll", "pitch", "yaw", "gripper_open", "ignore_collisions",
)  # fmt: skip
# Normalised point coordinates are clipped here so that far-plane pixels stay bounded.
POINT_CLIP = 2.0


class KeyframePolicy(nn.Module):
    """EE reference model. ``KeyframePolicy(config, instructions, image_size=S, num_views=V,
    workspace_bounds=(x_min, y_min, z_min, x_max, y_max, z_max))``; ``instructions[i]`` is the text
    of instruction id ``i`` (the instruction table). The keywords are facts of the dataset
    (:func:`mirror_align.models.factory.build_models` reads them from its metadata): the camera
    image side S (also the side of the virtual views), the number of cameras V and the bounds."""

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
        self.image_size, self.num_cameras = image_size, num_views
        self.virtual = config.input == "virtual_views"
        self.views = tuple(config.views)
        self.stages = position_stages(config)
        self.num_instructions = len(instructions)
        self.text = make_text_encoder(config.text, instructions)
        views = input_views(config, num_views)
        self.backbone = MultiViewBackbone(config, self.text.token_width, image_size, views)
        self.head = ActionHead(config, views)
        self.register_buffer(
            "bounds", torch.tensor(tuple(workspace_bounds), dtype=torch.float32), persistent=False
        )
        # Training forwards so far: mixed into the zoom-centre noise so that a sample draws new
        # noise every step; saved with the weights, so a resumed run draws what it would have.
        self.register_buffer("zoom_draws", torch.zeros((), dtype=torch.long))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:  # noqa: ANN001
        # Checkpoints written before the counter existed start it at 0.
        state_dict.setdefault(prefix + "zoom_draws", torch.zeros((), dtype=torch.long))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def representation_dim(self) -> int:
        """Size of ``e``."""
        return self.config.width

    @property
    def device(self) -> torch.device:
        return self.bounds.device

    @property
    def loss_term_names(self) -> tuple[str, ...]:
        """The loss terms of this config (``position_zoom`` only with the zoom stage)."""
        return tuple(t for t in LOSS_TERMS if t != "position_zoom" or self.stages == 2)

    # ------------------------------------------------------------ inputs and targets

    def _check(self, batch: Mapping[str, torch.Tensor], need_action: bool = False) -> None:
        required = REQUIRED_KEYS + (() if self.virtual else CAMERA_KEYS)
        required += ("action",) if need_action else ()
        missing = [k for k in required if k not in batch]
        if missing:
            raise UserInputError(
                f"batch: missing key(s) {', '.join(missing)} (EE batch, docs/interfaces.md)"
            )
        want = (self.num_cameras, self.image_size, self.image_size)
        for key in ("rgb", "points"):
            shape = tuple(batch[key].shape)
            if len(shape) != 5 or shape[1:4] != want or shape[4] != 3:
                raise UserInputError(
                    f"batch[{key!r}]: expected [B, {want[0]}, {want[1]}, {want[2]}, 3] "
                    f"(image_size={self.image_size}, num_views={self.num_cameras}), got {shape}"
                )
        if batch["rgb"].dtype != torch.uint8:
            raise UserInputError(f"batch['rgb']: expected uint8, got {batch['rgb'].dtype}")
        ids = batch["instruction_id"]
        if ids.numel() and (ids.min() < 0 or ids.max() >= self.num_instructions):
            raise UserInputError(
                f"batch['instruction_id']: ids must be in [0, {self.num_instructions})"
            )

    def _size(self, stage: int) -> int:
        """Render side in pixels of a stage (``zoom_size`` for the zoomed one; 0: image_size)."""
        return self.config.zoom_size if stage == 1 and self.config.zoom_size else self.image_size

    def _normalize(self, xyz: torch.Tensor) -> torch.Tensor:
        return geometry.normalize_points(xyz, self.bounds)

    def _context(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """What every stage reads: text tokens, normalised proprio, and the cloud or camera pixels."""
        self._check(batch)
        text = self.text(batch["instruction_id"].long())
        proprio = batch["proprio"].float()
        proprio = torch.cat([self._normalize(proprio[:, :3]), proprio[:, 3:]], dim=-1)
        rgb = batch["rgb"].float().div(255.0).mul(2.0).sub(1.0)  # [B, V, H, W, 3]
        ctx = {"language": text.tokens, "keep_language": text.mask, "proprio": proprio}
        points = batch["points"].float()
        if self.virtual:
            ctx["points"], ctx["rgb"] = points.flatten(1, 3), rgb.flatten(1, 3)
        else:
            xyz = self._normalize(torch.nan_to_num(points)).clamp(-POINT_CLIP, POINT_CLIP)
            ctx["pixels"] = torch.cat([rgb, xyz], dim=-1).permute(0, 1, 4, 2, 3)
        return ctx

    def _encode(
        self,
        ctx: dict[str, torch.Tensor],
        stage: int = 0,
        centre: torch.Tensor | None = None,
        renders: dict | None = None,
    ) -> Encoded:
        """One stage: render (virtual views; stage 1 zooms around ``centre [B, 3]``) and encode;
        ``renders`` (see :meth:`decode`) memoises the stage-0 render."""
        cfg = self.config
        half = None
        if self.virtual:
            if stage == 0:
                centre, half = vv.workspace_box(self.bounds, ctx["points"].shape[0])
            else:
                centre, half = vv.zoom_box(centre, self.bounds, cfg.zoom_factor)
            size = self._size(stage)
            fill = cfg.view_fill if stage == 0 else cfg.zoom_fill
            # Stage 0 renders the whole workspace: a function of the batch and these settings only,
            # so it can be shared; a zoomed render depends on this model's stage-1 point.
            memo = renders if renders is not None and stage == 0 else {}
            key = (size, fill, self.views, tuple(self.bounds.tolist()))
            if key not in memo:
                memo[key] = vv.render(
                    ctx["points"], ctx["rgb"], centre, half, self.views, size, fill
                )
            pixels = memo[key]
        else:
            pixels = ctx["pixels"]
        pixels = self.backbone.pixel_features(pixels)  # + the colour code (colour_bins)
        memory, keep, visual = self.backbone(
            pixels, ctx["language"], ctx["keep_language"], ctx["proprio"], stage
        )
        return Encoded(memory, keep, visual, pixels, centre, half)

    def encode(self, batch: Mapping[str, torch.Tensor]) -> Encoded:
        """The first stage's backbone pass over one batch."""
        return self._encode(self._context(batch))

    def heatmap_logits(self, slot: torch.Tensor, enc: Encoded, stage: int = 0) -> torch.Tensor:
        """Position logits ``[B, V, H, W]`` from the output of a position slot."""
        return self.backbone.heatmap(self.head.heatmap_query(slot, stage), enc.visual, enc.pixels)

    def _view_targets(
        self, xyz: torch.Tensor, centre: torch.Tensor, half: torch.Tensor, size: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``uv [B, V, 2]`` of ``xyz [B, 3]`` in a box's ``size`` px views and ``visible [B, V]``."""
        q = vv.to_box(xyz[:, None], centre, half)
        uv = vv.view_pixels(q, self.views, size)[:, :, 0]
        visible = (q[:, 0].abs() <= 1.0).all(dim=-1, keepdim=True).expand(-1, len(self.views))
        return uv, visible

    def action_targets(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The target tokens of ``batch['action']`` (first position stage).

        ``uv [B, V, 2]`` (the target's projection in each input view, pixels), ``visible [B, V]``
        (inside that view), ``pixel [B, V]`` (row * W + col of the pixel holding it),
        ``rotation [B, 3]`` bins, ``gripper_open [B]`` and ``ignore_collisions [B]`` (0/1).
        """
        cfg = self.config
        action = batch["action"].float()
        s = self.image_size
        if self.virtual:
            centre, half = vv.workspace_box(self.bounds, action.shape[0])
            uv, visible = self._view_targets(action[:, :3], centre, half, s)
        else:
            uv, z = geometry.project(action[:, None, :3], batch["intrinsics"], batch["extrinsics"])
            uv, z = uv[:, :, 0], z[:, :, 0]
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

    def _heatmap_loss(
        self, logits: torch.Tensor, uv: torch.Tensor, visible: torch.Tensor
    ) -> torch.Tensor:
        """Cross-entropy against Gaussians around ``uv``, over each sample's visible views."""
        h, w = logits.shape[-2:]
        heat = geometry.gaussian_heatmaps(uv, h, w, self.config.heatmap_sigma).flatten(2)
        ce = -(heat * logits.flatten(2).log_softmax(-1)).sum(-1)  # [B, V]
        weight = visible.to(ce.dtype)
        # A per-sample mean keeps the loss decomposable over the batch, so DDP's averaging of
        # per-rank losses equals the global loss.
        return ((ce * weight).sum(1) / weight.sum(1).clamp_min(1.0)).mean()

    def _location(self, enc: Encoded, xyz: torch.Tensor) -> torch.Tensor | None:
        """The location features ``[B, V * D]`` at ``xyz [B, 3]`` in ``enc``'s views, if enabled."""
        if self.head.location is None:
            return None
        q = vv.to_box(xyz[:, None], enc.centre, enc.half)
        return sample_location(enc.visual, vv.view_grid(q, self.views)[:, :, 0])

    # ------------------------------------------------------------ training

    def forward(self, batch: Mapping[str, torch.Tensor]) -> ModelOutput:
        """Teacher-forced pass: the summed loss, its terms and ``e``."""
        batch = batch_to_device(dict(batch), self.device)
        self._check(batch, need_action=True)
        ctx = self._context(batch)
        target = self.action_targets(batch)
        xyz = batch["action"][:, :3].float()
        encs = [self._encode(ctx)]
        positions = [self._normalize(xyz)]
        if self.stages == 2:
            if self.training:
                self.zoom_draws += 1  # a new draw per training step, identical on every rank
            key = torch.cat(
                [batch["action"].float(), self.zoom_draws.float().expand(len(xyz), 1)], 1
            )
            centre = xyz + self.config.zoom_noise * row_normals(key).to(xyz.dtype)
            encs.append(self._encode(ctx, 1, centre))
            # The first position input is the zoom centre, as at inference (the decoded point),
            # so the second stage cannot learn to copy an exact first point.
            positions = [self._normalize(centre), positions[0]]
        location = self._location(encs[-1], xyz) if self.virtual else None
        inputs = self.head.slot_inputs(xyz.shape[0], positions, target["rotation"], location)
        memory, mask = stage_memory(encs, inputs.shape[1])
        last, out = self.head(inputs, memory, mask)

        terms = {"position": self._heatmap_loss(
            self.heatmap_logits(out[:, 0], encs[0]), target["uv"], target["visible"]
        )}  # fmt: skip
        if self.stages == 2:
            uv, visible = self._view_targets(xyz, encs[1].centre, encs[1].half, self._size(1))
            logits = self.heatmap_logits(out[:, 1], encs[1], 1)
            terms["position_zoom"] = self._heatmap_loss(logits, uv, visible)
        k = self.stages
        for i, name in enumerate(("roll", "pitch", "yaw")):
            rot_logits = self.head.rotation_heads[i](out[:, k + i])
            terms[name] = F.cross_entropy(rot_logits, target["rotation"][:, i])
        terms["gripper_open"] = F.cross_entropy(
            self.head.gripper_head(out[:, k + 3]), target["gripper_open"]
        )
        terms["ignore_collisions"] = F.cross_entropy(
            self.head.collision_head(out[:, k + 3]), target["ignore_collisions"]
        )
        loss = torch.stack([terms[n] for n in self.loss_term_names]).sum()
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

    def _lift(self, logits: torch.Tensor, enc: Encoded, batch: Mapping) -> torch.Tensor:
        """Heatmap logits ``[B, V, H, W]`` -> the 3D point ``[B, 3]`` (metres)."""
        cfg = self.config
        heatmaps = logits.flatten(2).softmax(-1).view_as(logits)
        if self.virtual:
            q = vv.lift(heatmaps, self.views, cfg.lift_refinements)
            return vv.from_box(q[:, None], enc.centre, enc.half)[:, 0]
        return geometry.lift_heatmaps(
            heatmaps, batch["intrinsics"].float(), batch["extrinsics"].float(), self.bounds,
            cfg.lift_grid_step, cfg.lift_refinements, cfg.lift_pool,
        )  # fmt: skip

    def decode(
        self, batch: Mapping[str, torch.Tensor], renders: dict | None = None
    ) -> dict[str, torch.Tensor]:
        """Greedy autoregressive decoding.

        ``renders``: one dict shared by several models decoding the same ``batch`` (the
        checkpoints of a probing run): the first stage's workspace render, which does not depend
        on the weights, is then computed once (keyed by size, fill, views and workspace bounds).

        Returns ``position [B, 3]`` (metres, the last stage's point), ``heatmaps [B, V, H, W]``
        (probabilities) and ``pixel [B, V]`` (argmax of each view's heatmap) of the last stage,
        ``position_coarse [B, 3]`` and ``pixel_coarse [B, V]`` of the first, ``rotation [B, 3]``
        bins, ``gripper_open [B]``, ``ignore_collisions [B]`` and ``e [B, D]``.
        """
        batch = batch_to_device(dict(batch), self.device)
        ctx = self._context(batch)
        encs = [self._encode(ctx, renders=renders)]
        b = encs[0].memory.shape[0]
        _, out = self.head(self.head.slot_inputs(b, [], None), *stage_memory(encs, 1))
        logits = coarse_logits = self.heatmap_logits(out[:, 0], encs[0])
        xyz = coarse = self._lift(logits, encs[0], batch)
        positions = [self._normalize(xyz)]
        if self.stages == 2:
            encs.append(self._encode(ctx, 1, xyz))
            inputs = self.head.slot_inputs(b, positions, None)
            _, out = self.head(inputs, *stage_memory(encs, 2))
            logits = self.heatmap_logits(out[:, 1], encs[1], 1)
            xyz = torch.min(torch.max(self._lift(logits, encs[1], batch), self.bounds[:3]),
                            self.bounds[3:])  # fmt: skip
            positions.append(self._normalize(xyz))
        location = self._location(encs[-1], xyz) if self.virtual else None
        bins = torch.zeros(b, 0, dtype=torch.long, device=xyz.device)
        for i in range(3):
            inputs = self.head.slot_inputs(b, positions, bins, location)
            _, out = self.head(inputs, *stage_memory(encs, inputs.shape[1]))
            choice = self.head.rotation_heads[i](out[:, self.stages + i]).argmax(-1)
            bins = torch.cat([bins, choice[:, None]], dim=1)
        inputs = self.head.slot_inputs(b, positions, bins, location)
        last, out = self.head(inputs, *stage_memory(encs, inputs.shape[1]))
        return {
            "position": xyz,
            "heatmaps": logits.flatten(2).softmax(-1).view_as(logits),
            "pixel": logits.flatten(2).argmax(-1),
            "position_coarse": coarse,
            "pixel_coarse": coarse_logits.flatten(2).argmax(-1),
            "rotation": bins,
            "gripper_open": self.head.gripper_head(out[:, -1]).argmax(-1),
            "ignore_collisions": self.head.collision_head(out[:, -1]).argmax(-1),
            "e": last.mean(dim=1),
        }

    @torch.no_grad()
    def predict(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The next keyframe ``[B, 9]``: xyz (m), quaternion xyzw (w >= 0), gripper_open,
        ignore_collisions (0/1 floats), by greedy decoding."""
        return self._keyframe(self.decode(batch))

    @torch.no_grad()
    def predict_stages(
        self, batch: Mapping[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """:meth:`predict`'s keyframe ``[B, 9]`` and, with the zoom stage, the first stage's point
        ``[B, 3]`` (metres; None with one stage), from one decoding. The offline keyframe metrics
        use it to tell a missed target from an imprecise one."""
        tokens = self.decode(batch)
        coarse = tokens["position_coarse"] if self.stages == 2 else None
        return self._keyframe(tokens), coarse

    def _keyframe(self, tokens: dict[str, torch.Tensor]) -> torch.Tensor:
        """The ``[B, 9]`` keyframe of :meth:`decode`'s tokens."""
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

    def represent(
        self, batch: Mapping[str, torch.Tensor], renders: dict | None = None
    ) -> torch.Tensor:
        """``e [B, width]``: the last action-head block over the action slots, mean-pooled.

        In training mode the slots hold the ground-truth action (teacher forcing, the same pass as
        the loss); in eval mode they hold the greedy decoding (``renders``: see :meth:`decode`),
        so the label is never read.
        """
        if self.training:
            return self.forward(batch).representation
        return self.decode(batch, renders)["e"]

    def param_groups(self, lr: float) -> list[dict]:
        """Optimizer groups: the text encoder at ``text.lr_scale`` x lr when pretrained."""
        return param_groups_with_text(self, self.text, self.config.text, lr)
