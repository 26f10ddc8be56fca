"""Positive pairs built from per-sample pairing keys (paper Sec. 3, Table 3).

Every sample carries three integer keys: ``episode_id``, ``instruction_id`` and ``task_id`` (the
class). A pairing mode picks one of them; two samples form a positive pair when they share that
key. Pairing is direction-neutral: each *query* gets one random partner among the *candidates*
that share its key. Either modality can be the query (the training sampler draws EE samples and
finds them AU partners; the probe pairs AU rows with EE rows), and the two pools may be the same
set of episodes (each episode gives a video for AU and keyframes for EE) or different ones.

This module only uses numpy so that the dataset's paired sampler, the probe and the tests can share
it without pulling in torch datasets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from mirror_align.constants import DEFAULT_PAIRING, PAIRING_FIELDS, PAIRING_MODES
from mirror_align.errors import UserInputError

# The per-sample key arrays, in the order of the pairing modes.
KEY_NAMES: tuple[str, ...] = tuple(PAIRING_FIELDS.values())
ON_MISSING_CHOICES: tuple[str, ...] = ("error", "skip")


@dataclass
class Pairs:
    """Index-aligned positive pairs: query ``query_index[p]`` pairs with ``candidate_index[p]``.

    ``query_index``, ``candidate_index`` and ``keys`` are int64 ``[P]``; ``keys[p]`` is the shared
    key value. ``n_skipped`` queries had no partner (only non-zero with ``on_missing='skip'``) and
    ``missing_keys`` lists their distinct key values, sorted.
    """

    query_index: np.ndarray
    candidate_index: np.ndarray
    keys: np.ndarray
    mode: str
    field: str
    n_skipped: int
    missing_keys: np.ndarray

    def __len__(self) -> int:
        return int(self.query_index.shape[0])


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
    query_keys: ArrayLike,
    candidate_keys: ArrayLike,
    rng: np.random.Generator | int | None = None,
    on_missing: str = "error",
    mode: str = "key",
    field: str = "key",
) -> Pairs:
    """For each query, pick a uniformly random candidate with the same key value.

    ``query_keys [Nq]`` and ``candidate_keys [Nc]`` are integer arrays. ``rng`` is a numpy
    Generator or a seed, so the same seed gives the same pairs. A query whose key no candidate has
    is an error (``on_missing='error'``, the message names the key value and the mode) or is
    dropped and counted (``on_missing='skip'``). ``mode``/``field`` only label messages and the
    result.
    """
    if on_missing not in ON_MISSING_CHOICES:
        raise UserInputError(
            f"pairing: unknown on_missing {on_missing!r}; choose one of {', '.join(ON_MISSING_CHOICES)}"
        )
    queries = _as_key_array(query_keys, f"query {field}")
    candidates = _as_key_array(candidate_keys, f"candidate {field}")
    generator = _make_rng(rng)

    # Group the candidates by key once: a stable sort puts equal keys in one contiguous run, so a
    # partner is "run start + a random offset below the run length" -- O((Nq + Nc) log Nc).
    order = np.argsort(candidates, kind="stable")
    groups, starts, counts = np.unique(candidates[order], return_index=True, return_counts=True)
    slot = np.searchsorted(groups, queries)
    has_partner = np.zeros(queries.shape, dtype=bool)
    if groups.size:
        has_partner = groups[np.minimum(slot, groups.size - 1)] == queries

    missing = np.unique(queries[~has_partner])
    if missing.size and on_missing == "error":
        shown = ", ".join(str(int(k)) for k in missing[:10]) + (" ..." if missing.size > 10 else "")
        raise UserInputError(
            f"pairing by {mode}: {field} {int(missing[0])} of the queries has no partner among the "
            f"candidates ({missing.size} {field} value(s) without a partner: {shown}); "
            "pass on_missing='skip' to drop them"
        )
    query_index = np.flatnonzero(has_partner).astype(np.int64)
    group = slot[has_partner]
    offsets = np.floor(generator.random(query_index.shape[0]) * counts[group]).astype(np.int64)
    candidate_index = order[starts[group] + offsets].astype(np.int64)
    return Pairs(
        query_index=query_index,
        candidate_index=candidate_index,
        keys=queries[query_index],
        mode=mode,
        field=field,
        n_skipped=int((~has_partner).sum()),
        missing_keys=missing.astype(np.int64),
    )


def make_pairs(
    queries: Mapping[str, ArrayLike],
    candidates: Mapping[str, ArrayLike] | None = None,
    mode: str = DEFAULT_PAIRING,
    rng: np.random.Generator | int | None = None,
    on_missing: str = "error",
) -> Pairs:
    """Positive pairs by ``episode``, ``instruction`` or ``class``: each query gets one partner.

    ``queries`` and ``candidates`` map ``episode_id``/``instruction_id``/``task_id`` to integer
    arrays of their pool's length (only the mode's field is required); either modality may be
    either side. ``candidates=None`` means the candidates are the queries' own samples (the same
    episodes, seen through the other modality). Each query gets one random candidate sharing its
    key; see :func:`pair_by_key` for ``rng`` and ``on_missing``.
    """
    field = key_field(mode)
    query_keys = pairing_keys(queries, mode)
    candidate_keys = query_keys if candidates is None else pairing_keys(candidates, mode)
    return pair_by_key(
        query_keys, candidate_keys, rng=rng, on_missing=on_missing, mode=mode, field=field
    )
