"""An experiment folder's own config (``DIR/config.json``): what a resumed ``reproduce`` and a
later ``ablate`` must agree with, so that every run of one folder, and every Δ its report draws
between them, comes from the same settings (layout: docs/experiments.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mirror_align.config import config_to_dict
from mirror_align.config.experiment import ExperimentConfig
from mirror_align.errors import UserInputError

# Fields that change how a run executes, not what it computes: they may differ between the
# invocations on one folder. (data.path is set by reproduce to DIR/data.)
EXECUTION_FIELDS = frozenset(
    {
        "data.path",
        "data.cache",
        "train.threads",
        "train.parallel_runs",
        "train.log_every",
        "train.checkpoint_every",
        "train.keep_checkpoints",
        "eval.workers",
    }
)
SHOWN = 4  # differing fields named in the error line


def saved_experiment(out: str | Path) -> dict[str, Any] | None:
    """The experiment config ``reproduce`` saved in ``out/config.json`` (a nested dict), or
    ``None`` when the folder has none. Raises :class:`UserInputError` naming the file when it is
    not such a file."""
    path = Path(out) / "config.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserInputError(f"{path}: not readable as JSON ({err})") from None
    if not isinstance(data, dict) or not isinstance(data.get("experiment"), dict):
        raise UserInputError(f"{path}: no 'experiment' section; is {out} a reproduce folder?")
    return data["experiment"]


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def differing_fields(config: ExperimentConfig, saved: dict[str, Any]) -> list[str]:
    """Dotted fields (outside :data:`EXECUTION_FIELDS`) where ``config`` and the ``saved`` dict
    disagree, as ``field=saved → new``. A field the saved config lacks (written by an older
    version) is not compared."""
    new, old = _flat(config_to_dict(config)), _flat(saved)
    return [
        f"{key}={old[key]!r} → {value!r}"
        for key, value in new.items()
        if key in old and key not in EXECUTION_FIELDS and _norm(old[key]) != _norm(value)
    ]


def _norm(value: Any) -> Any:
    # JSON turns tuples into lists; compare them as equal.
    return list(value) if isinstance(value, tuple) else value


def check_same_experiment(config: ExperimentConfig, out: str | Path) -> None:
    """Raise :class:`UserInputError` when ``out`` holds runs made with different settings than
    ``config`` (``out/config.json``); no check for a folder without one."""
    saved = saved_experiment(out)
    if saved is None:
        return
    diff = differing_fields(config, saved)
    if diff:
        more = f" and {len(diff) - SHOWN} more" if len(diff) > SHOWN else ""
        raise UserInputError(
            f"{Path(out) / 'config.json'}: the folder's runs were made with other settings "
            f"({', '.join(diff[:SHOWN])}{more}); give the same --preset/--config/--set as before "
            "(ablate without --preset/--config uses the folder's), or write to a new folder"
        )
