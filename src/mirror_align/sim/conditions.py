"""Reusable success predicates, evaluated by the env at every control step.

A condition is told about every control step (:meth:`Condition.update`), so momentary events
(a button that springs back) can be latched. The env's success is "all conditions hold" at some
control step.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mirror_align.sim.gripper import Gripper
from mirror_align.sim.physics import Physics


class Condition:
    """Base class: override :meth:`holds`; stateful ones also override :meth:`update`/``reset``."""

    def reset(self, physics: Physics) -> None:
        """Forget latched state (called once after the scene is built)."""

    def update(self, physics: Physics) -> None:
        """Observe one control step (default: stateless)."""

    def holds(self, physics: Physics) -> bool:
        raise NotImplementedError


class JointAbove(Condition):
    """A 1-dof joint's position exceeds ``threshold`` (metres or radians)."""

    def __init__(self, joint: str, threshold: float) -> None:
        self.joint, self.threshold = joint, threshold

    def holds(self, physics: Physics) -> bool:
        return physics.joint_qpos(self.joint) > self.threshold


class BodyInSite(Condition):
    """A body's origin lies inside a box site (the site's frame and half-sizes; site may move)."""

    def __init__(self, body: str, site: str) -> None:
        self.body, self.site = body, site

    def holds(self, physics: Physics) -> bool:
        local = physics.site_mat(self.site).T @ (
            physics.body_pos(self.body) - physics.site_pos(self.site)
        )
        return bool(np.all(np.abs(local) <= physics.site_size(self.site)))


class NothingGrasped(Condition):
    """The gripper holds nothing."""

    def __init__(self, gripper: Gripper) -> None:
        self.gripper = gripper

    def holds(self, physics: Physics) -> bool:
        return not self.gripper.grasped()


class Latched(Condition):
    """Holds from the first control step at which ``inner`` held."""

    def __init__(self, inner: Condition) -> None:
        self.inner = inner
        self.fired = False

    def reset(self, physics: Physics) -> None:
        self.inner.reset(physics)
        self.fired = False

    def update(self, physics: Physics) -> None:
        self.inner.update(physics)
        self.fired = self.fired or self.inner.holds(physics)

    def holds(self, physics: Physics) -> bool:
        return self.fired


class EventsInOrder(Condition):
    """Latches the first occurrence of each named event and holds when the events happened in
    exactly the order ``target`` (no other event first, none missing).

    ``events`` maps a name to a condition that is true while the event is happening (e.g. a button
    pressed below its threshold).
    """

    def __init__(self, events: dict[str, Condition], target: Sequence[str]) -> None:
        self.events, self.target = events, list(target)
        self.order: list[str] = []

    def reset(self, physics: Physics) -> None:
        self.order = []
        for c in self.events.values():
            c.reset(physics)

    def update(self, physics: Physics) -> None:
        for name, c in self.events.items():
            c.update(physics)
            if name not in self.order and c.holds(physics):
                self.order.append(name)

    def holds(self, physics: Physics) -> bool:
        return self.order == self.target


class JointBelow(Condition):
    """A 1-dof joint's position is below ``threshold`` (e.g. a button pressed down)."""

    def __init__(self, joint: str, threshold: float) -> None:
        self.joint, self.threshold = joint, threshold

    def holds(self, physics: Physics) -> bool:
        return physics.joint_qpos(self.joint) < self.threshold
