"""The 18 MirrorBench tasks' variation axes and instruction texts (RLBench's first description).

This table is complete for all 18 tasks whether or not a task is implemented yet, so that the
instruction table (249 rows, ids 0..248) never changes when a task lands.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

from mirror_align.sim.colors import COLOR_NAMES

DRAWER_LEVELS = ["bottom", "middle", "top"]
SLIDE_TARGET_COLORS = ["green", "blue", "pink", "yellow"]
GROCERY_NAMES = [
    "crackers",
    "chocolate jello",
    "strawberry jello",
    "soup",
    "tuna",
    "spam",
    "coffee",
    "mustard",
    "sugar",
]
SHAPE_NAMES = ["cube", "cylinder", "triangular prism", "star", "moon"]
MAX_STACKED_BLOCKS = 3  # stack_blocks: 2, 3 or 4 blocks per colour
# push_buttons: RLBench enumerates ordered colour triples; variation k shows the buttons of triple k
# and asks for the first 1 + k % 3 of them in order.
BUTTON_PERMUTATIONS: list[tuple[str, str, str]] = list(itertools.permutations(COLOR_NAMES, 3))[:50]


def stack_blocks_variation(variation: int) -> tuple[str, int]:
    """stack_blocks variation -> (colour, number of blocks to stack)."""
    return COLOR_NAMES[variation // MAX_STACKED_BLOCKS], 2 + variation % MAX_STACKED_BLOCKS


def push_buttons_variation(variation: int) -> tuple[tuple[str, str, str], int]:
    """push_buttons variation -> (colours of the 3 buttons, how many to push in order)."""
    return BUTTON_PERMUTATIONS[variation], 1 + variation % 3


def _push_buttons_text(variation: int) -> str:
    colours, n = push_buttons_variation(variation)
    text = f"push the {colours[0]} button"
    for colour in colours[1:n]:
        text += f", then push the {colour} button"
    return text


def _stack_blocks_text(variation: int) -> str:
    colour, n = stack_blocks_variation(variation)
    return f"stack {n} {colour} blocks"


@dataclass(frozen=True)
class TaskSpec:
    """Variation count and instruction text of one task (independent of its implementation)."""

    name: str
    variations: int
    text: Callable[[int], str]

    def instruction(self, variation: int) -> str:
        if not 0 <= variation < self.variations:
            from mirror_align.errors import UserInputError

            raise UserInputError(
                f"variation {variation} of task {self.name!r} is out of range: "
                f"valid are 0..{self.variations - 1}"
            )
        return self.text(variation)


def _axis(template: str, values: list) -> Callable[[int], str]:
    return lambda k: template % values[k]


TASK_SPECS: list[TaskSpec] = [
    TaskSpec("open_drawer", 3, _axis("open the %s drawer", DRAWER_LEVELS)),
    TaskSpec(
        "slide_block_to_color_target",
        4,
        _axis("slide the block to %s target", SLIDE_TARGET_COLORS),
    ),
    TaskSpec(
        "sweep_to_dustpan_of_size", 2, _axis("sweep dirt to the %s dustpan", ["tall", "short"])
    ),
    TaskSpec("meat_off_grill", 2, _axis("take the %s off the grill", ["chicken", "steak"])),
    TaskSpec("turn_tap", 2, _axis("turn %s tap", ["left", "right"])),
    TaskSpec("put_item_in_drawer", 3, _axis("put the item in the %s drawer", DRAWER_LEVELS)),
    TaskSpec("close_jar", 20, _axis("close the %s jar", COLOR_NAMES)),
    TaskSpec(
        "reach_and_drag",
        20,
        _axis("use the stick to drag the cube onto the %s target", COLOR_NAMES),
    ),
    TaskSpec(
        "stack_blocks",
        60,
        _stack_blocks_text,
    ),
    TaskSpec("light_bulb_in", 20, _axis("screw in the %s light bulb", COLOR_NAMES)),
    TaskSpec(
        "put_money_in_safe",
        3,
        _axis("put the money away in the safe on the %s shelf", DRAWER_LEVELS),
    ),
    TaskSpec(
        "place_wine_at_rack_location",
        3,
        _axis("stack the wine bottle to the %s of the rack", ["left", "middle", "right"]),
    ),
    TaskSpec("put_groceries_in_cupboard", 9, _axis("put the %s in the cupboard", GROCERY_NAMES)),
    TaskSpec(
        "place_shape_in_shape_sorter", 5, _axis("put the %s in the shape sorter", SHAPE_NAMES)
    ),
    TaskSpec("push_buttons", 50, _push_buttons_text),
    TaskSpec("insert_onto_square_peg", 20, _axis("put the ring on the %s spoke", COLOR_NAMES)),
    TaskSpec("stack_cups", 20, _axis("stack the other cups on top of the %s cup", COLOR_NAMES)),
    TaskSpec("place_cups", 3, _axis("place %d cups on the cup holder", [1, 2, 3])),
]
