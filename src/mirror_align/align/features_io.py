"""Reading frozen feature matrices and pairing keys from disk, with one clear error per problem.

Features: ``.npy`` (one array), ``.npz`` (one array, or the one named by ``name``) or
``.safetensors`` (one tensor, or the one named by ``name``), each a 2-D ``[N, D]`` float matrix.
Keys: a ``.npz`` holding integer arrays ``episode_id``, ``instruction_id`` and ``task_id`` of length N.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from mirror_align.align.pairing import KEY_NAMES
from mirror_align.atomic import atomic_path
from mirror_align.errors import UserInputError

FEATURE_SUFFIXES: tuple[str, ...] = (".npy", ".npz", ".safetensors")


def _existing(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{what}: file not found: {path}")
    return path


def _pick(arrays: Mapping[str, object], name: str | None, path: Path, what: str) -> object:
    names = sorted(arrays)
    if name is not None:
        if name not in arrays:
            raise UserInputError(
                f"{what}: {path} has no array {name!r}; it has {', '.join(names) or 'none'}"
            )
        return arrays[name]
    if len(names) != 1:
        raise UserInputError(
            f"{what}: {path} holds {len(names)} arrays ({', '.join(names) or 'none'}); name the one to use"
        )
    return arrays[names[0]]


# The first bytes of a .npy file and of a .npz (zip) archive: numpy reads anything else as a
# pickle, and with pickles refused its error suggests loading the file unsafely.
MAGIC = {".npy": b"\x93NUMPY", ".npz": b"PK"}


def _read_array(path: Path, name: str | None, what: str) -> np.ndarray:
    suffix = path.suffix.lower()
    try:
        if suffix in MAGIC and path.is_file():
            with open(path, "rb") as handle:
                if handle.read(len(MAGIC[suffix])) != MAGIC[suffix]:
                    raise UserInputError(
                        f"{what}: {path} is not a NumPy {suffix} file (its first bytes are not "
                        f"the {suffix} header)"
                    )
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                return np.asarray(_pick({k: archive[k] for k in archive.files}, name, path, what))
        if suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as handle:
                tensors = {k: handle.get_tensor(k) for k in handle.keys()}
            tensor = _pick(tensors, name, path, what)
            return tensor.float().numpy()  # bf16/f16 have no exact numpy twin everywhere
    except UserInputError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, RuntimeError) as err:
        raise UserInputError(f"{what}: cannot read {path}: {err}") from err
    raise UserInputError(
        f"{what}: unsupported file type {suffix or '(no suffix)'!r} for {path}; "
        f"supported: {', '.join(FEATURE_SUFFIXES)}"
    )


def load_features(path: str | Path, name: str | None = None, what: str = "features") -> np.ndarray:
    """A float32 ``[N, D]`` matrix from ``.npy``/``.npz``/``.safetensors``, checked for NaN/inf.

    ``name`` picks one array of a multi-array ``.npz``/``.safetensors``; ``what`` names the option in
    error messages (e.g. ``--u``).
    """
    path = _existing(path, what)
    array = _read_array(path, name, what)
    if array.ndim != 2:
        raise UserInputError(
            f"{what}: {path} must hold a 2-D [N, D] array, got shape {array.shape}"
        )
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise UserInputError(f"{what}: {path} must hold numbers, got dtype {array.dtype}")
    array = array.astype(np.float32, copy=False)
    bad = ~np.isfinite(array)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        raise UserInputError(
            f"{what}: {path} has {int(bad.sum())} NaN/inf value(s) in {rows.size} row(s), first at row {int(rows[0])}"
        )
    return array


def check_same_rows(u: np.ndarray, e: np.ndarray, u_what: str = "--u", e_what: str = "--e") -> int:
    """N, if ``u`` and ``e`` have the same number of rows (they are index-aligned)."""
    if u.shape[0] != e.shape[0]:
        raise UserInputError(
            f"{u_what} has {u.shape[0]} rows but {e_what} has {e.shape[0]}; row i of each must be the same sample"
        )
    if u.shape[0] == 0:
        raise UserInputError(f"{u_what}: no rows")
    return int(u.shape[0])


def load_keys(path: str | Path, n_rows: int, what: str = "--keys") -> dict[str, np.ndarray]:
    """The int64 key arrays ``episode_id``, ``instruction_id``, ``task_id`` (each ``[n_rows]``)."""
    path = _existing(path, what)
    if path.suffix.lower() != ".npz":
        raise UserInputError(
            f"{what}: unsupported file type {path.suffix or '(no suffix)'!r} for {path}; supported: .npz"
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: np.asarray(archive[k]) for k in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise UserInputError(f"{what}: cannot read {path}: {err}") from err
    keys: dict[str, np.ndarray] = {}
    for key in KEY_NAMES:
        if key not in arrays:
            raise UserInputError(
                f"{what}: {path} has no array {key!r}; required: {', '.join(KEY_NAMES)} "
                f"(found: {', '.join(sorted(arrays)) or 'none'})"
            )
        array = arrays[key]
        if array.ndim != 1 or array.shape[0] != n_rows:
            raise UserInputError(
                f"{what}: {key} in {path} must have length {n_rows} (one per row), got shape {array.shape}"
            )
        if not np.issubdtype(array.dtype, np.integer):
            raise UserInputError(
                f"{what}: {key} in {path} must hold integers, got dtype {array.dtype}"
            )
        keys[key] = array.astype(np.int64)
    return keys


def row_keys(n_rows: int) -> dict[str, np.ndarray]:
    """Keys for features without a keys file: every row is its own episode, instruction and class."""
    ids = np.arange(n_rows, dtype=np.int64)
    return {key: ids for key in KEY_NAMES}


def save_array(path: str | Path, array: np.ndarray) -> None:
    """Write ``array`` as ``.npy`` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, array, allow_pickle=False)


def save_keys(path: str | Path, keys: Mapping[str, np.ndarray]) -> None:
    """Write the key arrays as ``.npz`` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **{k: np.asarray(v, dtype=np.int64) for k, v in keys.items()})
