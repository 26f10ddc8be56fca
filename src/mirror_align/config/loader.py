"""Typed configs from YAML: nested dataclasses, ``--set key=value`` overrides, clear errors.

Every artifact saves the config it was made with (``config_to_dict`` → ``config.json``), and
``config_from_dict`` rebuilds it, so a run can always be reproduced from its own files.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from mirror_align.errors import UserInputError

T = TypeVar("T")


def config_to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready nested dict of a dataclass config."""
    return dataclasses.asdict(config)


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


# Scalar type -> (does a YAML value fit it, what the error says was expected). YAML's true/false
# are Python bools, which are also ints: they never count as numbers here.
_SCALARS: dict[type, tuple[Callable[[Any], bool], str]] = {
    float: (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number"),
    int: (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    bool: (lambda v: isinstance(v, bool), "true or false"),
    str: (lambda v: isinstance(v, str), "a string"),
}


def _coerce_union(value: Any, options: tuple[Any, ...], where: str) -> Any:
    """The first option of an ``A | B | None`` that accepts ``value``."""
    if value is None and type(None) in options:
        return None
    errors = []
    for option in options:
        if option is type(None):
            continue
        try:
            return _coerce(value, option, where)
        except UserInputError as err:
            errors.append(str(err))
    raise UserInputError(errors[0] if errors else f"{where}: invalid value {value!r}")


def _coerce_sequence(value: Any, annotation: Any, where: str) -> list[Any] | tuple[Any, ...]:
    """A ``list[X]`` or ``tuple[X, ...]`` with every item checked against X."""
    if not isinstance(value, (list, tuple)):
        raise UserInputError(f"{where}: expected a list, got {value!r}")
    args = typing.get_args(annotation)
    item_type = args[0] if args else Any
    items = [_coerce(v, item_type, f"{where}[{i}]") for i, v in enumerate(value)]
    return items if typing.get_origin(annotation) is list else tuple(items)


def _float_or_same(text: str) -> float | str:
    """``text`` as a float when it spells a finite number in exponent form, else ``text``."""
    return float(text) if re.fullmatch(r"[+-]?\d+(\.\d*)?[eE][+-]?\d+", text.strip()) else text


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check ``value`` against ``annotation`` (dataclass, Optional, Literal, list, tuple, scalar)."""
    origin = typing.get_origin(annotation)
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise UserInputError(f"{where}: expected a mapping, got {value!r}")
        return config_from_dict(annotation, value, where)
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(value, typing.get_args(annotation), where)
    if origin is typing.Literal:
        choices = typing.get_args(annotation)
        if value not in choices:
            raise UserInputError(f"{where}: {value!r} is not one of {', '.join(map(str, choices))}")
        return value
    if origin in (list, tuple):
        return _coerce_sequence(value, annotation, where)
    if annotation is float and isinstance(value, str):
        # PyYAML reads YAML 1.1, where "4e-3" (no dot) is a string; YAML 1.2 and every user read
        # it as a number.
        value = _float_or_same(value)
    if annotation in _SCALARS:
        fits, expected = _SCALARS[annotation]
        if not fits(value):
            raise UserInputError(f"{where}: expected {expected}, got {value!r}")
        return float(value) if annotation is float else value
    return value


def config_from_dict(cls: type[T], data: dict[str, Any], where: str = "config") -> T:
    """Build dataclass ``cls`` from a nested dict; unknown or ill-typed fields raise, naming the path."""
    types_by_name = _field_types(cls)
    unknown = sorted(set(data) - set(types_by_name))
    if unknown:
        raise UserInputError(
            f"{where}: unknown field(s) {', '.join(unknown)}; valid fields: {', '.join(types_by_name)}"
        )
    values = {name: _coerce(data[name], types_by_name[name], f"{where}.{name}") for name in data}
    return cls(**values)


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` strings (values parsed as YAML) to a nested dict, in place."""
    for item in overrides:
        if "=" not in item:
            raise UserInputError(
                f"--set: {item!r} is not of the form key=value (e.g. train.steps=100)"
            )
        dotted, raw = item.split("=", 1)
        keys = dotted.strip().split(".")
        node = data
        for key in keys[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise UserInputError(
                    f"--set: {dotted} goes through {key!r}, which is not a section"
                )
            node = child
        node[keys[-1]] = yaml.safe_load(raw)
    return data


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping from ``path`` with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"config: file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise UserInputError(f"config: {path} is not valid YAML: {err}") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserInputError(f"config: {path} must hold a mapping at the top level")
    return data
