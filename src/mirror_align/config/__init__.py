"""The experiment config: one home for the schema, the loader and the packaged presets.

* :mod:`mirror_align.config.loader`: typed nested dataclasses from YAML, ``--set`` overrides.
* :mod:`mirror_align.config.experiment`: the experiment schema (data, au, ee, align, train, eval).
* :mod:`mirror_align.config.describe`: every field with its source comment (``config show``).
* ``presets/<name>.yaml``: the packaged presets (tiny, quick, paper), read with
  :mod:`importlib.resources`, so they work after a plain, non-editable ``pip install``.
"""

from mirror_align.config.loader import (
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_yaml,
)

__all__ = ["apply_overrides", "config_from_dict", "config_to_dict", "load_yaml"]
