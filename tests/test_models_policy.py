"""The EE keyframe policy: protocol, loss terms, decoding, training behaviour and checkpoints."""

import dataclasses

import pytest
import torch
from safetensors.torch import load_file, save_file

from mirror_align.constants import WORKSPACE_BOUNDS
from mirror_align.errors import UserInputError
from mirror_align.models import LOSS_TERMS, KeyframePolicy, PolicyConfig, geometry, policy_preset
from mirror_align.models.layers import row_normals
from mirror_align.models.mvt import sample_location
from mirror_align.models.synthetic import random_ee_batch

TABLE = [
    "open the top drawer",
    "push the maroon button, then push the green button",
    "push the green button, then push the maroon button",
    "stack 2 red blocks",
]

# The dataset facts the factory passes in (32-px images from the four MirrorBench cameras).
SHAPE = {"image_size": 32, "num_views": 4, "workspace_bounds": WORKSPACE_BOUNDS}


# One torch thread in this module (tests/conftest.py says why).
pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_policy(seed: int = 0, **changes) -> KeyframePolicy:
    torch.manual_seed(seed)
    return KeyframePolicy(dataclasses.replace(policy_preset("tiny"), **changes), TABLE, **SHAPE)


CAMERAS = {"input": "cameras", "zoom_factor": 1.0, "location_tokens": False}


def batch(n: int = 4, seed: int = 0) -> dict:
    return random_ee_batch(n, len(TABLE), 32, generator=torch.Generator().manual_seed(seed))


def test_representation_protocol_and_loss_terms():
    policy = tiny_policy()
    assert policy.loss_term_names == LOSS_TERMS  # virtual views + zoom stage: every term
    b = batch()
    out = policy(b)
    assert out.loss.ndim == 0 and out.loss.requires_grad
    assert out.representation.shape == (4, policy.representation_dim)
    assert set(out.terms) == set(LOSS_TERMS) | {"total"}
    total = sum(out.terms[name] for name in LOSS_TERMS)
    assert torch.allclose(total, out.loss.detach()) and torch.allclose(out.terms["total"], total)
    policy.zoom_draws -= 1  # the same zoom-centre noise draw as the pass above
    assert torch.allclose(policy.represent(b), out.representation)  # training: teacher forcing
    # At initialisation each classification term sits near log(classes).
    assert abs(out.terms["roll"].item() - torch.log(torch.tensor(72.0)).item()) < 0.75
    assert abs(out.terms["gripper_open"].item() - 0.693) < 0.3
    cameras = tiny_policy(**CAMERAS)
    assert "position_zoom" not in cameras.loss_term_names
    assert set(cameras.loss_terms(b)) == set(cameras.loss_term_names) | {"total"}


def test_models_decoding_one_batch_share_its_workspace_render():
    b = batch()
    first, second = tiny_policy(0).eval(), tiny_policy(1).eval()
    renders: dict = {}
    with torch.no_grad():
        shared = [first.represent(b, renders), second.represent(b, renders)]
        alone = [first.represent(b), second.represent(b)]
    assert len(renders) == 1  # one stage-0 render, reused by the second model
    assert all(torch.equal(s, a) for s, a in zip(shared, alone, strict=True))
    assert not torch.equal(alone[0], alone[1])
    # The stored render is what the second model read: replacing it changes its output.
    key = next(iter(renders))
    with torch.no_grad():
        changed = second.represent(b, {key: torch.zeros_like(renders[key])})
    assert not torch.equal(changed, alone[1])


@pytest.mark.parametrize(
    "changes",
    [{}, CAMERAS, {"conv_stem": True, "zoom_size": 16}, {"colour_bins": 8}],
    ids=["virtual_views", "cameras", "conv_stem", "colour_bins"],
)
def test_eval_representation_and_prediction_never_read_the_action(changes):
    policy = tiny_policy(**changes).eval()
    b = batch()
    e = policy.represent(b)
    action = policy.predict(b)
    del b["action"]
    assert torch.equal(policy.represent(b), e)
    assert torch.equal(policy.predict(b), action)
    assert e.shape == (4, 32)
    assert action.shape == (4, 9) and action.dtype == torch.float32
    assert torch.allclose(action[:, 3:7].norm(dim=1), torch.ones(4), atol=1e-5)
    assert (action[:, 6] >= 0).all()
    assert set(action[:, 7:].flatten().tolist()) <= {0.0, 1.0}
    lo, hi = policy.bounds[:3], policy.bounds[3:]
    assert ((action[:, :3] >= lo - 1e-6) & (action[:, :3] <= hi + 1e-6)).all()


def test_targets_follow_the_camera_projection():
    policy = tiny_policy(**CAMERAS)
    b = batch()
    targets = policy.action_targets(b)
    uv, z = geometry.project(b["action"][:, None, :3], b["intrinsics"], b["extrinsics"])
    col, row = uv[:, :, 0, 0].floor().long(), uv[:, :, 0, 1].floor().long()
    assert targets["visible"].all() and (z > 0).all()
    assert torch.equal(targets["pixel"], row * 32 + col)
    assert torch.equal(targets["rotation"], geometry.quaternion_to_bins(b["action"][:, 3:7]))


def test_virtual_targets_follow_the_orthographic_projection():
    policy = tiny_policy()
    b = batch()
    targets = policy.action_targets(b)
    lo, hi = policy.bounds[:3], policy.bounds[3:]
    frac = (b["action"][:, :3] - lo) / (hi - lo)  # [B, 3] in [0, 1]
    # top: columns follow x, rows follow y from the top (+y) down; front: columns y, rows z.
    expect_top = torch.stack([frac[:, 0] * 32, (1 - frac[:, 1]) * 32], dim=-1)
    expect_front = torch.stack([frac[:, 1] * 32, (1 - frac[:, 2]) * 32], dim=-1)
    assert torch.allclose(targets["uv"][:, 0], expect_top, atol=1e-4)
    assert torch.allclose(targets["uv"][:, 1], expect_front, atol=1e-4)
    assert targets["visible"].all()


def test_views_the_target_falls_outside_of_are_left_out_of_the_position_loss():
    policy = tiny_policy(**CAMERAS)
    b = batch()
    reference = policy.loss_terms(b)["position"]
    # Turn the wrist camera around: the target is now behind it, so that view's heatmap no longer
    # counts, which must change the position term but no other term.
    flipped = {k: v.clone() for k, v in b.items()}
    flipped["extrinsics"][:, 3, :3, :3] *= torch.tensor([-1.0, 1.0, -1.0])
    assert not policy.action_targets(flipped)["visible"][:, 3].any()
    terms = policy.loss_terms(flipped)
    assert torch.isfinite(terms["position"]) and not torch.allclose(terms["position"], reference)
    assert torch.allclose(terms["roll"], policy.loss_terms(b)["roll"])


def test_one_step_reduces_the_loss_on_a_fixed_batch():
    policy = tiny_policy()
    b = batch(n=8)
    before = policy.loss(b)
    before.backward()
    with torch.no_grad():
        for p in policy.parameters():
            if p.grad is not None:
                p -= 0.01 * p.grad
    policy.zoom_draws -= 1  # the same zoom-centre noise draw
    assert policy.loss(b).item() < before.item()


def pixel_distance(a: torch.Tensor, b: torch.Tensor, side: int = 32) -> torch.Tensor:
    """Chebyshev distance in pixels between flat pixel indices."""
    return torch.maximum((a // side - b // side).abs(), (a % side - b % side).abs())


@pytest.mark.parametrize(
    "changes",
    [pytest.param({}, marks=pytest.mark.slow), CAMERAS],  # two renders per step: ~25 s
    ids=["virtual_views", "cameras"],
)
def test_overfits_four_samples_to_exact_action_tokens(changes):
    policy = tiny_policy(**changes)
    b = batch(seed=3)
    opt = torch.optim.AdamW(policy.parameters(), lr=3e-3, weight_decay=0.0)
    exact, steps = {}, 0
    limit = 0.03 if changes else 0.012
    while not (exact and all(exact.values())) and steps < 400:
        policy.train()
        for _ in range(20):
            loss = policy.loss(b)
            opt.zero_grad()
            loss.backward()
            opt.step()
        steps += 20
        policy.eval()
        with torch.no_grad():
            decoded, target = policy.decode(b), policy.action_targets(b)
        exact = {
            # Within one pixel: a Gaussian target centred near a pixel border peaks on either side.
            "pixel": bool((pixel_distance(decoded["pixel_coarse"], target["pixel"]) <= 1).all()),
            "rotation": bool((decoded["rotation"] == target["rotation"]).all()),
            "gripper_open": bool((decoded["gripper_open"] == target["gripper_open"]).all()),
            "ignore_collisions": bool(
                (decoded["ignore_collisions"] == target["ignore_collisions"]).all()
            ),
            # The lifted point within a pixel's footprint of the target: ~4.5 cm at 32 px for the
            # cameras, 2.8 cm for the first virtual stage, 0.7 cm for the 4x zoomed one.
            "position": bool((decoded["position"] - b["action"][:, :3]).norm(dim=1).max() < limit),
        }
    assert all(exact.values()), f"after {steps} steps: {exact}"


def test_safetensors_round_trip_gives_identical_outputs(tmp_path):
    policy = tiny_policy(seed=1).eval()
    path = tmp_path / "ee.safetensors"
    save_file(policy.state_dict(), str(path))
    other = tiny_policy(seed=2).eval()
    b = batch()
    assert not torch.allclose(other.represent(b), policy.represent(b))
    other.load_state_dict(load_file(str(path)))
    assert torch.equal(other.represent(b), policy.represent(b))
    assert torch.equal(other.predict(b), policy.predict(b))
    assert torch.equal(other.loss(b), policy.loss(b))


def test_bad_inputs_and_configs_name_the_problem():
    policy = tiny_policy()
    b = batch()
    b["rgb"] = b["rgb"][:, :, :16]
    with pytest.raises(UserInputError, match=r"batch\['rgb'\].*image_size=32"):
        policy.loss(b)
    b = batch()
    del b["action"], b["proprio"]
    with pytest.raises(UserInputError, match="missing key.*proprio"):
        policy.eval().predict(b)
    with pytest.raises(UserInputError, match="missing key.*action"):
        policy.loss({**b, "proprio": torch.zeros(4, 8)})
    with pytest.raises(UserInputError, match="workspace_bounds"):
        KeyframePolicy(PolicyConfig(workspace_bounds=(0, 0, 0, 1, 1)), TABLE, **SHAPE)
    with pytest.raises(UserInputError, match="workspace_bounds"):
        KeyframePolicy(PolicyConfig(), TABLE, **{**SHAPE, "workspace_bounds": (0, 0, 0, 1, 1, 0)})
    with pytest.raises(UserInputError, match="patch_size"):
        KeyframePolicy(PolicyConfig(patch_size=7), TABLE, **SHAPE)


def test_the_first_position_slot_never_sees_the_zoomed_render():
    policy = tiny_policy()
    b = batch()
    first = policy.loss_terms(b)
    policy.config.zoom_noise *= 2  # another zoom centre: another zoomed render
    second = policy.loss_terms(b)
    assert torch.equal(first["position"], second["position"])
    assert not torch.equal(first["position_zoom"], second["position_zoom"])


@pytest.mark.parametrize("zoom_size", [0, 16])
def test_decoding_zooms_around_the_first_point(zoom_size):
    policy = tiny_policy(zoom_size=zoom_size).eval()
    with torch.no_grad():
        decoded = policy.decode(batch())
    side = zoom_size or 32
    assert decoded["heatmaps"].shape == (4, 3, side, side)
    half = (policy.bounds[3:] - policy.bounds[:3]) / (2 * policy.config.zoom_factor)
    offset = (decoded["position"] - decoded["position_coarse"]).abs()
    assert (offset <= half + 1e-5).all() and (offset > 0).any()


def test_location_features_are_the_visual_tokens_at_the_point():
    # 2 views of a 4x4 token grid whose token (row, col) holds the value 10 * row + col.
    grid = (10 * torch.arange(4.0)[:, None] + torch.arange(4.0)).flatten()
    visual = grid[None, None, :, None].expand(1, 2, 16, 3).clone()
    visual[:, 1] += 100.0
    # grid_sample coordinates of token (row 1, col 2) and (row 3, col 0) centres.
    centre = lambda i: (i + 0.5) / 4 * 2 - 1  # noqa: E731
    point = torch.tensor([[[centre(2), centre(1)], [centre(0), centre(3)]]])
    out = sample_location(visual, point).view(2, 3)
    assert torch.allclose(out[0], torch.full((3,), 12.0))
    assert torch.allclose(out[1], torch.full((3,), 130.0))


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"input": "pixels"}, "input"),
        ({"views": ("top", "above")}, "views"),
        ({"views": ("top",)}, "views"),
        ({"input": "cameras"}, "zoom_factor=1 and location_tokens=false"),
        ({"zoom_fill": -1}, "zoom_fill"),
    ],
)
def test_bad_view_configs_name_the_field(changes, match):
    with pytest.raises(UserInputError, match=match):
        tiny_policy(**changes)


def test_zoom_noise_is_a_pure_function_of_each_row():
    # DDP ranks see subsets of the global batch: a row's noise must not depend on its neighbours.
    rows = torch.rand(4000, 9, generator=torch.Generator().manual_seed(0))
    noise = row_normals(rows)
    assert torch.equal(row_normals(rows[7:9]), noise[7:9])
    assert noise.mean(0).abs().max() < 0.06 and (noise.std(0) - 1).abs().max() < 0.06
    moved = rows.clone()
    moved[:, 0] += 1e-3  # an augmented action draws other noise
    assert (row_normals(moved) - noise).abs().mean() > 0.5
