"""The paper's own numbers (Zhu et al., ICCV 2025), typed from its text, for side-by-side columns.

These are RLBench results at GPU scale (ViCLIP + ARP, 128 px, 100 demos per task), not results of
this library. Every place that shows them labels them as the paper's. Values are percentages, as
printed in the paper. Nothing here is ever used to compute a number of this run.
"""

from __future__ import annotations

# The label every table column built from this module carries.
PAPER_LABEL = "paper (RLBench, GPU scale)"

# Paper column name (Tables 1-2, left to right) -> our task name (mirror_align.sim.registry).
PAPER_COLUMNS: dict[str, str] = {
    "Close Jar": "close_jar",
    "Drag Stick": "reach_and_drag",
    "Insert Peg": "insert_onto_square_peg",
    "Meat off Grill": "meat_off_grill",
    "Open Drawer": "open_drawer",
    "Place Cup": "place_cups",
    "Place Wine": "place_wine_at_rack_location",
    "Push Btn.": "push_buttons",
    "Put in Cpd.": "put_groceries_in_cupboard",
    "Put in Drawer": "put_item_in_drawer",
    "Put in Safe": "put_money_in_safe",
    "Screw Bulb": "light_bulb_in",
    "Slide Block": "slide_block_to_color_target",
    "Sort Shape": "place_shape_in_shape_sorter",
    "Stack Block": "stack_blocks",
    "Stack Cup": "stack_cups",
    "Sweep Dust": "sweep_to_dustpan_of_size",
    "Turn Tap": "turn_tap",
}

# Our task name -> the paper's column name.
TASK_TO_PAPER: dict[str, str] = {task: column for column, task in PAPER_COLUMNS.items()}

# Our tasks in the paper's column order.
PAPER_TASK_ORDER: list[str] = list(PAPER_COLUMNS.values())


def _by_task(values: list[float]) -> dict[str, float]:
    if len(values) != len(PAPER_COLUMNS):
        raise ValueError(f"expected {len(PAPER_COLUMNS)} values, got {len(values)}")
    return dict(zip(PAPER_TASK_ORDER, values, strict=True))


# Table 1: top-1 action recognition accuracy (%), fine-tuned ViCLIP (our "AU") and MN.
TABLE1_AVG = {"viclip_finetuned": 71.6, "mn": 74.9}
TABLE1: dict[str, dict[str, float]] = {
    "viclip_finetuned": _by_task(
        [69.3, 96.0, 21.3, 90.7, 100.0, 88.0, 56.0, 76.0, 14.7]
        + [100.0, 42.7, 78.7, 80.0, 77.3, 38.7, 69.3, 100.0, 89.3]
    ),
    "mn": _by_task(
        [72.0, 96.0, 33.3, 96.0, 100.0, 89.3, 56.0, 76.0, 17.3]
        + [100.0, 49.3, 84.0, 82.7, 85.3, 37.3, 80.0, 100.0, 93.3]
    ),
}

# Table 2: rollout success (%), ARP (our "EE") and MN, mean and the ± the paper prints.
TABLE2_AVG = {"arp": 85.3, "mn": 88.8}
TABLE2_MEAN: dict[str, dict[str, float]] = {
    "arp": _by_task(
        [100.0, 100.0, 93.3, 92.0, 90.7, 49.3, 93.3, 100.0, 66.7]
        + [100.0, 88.0, 92.0, 86.7, 49.3, 56.0, 82.7, 98.7, 97.3]
    ),
    "mn": _by_task(
        [100.0, 100.0, 94.7, 93.3, 93.3, 53.3, 97.3, 100.0, 70.7]
        + [100.0, 93.3, 88.0, 82.7, 66.7, 72.0, 93.3, 100.0, 100.0]
    ),
}
TABLE2_STD: dict[str, dict[str, float]] = {
    "arp": _by_task(
        [0.0, 0.0, 2.3, 0.0, 2.3, 6.1, 8.3, 0.0, 6.1]
        + [0.0, 4.0, 4.0, 6.1, 6.1, 4.0, 6.1, 2.3, 2.3]
    ),
    "mn": _by_task(
        [0.0, 0.0, 4.6, 2.3, 2.3, 12.2, 2.3, 0.0, 2.3]
        + [0.0, 2.3, 0.0, 2.3, 10.1, 6.9, 4.6, 0.0, 0.0]
    ),
}

# Table 3: the ablation grid, (pairing, tau) -> (AU accuracy %, EE success %), averaged over tasks.
# Its keys are the grid of mirror_align.constants (ABLATION_PAIRINGS x ABLATION_TAUS); a test ties them.
# The paper's third row is "By Class" (called "By Task" in its text); our pairing name is "class".
TABLE3: dict[tuple[str, float], tuple[float, float]] = {
    ("episode", 0.02): (74.0, 86.4),
    ("episode", 0.1): (72.9, 88.1),
    ("episode", 0.2): (74.0, 87.8),
    ("instruction", 0.02): (74.9, 86.7),
    ("instruction", 0.1): (74.9, 88.8),
    ("instruction", 0.2): (77.1, 87.0),
    ("class", 0.02): (73.6, 86.9),
    ("class", 0.1): (71.6, 85.7),
    ("class", 0.2): (72.2, 85.6),
}


def paper_column(task: str) -> str:
    """The paper's column name for ``task``, or ``"-"`` when the paper has no such column."""
    return TASK_TO_PAPER.get(task, "-")
