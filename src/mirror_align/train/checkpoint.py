"""Checkpoints: weights as safetensors plus ``config.json``; training state kept apart.

Layout of a run folder::

    RUN/checkpoints/step_00000100/weights.safetensors   every module's tensors, keys "<module>.<param>"
    RUN/checkpoints/step_00000100/config.json           method, experiment config, instruction table and
                                                        the dataset facts the models were sized from
    RUN/checkpoints/step_00000100/train_state.pt        optimizer, scheduler, RNG states, step
    RUN/checkpoints/latest.json                         names the last *complete* checkpoint

Each checkpoint folder is written under a temporary name and renamed when complete, and the
pointer is replaced atomically after it, so a kill never leaves the pointer on a partial folder.
``train_state.pt`` holds only tensors and plain containers and is read with ``weights_only=True``.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from mirror_align.atomic import atomic_directory, write_json_atomic
from mirror_align.errors import UserInputError

POINTER = "latest.json"


def checkpoint_root(run_dir: str | Path) -> Path:
    """``RUN/checkpoints``."""
    return Path(run_dir) / "checkpoints"


def flatten_modules(modules: dict[str, nn.Module]) -> dict[str, torch.Tensor]:
    """``{"au": m1, "ee": m2}`` → one flat dict of contiguous CPU tensors keyed ``"au.<param>"``."""
    flat: dict[str, torch.Tensor] = {}
    for prefix, module in modules.items():
        for key, value in module.state_dict().items():
            # clone() breaks storage sharing (tied weights), which safetensors refuses to save.
            flat[f"{prefix}.{key}"] = value.detach().cpu().contiguous().clone()
    return flat


def load_modules(modules: dict[str, nn.Module], flat: dict[str, torch.Tensor], where: str) -> None:
    """Load a flat dict made by :func:`flatten_modules` into ``modules`` (strict)."""
    for prefix, module in modules.items():
        part = {k[len(prefix) + 1 :]: v for k, v in flat.items() if k.startswith(prefix + ".")}
        if not part:
            raise UserInputError(
                f"{where}: no weights for module {prefix!r} (found: {sorted({k.split('.')[0] for k in flat})})"
            )
        module.load_state_dict(part, strict=True)


def capture_rng_state() -> dict[str, Any]:
    """Python, NumPy and torch RNG states as tensors/plain containers."""
    np_state = np.random.get_state()
    return {
        "python": list(random.getstate()[1]) + [random.getstate()[2] or 0],
        "python_version": random.getstate()[0],
        "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_pos": int(np_state[2]),
        "torch": torch.get_rng_state(),
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    words = tuple(int(x) for x in state["python"][:-1])
    random.setstate((state["python_version"], words, None))
    np.random.set_state(
        ("MT19937", state["numpy_keys"].numpy().astype(np.uint32), state["numpy_pos"], 0, 0.0)
    )
    torch.set_rng_state(state["torch"])


def save_checkpoint(
    run_dir: str | Path,
    step: int,
    modules: dict[str, nn.Module],
    config: dict[str, Any],
    train_state: dict[str, Any],
    keep_last: int | None = None,
) -> Path:
    """Write checkpoint ``step`` and move the ``latest.json`` pointer to it; returns its folder.

    ``keep_last`` deletes older complete checkpoints beyond that many (None keeps all).
    """
    root = checkpoint_root(run_dir)
    target = root / f"step_{step:08d}"
    if target.exists():
        shutil.rmtree(target)
    with atomic_directory(target) as tmp:
        save_file(
            flatten_modules(modules), str(tmp / "weights.safetensors"), metadata={"step": str(step)}
        )
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        torch.save({**train_state, "step": step}, tmp / "train_state.pt")
    write_json_atomic(root / POINTER, {"step": step, "path": target.name})
    if keep_last is not None:
        complete = sorted(
            p for p in root.glob("step_*") if p.is_dir() and not p.name.endswith(".tmp")
        )
        for old in complete[:-keep_last]:
            shutil.rmtree(old, ignore_errors=True)
    return target


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The folder the pointer names, or None for a run with no complete checkpoint."""
    root = checkpoint_root(run_dir)
    pointer = root / POINTER
    if not pointer.is_file():
        return None
    target = root / json.loads(pointer.read_text())["path"]
    return target if target.is_dir() else None


def list_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """Every complete checkpoint of a run as ``(step, folder)``, ascending."""
    found = []
    for folder in checkpoint_root(run_dir).glob("step_*"):
        if folder.is_dir() and (folder / "weights.safetensors").is_file():
            found.append((int(folder.name.split("_")[1]), folder))
    return sorted(found)


def load_weights(checkpoint: str | Path) -> dict[str, torch.Tensor]:
    """The flat weight dict of a checkpoint folder."""
    path = Path(checkpoint) / "weights.safetensors"
    if not path.is_file():
        raise UserInputError(f"checkpoint: {path} not found")
    return load_file(str(path))


def load_config(checkpoint: str | Path) -> dict[str, Any]:
    """The ``config.json`` a checkpoint was made with."""
    path = Path(checkpoint) / "config.json"
    if not path.is_file():
        raise UserInputError(f"checkpoint: {path} not found")
    return json.loads(path.read_text())


def load_train_state(checkpoint: str | Path) -> dict[str, Any]:
    """Optimizer/scheduler/RNG state of a checkpoint folder (tensors and plain containers only)."""
    return torch.load(Path(checkpoint) / "train_state.pt", weights_only=True)
