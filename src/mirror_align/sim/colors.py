"""The 20 named colours of RLBench / the paper's supplement, each with one fixed RGB in [0, 1].

The order is RLBench's ``colors`` list; variation indices of colour tasks index into it.
"""

from __future__ import annotations

COLORS: dict[str, tuple[float, float, float]] = {
    "red": (1.0, 0.0, 0.0),
    "maroon": (0.5, 0.0, 0.0),
    "lime": (0.0, 1.0, 0.0),
    "green": (0.0, 0.5, 0.0),
    "blue": (0.0, 0.0, 1.0),
    "navy": (0.0, 0.0, 0.5),
    "yellow": (1.0, 1.0, 0.0),
    "cyan": (0.0, 1.0, 1.0),
    "magenta": (1.0, 0.0, 1.0),
    "silver": (0.75, 0.75, 0.75),
    "gray": (0.5, 0.5, 0.5),
    "orange": (1.0, 0.5, 0.0),
    "olive": (0.5, 0.5, 0.0),
    "purple": (0.5, 0.0, 0.5),
    "teal": (0.0, 0.5, 0.5),
    "azure": (0.0, 0.5, 1.0),
    "violet": (0.5, 0.0, 1.0),
    "rose": (1.0, 0.0, 0.5),
    "black": (0.0, 0.0, 0.0),
    "white": (1.0, 1.0, 1.0),
}

COLOR_NAMES: list[str] = list(COLORS)

# Colours used by tasks that are not in the 20 (slide_block_to_color_target's "pink").
EXTRA_COLORS: dict[str, tuple[float, float, float]] = {
    "pink": (1.0, 0.6, 0.8),
}


def rgba(name: str, alpha: float = 1.0) -> str:
    """MJCF ``rgba`` attribute text for a named colour, e.g. ``"1 0 0 1"``."""
    r, g, b = COLORS.get(name) or EXTRA_COLORS[name]
    return f"{r:g} {g:g} {b:g} {alpha:g}"
