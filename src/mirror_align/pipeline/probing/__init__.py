"""Probing experiments over trained runs, one module per figure of the paper.

* :mod:`.fig3_left` (:func:`probe_along_training`): Fig. 3 left plus mutual k-NN and CKA, over
  checkpoints of a separately trained AU run and EE run paired by training progress;
* :mod:`.fig3_right` (:func:`probe_success_subsets`): Fig. 3 right, probes on equal-size subsets
  of the test episodes, AU correctly vs incorrectly recognised and EE successful vs failed;
* :mod:`.fig6_tsne` (:func:`tsne_points`): Fig. 6, t-SNE of the MN run's shared space and of the
  baseline pair's (a probe fitted first, as the paper does);
* :mod:`.all_figures` (:func:`run_all`): the three over one set of episodes (``probe-runs``,
  ``reproduce``);
* :mod:`.common`: probe settings, run loading and the :class:`FeatureStore` they share;
* :mod:`.extract` (:func:`extract_checkpoints`): the features of many checkpoints in one
  batch-major pass (the store's :meth:`~FeatureStore.prefetch`), optionally in worker processes.

Records follow ``docs/experiments.md``; every experiment is resumable.
"""

from mirror_align.pipeline.probing.all_figures import ProbingSummary, run_all
from mirror_align.pipeline.probing.common import (
    SKIPPED_SUFFIX,
    Checkpoint,
    FeatureStore,
    au_clip_frames,
    checkpoint_key,
    default_probe_config,
    load_module,
    open_store,
    pair_name,
)
from mirror_align.pipeline.probing.extract import extract_checkpoints
from mirror_align.pipeline.probing.fig3_left import (
    ALONG_TRAINING_METRICS,
    AlongTrainingOutcome,
    CheckpointPair,
    along_training_needs,
    pair_checkpoints,
    probe_along_training,
)
from mirror_align.pipeline.probing.fig3_right import (
    MIN_SUBSET_ROWS,
    SUBSET_COMPARISONS,
    SUBSET_METRIC,
    ComparisonOutcome,
    outcome_masks,
    probe_subset_comparison,
    probe_success_subsets,
    success_subsets_needs,
)
from mirror_align.pipeline.probing.fig6_tsne import (
    TsneOutcome,
    save_tsne,
    tsne_embedding,
    tsne_needs,
    tsne_points,
)

__all__ = [
    "ALONG_TRAINING_METRICS",
    "MIN_SUBSET_ROWS",
    "SKIPPED_SUFFIX",
    "SUBSET_COMPARISONS",
    "SUBSET_METRIC",
    "AlongTrainingOutcome",
    "Checkpoint",
    "CheckpointPair",
    "ComparisonOutcome",
    "FeatureStore",
    "ProbingSummary",
    "TsneOutcome",
    "along_training_needs",
    "au_clip_frames",
    "checkpoint_key",
    "default_probe_config",
    "extract_checkpoints",
    "load_module",
    "open_store",
    "outcome_masks",
    "pair_checkpoints",
    "pair_name",
    "probe_along_training",
    "probe_subset_comparison",
    "probe_success_subsets",
    "success_subsets_needs",
    "run_all",
    "save_tsne",
    "tsne_embedding",
    "tsne_needs",
    "tsne_points",
]
