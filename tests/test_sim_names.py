"""A task's name has several homes; these tests tie them together so none can drift.

The homes: ``TASK_SPECS`` in sim/instructions.py (the canonical list and instruction ids), the
module file ``sim/tasks/<name>.py``, the key of ``sim/registry.py::IMPLEMENTATIONS``, the Task
subclass's ``name``, the gym id ``MirrorBench/<name>-v0`` and the paper's column mapping in
report/paper_numbers.py.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import gymnasium as gym
import pytest

import mirror_align.sim.tasks as tasks_package
from mirror_align.report.paper_numbers import PAPER_COLUMNS
from mirror_align.sim import TASK_NAMES, get_task, registry
from mirror_align.sim.task import Task


def _task_classes_by_module() -> dict[str, list[type[Task]]]:
    """Module name under sim/tasks -> the Task subclasses it defines (helper modules: none)."""
    found = {}
    for info in pkgutil.iter_modules(tasks_package.__path__):
        module = importlib.import_module(f"{tasks_package.__name__}.{info.name}")
        found[info.name] = [
            cls
            for _, cls in inspect.getmembers(module, inspect.isclass)
            if issubclass(cls, Task) and cls is not Task and cls.__module__ == module.__name__
        ]
    return found


def test_task_names_are_unique_and_complete() -> None:
    assert len(TASK_NAMES) == len(set(TASK_NAMES)) == 18
    assert registry.TASKS_PACKAGE == tasks_package.__name__


def test_every_task_module_is_registered_under_its_file_name() -> None:
    by_module = _task_classes_by_module()
    defining = {name: classes for name, classes in by_module.items() if classes}
    assert set(defining) == set(registry.IMPLEMENTATIONS)
    for name, classes in defining.items():
        assert [c.__name__ for c in classes] == [registry.IMPLEMENTATIONS[name]], name


@pytest.mark.parametrize("name", sorted(registry.IMPLEMENTATIONS))
def test_registry_key_module_class_name_and_spec_agree(name: str) -> None:
    assert name in TASK_NAMES
    task = get_task(name)
    assert task.name == name
    assert type(task).__module__ == f"{registry.TASKS_PACKAGE}.{name}"
    assert task.spec.name == name


def test_gym_ids_and_paper_columns_name_every_task() -> None:
    for name in TASK_NAMES:
        assert f"MirrorBench/{name}-v0" in gym.registry
    assert sorted(PAPER_COLUMNS.values()) == sorted(TASK_NAMES)


def test_get_task_rejects_a_class_whose_name_is_not_its_module(monkeypatch) -> None:
    # a task file copied from open_drawer.py that kept ``name = "open_drawer"``
    monkeypatch.setitem(registry.IMPLEMENTATIONS, "put_item_in_drawer", "OpenDrawer")
    monkeypatch.setattr(
        importlib.import_module(f"{registry.TASKS_PACKAGE}.put_item_in_drawer"),
        "OpenDrawer",
        importlib.import_module(f"{registry.TASKS_PACKAGE}.open_drawer").OpenDrawer,
        raising=False,
    )
    with pytest.raises(RuntimeError, match="name is 'open_drawer'"):
        get_task("put_item_in_drawer")
