"""Golden outputs of the two reference models: a change to their computation must show up here.

The unit tests of ``test_models_*.py`` check properties (shapes, invariances, that the loss falls);
these compare today's numbers with ``tests/golden/models_tiny.safetensors``, written by the code
the models were validated with. For the AU model (``VideoTextModel``) and the EE policy
(``KeyframePolicy``) of the ``tiny`` preset, built by ``build_models`` at seed 0, on one fixed
synthetic batch each (``models/synthetic.py``), the fixture holds:

- the batch's checksums (so a failure says whether the inputs or the model moved);
- at initialisation and after ``STEPS`` steps of momentum SGD: the loss terms and the training-mode
  representation (one teacher-forced / masked pass), the eval-mode ``represent``, and the decoded
  outputs (AU: instruction scores and ``predict``; EE: ``predict``, the heatmap argmax and peak, the
  rotation bins);
- the loss of every step;
- after the steps, three float64 checksums of every weight and buffer (sum, sum of magnitudes, and
  a sum weighted by a ramp, which a permutation changes).

Tolerances (float32 on CPU, one thread): floats within ``atol = rtol = 1e-4``, integers (ids, bins,
pixels) equal. On the machine that wrote the fixture the numbers repeat bit for bit; the tolerance
absorbs the SIMD kernels torch picks per CPU: forcing ``ATEN_CPU_CAPABILITY=avx2`` or ``default``
on the AVX-512 machine that wrote it moved values by up to 3e-5 (the trained AU representation),
while scaling one LayerNorm weight by 1.001 moves them by about 1e-3, and
``test_a_small_change_fails`` checks that it fails. Across torch versions and machine types (x86 vs
ARM) floats may differ more, so the comparison runs only on the torch version and machine type the
fixture was written on (others skip, saying why).

After an intended change to a model, its initialisation, ``build_models`` or the synthetic batches,
rewrite the fixture and say why in the commit:
``PYTHONPATH=$PWD/src .venv/bin/python tests/test_models_golden.py --update``
If ``build_models`` or the batch format changes shape, adapt :func:`build` (the only place that
knows how a model and its batch are made) and rerun that line.
"""

from __future__ import annotations

import json
import platform
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from mirror_align.config.experiment import load_experiment
from mirror_align.constants import CAMERAS, WORKSPACE_BOUNDS
from mirror_align.models import KeyframePolicy
from mirror_align.models.factory import DataFacts, build_models
from mirror_align.models.synthetic import random_au_batch, random_ee_batch

FIXTURE = Path(__file__).parent / "golden" / "models_tiny.safetensors"
UPDATE = "PYTHONPATH=$PWD/src .venv/bin/python tests/test_models_golden.py --update"
METHODS = ("au", "ee")
INSTRUCTIONS = (
    "open the top drawer",
    "open the bottom drawer",
    "push the maroon button",
    "push the green button, then push the maroon button",
)
BATCH = 6  # samples per batch; more than the 4 instructions, so some samples share one
STEPS = 3  # optimisation steps
LR = 0.05  # momentum SGD: an update linear in the gradient, large enough to move every output
ATOL = RTOL = 1e-4  # floats (see the module docstring); integers must be equal
MAX_SHOWN = 12  # differing values listed in a failure


def build(method: str) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """The ``tiny`` preset's model for ``method`` ("au" or "ee") and a fixed batch shaped for it.

    The one function to adapt when ``build_models`` or the batch format changes."""
    config = load_experiment("tiny")
    size = config.data.image_size
    # What a MirrorBench dataset of the tiny preset states: its size, cameras, frames and bounds.
    facts = DataFacts(
        image_size=size,
        cameras=CAMERAS,
        video_frames=config.data.video_frames,
        workspace_bounds=WORKSPACE_BOUNDS,
        instructions=tuple(INSTRUCTIONS),
    )
    model = build_models(config, facts, method)[method]
    generator = torch.Generator().manual_seed(1234)
    if method == "au":
        frames = config.data.video_frames
        batch = random_au_batch(BATCH, len(INSTRUCTIONS), frames, size, generator=generator)
    else:
        views = len(CAMERAS)
        batch = random_ee_batch(BATCH, len(INSTRUCTIONS), size, views, generator=generator)
    return model, batch


def _decoded(model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The eval-mode outputs: ``represent`` and what each model decodes from a batch."""
    out = {"represent": model.represent(batch)}
    if isinstance(model, KeyframePolicy):
        tokens = model.decode(batch)
        out["predict"] = model.predict(batch)
        out["pixel"] = tokens["pixel"]
        out["heatmap_peak"] = tokens["heatmaps"].flatten(2).amax(-1)
        out["rotation"] = tokens["rotation"]
    else:
        out["scores"] = model.scores(batch)
        out["predict"] = model.predict(batch)
    return out


def snapshot(model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Loss terms and training-mode representation of one pass, then the eval-mode outputs."""
    torch.manual_seed(7)  # the AU model's token masking draws from the global generator
    model.train()
    with torch.no_grad():
        out = model(batch)
        values = {f"terms/{k}": v for k, v in out.terms.items()}
        values["train_representation"] = out.representation
        model.eval()
        values.update(_decoded(model, batch))
    model.train()
    return values


def train_steps(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """``STEPS`` steps of momentum SGD on ``batch`` (the model's own parameter groups); the loss
    of each step ``[STEPS]``."""
    optimizer = torch.optim.SGD(model.param_groups(LR), momentum=0.9)
    losses = []
    for step in range(STEPS):
        torch.manual_seed(100 + step)
        loss = model(batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.detach())
    return torch.stack(losses)


def checksums(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """float64 ``[3]`` per tensor: sum, sum of magnitudes, ramp-weighted sum."""
    out = {}
    for name, value in tensors.items():
        flat = value.detach().double().flatten()
        ramp = torch.linspace(-1.0, 1.0, flat.numel(), dtype=torch.float64)
        out[name] = torch.stack([flat.sum(), flat.abs().sum(), (flat * ramp).sum()])
    return out


def golden_values(
    method: str, change: Callable[[nn.Module], None] | None = None
) -> dict[str, torch.Tensor]:
    """Every value the fixture holds for ``method``, keyed ``method/...``: the batch's checksums
    (``method/batch/...``), then the model's outputs. ``change`` edits the fresh model first (to
    show that the comparison catches it)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model, batch = build(method)
        if change is not None:
            change(model)
        values = {f"batch/{k}": v for k, v in checksums(batch).items()}
        values.update({f"init/{k}": v for k, v in snapshot(model, batch).items()})
        values["train/loss"] = train_steps(model, batch)
        values.update({f"trained/{k}": v for k, v in snapshot(model, batch).items()})
        values.update({f"weights/{k}": v for k, v in checksums(model.state_dict()).items()})
    finally:
        torch.set_num_threads(before)
    return {f"{method}/{k}": v.detach().contiguous() for k, v in values.items()}


def compare(
    actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], what: str = "outputs"
) -> None:
    """Assert the same keys, dtypes and shapes; floats within ATOL/RTOL, integers equal. The
    message lists every value that differs, so it says which part of a model changed."""
    missing, extra = sorted(set(expected) - set(actual)), sorted(set(actual) - set(expected))
    assert not missing and not extra, (
        f"{what} changed: missing {missing}, new {extra}; if intended: {UPDATE}"
    )
    failures = []
    for key in sorted(expected):
        exact = not expected[key].is_floating_point()
        atol, rtol = (0.0, 0.0) if exact else (ATOL, RTOL)
        try:
            torch.testing.assert_close(actual[key], expected[key], atol=atol, rtol=rtol)
        except AssertionError as error:
            lines = str(error).splitlines()
            detail = next((line for line in lines if "bsolute difference" in line), lines[0])
            failures.append(f"{key}: {detail}")
    if failures:
        shown = failures[:MAX_SHOWN] + [f"... and {len(failures) - MAX_SHOWN} more"] * (
            len(failures) > MAX_SHOWN
        )
        raise AssertionError(
            f"{what}: {len(failures)} of {len(expected)} golden values differ:\n"
            + "\n".join(shown)
            + f"\nIf the change is intended: {UPDATE}"
        )


def _platform() -> dict[str, str]:
    return {"torch": torch.__version__, "machine": platform.machine()}


def _golden(method: str) -> dict[str, torch.Tensor]:
    if not FIXTURE.is_file():
        pytest.fail(f"{FIXTURE} is missing; write it: {UPDATE}")
    with safe_open(FIXTURE, "pt") as f:
        written_on = json.loads(f.metadata()["platform"])
    if written_on != _platform():
        pytest.skip(f"fixture written on {written_on}, this is {_platform()}")
    return {k: v for k, v in load_file(FIXTURE).items() if k.startswith(f"{method}/")}


def _split(values: dict[str, torch.Tensor], method: str) -> tuple[dict, dict]:
    """(the batch's checksums, everything else)."""
    batch = {k: v for k, v in values.items() if k.startswith(f"{method}/batch/")}
    return batch, {k: v for k, v in values.items() if k not in batch}


@pytest.mark.parametrize("method", METHODS)
def test_model_matches_golden(method: str) -> None:
    expected_batch, expected = _split(_golden(method), method)
    actual_batch, actual = _split(golden_values(method), method)
    # The inputs first: if they moved, the outputs cannot be compared.
    compare(actual_batch, expected_batch, "the synthetic batch (models/synthetic.py, tiny sizes)")
    compare(actual, expected, f"the {method.upper()} model's outputs")


def _scale_first_layer_norm(model: nn.Module) -> None:
    norm = next(m for m in model.modules() if isinstance(m, nn.LayerNorm))
    with torch.no_grad():
        norm.weight.mul_(1.001)


@pytest.mark.parametrize("method", METHODS)
def test_a_small_change_fails(method: str) -> None:
    """A 0.1 % change of one LayerNorm's scale is far outside the tolerance."""
    _, expected = _split(_golden(method), method)
    _, actual = _split(golden_values(method, change=_scale_first_layer_norm), method)
    with pytest.raises(AssertionError, match="golden values differ"):
        compare(actual, expected)


def _write_fixture() -> None:
    tensors, meta = {}, {"platform": json.dumps(_platform(), sort_keys=True)}
    for method in METHODS:
        values = golden_values(method)
        tensors.update(values)
        print(method, "loss per step:", values[f"{method}/train/loss"].tolist())
    FIXTURE.parent.mkdir(exist_ok=True)
    save_file(tensors, FIXTURE, metadata=meta)
    print(f"wrote {FIXTURE} ({FIXTURE.stat().st_size} bytes, {len(tensors)} tensors)")


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit(f"usage: {sys.argv[0]} --update   (rewrites {FIXTURE})")
    _write_fixture()
