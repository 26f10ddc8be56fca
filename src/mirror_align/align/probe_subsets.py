"""Probing of subsets at equal sample sizes (paper Fig. 3 right: e.g. success vs failure).

Each subset (a boolean mask over the rows) is subsampled to the size of the smallest one and
probed with :func:`mirror_align.align.probe.probe`, over repeated seeded subsamples; the spread
over repeats is reported beside the mean.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike
from tqdm import tqdm

from mirror_align.align.probe import ProbeConfig, check_probe_inputs, probe, subset_keys
from mirror_align.atomic import write_json_atomic
from mirror_align.errors import UserInputError

# Rows the smallest subset needs: equal-size subsampling below this leaves too few pairs to probe.
MIN_SUBSET_ROWS = 8


@dataclass
class SubsetProbeResult:
    """Probing of several subsets at one sample size, over repeated random subsamples.

    ``summary[subset][metric]`` holds ``mean``, ``std`` (over repeats, ddof=0) and ``values``.
    """

    n_per_subset: int
    repeats: int
    subset_sizes: dict[str, int]
    summary: dict[str, dict[str, dict]]
    runs: list[dict[str, dict]]

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return asdict(self)

    def save(self, path: str | Path) -> None:
        """Write the JSON atomically."""
        write_json_atomic(path, self.to_dict())


SUBSET_METRICS = ("recall_at_1", "chance", "mi_lower_bound_nats", "mutual_knn", "cka_linear")


def probe_subsets(
    u: ArrayLike,
    e: ArrayLike,
    keys: Mapping[str, ArrayLike],
    subsets: Mapping[str, ArrayLike],
    config: ProbeConfig | None = None,
    repeats: int = 5,
) -> SubsetProbeResult:
    """Probe each subset (a boolean mask ``[N]``) at the size of the smallest one (paper Fig. 3 right).

    In every repeat r, each larger subset is subsampled without replacement to that size (seed
    ``config.seed + r``) and a separate probe is trained on it with seed ``config.seed + r``.
    """
    config = config or ProbeConfig()
    u = np.asarray(u, dtype=np.float32)
    e = np.asarray(e, dtype=np.float32)
    keys = check_probe_inputs(u, e, keys)
    if len(subsets) < 1 or repeats < 1:
        raise UserInputError("probe_subsets: need at least one subset and one repeat")
    rows: dict[str, np.ndarray] = {}
    for name, mask in subsets.items():
        mask = np.asarray(mask)
        if mask.shape != (u.shape[0],) or mask.dtype != np.bool_:
            raise UserInputError(
                f"probe_subsets: subset {name!r} must be a boolean mask of shape ({u.shape[0]},)"
            )
        rows[name] = np.flatnonzero(mask)
    n = min(r.size for r in rows.values())
    if n < MIN_SUBSET_ROWS:
        raise UserInputError(
            f"probe_subsets: the smallest subset has {n} rows; need at least {MIN_SUBSET_ROWS}"
        )
    runs: list[dict[str, dict]] = []
    for r in tqdm(range(repeats), desc="subsets", unit="repeat", disable=not config.progress):
        rng = np.random.default_rng(config.seed + r)
        run = {}
        for name, candidates in rows.items():
            pick = np.sort(rng.choice(candidates, size=n, replace=False))
            sub_config = replace(config, seed=config.seed + r, progress=False)
            run[name] = probe(u[pick], e[pick], subset_keys(keys, pick), sub_config).to_dict()
        runs.append(run)
    summary = {}
    for name in rows:
        summary[name] = {}
        for metric in SUBSET_METRICS:
            values = [float(run[name][metric]) for run in runs]
            summary[name][metric] = {
                "mean": float(np.mean(values)),
                "std": float(np.std(values)),
                "values": values,
            }
    return SubsetProbeResult(
        n_per_subset=int(n),
        repeats=repeats,
        subset_sizes={name: int(r.size) for name, r in rows.items()},
        summary=summary,
        runs=runs,
    )
