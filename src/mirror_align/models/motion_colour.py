"""Motion-gated colour tokens: a CPU-scale stand-in for pretrained video features (not in ViCLIP).

Why: at CPU scale, trained from scratch on ~1800 clips, the AU ViT memorises clips instead of
learning which object is acted on, and that is what separates most of the 249 instructions
("stack the red blocks" vs "stack the green blocks"). A pretrained ViCLIP brings this from 10M
clips; here a few extra tokens give it directly. Measured (docs/models.md, DESIGN.md §6): a linear
classifier on colour histograms of the pixels that change reaches 73% over the 249 instructions,
whole-frame histograms 56%.

What: each frame is average-pooled to ``gate_size`` px; every pixel gets a soft assignment to
``bins`` learned colour prototypes (softmax of ``-beta * ||x - c_k||^2``, a learned soft colour
histogram); the assignments are pooled over pixels and frames with weights

* ``|f_t - f_0|`` summed over RGB (the change since the first frame): what moved or was uncovered;
* ``|f_T - f_t|``: what is still to change, which weights the final state;
* uniform over the first frame: the scene's colours, to compare the moving ones against.

Each pooled histogram ``[bins]`` is mapped by its own linear layer to a token of the ViT width.
The tokens join the ViT's sequence after the class token, are never masked, and carry no position
embedding (a learned type embedding tells them apart), so the class token (``u``) attends to them
through the unchanged joint space-time attention.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# The pooling weights, one token each, in this order.
GATES: tuple[str, ...] = ("since_start", "until_end", "first_frame")
# The optional fourth gate (``near_kernel`` > 0): around what moves between consecutive frames.
NEAR_GATE = "near_motion"
# Histogram mass below which a bin's mean position shrinks towards the image centre.
MOMENT_EPS = 0.01


def soft_colour_assignment(
    pixels: torch.Tensor, prototypes: torch.Tensor, log_beta: torch.Tensor
) -> torch.Tensor:
    """``pixels [..., 3]`` -> softmax over ``prototypes [K, 3]`` of ``-beta ||x - c||^2``, ``[..., K]``."""
    # ||x||^2 is the same for every prototype, so it cancels in the softmax; what is left is one
    # matmul instead of a [..., K, 3] difference tensor (5x less time with its backward, measured).
    logits = 2.0 * pixels @ prototypes.T - prototypes.square().sum(-1)
    return torch.softmax(log_beta.exp() * logits, dim=-1)


def gate_weights(frames: torch.Tensor, near_kernel: int = 0) -> dict[str, torch.Tensor]:
    """Pooling weights ``[B, T, g, g]`` per gate (each sums to 1 over T, g, g, up to ``1e-6``).

    ``frames``: normalised ``[B, 3, T, g, g]``. With ``near_kernel`` (odd, pixels at the gate
    resolution) > 0 a ``NEAR_GATE`` is added: the change since the previous frame, blurred by a
    ``near_kernel`` box, so that still pixels *next to* what moves count too (the target a gripper
    reaches for, which itself does not move). A clip with no change gets uniform weights (the
    ``1e-6`` floor), so its motion tokens equal its whole-clip histogram instead of NaN.
    """
    since = (frames - frames[:, :, :1]).abs().sum(1)
    until = (frames[:, :, -1:] - frames).abs().sum(1)
    first = torch.zeros_like(since)
    first[:, 0] = 1.0
    weights = dict(zip(GATES, (since, until, first), strict=True))
    if near_kernel > 0:
        step = (frames[:, :, 1:] - frames[:, :, :-1]).abs().sum(1)  # [B, T-1, g, g]
        pad = near_kernel // 2
        near = F.avg_pool2d(step, near_kernel, 1, pad, count_include_pad=False)
        weights[NEAR_GATE] = torch.cat([torch.zeros_like(since[:, :1]), near], dim=1)
    out = {}
    for name, w in weights.items():
        w = w + 1e-6
        out[name] = w / w.sum(dim=(1, 2, 3), keepdim=True)
    return out


class MotionColourTokens(nn.Module):
    """Normalised frames ``[B, 3, T, H, W]`` -> one token per gate, ``[B, len(self.gates), width]``."""

    def __init__(
        self, width: int, bins: int, gate_size: int, near_kernel: int = 0, *, moments: bool = False
    ) -> None:
        super().__init__()
        self.gate_size = gate_size
        self.near_kernel = near_kernel
        self.moments = moments
        self.gates = GATES + ((NEAR_GATE,) if near_kernel > 0 else ())
        # Prototypes spread over the normalised colour cube (about [-2, 2.6] per channel).
        g = torch.Generator().manual_seed(0)
        self.prototypes = nn.Parameter(torch.rand(bins, 3, generator=g) * 4.0 - 2.0)
        self.log_beta = nn.Parameter(torch.tensor(1.0))
        per_gate = bins * (1 + 2 * moments)  # the histogram, then each bin's mean x and y
        self.proj = nn.ModuleList(nn.Linear(per_gate, width) for _ in self.gates)
        # Tells the tokens apart (the owner's init_weights zeroes the biases of ``proj``).
        self.type_embedding = nn.Parameter(torch.randn(len(self.gates), width, generator=g) * 0.02)
        self.bins = bins

    def histograms(self, frames: torch.Tensor) -> torch.Tensor:
        """Pooled soft colour histograms ``[B, len(self.gates), bins]`` (each row sums to 1); with
        ``moments`` also each bin's weighted mean image x and y in [-1, 1] (x right, y down), as
        ``[B, len(self.gates), 3 * bins]`` (histogram, mean x, mean y)."""
        b, c, t, h, w = frames.shape
        if h != self.gate_size:
            x = F.adaptive_avg_pool2d(frames.reshape(b, c * t, h, w), self.gate_size)
            frames = x.view(b, c, t, self.gate_size, self.gate_size)
        weights = gate_weights(frames, self.near_kernel)  # name -> [B, T, g, g]
        assign = soft_colour_assignment(
            frames.permute(0, 2, 3, 4, 1), self.prototypes, self.log_beta
        )
        stacked = torch.stack([weights[name] for name in self.gates], dim=1)  # [B, G, T, g, g]
        assign = assign.flatten(1, 3)  # [B, P, K]
        hist = stacked.flatten(2) @ assign  # [B, G, P] @ [B, P, K] -> [B, G, K]
        if not self.moments:
            return hist
        # Where each colour is (first frame) or moved (motion gates): "the left tap", "the top
        # drawer" and "the middle of the rack" are positions relative to other objects, which a
        # histogram cannot tell apart. The mean shrinks to 0 for a bin with little mass (<< EPS).
        axis = torch.linspace(-1.0, 1.0, self.gate_size, device=frames.device)
        x_moment = (stacked * axis).flatten(2) @ assign
        y_moment = (stacked * axis[:, None]).flatten(2) @ assign
        mass = hist + MOMENT_EPS
        return torch.cat([hist, x_moment / mass, y_moment / mass], -1)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        feats = self.histograms(frames)
        # A uniform histogram maps to ones; the means are already O(1).
        feats = torch.cat([feats[..., : self.bins] * self.bins, feats[..., self.bins :]], -1)
        tokens = torch.stack([proj(feats[:, i]) for i, proj in enumerate(self.proj)], dim=1)
        return tokens + self.type_embedding
