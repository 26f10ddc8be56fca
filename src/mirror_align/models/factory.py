"""Build the modules a method trains from an experiment config and the dataset's metadata.

As lerobot's ``make_policy(cfg, ds_meta)``: the shapes come from the data, the sizes from the
config. :func:`data_facts` reads what the models need from ``dataset.json`` (image size, cameras,
video frames, workspace bounds, the instruction table) and checks every config field that states
one of those facts against it, so a conflict is one error line before any episode is decoded.
:func:`build_models` is the only place that maps a method (``au``, ``ee``, ``mn``) to concrete
models, so the trainer, the evaluation and the probing experiments build identical modules.
A checkpoint's ``config.json`` stores the :class:`DataFacts` it was built with, so a run is
rebuilt without its dataset.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from mirror_align.align import Aligner
from mirror_align.config.experiment import ExperimentConfig
from mirror_align.constants import METHODS
from mirror_align.data.schema import DatasetMeta
from mirror_align.errors import UserInputError
from mirror_align.models.config import check_bounds
from mirror_align.models.policy import KeyframePolicy
from mirror_align.models.video_text import VideoTextModel


@dataclass(frozen=True)
class DataFacts:
    """What the models take from the dataset, never from the config."""

    image_size: int  # H = W of every camera image and video frame, pixels
    cameras: tuple[str, ...]  # the EE's views, in stored order
    video_frames: int | None  # frames per stored video (None: any length); the AU samples its own
    # (x_min, y_min, z_min, x_max, y_max, z_max) in metres; None when neither the dataset nor
    # the config states them (then only the AU can be built).
    workspace_bounds: tuple[float, ...] | None
    instructions: tuple[str, ...]  # the instruction table, indexed by instruction_id

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for ``config.json``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataFacts:
        """Inverse of :meth:`to_dict`."""
        bounds = data["workspace_bounds"]
        return cls(
            image_size=int(data["image_size"]),
            cameras=tuple(data["cameras"]),
            video_frames=data["video_frames"],
            workspace_bounds=None if bounds is None else tuple(float(b) for b in bounds),
            instructions=tuple(data["instructions"]),
        )


def _flat_bounds(meta: DatasetMeta) -> tuple[float, ...] | None:
    """``dataset.json``'s rows x, y, z of (low, high) as (x_min, y_min, z_min, x_max, y_max, z_max)."""
    if meta.workspace_bounds is None:
        return None
    rows = [tuple(float(v) for v in row) for row in meta.workspace_bounds]
    if len(rows) != 3 or any(len(row) != 2 for row in rows):
        raise UserInputError(
            f"dataset.json: workspace_bounds must be 3 rows (x, y, z) of [low, high], got {rows}"
        )
    return tuple(row[0] for row in rows) + tuple(row[1] for row in rows)


def _workspace_bounds(
    config: ExperimentConfig, meta: DatasetMeta, method: str, where: str
) -> tuple[float, ...] | None:
    """The dataset's bounds; ``ee.workspace_bounds`` may state them (must agree) or supply them."""
    data_bounds = _flat_bounds(meta)
    stated = config.ee.workspace_bounds
    if stated is not None:
        check_bounds("ee.workspace_bounds", stated)
        # 1e-6 m: dataset.json may hold the float32 rounding of the same numbers.
        if data_bounds is not None and any(
            abs(a - b) > 1e-6 for a, b in zip(stated, data_bounds, strict=True)
        ):
            raise UserInputError(
                f"ee.workspace_bounds {tuple(stated)} contradict the workspace_bounds of {where} "
                f"{data_bounds}; remove ee.workspace_bounds (null) to use the dataset's"
            )
        return tuple(float(b) for b in stated)
    if data_bounds is None and method in ("ee", "mn"):
        raise UserInputError(
            f"{where} records no workspace_bounds; set ee.workspace_bounds=[x_min, y_min, z_min, "
            "x_max, y_max, z_max] (metres) or add them to its dataset.json"
        )
    return data_bounds


def data_facts(
    config: ExperimentConfig, meta: DatasetMeta, method: str, where: str = "the dataset"
) -> DataFacts:
    """The dataset's facts for ``method``, after checking every config field that states one.

    Raises ``UserInputError`` (one line naming the field and ``where``) when ``data.image_size``
    differs from the dataset's, a patch size does not divide the side the model works at, or
    ``ee.workspace_bounds`` contradict the dataset's (or are missing from both). Reads only the
    metadata: nothing is decoded.
    """
    size = int(meta.image_size)
    if config.data.image_size is not None and config.data.image_size != size:
        raise UserInputError(
            f"data.image_size is {config.data.image_size} but {where} stores {size}-px images; "
            f"set data.image_size={size} (or null to take the dataset's)"
        )
    if method in ("ee", "mn") and size % config.ee.patch_size:
        raise UserInputError(
            f"ee.patch_size ({config.ee.patch_size}) must divide the image size of {where} ({size})"
        )
    au_side = config.au.resize_to or size
    if method in ("au", "mn") and au_side % config.au.patch_size:
        raise UserInputError(
            f"au.patch_size ({config.au.patch_size}) must divide the AU frame side ({au_side}: "
            f"au.resize_to, else the image size of {where}); set au.resize_to"
        )
    return DataFacts(
        image_size=size,
        cameras=tuple(meta.cameras),
        video_frames=meta.video_frames,
        workspace_bounds=_workspace_bounds(config, meta, method, where),
        instructions=tuple(row.text for row in meta.instructions),
    )


def build_models(
    config: ExperimentConfig, meta: DatasetMeta | DataFacts, method: str
) -> dict[str, nn.Module]:
    """The modules a method trains, each initialised from its own seed so that the AU model of
    the AU baseline and of MN (and the EE models) start from identical weights.

    ``meta`` is the dataset's metadata (checked by :func:`data_facts`) or the :class:`DataFacts`
    a checkpoint stored.
    """
    if method not in METHODS:
        raise UserInputError(f"--method: unknown {method!r}; choose one of {', '.join(METHODS)}")
    facts = meta if isinstance(meta, DataFacts) else data_facts(config, meta, method)
    instructions = list(facts.instructions)
    modules: dict[str, nn.Module] = {}
    if method in ("au", "mn"):
        torch.manual_seed(config.seed * 1000 + 1)
        modules["au"] = VideoTextModel(config.au, instructions, image_size=facts.image_size)
    if method in ("ee", "mn"):
        if facts.workspace_bounds is None:
            raise UserInputError("ee: no workspace_bounds; set ee.workspace_bounds")
        torch.manual_seed(config.seed * 1000 + 2)
        modules["ee"] = KeyframePolicy(
            config.ee,
            instructions,
            image_size=facts.image_size,
            num_views=len(facts.cameras),
            workspace_bounds=facts.workspace_bounds,
        )
    if method == "mn":
        torch.manual_seed(config.seed * 1000 + 3)
        a = config.align
        modules["aligner"] = Aligner(
            modules["au"].representation_dim,
            modules["ee"].representation_dim,
            dim=a.dim,
            projector=a.projector,
            tau=a.tau,
            learnable_tau=a.learnable_tau,
            multi_positive=a.multi_positive,
        )
    return modules
