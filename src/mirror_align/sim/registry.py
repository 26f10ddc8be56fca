"""Task names, the instruction table, and lookup of implemented tasks.

To add a task: write ``sim/tasks/<task>.py`` with a :class:`~mirror_align.sim.task.Task`
subclass and add one line to ``IMPLEMENTATIONS`` below. A task's name lives in
``sim/instructions.py`` (``TASK_SPECS``) and is repeated as its module's file name, the registry key,
the class's ``name`` and in ``report/paper_numbers.py``; tests/test_sim_names.py ties them together.
"""

from __future__ import annotations

import importlib
from functools import lru_cache

from mirror_align.errors import UserInputError
from mirror_align.sim.instructions import TASK_SPECS

TASK_NAMES: list[str] = [s.name for s in TASK_SPECS]
TASKS_PACKAGE = "mirror_align.sim.tasks"  # task ``t`` is implemented in module TASKS_PACKAGE.t

# task name -> its Task subclass, defined in mirror_align.sim.tasks.<task name>
IMPLEMENTATIONS: dict[str, str] = {
    "open_drawer": "OpenDrawer",
    "put_item_in_drawer": "PutItemInDrawer",
    "push_buttons": "PushButtons",
    "slide_block_to_color_target": "SlideBlockToColorTarget",
    "sweep_to_dustpan_of_size": "SweepToDustpanOfSize",
    "turn_tap": "TurnTap",
    "put_money_in_safe": "PutMoneyInSafe",
    "place_wine_at_rack_location": "PlaceWineAtRackLocation",
    "reach_and_drag": "ReachAndDrag",
    "light_bulb_in": "LightBulbIn",
    "stack_blocks": "StackBlocks",
    "insert_onto_square_peg": "InsertOntoSquarePeg",
    "place_shape_in_shape_sorter": "PlaceShapeInShapeSorter",
    "put_groceries_in_cupboard": "PutGroceriesInCupboard",
    "place_cups": "PlaceCups",
    "stack_cups": "StackCups",
    "close_jar": "CloseJar",
    "meat_off_grill": "MeatOffGrill",
}


def is_implemented(name: str) -> bool:
    return name in IMPLEMENTATIONS


def implemented_tasks() -> list[str]:
    """Implemented task names in ``TASK_NAMES`` order."""
    return [n for n in TASK_NAMES if n in IMPLEMENTATIONS]


def get_task(name: str):
    """A new instance of the task's implementation."""
    if name not in TASK_NAMES:
        raise UserInputError(f"unknown task {name!r}; valid tasks: {', '.join(TASK_NAMES)}")
    if name not in IMPLEMENTATIONS:
        raise UserInputError(
            f"task {name!r} is not implemented yet; implemented: {', '.join(implemented_tasks())}"
        )
    module = importlib.import_module(f"{TASKS_PACKAGE}.{name}")
    task = getattr(module, IMPLEMENTATIONS[name])()
    if task.name != name:  # a copied task file that kept its template's name
        raise RuntimeError(f"{module.__name__}.{IMPLEMENTATIONS[name]}.name is {task.name!r}")
    return task


def make_env(task: str, image_size: int = 128, **kwargs):
    """A :class:`~mirror_align.sim.env.MirrorBenchEnv` for ``task`` (see docs/interfaces.md)."""
    from mirror_align.sim.env import MirrorBenchEnv

    return MirrorBenchEnv(get_task(task), image_size=image_size, **kwargs)


@lru_cache(maxsize=1)
def _table() -> tuple[tuple[int, str, int, str], ...]:
    rows = []
    for spec in TASK_SPECS:
        for v in range(spec.variations):
            rows.append((len(rows), spec.name, v, spec.instruction(v)))
    return tuple(rows)


def instruction_table() -> list[tuple[int, str, int, str]]:
    """All (instruction_id, task, variation, text) rows: tasks in TASK_NAMES order, variations
    ascending; ids 0..248."""
    return list(_table())


def instruction_id(task: str, variation: int) -> int:
    """Row of ``(task, variation)`` in :func:`instruction_table`."""
    for row in _table():
        if row[1] == task and row[2] == variation:
            return row[0]
    raise UserInputError(f"no instruction for task {task!r} variation {variation}")


def register_gym_envs() -> None:
    """Register ``MirrorBench/<task>-v0`` for all 18 tasks (unimplemented ones raise on make)."""
    import gymnasium as gym

    for name in TASK_NAMES:
        env_id = f"MirrorBench/{name}-v0"
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=make_env, kwargs={"task": name})
