"""The training data: the dataset checked against the config, then every step's paired batch.

:func:`open_training_data` reads ``dataset.json`` first and checks the config against it
(:func:`mirror_align.models.factory.data_facts`), so a conflict costs one error line and no
decoding; only then are the episodes opened (and cached). It also counts the keyframe targets that
lie outside the workspace bounds the policy will use, and reports them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from mirror_align.config.experiment import ExperimentConfig
from mirror_align.data.loaders import AUClipDataset, EEKeyframeDataset, collate
from mirror_align.data.paired import PairedBatchSampler
from mirror_align.data.reader import DatasetReader
from mirror_align.models.factory import DataFacts, data_facts


class PairStream:
    """The batch of every step as a pure function of (seed, step).

    Index pairs of the global batch come from :class:`PairedBatchSampler` (epoch = step //
    batches_per_epoch); rank r of N reads rows ``[r*B/N, (r+1)*B/N)`` of it. Every item's
    augmentation RNG is re-seeded from (step, its row in the global batch), so a resumed run, and a
    DDP run, read exactly the samples of the uninterrupted single-process run.
    """

    def __init__(
        self, config: ExperimentConfig, method: str, rank: int = 0, world_size: int = 1
    ) -> None:
        data = config.data
        shared = {"tasks": data.tasks or None, "include_failed": False, "seed": config.seed}
        # The AU baseline never reads EE images (and vice versa), but needs the other side's keys
        # to draw the same pairs as MN: that side is opened without its cache.
        self.au = AUClipDataset(
            data.path,
            "train",
            clip_frames=config.au.num_frames,
            train=True,
            cache=data.cache and method != "ee",
            **shared,
        )
        self.ee = EEKeyframeDataset(
            data.path,
            "train",
            augment=data.augment,
            cache=data.cache and method != "au",
            **shared,
        )
        self.sampler = PairedBatchSampler(
            self.au, self.ee, config.train.batch_size, config.align.pairing, config.seed
        )
        self.local = config.train.batch_size // world_size
        self.first_row = rank * self.local
        self._epoch, self._batches = -1, []

    def pairs(self, step: int) -> list[tuple[int, int]]:
        """This rank's (au_index, ee_index) pairs at ``step``."""
        epoch, offset = divmod(step, len(self.sampler))
        if epoch != self._epoch:
            self.sampler.set_epoch(epoch)
            self._epoch, self._batches = epoch, list(self.sampler)
        return self._batches[offset][self.first_row : self.first_row + self.local]

    def batch(self, step: int, *, need_au: bool, need_ee: bool) -> tuple[dict | None, dict | None]:
        """Collated (AU batch, EE batch) of this rank at ``step``; a side not needed is None."""
        au_items, ee_items = [], []
        for row, (i, j) in enumerate(self.pairs(step), start=self.first_row):
            item_seed = step * 100_003 + row
            if need_au:
                self.au.reseed(item_seed)
                au_items.append(self.au[i])
            if need_ee:
                self.ee.reseed(item_seed)
                ee_items.append(self.ee[j])
        return (collate(au_items) if need_au else None), (collate(ee_items) if need_ee else None)


def warn(message: str) -> None:
    """One warning line on stderr."""
    print(f"mirror-align train: warning: {message}", file=sys.stderr)


def open_training_data(
    config: ExperimentConfig,
    method: str,
    rank: int = 0,
    world_size: int = 1,
    report: Callable[[str], None] | None = warn,
) -> tuple[DataFacts, PairStream]:
    """Check the config against ``data.path``'s metadata, then open its training split.

    Raises ``UserInputError`` (one line) on a conflict before any episode is decoded. With the
    EE policy in the method, ``report`` (None: silent) receives one line when keyframe targets lie
    outside the workspace bounds: they are kept as they are, never clipped, but the policy cannot
    decode a position outside the bounds.
    """
    path = config.data.path
    facts = data_facts(config, DatasetReader(path).meta, method, where=f"dataset {path}")
    stream = PairStream(config, method, rank, world_size)
    if report is not None and method != "au" and facts.workspace_bounds is not None:
        outside = stream.ee.targets_outside(facts.workspace_bounds)
        if outside:
            report(
                f"{outside} of {len(stream.ee)} keyframe targets of {path} (train) lie outside "
                f"the workspace bounds {facts.workspace_bounds}; they are not clipped, but the "
                "policy decodes positions inside the bounds only (set workspace_bounds in "
                "dataset.json to cover them)"
            )
    return facts, stream
