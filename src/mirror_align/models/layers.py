"""Transformer building blocks shared by the reference models.

Pre-norm blocks on ``[B, S, D]`` sequences. Attention uses a fused ``qkv`` linear whose weight
rows are ``[q; k; v]``, the layout of ``nn.MultiheadAttention.in_proj_weight``, so CLIP/ViCLIP
weights map onto it without reshuffling.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class ModelOutput:
    """One forward pass of a reference model.

    ``loss`` is the scalar training loss (with gradient); ``terms`` holds its parts, detached, by
    name; ``representation`` is the ``[B, D]`` feature the aligner reads (``u`` or ``e``).
    """

    loss: torch.Tensor
    representation: torch.Tensor
    terms: dict[str, torch.Tensor] = field(default_factory=dict)


class QuickGELU(nn.Module):
    """CLIP's sigmoid approximation of GELU; needed for ViCLIP/CLIP weights to mean the same."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


def make_activation(name: str) -> nn.Module:
    """``gelu`` or ``quick_gelu``."""
    return QuickGELU() if name == "quick_gelu" else nn.GELU()


class Mlp(nn.Module):
    """Linear - activation - Linear."""

    def __init__(self, dim: int, hidden: int, activation: str = "gelu") -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = make_activation(activation)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SelfAttention(nn.Module):
    """Multi-head self-attention with a fused qkv projection."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, causal: bool = False
    ) -> torch.Tensor:
        """``x [B, S, D]``; ``mask`` broadcastable to ``[B, H, S, S]``, True = may attend."""
        b, s, d = x.shape
        q, k, v = self.qkv(x).view(b, s, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
        return self.out(y.transpose(1, 2).reshape(b, s, d))


class CrossAttention(nn.Module):
    """Multi-head attention from queries ``x`` to a memory sequence."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(
        self, x: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``x [B, S, D]``, ``memory [B, M, D]``; ``mask`` broadcastable to ``[B, H, S, M]``."""
        b, s, d = x.shape
        m = memory.shape[1]
        hd = d // self.heads
        q = self.q(x).view(b, s, self.heads, hd).transpose(1, 2)
        k, v = self.kv(memory).view(b, m, 2, self.heads, hd).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(y.transpose(1, 2).reshape(b, s, d))


class Block(nn.Module):
    """Pre-norm transformer encoder block: self-attention then MLP, each with a residual."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, activation: str = "gelu"):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), activation)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, causal: bool = False
    ) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), mask, causal)
        return x + self.mlp(self.norm2(x))


class DecoderBlock(nn.Module):
    """Causal self-attention over the sequence, cross-attention to a memory, then MLP."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, activation: str = "gelu"):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads)
        self.norm_cross = nn.LayerNorm(dim)
        self.cross = CrossAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), activation)

    def forward(
        self, x: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``x [B, S, D]`` (causal), ``memory [B, M, D]``, ``memory_mask [B, 1, 1, M]`` or None."""
        x = x + self.attn(self.norm1(x), causal=True)
        x = x + self.cross(self.norm_cross(x), memory, memory_mask)
        return x + self.mlp(self.norm2(x))


def init_weights(module: nn.Module) -> None:
    """Fan-in scaled normal weights (std = fan_in^-1/2, as CLIP), zero biases, unit LayerNorms.

    Not ViT's fixed std 0.02: that value suits width ~768; at widths 32-128 it makes every block's
    output ~20x smaller than its input, so a class token barely depends on the clip at
    initialisation (measured: cosine 0.99998 between the embeddings of different clips), and the
    contrastive loss then collapses all clips onto one embedding (loss stuck at log B).
    """
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.Conv3d)):
            fan_in = m.weight[0].numel()
            nn.init.trunc_normal_(
                m.weight, std=fan_in**-0.5, a=-2 * fan_in**-0.5, b=2 * fan_in**-0.5
            )
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.trunc_normal_(m.weight, std=0.02)


def batch_to_device(batch: dict, device: torch.device) -> dict:
    """The tensors of ``batch`` on ``device`` (other values untouched)."""
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def row_normals(rows: torch.Tensor, count: int = 3) -> torch.Tensor:
    """``count`` standard normals per row of ``rows [B, K]``, each a pure function of its row.

    The zoom centre's training noise is drawn this way (from the action and the policy's step
    counter), not from torch's global RNG, so that a sample's loss depends only on the sample and
    the step: a DDP rank then computes exactly what one process computes for the same rows, and a
    resumed run repeats its curve. A sine hash gives uniforms, Box-Muller turns them into normals.
    """
    x = rows.detach().double().flatten(1)
    freqs = torch.arange(1, 2 * count * x.shape[1] + 1, dtype=x.dtype, device=x.device)
    weights = (freqs * 12.9898 + 78.233).sin().view(x.shape[1], 2 * count) * 1e3
    u = ((x @ weights).sin() * 43758.5453).frac().abs().clamp(1e-7, 1 - 1e-7)
    radius = (-2.0 * u[:, :count].log()).sqrt()
    return (radius * (2.0 * torch.pi * u[:, count:]).cos()).float()


def patch_embed(images: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``conv`` (kernel = stride = p, no padding) applied to ``images [N, C, H, W]`` as one matmul:
    ``[N, (H/p) * (W/p), D]`` patch tokens in row-major order, equal to
    ``conv(images).flatten(2).transpose(1, 2)`` up to float rounding.

    Why: on a CPU, oneDNN's strided convolution and its input gradient cost ~10x this reshape plus
    matmul (measured with torch.profiler on the EE's training step: 66 ms vs ~8 ms per call once the
    input needs a gradient). The weights stay in the ``nn.Conv2d``, so checkpoints are unchanged.
    """
    n, c, h, w = images.shape
    p = conv.kernel_size[0]
    patches = images.reshape(n, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
    patches = patches.reshape(n, (h // p) * (w // p), c * p * p)
    return F.linear(patches, conv.weight.reshape(conv.out_channels, -1), conv.bias)
