"""The AU video-text model: protocol, training behaviour, checkpoints and the ViCLIP key mapping."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from mirror_align.errors import UserInputError
from mirror_align.models import (
    VideoTextConfig,
    VideoTextModel,
    load_viclip_vision,
    viclip_vision_state_dict,
    video_text_preset,
)
from mirror_align.models.synthetic import random_au_batch

TABLE = [
    "open the top drawer",
    "push the maroon button, then push the green button",
    "push the green button, then push the maroon button",
    "stack 2 red blocks",
]


# One torch thread in this module (tests/conftest.py says why).
pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_model(seed: int = 0, **changes) -> VideoTextModel:
    torch.manual_seed(seed)
    return VideoTextModel(
        dataclasses.replace(video_text_preset("tiny"), **changes), TABLE, image_size=32
    )


def batch(n: int = 6, seed: int = 0, frames: int = 4, size: int = 32) -> dict:
    return random_au_batch(n, len(TABLE), frames, size, torch.Generator().manual_seed(seed))


def test_representation_protocol_and_shapes():
    model = tiny_model()
    b = batch()
    out = model(b)
    assert out.loss.ndim == 0 and out.loss.requires_grad
    assert out.representation.shape == (6, model.representation_dim)
    assert set(out.terms) == {"video_text", "v2t", "t2v"}
    assert model.loss(b).ndim == 0
    model.eval()
    u = model.represent(b)
    assert u.shape == (6, 32) and u.dtype == torch.float32
    # u is the class token after the final LayerNorm (unit gain at init): zero mean per row.
    assert torch.allclose(u.mean(dim=1), torch.zeros(6), atol=1e-5)
    scores = model.scores(b)
    assert scores.shape == (6, len(TABLE)) and scores.abs().max() <= 1.0 + 1e-5
    pred = model.predict(b)
    assert pred.dtype == torch.int64 and torch.equal(pred, scores.argmax(1))


def test_masking_only_in_training():
    model = tiny_model()
    b = batch()
    model.eval()
    assert torch.equal(model.represent(b), model.represent(b))
    model.train()
    assert not torch.allclose(model.represent(b), model.represent(b))


def test_a_training_batch_of_one_uses_running_statistics():
    model = tiny_model(mask_ratio=0.0)
    b = batch(n=1)
    loss = model.loss(b)
    assert torch.isfinite(loss)
    u = model.represent(b)
    in_training = model.video_embeddings(u)
    model.eval()
    assert torch.allclose(in_training, model.video_embeddings(u))


def test_clips_of_other_length_and_size_are_resampled():
    model = tiny_model().eval()
    u = model.represent(batch(frames=7, size=48))
    assert u.shape == (6, 32)
    with pytest.raises(UserInputError, match="video"):
        model.represent({"video": torch.zeros(2, 4, 32, 32, dtype=torch.uint8)})
    with pytest.raises(UserInputError, match="uint8"):
        model.represent({"video": torch.zeros(2, 4, 32, 32, 3)})


def test_instructions_sharing_a_batch_are_positives():
    model = tiny_model().eval()
    b = batch(n=4)
    b["instruction_id"] = torch.tensor([1, 1, 2, 2])
    loss = model.loss(b)
    # Recompute by hand: for each clip, the mean over its positives of -log softmax.
    u = model.represent(b)
    zv = model.video_embeddings(u)
    zt = model.text_embeddings(b["instruction_id"])
    logits = zv @ zt.T / model.config.tau
    pos = (b["instruction_id"][:, None] == b["instruction_id"][None]).float()
    v2t = -((logits.log_softmax(1) * pos).sum(1) / pos.sum(1)).mean()
    t2v = -((logits.log_softmax(0) * pos).sum(0) / pos.sum(0)).mean()
    assert torch.allclose(loss, 0.5 * (v2t + t2v), atol=1e-5)


def test_one_step_reduces_the_loss_on_a_fixed_batch():
    model = tiny_model(mask_ratio=0.0)
    b = batch(n=8)
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)
    before = model.loss(b)
    opt.zero_grad()
    before.backward()
    opt.step()
    assert model.loss(b).item() < before.item()


def test_overfits_four_clips_to_full_recognition():
    model = tiny_model()
    b = batch(n=4, seed=1)
    b["instruction_id"] = torch.arange(4)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    accuracy, steps = 0.0, 0
    while accuracy < 1.0 and steps < 400:
        model.train()
        for _ in range(10):
            loss = model.loss(b)
            opt.zero_grad()
            loss.backward()
            opt.step()
        steps += 10
        model.eval()
        accuracy = (model.predict(b) == b["instruction_id"]).float().mean().item()
    assert accuracy == 1.0, f"recognition {accuracy} after {steps} steps"


def test_safetensors_round_trip_gives_identical_outputs(tmp_path):
    model = tiny_model(seed=1).eval()
    path = tmp_path / "au.safetensors"
    save_file(model.state_dict(), str(path))
    other = tiny_model(seed=2).eval()
    b = batch()
    assert not torch.allclose(other.represent(b), model.represent(b))
    other.load_state_dict(load_file(str(path)))
    assert torch.equal(other.represent(b), model.represent(b))
    assert torch.equal(other.scores(b), model.scores(b))


def test_param_groups_cover_every_parameter_once():
    model = tiny_model()
    groups = model.param_groups(1e-3)
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))


# ---------------------------------------------------------------- ViCLIP key mapping


def viclip_state_dict(width, layers, patch, image, frames, out_dim, make=torch.randn):
    """A state dict with the public ViCLIP vision-encoder key names (values from ``make``)."""
    n = (image // patch) ** 2 + 1
    sd = {
        "vision_encoder.conv1.weight": make(width, 3, 1, patch, patch),
        "vision_encoder.class_embedding": make(width),
        "vision_encoder.positional_embedding": make(n, width),
        "vision_encoder.temporal_positional_embedding": make(1, frames, width),
        "vision_encoder.ln_pre.weight": make(width),
        "vision_encoder.ln_pre.bias": make(width),
        "vision_encoder.ln_post.weight": make(width),
        "vision_encoder.ln_post.bias": make(width),
        "vision_encoder.proj": make(width, out_dim),
        "text_encoder.token_embedding.weight": make(10, out_dim),
        "temp": make(()),
    }
    for i in range(layers):
        p = f"vision_encoder.transformer.resblocks.{i}."
        sd |= {
            p + "ln_1.weight": make(width),
            p + "ln_1.bias": make(width),
            p + "attn.in_proj_weight": make(3 * width, width),
            p + "attn.in_proj_bias": make(3 * width),
            p + "attn.out_proj.weight": make(width, width),
            p + "attn.out_proj.bias": make(width),
            p + "ln_2.weight": make(width),
            p + "ln_2.bias": make(width),
            p + "mlp.c_fc.weight": make(4 * width, width),
            p + "mlp.c_fc.bias": make(4 * width),
            p + "mlp.c_proj.weight": make(width, 4 * width),
            p + "mlp.c_proj.bias": make(width),
        }
    return sd


def viclip_reference(sd, frames, heads):
    """ViCLIP's vision forward pass written from its definition: returns (class token, x @ proj)."""

    def w(key):
        return sd["vision_encoder." + key]

    patch = w("conv1.weight").shape[-1]
    x = F.conv3d(frames, w("conv1.weight"), stride=(1, patch, patch))
    b, c, t, h, wd = x.shape
    x = x.permute(0, 2, 3, 4, 1).reshape(b * t, h * wd, c)
    x = torch.cat([w("class_embedding").expand(b * t, 1, c), x], dim=1) + w("positional_embedding")
    cls = x[:b, :1]
    x = (
        x[:, 1:].reshape(b, t, h * wd, c).transpose(1, 2)
        + w("temporal_positional_embedding")[:, None]
    )
    x = torch.cat([cls, x.reshape(b, h * wd * t, c)], dim=1)
    x = F.layer_norm(x, (c,), w("ln_pre.weight"), w("ln_pre.bias"))
    layers = len({k.split(".")[3] for k in sd if ".resblocks." in k})
    for i in range(layers):

        def r(name, i=i):
            return w(f"transformer.resblocks.{i}.{name}")

        attn = nn.MultiheadAttention(c, heads, batch_first=True)
        attn.load_state_dict(
            {
                "in_proj_weight": r("attn.in_proj_weight"),
                "in_proj_bias": r("attn.in_proj_bias"),
                "out_proj.weight": r("attn.out_proj.weight"),
                "out_proj.bias": r("attn.out_proj.bias"),
            }
        )
        y = F.layer_norm(x, (c,), r("ln_1.weight"), r("ln_1.bias"))
        x = x + attn(y, y, y, need_weights=False)[0]
        y = F.layer_norm(x, (c,), r("ln_2.weight"), r("ln_2.bias"))
        y = F.linear(y, r("mlp.c_fc.weight"), r("mlp.c_fc.bias"))
        y = y * torch.sigmoid(1.702 * y)
        x = x + F.linear(y, r("mlp.c_proj.weight"), r("mlp.c_proj.bias"))
    u = F.layer_norm(x[:, 0], (c,), w("ln_post.weight"), w("ln_post.bias"))
    return u, u @ w("proj")


def test_viclip_weights_give_viclips_outputs():
    torch.manual_seed(0)
    sd = viclip_state_dict(width=32, layers=2, patch=8, image=32, frames=4, out_dim=16)
    sd = {k: v * 0.1 if v.ndim >= 2 else v for k, v in sd.items()}
    cfg = VideoTextConfig(
        patch_size=8, num_frames=4, width=32, depth=2, heads=4,
        activation="quick_gelu", mask_ratio=0.9, embed_dim=16, video_batch_norm=False,
        pixel_mean=(0.5, 0.5, 0.5), pixel_std=(0.5, 0.5, 0.5), colour_tokens=False,
    )  # fmt: skip
    model = VideoTextModel(cfg, TABLE, image_size=32)
    untouched = load_viclip_vision(model, sd)
    assert untouched and all(k.startswith(("text.", "text_proj")) for k in untouched)
    model.eval()
    b = batch(n=3)
    u_ref, proj_ref = viclip_reference(sd, model.frames(b["video"]), heads=4)
    u = model.represent(b)
    assert torch.allclose(u, u_ref, atol=1e-4)
    assert torch.allclose(model.video_proj(u), proj_ref, atol=1e-4)


def test_viclip_mapping_covers_the_paper_sized_encoder():
    cfg = video_text_preset("paper")
    with torch.device("meta"):
        model = VideoTextModel(cfg, TABLE, image_size=128)  # clips resized to cfg.resize_to
        sd = viclip_state_dict(
            cfg.width, cfg.depth, cfg.patch_size, cfg.resize_to, cfg.num_frames, cfg.embed_dim,
            make=torch.empty,
        )  # fmt: skip
    mapped = viclip_vision_state_dict(sd)
    own = model.state_dict()
    wanted = {k for k in own if k.startswith("video.") or k == "video_proj.weight"}
    assert set(mapped) == wanted
    assert all(mapped[k].shape == own[k].shape for k in wanted)
    assert sum(own[k].numel() for k in wanted) > 85_000_000  # ViT-B/16 scale


def test_viclip_loading_rejects_a_mismatched_config():
    sd = viclip_state_dict(width=32, layers=2, patch=8, image=32, frames=8, out_dim=16)
    model = VideoTextModel(
        VideoTextConfig(patch_size=8, num_frames=4, width=32, depth=2, heads=4, embed_dim=16),
        TABLE,
        image_size=32,
    )  # fmt: skip
    with pytest.raises(UserInputError, match="temporal_position"):
        load_viclip_vision(model, sd)
    with pytest.raises(UserInputError, match="prefix"):
        load_viclip_vision(model, sd, prefix="visual.")
