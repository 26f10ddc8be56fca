"""Motion-gated colour tokens (the AU's CPU-scale stand-in for pretrained video features)."""

import dataclasses

import pytest
import torch

from mirror_align.errors import UserInputError
from mirror_align.models import VideoTextModel, video_text_preset
from mirror_align.models.motion_colour import GATES, NEAR_GATE, MotionColourTokens, gate_weights
from mirror_align.models.synthetic import random_au_batch

TABLE = ["stack 2 red blocks", "stack 2 green blocks", "open the top drawer"]


# One torch thread in this module (tests/conftest.py says why).
pytestmark = pytest.mark.usefixtures("one_thread")


def clip_with_moving_square(colour: tuple[float, float, float], frames: int = 4) -> torch.Tensor:
    """``[1, 3, T, 16, 16]``: a grey scene in which a 4x4 square of ``colour`` moves right."""
    x = torch.full((1, 3, frames, 16, 16), 0.5)
    for t in range(frames):
        x[0, :, t, 6:10, 2 + 3 * t : 6 + 3 * t] = torch.tensor(colour).view(3, 1, 1)
    return x


def test_gate_weights_follow_what_changes():
    x = clip_with_moving_square((1.0, 0.0, 0.0))
    w = gate_weights(x)
    assert set(w) == set(GATES)
    for value in w.values():
        assert value.shape == (1, 4, 16, 16)
        assert torch.allclose(value.sum(dim=(1, 2, 3)), torch.ones(1))
    since = w["since_start"][0]
    assert float(since[0].sum()) < 1e-3  # nothing has changed in the first frame
    # Pixels away from the square's path never change: (almost) no weight there.
    assert float(since[:, :6].sum() + since[:, 10:].sum()) < 1e-3
    assert float(w["first_frame"][0, 1:].sum()) < 1e-5
    # A still clip has no change: uniform weights, not NaN.
    still = gate_weights(torch.full((2, 3, 3, 4, 4), 0.3))["since_start"]
    assert torch.allclose(still, torch.full_like(still, 1 / 48))


def test_near_gate_reaches_still_pixels_next_to_motion():
    x = clip_with_moving_square((1.0, 0.0, 0.0))
    w = gate_weights(x, near_kernel=3)
    assert set(w) == {*GATES, NEAR_GATE}
    near, since = w[NEAR_GATE][0], w["since_start"][0]
    # Rows 5 and 10 border the square's path (rows 6-9) and never change themselves.
    assert float(since[:, [5, 10]].sum()) < 1e-3 < float(near[:, [5, 10]].sum())
    assert float(near[:, :4].sum() + near[:, 12:].sum()) < 1e-3  # far rows: nothing
    assert MotionColourTokens(8, 4, 16, near_kernel=3)(x).shape == (1, len(GATES) + 1, 8)


def test_motion_histogram_sees_the_colour_of_what_moves():
    torch.manual_seed(0)
    module = MotionColourTokens(width=8, bins=2, gate_size=16)
    with torch.no_grad():  # one red-like and one green-like prototype, sharp assignment
        module.prototypes.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
        module.log_beta.fill_(3.0)
    red = module.histograms(clip_with_moving_square((1.0, 0.0, 0.0)))
    green = module.histograms(clip_with_moving_square((0.0, 1.0, 0.0)))
    assert red.shape == (1, len(GATES), 2)
    assert torch.allclose(red.sum(-1), torch.ones(1, len(GATES)))
    motion = GATES.index("since_start")
    # Changing pixels are the square's colour or the grey it uncovers (equidistant from both
    # prototypes), so the moving colour wins the motion histogram.
    assert red[0, motion, 0] > 0.6 and green[0, motion, 1] > 0.6
    tokens = module(clip_with_moving_square((1.0, 0.0, 0.0)))
    assert tokens.shape == (1, len(GATES), 8)


def square_in_column(colour: tuple[float, float, float], col: int) -> torch.Tensor:
    """``[1, 3, 4, 16, 16]``: a 3x3 square of ``colour`` that moves down in columns col..col+2."""
    x = torch.full((1, 3, 4, 16, 16), 0.5)
    for t in range(4):
        x[0, :, t, 3 * t : 3 * t + 3, col : col + 3] = torch.tensor(colour).view(3, 1, 1)
    return x


def test_colour_moments_tell_where_a_colour_moves():
    module = MotionColourTokens(width=8, bins=3, gate_size=16, moments=True)
    with torch.no_grad():  # red, green and a prototype no pixel is near
        module.prototypes.copy_(
            torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [-9.0, -9.0, -9.0]])
        )
        module.log_beta.fill_(3.0)
    left = module.histograms(square_in_column((1.0, 0.0, 0.0), 1))
    right = module.histograms(square_in_column((1.0, 0.0, 0.0), 12))
    assert left.shape == (1, len(GATES), 9)  # histogram, mean x, mean y per bin
    # The histograms alone cannot tell the two clips apart...
    assert torch.allclose(left[..., :3], right[..., :3], atol=1e-4)
    # ...the red bin's mean x can: image x in [-1, 1], column 2 is at -0.73, column 13 at +0.73.
    motion, red_x, red_y, empty_x = GATES.index("since_start"), 3, 6, 5
    assert left[0, motion, red_x] < -0.5 and right[0, motion, red_x] > 0.5
    # The same square moving along rows instead of columns: the mean y tells top from bottom.
    top = module.histograms(square_in_column((1.0, 0.0, 0.0), 1).transpose(-1, -2))
    bottom = module.histograms(square_in_column((1.0, 0.0, 0.0), 12).transpose(-1, -2))
    assert top[0, motion, red_y] < -0.5 and bottom[0, motion, red_y] > 0.5
    # A bin with no mass has its mean shrunk to the centre instead of dividing by ~0.
    assert left[0, :, empty_x].abs().max() < 1e-3
    assert module(square_in_column((1.0, 0.0, 0.0), 1)).shape == (1, len(GATES), 8)


def test_colour_tokens_switch_changes_outputs_but_not_u_shape():
    b = random_au_batch(4, len(TABLE), 4, 32, torch.Generator().manual_seed(0))
    outputs = {}
    for on, moments in ((False, False), (True, False), (True, True)):
        torch.manual_seed(0)
        cfg = dataclasses.replace(
            video_text_preset("tiny"), colour_tokens=on, colour_gate_size=8, colour_moments=moments
        )
        model = VideoTextModel(cfg, TABLE, image_size=32).eval()
        assert (model.video.colour is not None) == on
        if on:  # the moments add each bin's mean x and y to the token's input
            assert model.video.colour.proj[0].in_features == cfg.colour_bins * (3 if moments else 1)
        outputs[on, moments] = model.represent(b)
        assert outputs[on, moments].shape == (4, cfg.width)
    assert not torch.allclose(outputs[False, False], outputs[True, False])
    assert not torch.allclose(outputs[True, False], outputs[True, True])
    # The tokens take part in training: the loss reaches their parameters.
    model.train()
    model.loss(b).backward()
    assert model.video.colour.prototypes.grad.abs().sum() > 0
    assert model.video.colour.proj[0].weight.grad.abs().sum() > 0


def test_bad_colour_config_names_the_fields():
    cfg = dataclasses.replace(video_text_preset("tiny"), colour_tokens=True, colour_gate_size=64)
    with pytest.raises(UserInputError, match="colour_gate_size"):
        VideoTextModel(cfg, TABLE, image_size=32)
    cfg = dataclasses.replace(video_text_preset("tiny"), colour_tokens=True, colour_near_kernel=4)
    with pytest.raises(UserInputError, match="colour_near_kernel"):
        VideoTextModel(cfg, TABLE, image_size=32)


def test_table_negatives_treat_identical_texts_as_one_positive():
    table = ["push the red button", "push the red button", "open the top drawer"]
    torch.manual_seed(0)
    cfg = dataclasses.replace(video_text_preset("tiny"), table_negatives=True)
    model = VideoTextModel(cfg, table, image_size=32)
    z_v = torch.nn.functional.normalize(torch.randn(2, cfg.embed_dim), dim=-1)
    ids = torch.tensor([0, 2])
    logits = z_v @ model.text_embeddings().T / cfg.tau
    probs = logits.softmax(dim=1)
    # Clip 0's positives are ids 0 and 1 (the same text); clip 1's only id 2.
    expected = -(torch.log(probs[0, 0] + probs[0, 1]) + torch.log(probs[1, 2])) / 2
    assert torch.allclose(model.table_loss(z_v, ids), expected, atol=1e-5)
    b = random_au_batch(4, len(table), 4, 32, torch.Generator().manual_seed(0))
    out = model(b)
    assert torch.isfinite(out.loss) and set(out.terms) == {"video_text", "v2t", "t2v"}
    assert torch.allclose(out.loss, 0.5 * (out.terms["v2t"] + out.terms["t2v"]), atol=1e-5)
