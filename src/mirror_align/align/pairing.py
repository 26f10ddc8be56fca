"""Positive (AU, EE) pairs built from per-sample pairing keys (paper Sec. 3, Table 3).

Every sample carries three integer keys: ``episode_id``, ``instruction_id`` and ``task_id`` (the
class). A pairing mode picks one of them; an AU sample and an EE sample form a positive pair when
they share that key. The two pools may be the same set of episodes (the usual case: each episode
gives a video for AU and keyframes for EE) or different ones.

This module only uses numpy so that the dataset's paired sampler, the probe and the tests can share
it without pulling in torch datasets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from mirror_align.errors import UserInputError

# Pairing mode -> the per-sample key array it compares. "instruction" is the paper's default.
PAIRING_FIELDS: dict[str, str] = {
    "episode": "episode_id",
    "instruction": "instruction_id",
    "class": "task_id",
}
PAIRING_MODES: tuple[str, ...] = tuple(PAIRING_FIELDS)
KEY_NAMES: tuple[str, ...] = ("episode_id", "instruction_id", "task_id")
ON_MISSING_CHOICES: tuple[str, ...] = ("error", "skip")
DEFAULT_PAIRING = "instruction"


@dataclass
class Pairs:
    """Index-aligned positive pairs: ``au_index[p]`` pairs with ``ee_index[p]``.

    ``au_index``, ``ee_index`` and ``keys`` are int64 ``[P]``; ``keys[p]`` is the shared key value.
    ``n_skipped`` AU samples had no partner (only non-zero with ``on_missing='skip'``) and
    ``missing_keys`` lists their distinct key values, sorted.
    """

    au_index: np.ndarray
    ee_index: np.ndarray
    keys: np.ndarray
    mode: str
    field: str
    n_skipped: int
    missing_keys: np.ndarray

    def __len__(self) -> int:
        return int(self.au_index.shape[0])


def check_mode(mode: str) -> str:
    """Return ``mode`` if it is a pairing mode, else raise a UserInputError listing the choices."""
    if mode not in PAIRING_FIELDS:
        raise UserInputError(
            f"pairing: unknown mode {mode!r}; choose one of {', '.join(PAIRING_MODES)}"
        )
    return mode


def key_field(mode: str) -> str:
    """The key name a pairing mode compares: ``episode_id``, ``instruction_id`` or ``task_id``."""
    return PAIRING_FIELDS[check_mode(mode)]


def _as_key_array(values: ArrayLike, what: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise UserInputError(f"pairing: {what} must be 1-D, got shape {array.shape}")
    if array.size and not (np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_):
        raise UserInputError(f"pairing: {what} must hold integers, got dtype {array.dtype}")
    return array.astype(np.int64, copy=False)


def pairing_keys(keys: Mapping[str, ArrayLike], mode: str = DEFAULT_PAIRING) -> np.ndarray:
    """The int64 ``[N]`` key array that defines positives for ``mode``.

    Use it as the ``keys`` of the multi-positive loss, or to score key-aware retrieval.
    """
    field = key_field(mode)
    if field not in keys:
        raise UserInputError(
            f"pairing by {mode}: the key array {field!r} is missing; "
            f"have {', '.join(sorted(keys)) or 'none'}, need {', '.join(KEY_NAMES)}"
        )
    return _as_key_array(keys[field], field)


def _make_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def pair_by_key(
    au_keys: ArrayLike,
    ee_keys: ArrayLike,
    rng: np.random.Generator | int | None = None,
    on_missing: str = "error",
    mode: str = "key",
    field: str = "key",
) -> Pairs:
    """For each AU sample, pick a uniformly random EE sample with the same key value.

    ``au_keys [Na]`` and ``ee_keys [Ne]`` are integer arrays. ``rng`` is a numpy Generator or a seed,
    so the same seed gives the same pairs. An AU sample whose key no EE sample has is an error
    (``on_missing='error'``, the message names the key value and the mode) or is dropped and counted
    (``on_missing='skip'``). ``mode``/``field`` only label messages and the result.
    """
    if on_missing not in ON_MISSING_CHOICES:
        raise UserInputError(
            f"pairing: unknown on_missing {on_missing!r}; choose one of {', '.join(ON_MISSING_CHOICES)}"
        )
    au = _as_key_array(au_keys, f"AU {field}")
    ee = _as_key_array(ee_keys, f"EE {field}")
    generator = _make_rng(rng)

    # Group the EE pool by key once: a stable sort puts equal keys in one contiguous run, so a
    # partner is "run start + a random offset below the run length" -- O((Na + Ne) log Ne).
    order = np.argsort(ee, kind="stable")
    sorted_ee = ee[order]
    groups, starts, counts = np.unique(sorted_ee, return_index=True, return_counts=True)
    slot = np.searchsorted(groups, au)
    has_partner = np.zeros(au.shape, dtype=bool)
    if groups.size:
        has_partner = groups[np.minimum(slot, groups.size - 1)] == au

    missing = np.unique(au[~has_partner])
    if missing.size and on_missing == "error":
        shown = ", ".join(str(int(k)) for k in missing[:10]) + (" ..." if missing.size > 10 else "")
        raise UserInputError(
            f"pairing by {mode}: {field} {int(missing[0])} of the AU pool has no partner in the EE pool "
            f"({missing.size} {field} value(s) without a partner: {shown}); "
            "pass on_missing='skip' to drop them"
        )
    au_index = np.flatnonzero(has_partner).astype(np.int64)
    group = slot[has_partner]
    offsets = np.floor(generator.random(au_index.shape[0]) * counts[group]).astype(np.int64)
    ee_index = order[starts[group] + offsets].astype(np.int64)
    return Pairs(
        au_index=au_index,
        ee_index=ee_index,
        keys=au[au_index],
        mode=mode,
        field=field,
        n_skipped=int((~has_partner).sum()),
        missing_keys=missing.astype(np.int64),
    )


def make_pairs(
    au_keys: Mapping[str, ArrayLike],
    ee_keys: Mapping[str, ArrayLike] | None = None,
    mode: str = DEFAULT_PAIRING,
    rng: np.random.Generator | int | None = None,
    on_missing: str = "error",
) -> Pairs:
    """Positive pairs between an AU pool and an EE pool by ``episode``, ``instruction`` or ``class``.

    ``au_keys`` and ``ee_keys`` map ``episode_id``/``instruction_id``/``task_id`` to integer arrays of
    their pool's length (only the mode's field is required). ``ee_keys=None`` means the EE pool is the
    AU pool (same samples, other modality). Each AU sample gets one random EE partner sharing the key;
    see :func:`pair_by_key` for ``rng`` and ``on_missing``.
    """
    field = key_field(mode)
    au = pairing_keys(au_keys, mode)
    ee = au if ee_keys is None else pairing_keys(ee_keys, mode)
    return pair_by_key(au, ee, rng=rng, on_missing=on_missing, mode=mode, field=field)
