"""Datasets: the on-disk format, the public writer and reader, generation, loaders, importers.

The format and the writer are importable without torch or the simulator::

    from mirror_align.data import DatasetMeta, DatasetWriter, Episode, Instruction

Loaders live in :mod:`mirror_align.data.loaders` and :mod:`mirror_align.data.paired`.
"""

from mirror_align.data.reader import DatasetReader
from mirror_align.data.schema import SCHEMA_VERSION, DatasetMeta, Episode, Instruction
from mirror_align.data.verify import verify_dataset
from mirror_align.data.writer import DatasetWriter

__all__ = [
    "SCHEMA_VERSION",
    "DatasetMeta",
    "DatasetReader",
    "DatasetWriter",
    "Episode",
    "Instruction",
    "verify_dataset",
]
