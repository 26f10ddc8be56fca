"""The AU model: a ViCLIP-like video-text model (paper Sec. 4.1, supplement C.1).

Video encoder: a ViT with a Conv3d patch embedding of kernel ``(1, p, p)``, spatial position
embeddings shared by all frames plus temporal ones, a class token and joint spatiotemporal
attention. In training a random ``mask_ratio`` of the patch tokens is dropped (ViCLIP's masking);
at evaluation all are kept. ``u`` is the class token after the final norm, before the video-text
projection. The loss is the video-text contrastive loss at ``tau`` (0.05) in which every clip
sharing an instruction with another in the batch counts as its positive. Recognition compares the
video embedding with the text embeddings of every instruction in the table (cosine, argmax).

Batch keys read (docs/interfaces.md, AU batch): ``video`` uint8 ``[B, T, H, W, 3]`` and, for the
loss, ``instruction_id`` int64 ``[B]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mirror_align.align.loss import alignment_loss
from mirror_align.errors import UserInputError
from mirror_align.models.config import VideoTextConfig, validate_video_text
from mirror_align.models.layers import Block, ModelOutput, batch_to_device, init_weights
from mirror_align.models.motion_colour import MotionColourTokens
from mirror_align.models.text import make_text_encoder, param_groups_with_text


class VideoEncoder(nn.Module):
    """``[B, 3, T, H, W]`` normalised frames -> class token ``u [B, width]`` after the final norm."""

    def __init__(self, cfg: VideoTextConfig, image_size: int) -> None:
        super().__init__()
        side = image_size // cfg.patch_size
        p = cfg.patch_size
        self.patch_embed = nn.Conv3d(3, cfg.width, (1, p, p), (1, p, p), bias=False)
        # Row 0 belongs to the class token, rows 1.. to the patches (row-major), as in ViCLIP.
        self.spatial_position = nn.Parameter(torch.zeros(side * side + 1, cfg.width))
        self.temporal_position = nn.Parameter(torch.zeros(1, cfg.num_frames, cfg.width))
        self.class_token = nn.Parameter(torch.zeros(cfg.width))
        # Not ViCLIP: a CPU-scale stand-in for pretrained features (VideoTextConfig.colour_tokens).
        self.colour = (
            MotionColourTokens(
                cfg.width,
                cfg.colour_bins,
                cfg.colour_gate_size,
                cfg.colour_near_kernel,
                moments=cfg.colour_moments,
            )
            if cfg.colour_tokens
            else None
        )
        self.norm_pre = nn.LayerNorm(cfg.width)
        self.blocks = nn.ModuleList(
            Block(cfg.width, cfg.heads, cfg.mlp_ratio, cfg.activation) for _ in range(cfg.depth)
        )
        self.norm_post = nn.LayerNorm(cfg.width)
        init_weights(self)
        nn.init.trunc_normal_(self.spatial_position, std=0.02)
        nn.init.trunc_normal_(self.class_token, std=0.02)

    def forward(self, frames: torch.Tensor, mask_ratio: float = 0.0) -> torch.Tensor:
        x = self.patch_embed(frames)  # [B, D, T, h, w]
        b, d, t = x.shape[:3]
        x = x.flatten(3).permute(0, 2, 3, 1)  # [B, T, N, D]
        x = x + self.spatial_position[1:] + self.temporal_position[:, :t, None, :]
        x = x.reshape(b, -1, d)
        if mask_ratio > 0.0:
            keep = max(1, x.shape[1] - int(mask_ratio * x.shape[1]))
            order = torch.rand(b, x.shape[1], device=x.device).argsort(dim=1)[:, :keep]
            x = x.gather(1, order.unsqueeze(-1).expand(-1, -1, d))
        tokens = [(self.class_token + self.spatial_position[0]).expand(b, 1, d)]
        if self.colour is not None:  # never masked: they are few and carry the colour cue
            tokens.append(self.colour(frames))
        x = self.norm_pre(torch.cat([*tokens, x], dim=1))
        for block in self.blocks:
            x = block(x)
        return self.norm_post(x[:, 0])


class VideoTextModel(nn.Module):
    """AU reference model. ``VideoTextModel(config, instructions, image_size=S)``;
    ``instructions[i]`` is the text of instruction id ``i`` (the instruction table) and ``S`` the
    dataset's frame side in pixels. The encoder works at ``config.resize_to`` when set, else at S."""

    def __init__(
        self, config: VideoTextConfig, instructions: Sequence[str], *, image_size: int
    ) -> None:
        super().__init__()
        validate_video_text(config)
        # The side the encoder works at: clips of another size are resized to it.
        self.image_size = config.resize_to or image_size
        if self.image_size % config.patch_size:
            raise UserInputError(
                f"patch_size: {config.patch_size} must divide the frame side ({self.image_size})"
            )
        if config.colour_tokens and config.colour_gate_size > self.image_size:
            raise UserInputError(
                f"colour_gate_size: {config.colour_gate_size} must be <= the frame side "
                f"({self.image_size})"
            )
        self.config = config
        self.num_instructions = len(instructions)
        self.video = VideoEncoder(config, self.image_size)
        self.text = make_text_encoder(config.text, instructions)
        # As ViCLIP's `proj`, a bias-free linear map; weight = proj.T.
        self.video_proj = nn.Linear(config.width, config.embed_dim, bias=False)
        self.text_proj = nn.Linear(self.text.pooled_width, config.embed_dim, bias=False)
        nn.init.trunc_normal_(self.video_proj.weight, std=config.width**-0.5)
        nn.init.trunc_normal_(self.text_proj.weight, std=self.text.pooled_width**-0.5)
        # Centres and scales each joint-space dimension over the batch (running statistics at
        # evaluation); see VideoTextConfig.video_batch_norm for why.
        self.video_norm = (
            nn.BatchNorm1d(config.embed_dim, affine=False) if config.video_batch_norm else None
        )
        # same_text[i, j]: instructions i and j read the same (positives of the table loss).
        table = list(instructions)
        same = torch.tensor([[a == b for b in table] for a in table])
        self.register_buffer("same_text", same, persistent=False)
        self.register_buffer("pixel_mean", torch.tensor(config.pixel_mean), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(config.pixel_std), persistent=False)

    @property
    def representation_dim(self) -> int:
        """Size of ``u``."""
        return self.config.width

    def frames(self, video: torch.Tensor) -> torch.Tensor:
        """uint8 ``[B, T, H, W, 3]`` -> normalised float ``[B, 3, num_frames, S, S]``.

        T is resampled uniformly to ``num_frames`` (indices ``linspace(0, T-1)`` rounded, so a
        shorter clip repeats frames) and frames are resized bilinearly to the working side S.
        """
        if video.ndim != 5 or video.shape[-1] != 3 or video.dtype != torch.uint8:
            raise UserInputError(
                f"batch['video']: expected uint8 [B, T, H, W, 3], got {video.dtype} "
                f"{tuple(video.shape)}"
            )
        cfg = self.config
        t = video.shape[1]
        if t != cfg.num_frames:
            index = torch.linspace(0, t - 1, cfg.num_frames, device=video.device).round().long()
            video = video[:, index]
        x = video.float().div(255.0)
        x = (x - self.pixel_mean) / self.pixel_std
        b, t, h, w, _ = x.shape
        x = x.permute(0, 1, 4, 2, 3)  # [B, T, 3, H, W]
        if (h, w) != (self.image_size, self.image_size):
            size = (self.image_size, self.image_size)
            x = F.interpolate(x.reshape(b * t, 3, h, w), size=size, mode="bilinear")
            x = x.view(b, t, 3, *size)
        return x.transpose(1, 2)

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """``u [B, width]``; tokens are masked only in training mode."""
        ratio = self.config.mask_ratio if self.training else 0.0
        return self.video(self.frames(video), ratio)

    def text_embeddings(self, instruction_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Unit-norm text embeddings ``[B, embed_dim]`` of ``instruction_ids`` (all when None)."""
        device = self.video_proj.weight.device
        if instruction_ids is None:
            instruction_ids = torch.arange(self.num_instructions, device=device)
        unique, inverse = torch.unique(instruction_ids, return_inverse=True)
        pooled = self.text(unique).pooled
        return F.normalize(self.text_proj(pooled), dim=-1)[inverse]

    def video_embeddings(self, u: torch.Tensor) -> torch.Tensor:
        """Unit-norm video embeddings ``[B, embed_dim]`` from ``u``."""
        z = self.video_proj(u)
        norm = self.video_norm
        if norm is not None:
            if self.training and z.shape[0] > 1:
                z = norm(z)
            else:  # a batch of one has no batch statistics: use the running ones
                z = F.batch_norm(z, norm.running_mean, norm.running_var, eps=norm.eps)
        return F.normalize(z, dim=-1)

    def forward(self, batch: Mapping[str, torch.Tensor], with_loss: bool = True) -> ModelOutput:
        """Loss, its parts and ``u`` from one pass over the video encoder.

        ``with_loss=False`` computes only ``u`` (the loss is a constant 0 and the text encoder is
        not run): the joint loop uses it on steps without the AU task loss, so that DDP sees the
        text encoder as unused on those steps.
        """
        batch = batch_to_device(dict(batch), self.video_proj.weight.device)
        if not with_loss:
            u = self.encode_video(batch["video"])
            return ModelOutput(loss=torch.zeros((), device=u.device), representation=u, terms={})
        ids = batch["instruction_id"].long()
        if ids.numel() and (ids.min() < 0 or ids.max() >= self.num_instructions):
            raise UserInputError(
                f"batch['instruction_id']: ids must be in [0, {self.num_instructions}), "
                f"got {int(ids.min())}..{int(ids.max())}"
            )
        u = self.encode_video(batch["video"])
        z_v = self.video_embeddings(u)
        z_t = self.text_embeddings(ids)
        loss, parts = alignment_loss(
            z_v, z_t, self.config.tau, keys=ids, gather=self.config.gather_negatives
        )
        if self.config.table_negatives:
            parts["u2e"] = self.table_loss(z_v, ids)
            loss = 0.5 * (parts["u2e"] + parts["e2u"])
            parts["u2e"] = parts["u2e"].detach()
        terms = {"video_text": loss.detach(), "v2t": parts["u2e"], "t2v": parts["e2u"]}
        return ModelOutput(loss=loss, representation=u, terms=terms)

    def table_loss(self, z_v: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Video-to-text InfoNCE over the whole instruction table (``table_negatives``).

        ``-log`` of the softmax mass (at ``tau``) on the instructions whose text equals the true
        one, averaged over the batch; every other instruction of the table is a negative.
        """
        logits = z_v @ self.text_embeddings().T / self.config.tau  # [B, num_instructions]
        positive = self.same_text[ids]
        log_pos = logits.masked_fill(~positive, float("-inf")).logsumexp(dim=1)
        return (logits.logsumexp(dim=1) - log_pos).mean()

    def loss(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The video-text contrastive loss (scalar)."""
        return self.forward(batch).loss

    def loss_terms(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The loss and its two directions, detached, by name."""
        return self.forward(batch).terms

    def represent(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``u [B, width]``: the class token after the final norm, before the projection."""
        video = batch["video"].to(self.video_proj.weight.device)
        return self.encode_video(video)

    @torch.no_grad()
    def scores(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Cosine similarity ``[B, num_instructions]`` of each clip to every instruction."""
        video = batch["video"].to(self.video_proj.weight.device)
        return self.video_embeddings(self.encode_video(video)) @ self.text_embeddings().T

    def predict(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Recognised instruction id ``[B]`` (int64): argmax over the whole instruction table."""
        return self.scores(batch).argmax(dim=1)

    def param_groups(self, lr: float) -> list[dict]:
        """Optimizer groups: the text encoder at ``text.lr_scale`` x lr when pretrained."""
        return param_groups_with_text(self, self.text, self.config.text, lr)


def viclip_vision_state_dict(
    state_dict: Mapping[str, torch.Tensor], prefix: str = "vision_encoder."
) -> dict[str, torch.Tensor]:
    """Rename a ViCLIP vision-encoder state dict to this module's ``video.*`` / ``video_proj`` keys.

    Source names (public ViCLIP, ``viclip_vision.VisionTransformer`` under ``vision_encoder.``):
    ``conv1.weight``, ``class_embedding``, ``positional_embedding``,
    ``temporal_positional_embedding``, ``ln_pre.*``, ``transformer.resblocks.N.{ln_1, attn.in_proj_*,
    attn.out_proj.*, ln_2, mlp.c_fc.*, mlp.c_proj.*}``, ``ln_post.*`` and ``proj`` ([width, out],
    used as ``x @ proj``, hence transposed here). Keys outside ``prefix`` (the text encoder, the
    temperature) are ignored. Shapes are not changed: the config must match the checkpoint.

    How a user with the checkpoint would load it (not run here: the weights cannot be fetched)::

        cfg = video_text_preset("paper")       # ViT-B/16; for ViT-L/14 set width=1024, depth=24,
                                               # heads=16, patch_size=14, embed_dim=768
        model = VideoTextModel(cfg, instructions, image_size=224)
        raw = torch.load("path/to/viclip.pth", map_location="cpu", weights_only=True)
        # If the file nests the weights (e.g. under "model"), pass that inner dict instead.
        load_viclip_vision(model, raw)         # raises on a missing key or a shape mismatch

    Set ``pixel_mean``/``pixel_std`` to the checkpoint's preprocessing. The text tower (CLIP's) is
    not mapped: use the ``huggingface`` text option with a local CLIP text model, or the learned
    encoder. What the tests show: the mapping covers every key of the paper-sized encoder with the
    right shapes, and on a small random ViCLIP-named state dict this module then reproduces a
    re-implementation of ViCLIP's vision forward pass. Nothing was run with the real weights.
    """
    out: dict[str, torch.Tensor] = {}
    direct = {
        "conv1.weight": "video.patch_embed.weight",
        "class_embedding": "video.class_token",
        "positional_embedding": "video.spatial_position",
        "temporal_positional_embedding": "video.temporal_position",
        "ln_pre.weight": "video.norm_pre.weight",
        "ln_pre.bias": "video.norm_pre.bias",
        "ln_post.weight": "video.norm_post.weight",
        "ln_post.bias": "video.norm_post.bias",
    }
    block = {
        "ln_1": "norm1",
        "attn.in_proj_weight": "attn.qkv.weight",
        "attn.in_proj_bias": "attn.qkv.bias",
        "attn.out_proj": "attn.out",
        "ln_2": "norm2",
        "mlp.c_fc": "mlp.fc1",
        "mlp.c_proj": "mlp.fc2",
    }
    for key, value in state_dict.items():
        if not key.startswith(prefix):
            continue
        name = key[len(prefix) :]
        if name in direct:
            out[direct[name]] = value
        elif name == "proj":
            out["video_proj.weight"] = value.t().contiguous()
        elif name.startswith("transformer.resblocks."):
            index, rest = name[len("transformer.resblocks.") :].split(".", 1)
            for src, dst in block.items():
                if rest == src or rest.startswith(src + "."):
                    out[f"video.blocks.{index}.{dst}{rest[len(src) :]}"] = value
                    break
    return out


def load_viclip_vision(
    model: VideoTextModel, state_dict: Mapping[str, torch.Tensor], prefix: str = "vision_encoder."
) -> list[str]:
    """Copy ViCLIP vision weights into ``model``; returns the model keys left untouched (text side).

    Raises ``UserInputError`` naming the key when one of the video encoder's weights is missing from
    the checkpoint or has another shape (then the config does not match the checkpoint).
    """
    mapped = viclip_vision_state_dict(state_dict, prefix)
    own = model.state_dict()
    # The colour tokens are not ViCLIP's (a CPU-scale stand-in); they stay as initialised.
    wanted = [
        k
        for k in own
        if (k.startswith("video.") and not k.startswith("video.colour."))
        or k == "video_proj.weight"
    ]
    missing = [k for k in wanted if k not in mapped]
    if missing:
        raise UserInputError(
            f"ViCLIP checkpoint: no weight for {missing[0]} ({len(missing)} missing); "
            f"is the key prefix {prefix!r} right?"
        )
    for key in wanted:
        if tuple(mapped[key].shape) != tuple(own[key].shape):
            raise UserInputError(
                f"ViCLIP checkpoint: {key} has shape {tuple(mapped[key].shape)}, the config needs "
                f"{tuple(own[key].shape)}; set resize_to/patch_size/num_frames/width/depth/"
                "embed_dim to the checkpoint's"
            )
    result = model.load_state_dict({k: mapped[k] for k in wanted}, strict=False)
    return sorted(result.missing_keys)
