"""Every field of a config with its comment, as YAML (``mirror-align config show``).

The comments are the ones written right above each field in the dataclass source (one home: the
schema documents itself); a section takes the first paragraph of its class docstring. The output
is valid YAML: saved to a file, it loads back (``--config FILE``) into the same config.
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import json
import textwrap
import tokenize
from functools import cache
from typing import Any

WIDTH = 100  # wrap comments to this many columns


@cache
def field_comments(cls: type) -> dict[str, str]:
    """Field name -> the comment block right above it in ``cls``'s source, joined into one line
    ("" when the field has none)."""
    names = {f.name for f in dataclasses.fields(cls)}
    source = textwrap.dedent(inspect.getsource(cls))
    comments: dict[str, str] = {}
    block: list[str] = []
    block_end = -1  # source line of the block's last comment
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        line, column = token.start
        if token.type == tokenize.COMMENT:
            if line != block_end + 1:
                block = []  # not contiguous with the previous comment: a new block
            block.append(token.string.lstrip("#").strip())
            block_end = line
        elif token.type == tokenize.NAME and column == 4 and token.string in names:
            adjacent = line == block_end + 1
            comments.setdefault(token.string, " ".join(block) if adjacent else "")
            block = []
    return comments


def _section_doc(cls: type) -> str:
    return (inspect.getdoc(cls) or "").split("\n\n")[0].replace("\n", " ")


def _comment_lines(text: str, indent: str) -> list[str]:
    if not text:
        return []
    return textwrap.wrap(text, WIDTH - len(indent) - 2, initial_indent=f"{indent}# ",
                         subsequent_indent=f"{indent}# ")  # fmt: skip


def _value(value: Any) -> str:
    """A YAML flow value: lists, mappings, quoted strings, null, true/false. Floats always carry a
    dot (``1.0e-05``): YAML 1.1 reads ``1e-05`` as a string."""
    if isinstance(value, float):
        text = repr(value)
        mantissa, _, exponent = text.partition("e")
        if "." not in mantissa and mantissa.lstrip("-").isdigit():
            text = f"{mantissa}.0" + (f"e{exponent}" if exponent else "")
        return text
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def describe(config: Any, indent: str = "") -> list[str]:
    """The lines of ``config`` (a dataclass instance) as commented YAML, nested sections indented."""
    comments = field_comments(type(config))
    lines: list[str] = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            lines += _comment_lines(comments.get(f.name) or _section_doc(type(value)), indent)
            lines.append(f"{indent}{f.name}:")
            lines += describe(value, indent + "  ")
            continue
        lines += _comment_lines(comments.get(f.name, ""), indent)
        plain = dataclasses.asdict(config)[f.name]
        lines.append(f"{indent}{f.name}: {_value(plain)}")
    return lines


def missing_comments(config: Any, prefix: str = "") -> list[str]:
    """Dotted names of the fields of ``config`` (recursively) that have no comment."""
    comments = field_comments(type(config))
    missing = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            missing += missing_comments(value, f"{prefix}{f.name}.")
        elif not comments.get(f.name):
            missing.append(prefix + f.name)
    return missing
