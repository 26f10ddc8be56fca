"""The EE's per-pixel colour code (``ee.colour_bins``, models/mvt.py): shapes, empty pixels, and
that a heatmap query can single out one colour that a linear score of RGB cannot; and the patch
embedding computed as a matmul (models/layers.py)."""

import dataclasses

import pytest
import torch

from mirror_align.constants import WORKSPACE_BOUNDS
from mirror_align.models import KeyframePolicy, policy_preset
from mirror_align.models.layers import patch_embed
from mirror_align.models.mvt import OCCUPANCY, VIRTUAL_CHANNELS, PixelColours
from mirror_align.models.synthetic import random_ee_batch

pytestmark = pytest.mark.usefixtures("one_thread")


def views(rgb: torch.Tensor, occupied: torch.Tensor) -> torch.Tensor:
    """``[1, 1, 8, H, W]`` virtual-view pixels with the given RGB ``[3, H, W]`` and occupancy."""
    pixels = torch.zeros(1, 1, VIRTUAL_CHANNELS, *rgb.shape[1:])
    pixels[0, 0, :3] = rgb * occupied
    pixels[0, 0, OCCUPANCY] = occupied
    return pixels


def test_assignments_are_appended_sum_to_one_and_are_zero_on_empty_pixels():
    torch.manual_seed(0)
    occupied = (torch.rand(5, 6) > 0.3).float()
    pixels = views(torch.rand(3, 5, 6) * 2 - 1, occupied)
    out = PixelColours(bins=7, occupancy_channel=OCCUPANCY)(pixels)
    assert out.shape == (1, 1, VIRTUAL_CHANNELS + 7, 5, 6)
    assert torch.equal(out[:, :, :VIRTUAL_CHANNELS], pixels)
    total = out[0, 0, VIRTUAL_CHANNELS:].sum(0)
    torch.testing.assert_close(total, occupied)


def test_a_mid_cube_colour_is_separable_from_its_neighbours_only_through_the_code():
    # Grey sits between black and white: no linear score of RGB puts it above both, but one
    # prototype placed on it does.
    colours = torch.tensor([[-1.0, -1.0, -1.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    rgb = colours.T.reshape(3, 1, 3)
    module = PixelColours(bins=3, occupancy_channel=OCCUPANCY)
    with torch.no_grad():
        module.prototypes.copy_(colours)
        module.log_beta.fill_(2.3)
    code = module(views(rgb, torch.ones(1, 3)))[0, 0, VIRTUAL_CHANNELS:, 0]  # [bins, 3 pixels]
    assert code[1].argmax() == 1  # the grey prototype's channel peaks on the grey pixel
    for w in torch.randn(200, 3):  # ... which a linear RGB score never does
        score = w @ colours.T
        assert not (score[1] > score[0] and score[1] > score[2])


def test_policy_with_colour_bins_trains_its_prototypes():
    config = dataclasses.replace(policy_preset("tiny"), colour_bins=8)
    torch.manual_seed(0)
    policy = KeyframePolicy(
        config, ["a", "b"], image_size=32, num_views=4, workspace_bounds=WORKSPACE_BOUNDS
    )
    batch = random_ee_batch(4, 2, 32, generator=torch.Generator().manual_seed(0))
    policy.loss(batch).backward()
    grad = policy.backbone.colours.prototypes.grad
    assert grad is not None and grad.abs().sum() > 0
    assert policy.backbone.patch_embed.in_channels == VIRTUAL_CHANNELS + 8


@pytest.mark.parametrize("channels,side", [(8, 32), (24, 64)])
def test_patch_embed_as_a_matmul_equals_the_strided_convolution(channels, side):
    conv = torch.nn.Conv2d(channels, 16, 8, 8)
    images = torch.randn(3, channels, side, side, requires_grad=True)
    expected = conv(images).flatten(2).transpose(1, 2)
    got = patch_embed(images, conv)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    (grad_got,) = torch.autograd.grad(got.square().sum(), images)
    (grad_expected,) = torch.autograd.grad(expected.square().sum(), images)
    torch.testing.assert_close(grad_got, grad_expected, atol=1e-4, rtol=1e-4)
