"""YAML configs: nested dataclasses, overrides and error messages."""

from dataclasses import dataclass, field
from typing import Literal

import pytest

from mirror_align.config import apply_overrides, config_from_dict, config_to_dict, load_yaml
from mirror_align.errors import UserInputError


@dataclass
class Inner:
    lr: float = 1e-3  # learning rate
    pairing: Literal["episode", "instruction", "class"] = "instruction"  # positive pairing


@dataclass
class Outer:
    steps: int = 10  # optimisation steps
    inner: Inner = field(default_factory=Inner)  # a nested section
    tags: list[str] = field(default_factory=list)  # free labels
    path: str | None = None  # optional file


def test_round_trip_and_overrides():
    data = apply_overrides({"steps": 5}, ["inner.lr=0.5", "tags=[a, b]", "path=/x"])
    config = config_from_dict(Outer, data)
    assert config == Outer(steps=5, inner=Inner(lr=0.5), tags=["a", "b"], path="/x")
    assert config_from_dict(Outer, config_to_dict(config)) == config


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"stepz": 1}, "unknown field(s) stepz; valid fields: steps, inner, tags, path"),
        ({"steps": "ten"}, "config.steps: expected an integer"),
        (
            {"inner": {"pairing": "pixel"}},
            "config.inner.pairing: 'pixel' is not one of episode, instruction, class",
        ),
        ({"inner": {"lr": True}}, "config.inner.lr: expected a number"),
    ],
)
def test_errors_name_the_field(data, message):
    with pytest.raises(UserInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        config_from_dict(Outer, data)


def test_bad_override_and_missing_file(tmp_path):
    with pytest.raises(UserInputError, match="key=value"):
        apply_overrides({}, ["steps"])
    with pytest.raises(UserInputError, match="file not found"):
        load_yaml(tmp_path / "nope.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(UserInputError, match="mapping"):
        load_yaml(tmp_path / "list.yaml")


def test_exponent_without_dot_is_a_number():
    # PyYAML (YAML 1.1) reads "4e-3" as a string; a float field takes it as the number it spells.
    data = apply_overrides({}, ["inner.lr=4e-3"])
    assert config_from_dict(Outer, data).inner.lr == pytest.approx(0.004)
    with pytest.raises(UserInputError, match="config.inner.lr: expected a number, got 'nan'"):
        config_from_dict(Outer, apply_overrides({}, ["inner.lr=nan"]))
