"""The method, model-agnostic: projectors, the alignment loss, pairing, probing and metrics."""

from mirror_align.align.aligner import Aligner, AlignmentLoss, AlignmentOutput
from mirror_align.align.loss import alignment_loss, mi_lower_bound
from mirror_align.align.projector import make_projector

__all__ = [
    "Aligner",
    "AlignmentLoss",
    "AlignmentOutput",
    "alignment_loss",
    "make_projector",
    "mi_lower_bound",
]
