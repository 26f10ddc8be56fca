"""Read RLBench's pickles without RLBench installed and without running code from the file.

``low_dim_obs.pkl`` holds an ``rlbench.demo.Demo`` of ``rlbench.backend.observation.Observation``
objects. A normal ``pickle.load`` would import those modules and may call any callable the file
names. This unpickler resolves only an allow-list of globals: the two RLBench classes (restored as
plain attribute records, never the real classes), numpy's array/dtype/scalar reconstructors and
``copyreg._reconstructor`` (replaced by a version that only builds those records). Any other global
is refused with :class:`UnsafePickleError` before it can be called.
"""

from __future__ import annotations

import _compat_pickle
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from mirror_align.errors import UserInputError


class UnsafePickleError(UserInputError):
    """The pickle names a global outside the allow-list."""


class PickledRecord:
    """An attribute bag standing in for an RLBench class: it holds state and has no behaviour."""

    source_class = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._args = args
        self.__dict__.update(kwargs)

    def __setstate__(self, state: Any) -> None:
        # Objects with __slots__ pickle as (dict, slots); plain objects as a dict.
        if isinstance(state, tuple) and len(state) == 2:
            for part in state:
                if isinstance(part, dict):
                    self.__dict__.update(part)
        elif isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self.__dict__["_state"] = state

    def __repr__(self) -> str:
        return f"<{self.source_class} record: {', '.join(sorted(self.__dict__))}>"


class DemoRecord(PickledRecord):
    """Stands in for ``rlbench.demo.Demo``; ``observations`` is its list of observations."""

    source_class = "rlbench.demo.Demo"

    @property
    def observations(self) -> list[Any]:
        return list(self.__dict__.get("_observations", []))


class ObservationRecord(PickledRecord):
    """Stands in for ``rlbench.backend.observation.Observation``."""

    source_class = "rlbench.backend.observation.Observation"


RECORD_CLASSES: dict[tuple[str, str], type[PickledRecord]] = {
    ("rlbench.demo", "Demo"): DemoRecord,
    ("rlbench.backend.observation", "Observation"): ObservationRecord,
}


def _safe_reconstructor(cls: Any, base: Any, state: Any) -> PickledRecord:
    """``copyreg._reconstructor`` restricted to building empty records (protocol 0/1 pickles)."""
    if not (isinstance(cls, type) and issubclass(cls, PickledRecord)) or base is not object:
        raise UnsafePickleError(
            f"copyreg._reconstructor may only rebuild RLBench records, not {cls!r} from {base!r}"
        )
    return cls.__new__(cls)


def _latin1_encode(text: str, encoding: str = "latin1", errors: str = "strict") -> bytes:
    """``_codecs.encode`` as protocol 0-2 pickles use it for bytes, limited to latin-1 text."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError(f"_codecs.encode is only allowed on latin-1 text, not {encoding!r}")
    return text.encode("latin-1", errors="strict")


def _numpy_globals() -> dict[tuple[str, str], Any]:
    multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
    numeric = np._core.numeric if hasattr(np, "_core") else np.core.numeric
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }
    for package in ("numpy.core", "numpy._core"):
        allowed[(f"{package}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{package}.multiarray", "scalar")] = multiarray.scalar
        if hasattr(numeric, "_frombuffer"):
            allowed[(f"{package}.numeric", "_frombuffer")] = numeric._frombuffer
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` only returns allow-listed globals."""

    def __init__(self, file: io.BufferedIOBase, where: str) -> None:
        super().__init__(file)
        self.where = where
        self.allowed: dict[tuple[str, str], Any] = {
            **RECORD_CLASSES,
            **_numpy_globals(),
            ("copyreg", "_reconstructor"): _safe_reconstructor,
            ("builtins", "object"): object,
            ("_codecs", "encode"): _latin1_encode,
        }

    def find_class(self, module: str, name: str) -> Any:
        # Protocol 0-2 pickles may carry Python 2 names (copy_reg, __builtin__).
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"{self.where}: refusing to load {module}.{name} from the pickle; only "
                "rlbench.demo.Demo, rlbench.backend.observation.Observation and numpy arrays "
                "are allowed"
            ) from None


def load_restricted(path: str | Path) -> Any:
    """Unpickle ``path`` with :class:`RestrictedUnpickler`; every failure names the file."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{path}: file not found")
    with open(path, "rb") as handle:
        try:
            return RestrictedUnpickler(handle, str(path)).load()
        except UnsafePickleError:
            raise
        except (pickle.UnpicklingError, EOFError, AttributeError, TypeError, ValueError) as err:
            raise UserInputError(f"{path}: not a readable RLBench pickle ({err})") from err
