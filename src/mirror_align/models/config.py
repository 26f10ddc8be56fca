"""Typed configs of the reference models, with the `tiny`, `quick` and `paper` presets.

* ``tiny``: for tests; a few optimisation steps take seconds.
* ``quick``: the CPU default (18 tasks at 64 px); sized so that one AU or EE training fits in
  minutes on 2 cores (``benchmarks/bench_models.py`` prints the measured samples/s).
* ``paper``: ViCLIP-B/16-like for AU and Table 5 of the supplement for EE (8 layers, embedding
  128, MLP 512, batch 192, learning rate 1.25e-5). GPU scale; not run in CI.

The configs are plain dataclasses so that ``mirror_align.config.config_from_dict`` can rebuild
them from a checkpoint's ``config.json``. Facts of the data (image size, cameras, workspace bounds)
are not fields here: :func:`mirror_align.models.factory.build_models` reads them from the
dataset's metadata and passes them to the models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mirror_align.errors import UserInputError

PRESETS = ("tiny", "quick", "paper")


@dataclass
class TextConfig:
    """The instruction encoder (``models/text.py``)."""

    # "learned": a transformer over word tokens, vocabulary built from the instruction table;
    # "huggingface" / "sentence-transformers": a pretrained model loaded from ``path`` (local only).
    kind: Literal["learned", "huggingface", "sentence-transformers"] = "learned"
    # Learned encoder: token embedding width.
    width: int = 64
    # Learned encoder: transformer layers over the word tokens.
    depth: int = 1
    # Learned encoder: attention heads (must divide ``width``).
    heads: int = 4
    # Learned encoder: MLP hidden width as a multiple of ``width``.
    mlp_ratio: float = 4.0
    # Pretrained encoder: a local directory holding the model and its tokenizer.
    path: str | None = None
    # Pretrained encoder: keep its weights fixed (features are then computed once and cached).
    freeze: bool = False
    # Pretrained encoder: learning-rate multiplier when fine-tuned (the paper: 5% of the video
    # encoder's); the learned encoder always trains at the full rate.
    lr_scale: float = 0.05
    # Pretrained encoder: tokenizer truncation length, in tokens.
    max_length: int = 64


@dataclass
class VideoTextConfig:
    """The AU model: a ViCLIP-like video ViT plus a text encoder (``models/video_text.py``)."""

    # Frame side in pixels the encoder works at: null works at the dataset's image size; a number
    # resizes every clip to it (the paper preset: 224, ViCLIP's input size).
    resize_to: int | None = None
    # Patch side in pixels (Conv3d kernel (1, p, p)); must divide the working frame side.
    patch_size: int = 16
    # Frames per clip the model sees. A model fact, not a data fact: clips are sampled from the
    # stored video (one frame per equal segment), which may hold any number of frames.
    num_frames: int = 8
    # Transformer width of the video encoder; also the size of the representation ``u``.
    width: int = 128
    # Video transformer layers.
    depth: int = 4
    # Attention heads (must divide ``width``).
    heads: int = 4
    # MLP hidden width as a multiple of ``width``.
    mlp_ratio: float = 4.0
    # MLP activation; ViCLIP/CLIP use "quick_gelu" (needed to reuse their weights).
    activation: Literal["gelu", "quick_gelu"] = "gelu"
    # Fraction of patch tokens dropped at random during training (ViCLIP: 0.9); none at evaluation.
    mask_ratio: float = 0.5
    # Size of the joint video-text space.
    embed_dim: int = 128
    # Batch-normalise the projected video embedding (no affine) before the cosine. Trained from
    # scratch, clips of one scene give nearly identical embeddings at initialisation, and the
    # contrastive loss first collapses them onto one point (loss stuck at log B); centring over the
    # batch removes that common part. Evaluation uses running statistics, which lag while the lr is
    # high; with a decaying schedule they catch up (measured: eval accuracy equal to batch-stats
    # accuracy at the end of a warm-up + decay run). Off for pretrained ViCLIP weights (paper).
    video_batch_norm: bool = True
    # Temperature of the video-text contrastive loss (supplement C.1: tau_vclip = 0.05).
    tau: float = 0.05
    # Gather features over DDP ranks so that every rank sees the global batch as negatives.
    gather_negatives: bool = False
    # Video-to-text direction against all instruction texts of the table instead of the batch's
    # (texts equal to the truth's are positives); text-to-video stays in-batch. Not ViCLIP's.
    table_negatives: bool = False
    # Per-channel RGB mean on the [0, 1] scale used to normalise frames.
    pixel_mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    # Per-channel RGB standard deviation on the [0, 1] scale used to normalise frames.
    pixel_std: tuple[float, ...] = (0.229, 0.224, 0.225)
    # NOT ViCLIP - a CPU-scale stand-in for pretrained video features (models/motion_colour.py,
    # docs/models.md): add motion-gated colour tokens (learned soft colour histograms of the pixels
    # that change) to the ViT's sequence. From scratch on ~1800 clips the plain ViT does not learn
    # which object is acted on; ViCLIP's 10M-clip pretraining would. Measured at 400 steps on val
    # (docs/models.md): 54.2% with vs 28.1% without. Off in the tiny and paper presets.
    colour_tokens: bool = True
    # Colour-token variant: learned colour prototypes (histogram bins).
    colour_bins: int = 32
    # Colour-token variant: side in pixels that frames are average-pooled to before gating.
    colour_gate_size: int = 16
    # Colour-token variant: odd box size (pixels at colour_gate_size) of a fourth token pooled
    # around what moves between frames, for targets that do not move themselves; 0: no such token.
    colour_near_kernel: int = 0
    # Colour-token variant: each token also carries every bin's weighted mean image position (x, y),
    # so that "left tap" vs "right tap" (where the motion is, relative to the scene) is visible.
    # Measured at the quick preset, 3 seeds (docs/models.md): val 59.4% vs 55.1% without, test
    # 55.8% vs 51.2%; turn_tap, open_drawer and put_money_in_safe gain most; +5% AU step time.
    colour_moments: bool = True
    # The instruction encoder.
    text: TextConfig = field(default_factory=TextConfig)
    # Suggested batch size at this scale (benchmarks use it; training uses train.batch_size).
    batch_size: int = 64
    # Peak learning rate of this model's parameters (the trainer's schedule scales it).
    lr: float = 1e-3


@dataclass
class PolicyConfig:
    """The EE model: an ARP-like keyframe policy on a multi-view transformer (``models/policy.py``)."""

    # Patch side in pixels; must divide the dataset's image size (images and heatmaps keep the
    # dataset's size, and the views are the dataset's cameras).
    patch_size: int = 8
    # Transformer width of the backbone and the action head.
    width: int = 64
    # Layers of attention within each view.
    view_depth: int = 2
    # Layers of attention across all views, the language tokens and the proprioception token.
    joint_depth: int = 2
    # Layers of the causal action transformer (self-attention over action tokens + cross-attention
    # to the visual and language tokens).
    action_depth: int = 2
    # Attention heads (must divide ``width``).
    heads: int = 4
    # MLP hidden width as a multiple of ``width``.
    mlp_ratio: float = 4.0
    # What the backbone reads: "virtual_views" (RVT/ARP: every camera's points fused into one
    # cloud and re-rendered orthographically over the workspace, models/virtual_views.py) or
    # "cameras" (the real camera images; no zoom stage, no location tokens).
    input: Literal["virtual_views", "cameras"] = "virtual_views"
    # Virtual viewpoints (keys of virtual_views.VIEWS: top, front, back, left, right); RVT uses
    # all five, three suffice to lift a point.
    views: tuple[str, ...] = ("top", "front", "left")
    # Hole-closing passes of the stage-1 renderer (each fills empty pixels from a 3x3 neighbour).
    view_fill: int = 1
    # RVT-2's zoom-in stage: the second render's box is this many times smaller than the workspace
    # per axis, centred on the first stage's point (<= 1: no second stage).
    zoom_factor: float = 4.0
    # Side in pixels of the zoomed render (0: image_size). At 64 px a 4x zoom of the 0.9 m
    # workspace gives 3.5 mm pixels, finer than the cameras' points and than the 1 cm that success
    # needs; 32 px (7 mm, sub-pixel after lifting) quarters the second stage's backbone cost.
    zoom_size: int = 0
    # Hole-closing passes of the zoomed render (its pixels are finer than the cameras' points).
    zoom_fill: int = 3
    # Training: standard deviation (metres, per axis) of the noise added to the true point to
    # centre the zoomed box, so the second stage learns to correct a first stage that is off.
    zoom_noise: float = 0.02
    # ARP's prompt features: the visual tokens at the (true or decoded) point in every view feed
    # the rotation, gripper and collision tokens.
    location_tokens: bool = True
    # Two 3x3 convolutions at full resolution before the patch embedding.
    conv_stem: bool = False
    # Channels of the convolutional stem.
    stem_width: int = 16
    # NOT ARP/RVT - a CPU-scale stand-in for pretrained visual features (docs/models.md): every
    # pixel gets a soft assignment to this many learned colour prototypes (0 = off), appended to
    # its channels before the patch embedding and the heatmap decoder's per-pixel skip, so that a
    # language-conditioned heatmap query can select "the red block" pixel by pixel.
    colour_bins: int = 0
    # Channels of the per-pixel features the position heatmaps are read from.
    heatmap_dim: int = 16
    # Standard deviation, in pixels, of the Gaussian heatmap target around the projected position.
    heatmap_sigma: float = 1.5
    # Rotation bin width in degrees; 5 gives the paper's 72 bins per Euler angle.
    rotation_resolution: float = 5.0
    # Workspace (x_min, y_min, z_min, x_max, y_max, z_max) in metres: normalises points and bounds
    # the candidate grid of the 3D lifting. null: the dataset's workspace_bounds (dataset.json);
    # a value here must equal them, or is needed when the dataset records none.
    workspace_bounds: tuple[float, ...] | None = None
    # Spacing in metres of the coarse candidate grid over the workspace used to lift heatmaps to 3D
    # (~10^4 points at 0.04: the dominant cost of decoding on a CPU).
    lift_grid_step: float = 0.04
    # Odd max-pool size, in pixels, that widens heatmap peaks for the coarse grid; it should cover
    # the image footprint of half a grid cell's diagonal.
    lift_pool: int = 5
    # Refinement rounds of the lifting; each searches a 7x7x7 grid a third as fine around the best.
    lift_refinements: int = 3
    # The instruction encoder.
    text: TextConfig = field(default_factory=TextConfig)
    # Suggested batch size at this scale (benchmarks use it; training uses train.batch_size).
    batch_size: int = 32
    # Peak learning rate of this model's parameters (the trainer's schedule scales it).
    lr: float = 1e-3

    @property
    def rotation_bins(self) -> int:
        """Bins per Euler angle (72 at 5 degrees)."""
        return round(360.0 / self.rotation_resolution)


def _check_divides(name: str, small: int, big: int, what: str) -> None:
    if small <= 0 or big % small:
        raise UserInputError(f"{name}: {small} must be positive and divide {what} ({big})")


def check_bounds(where: str, bounds: tuple[float, ...]) -> None:
    """Raise ``UserInputError`` unless ``bounds`` is (x_min, y_min, z_min, x_max, y_max, z_max)
    with every min < max (metres)."""
    if len(bounds) != 6 or any(bounds[i] >= bounds[i + 3] for i in range(3)):
        raise UserInputError(
            f"{where}: need (x_min, y_min, z_min, x_max, y_max, z_max) with min < max, got {tuple(bounds)}"
        )


def validate_text(cfg: TextConfig, where: str = "text") -> None:
    """Raise ``UserInputError`` naming the field when ``cfg`` is inconsistent."""
    if cfg.kind == "learned":
        _check_divides(f"{where}.heads", cfg.heads, cfg.width, f"{where}.width")
        if cfg.depth < 1:
            raise UserInputError(f"{where}.depth: must be >= 1, got {cfg.depth}")
    elif not cfg.path:
        raise UserInputError(f"{where}.path: kind={cfg.kind!r} needs a local model directory")


def validate_video_text(cfg: VideoTextConfig) -> None:
    """Raise ``UserInputError`` naming the field when ``cfg`` is inconsistent.

    That ``patch_size`` divides the dataset's image size is checked when the model is built
    (:func:`mirror_align.models.factory.data_facts`)."""
    if cfg.resize_to is not None:
        _check_divides("patch_size", cfg.patch_size, cfg.resize_to, "resize_to")
    if cfg.num_frames < 1:
        raise UserInputError(f"num_frames: must be >= 1, got {cfg.num_frames}")
    _check_divides("heads", cfg.heads, cfg.width, "width")
    if not 0.0 <= cfg.mask_ratio < 1.0:
        raise UserInputError(f"mask_ratio: must be in [0, 1), got {cfg.mask_ratio}")
    if cfg.tau <= 0:
        raise UserInputError(f"tau: must be positive, got {cfg.tau}")
    # colour_gate_size <= the frame side is checked where the side is known (VideoTextModel).
    if cfg.colour_bins < 1 or cfg.colour_gate_size < 1:
        raise UserInputError(
            f"colour_bins, colour_gate_size: need both >= 1, got {cfg.colour_bins}, "
            f"{cfg.colour_gate_size}"
        )
    if cfg.colour_near_kernel < 0 or (cfg.colour_near_kernel and cfg.colour_near_kernel % 2 == 0):
        raise UserInputError(
            f"colour_near_kernel: must be 0 (off) or a positive odd size, got {cfg.colour_near_kernel}"
        )
    if len(cfg.pixel_mean) != 3 or len(cfg.pixel_std) != 3:
        raise UserInputError("pixel_mean, pixel_std: need 3 values each (R, G, B)")
    validate_text(cfg.text)


def validate_policy(cfg: PolicyConfig) -> None:
    """Raise ``UserInputError`` naming the field when ``cfg`` is inconsistent (the dataset's
    facts are checked when the model is built, :func:`mirror_align.models.factory.data_facts`)."""
    _check_divides("heads", cfg.heads, cfg.width, "width")
    if abs(360.0 / cfg.rotation_resolution - cfg.rotation_bins) > 1e-6:
        raise UserInputError(f"rotation_resolution: {cfg.rotation_resolution} must divide 360")
    if cfg.workspace_bounds is not None:
        check_bounds("workspace_bounds", cfg.workspace_bounds)
    if cfg.lift_grid_step <= 0:
        raise UserInputError(f"lift_grid_step: must be positive, got {cfg.lift_grid_step}")
    if cfg.lift_pool < 1 or cfg.lift_pool % 2 == 0:
        raise UserInputError(f"lift_pool: must be a positive odd number, got {cfg.lift_pool}")
    _validate_views(cfg)
    validate_text(cfg.text)


def _validate_views(cfg: PolicyConfig) -> None:
    from mirror_align.models.virtual_views import VIEWS  # models/virtual_views imports no config

    if cfg.input not in ("virtual_views", "cameras"):
        raise UserInputError(f"input: unknown {cfg.input!r}; choose virtual_views or cameras")
    bad = [v for v in cfg.views if v not in VIEWS]
    if bad or len(cfg.views) < 2 or len(set(cfg.views)) != len(cfg.views):
        raise UserInputError(
            f"views: need 2+ distinct names of {', '.join(VIEWS)}, got {list(cfg.views)}"
        )
    if cfg.input == "cameras" and (cfg.zoom_factor > 1.0 or cfg.location_tokens):
        raise UserInputError(
            "input=cameras: the zoom stage and location tokens need virtual views; "
            "set zoom_factor=1 and location_tokens=false"
        )
    if min(cfg.view_fill, cfg.zoom_fill, cfg.zoom_size) < 0 or cfg.zoom_noise < 0:
        raise UserInputError("view_fill, zoom_fill, zoom_size, zoom_noise: must be >= 0")
    if cfg.zoom_size:
        _check_divides("patch_size", cfg.patch_size, cfg.zoom_size, "zoom_size")


def _check_preset(name: str) -> None:
    if name not in PRESETS:
        raise UserInputError(f"model preset: unknown {name!r}; choose one of {', '.join(PRESETS)}")


def video_text_preset(name: str) -> VideoTextConfig:
    """The AU config of preset ``name`` (tiny, quick or paper)."""
    _check_preset(name)
    if name == "tiny":
        return VideoTextConfig(
            patch_size=8,
            num_frames=4,
            width=32,
            depth=2,
            heads=2,
            mask_ratio=0.5,
            embed_dim=32,
            colour_tokens=False,
            text=TextConfig(width=32, depth=1, heads=2),
            batch_size=8,
            lr=1e-3,
        )
    if name == "quick":
        return VideoTextConfig()
    # ViCLIP-B/16: 224 px, patch 16, 8 frames, width 768, 12 layers, 12 heads, 512-d joint space,
    # 90% masking in training, video lr 1e-5. The paper fine-tunes CLIP's pretrained text encoder at
    # 5% of that lr: with a local copy set text.kind="huggingface", text.path, text.lr_scale=0.05.
    # Without one, a learned 12-layer text transformer of CLIP's width stands in.
    return VideoTextConfig(
        resize_to=224,
        patch_size=16,
        num_frames=8,
        width=768,
        depth=12,
        heads=12,
        activation="quick_gelu",
        mask_ratio=0.9,
        embed_dim=512,
        video_batch_norm=False,
        colour_tokens=False,  # pretrained ViCLIP features need no stand-in
        text=TextConfig(width=512, depth=12, heads=8),
        batch_size=192,
        lr=1e-5,
    )


def policy_preset(name: str) -> PolicyConfig:
    """The EE config of preset ``name`` (tiny, quick or paper)."""
    _check_preset(name)
    if name == "tiny":
        return PolicyConfig(
            patch_size=8,
            width=32,
            view_depth=1,
            joint_depth=1,
            action_depth=1,
            heads=2,
            heatmap_dim=8,
            lift_pool=3,
            text=TextConfig(width=32, depth=1, heads=2),
            batch_size=8,
            lr=1e-3,
        )
    if name == "quick":
        # Zoomed views at half resolution: 7 mm pixels over the 4x zoomed box, and the second
        # stage's backbone costs a quarter of the first's (benchmarks/bench_models.py). The colour
        # code (colour_bins, not ARP) helped on val but cost ~1.5x the step time: off (docs/models.md).
        # lr 4e-3: the EE underfits in 1500 steps (train and val keyframe errors agree). Val at step
        # 1500, seed 0 (docs/models.md): within 2 cm 39.2 / 49.8 / 54.1 / 57.0 / 55.3% at lr 5e-4 /
        # 1e-3 / 2e-3 / 4e-3 / 8e-3 (8e-3 also loses 4 points of gripper accuracy).
        return PolicyConfig(zoom_size=32, lr=4e-3)
    # Supplement Table 5: 8 backbone layers (4 within views + 4 across), embedding 128, MLP 512,
    # 128 px RGB-D from 4 cameras, batch 96*2, lr 1.25e-5 (LAMB, cosine). The action-head depth is
    # not given in the paper; 4 is our choice.
    return PolicyConfig(
        patch_size=8,
        width=128,
        view_depth=4,
        joint_depth=4,
        action_depth=4,
        heads=8,
        mlp_ratio=4.0,
        heatmap_dim=32,
        heatmap_sigma=2.0,
        lift_pool=7,
        text=TextConfig(width=128, depth=2, heads=8),
        batch_size=192,
        lr=1.25e-5,
    )
