"""The Task base class: one subclass per benchmark task (in ``sim/tasks/<task>.py``).

A task builds its scene objects from a seeded generator and a variation, names its success
conditions, and scripts an expert. Everything a task samples goes into its *layout* (a dataclass
of named fields), so the expert and the success check read named state, never magic indices.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from mirror_align.sim.conditions import Condition
from mirror_align.sim.gripper import Gripper
from mirror_align.sim.instructions import TASK_SPECS, TaskSpec
from mirror_align.sim.physics import Physics
from mirror_align.sim.scene import Scene


class Task:
    """Subclass in ``sim/tasks/<name>.py``, set ``name`` (one of ``TASK_NAMES``, the same as the
    module's file name; tests/test_sim_names.py checks it) and implement the three methods."""

    name: ClassVar[str]

    @property
    def spec(self) -> TaskSpec:
        return next(s for s in TASK_SPECS if s.name == self.name)

    @property
    def variation_count(self) -> int:
        return self.spec.variations

    def instruction(self, variation: int) -> str:
        """RLBench's first description for ``variation``."""
        return self.spec.instruction(variation)

    def build(self, scene: Scene, rng: np.random.Generator, variation: int) -> Any:
        """Add the task's bodies to ``scene`` (``scene.add_body``, ``scene.add_graspable``) using
        only ``rng`` for randomness; return the layout (a dataclass of named poses/names)."""
        raise NotImplementedError

    def success_conditions(
        self, layout: Any, physics: Physics, gripper: Gripper
    ) -> list[Condition]:
        """Conditions that must all hold at one control step for success."""
        raise NotImplementedError

    def expert(self, layout: Any, physics: Physics, gripper: Gripper) -> list[dict]:
        """Keyframe actions that solve the task from the current (just reset) state."""
        raise NotImplementedError
