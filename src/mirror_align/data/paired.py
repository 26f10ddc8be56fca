"""Index-aligned (AU, EE) batches whose rows are positive pairs (paper Sec. 3, Table 3).

The EE side is drawn first, uniformly across tasks (a task, then one of its transitions), so tasks
with long demos do not dominate; each EE sample's AU partner is then drawn by
:func:`mirror_align.align.pairing.make_pairs` among the AU clips sharing its episode, instruction
or task::

    paired = PairedDataset(au_dataset, ee_dataset)
    sampler = PairedBatchSampler(au_dataset, ee_dataset, batch_size=32, pairing="instruction")
    loader = DataLoader(paired, batch_sampler=sampler, num_workers=2, worker_init_fn=seed_worker,
                        collate_fn=collate)
    for au_batch, ee_batch in loader: ...   # row i of both is a positive pair
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from mirror_align.align.pairing import key_field, make_pairs
from mirror_align.constants import DEFAULT_PAIRING
from mirror_align.data.loaders import AUClipDataset, EEKeyframeDataset
from mirror_align.errors import UserInputError


class PairedDataset(Dataset):
    """Item ``(au_index, ee_index)`` -> ``(AU sample, EE sample)``; collates to two batch dicts."""

    def __init__(self, au: AUClipDataset, ee: EEKeyframeDataset) -> None:
        self.au = au
        self.ee = ee

    def children(self) -> list[Dataset]:
        return [self.au, self.ee]

    def __len__(self) -> int:
        return len(self.ee)

    def __getitem__(self, pair: tuple[int, int]) -> tuple[dict, dict]:
        au_index, ee_index = pair
        return self.au[au_index], self.ee[ee_index]


class PairedBatchSampler(Sampler[list[tuple[int, int]]]):
    """Yields ``batches_per_epoch`` lists of ``batch_size`` (au_index, ee_index) positive pairs.

    ``pairing`` is ``episode``, ``instruction`` (the paper's default) or ``class``. Each epoch
    uses a fresh draw from a Generator seeded by (``seed``, epoch), so runs are reproducible and
    epochs differ. ``batches_per_epoch`` defaults to ``len(ee) // batch_size``. Under DDP give each
    process its ``rank``: ranks then draw independent batches from the same (seed, epoch).
    """

    def __init__(
        self,
        au: AUClipDataset,
        ee: EEKeyframeDataset,
        batch_size: int,
        pairing: str = DEFAULT_PAIRING,
        seed: int = 0,
        batches_per_epoch: int | None = None,
        rank: int = 0,
    ) -> None:
        if batch_size < 1:
            raise UserInputError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.pairing = pairing
        self.seed = seed
        self.rank = rank
        self.epoch = 0
        self.au_keys = au.key_arrays()
        self.ee_keys = ee.key_arrays()
        self.tasks = np.unique(self.ee_keys["task_id"])
        self.by_task = [np.flatnonzero(self.ee_keys["task_id"] == t) for t in self.tasks]
        self.batches_per_epoch = batches_per_epoch or max(1, len(ee) // batch_size)
        # Fail now, not mid-epoch, if some EE sample can have no AU partner.
        make_pairs(queries=self.ee_keys, candidates=self.au_keys, mode=pairing, rng=0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.batches_per_epoch

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        rng = np.random.default_rng([self.seed, self.epoch, self.rank])
        self.epoch += 1
        total = self.batches_per_epoch * self.batch_size
        task_slots = rng.integers(0, len(self.tasks), size=total)
        ee_index = np.empty(total, dtype=np.int64)
        for slot, members in enumerate(self.by_task):
            chosen = task_slots == slot
            ee_index[chosen] = members[rng.integers(0, len(members), size=int(chosen.sum()))]
        # Each drawn EE sample is a query; its partner is a random AU clip sharing its key.
        drawn = {key: values[ee_index] for key, values in self.ee_keys.items()}
        pairs = make_pairs(queries=drawn, candidates=self.au_keys, mode=self.pairing, rng=rng)
        au_index = pairs.candidate_index
        for b in range(self.batches_per_epoch):
            rows = slice(b * self.batch_size, (b + 1) * self.batch_size)
            yield list(zip(au_index[rows].tolist(), ee_index[rows].tolist(), strict=True))


def check_pair_batch(au_batch: dict, ee_batch: dict, pairing: str) -> torch.Tensor:
    """Bool [B]: whether row i of the two batches shares the pairing key (for tests and asserts)."""
    key = key_field(pairing)
    return au_batch[key] == ee_batch[key]
