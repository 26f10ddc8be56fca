"""What a probe is configured with (:class:`ProbeConfig`) and what it measures
(:class:`ProbeResult`); the probe itself is :mod:`mirror_align.align.probe` (paper Sec. 2.2)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mirror_align.align.pairing import check_mode
from mirror_align.atomic import write_json_atomic
from mirror_align.errors import UserInputError


@dataclass
class ProbeConfig:
    """How a probe is trained and scored."""

    # Which key makes two rows a positive pair: "episode", "instruction" (paper default) or "class".
    pairing: str = "instruction"
    # Dimension of the shared space Z (the paper uses 1024).
    dim: int = 1024
    # T_u / T_e architecture: "linear" (the paper) or "mlp" (tests "linear sufficiency").
    projector: str = "linear"
    # InfoNCE temperature; the start value when learnable_tau is set.
    tau: float = 0.1
    # Learn tau (clamped to [0.01, 1] by the loss) instead of keeping it fixed.
    learnable_tau: bool = False
    # Train with the multi-positive loss (every pair sharing the key is a positive). The MI bound is
    # always scored with the single-positive loss of paper Eq. 2, which is what the bound is about.
    multi_positive: bool = False
    # Fractions of episodes for train / val / test; they are normalised to sum to 1.
    split: tuple[float, float, float] = (0.6, 0.2, 0.2)
    # Training mini-batch size (pairs per step).
    batch_size: int = 256
    # B of the MI bound log(B) - L, fixed so that values compare; the bound saturates at log(B).
    eval_batch_size: int = 256
    # AdamW learning rate.
    lr: float = 3e-3
    # AdamW weight decay.
    weight_decay: float = 1e-4
    # Upper limit on training epochs (passes over the train pairs).
    max_epochs: int = 100
    # Stop after this many epochs without a better validation Recall@1. At equal recall (e.g. once it
    # saturates at 1) a validation MI bound higher by more than min_delta_nats also counts as better.
    patience: int = 6
    # The smallest validation MI gain (nats) that counts as progress when the recall ties.
    min_delta_nats: float = 0.01
    # Standardise each feature with the train rows' mean and std before projecting.
    standardize: bool = True
    # k of the mutual k-NN metric.
    knn_k: int = 10
    # The k values of the reported Recall@k table.
    recall_ks: tuple[int, ...] = (1, 5, 10)
    # Seed for the split, the pairs, the initialisation and the batch order.
    seed: int = 0
    # Show tqdm progress bars on stderr.
    progress: bool = True


@dataclass
class ProbeResult:
    """What a probe measured on the held-out test rows. Recalls are fractions; MI is in nats."""

    recall_at_1: float  # mean of the two directions, key-aware under the pairing key
    recall_at_1_u2e: float
    recall_at_1_e2u: float
    chance: float  # expected recall_at_1 of a random ranking, from the key frequencies
    recall_at_1_strict: float  # the partner row itself must be retrieved
    recall_at_1_strict_u2e: float
    recall_at_1_strict_e2u: float
    chance_strict: float  # 1 / n_test
    recall_at_k: dict[str, dict]  # "k" -> all RecallAtK fields
    mi_lower_bound_nats: float  # mean over test batches of log(B) - L_align (single-positive)
    mi_eval_batch_size: int  # the B used (n_test pairs if fewer than eval_batch_size)
    log_b: float  # log(B): the ceiling of the bound
    mi_n_batches: int
    val_recall_at_1: float  # best validation recall (the early-stopping criterion)
    best_epoch: int
    epochs_run: int
    n_train: int  # rows
    n_val: int
    n_test: int
    n_train_episodes: int
    n_test_episodes: int
    # The training-free metrics are NaN (undefined) when the test rows are too few for them to
    # mean anything (n_test < min_test_rows(knn_k)) or when a side collapsed (align.metrics).
    mutual_knn: float  # on the raw (unstandardised) test features
    mutual_knn_k: int
    mutual_knn_chance: float  # k / (n_test - 1): unrelated representations
    mutual_knn_projected: float  # the same on the test projections z_u, z_e
    cka_linear: float  # on the raw test features
    cka_linear_chance: float  # linear CKA of row-shuffled (unrelated) test features
    cka_unbiased: float  # its chance level is 0
    pairing: str
    key_field: str
    tau: float  # the temperature at the end (differs from config.tau only when learnable)
    du: int
    de: int
    seconds: float
    config: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return asdict(self)

    def to_json(self) -> str:
        """Indented JSON text."""
        return json.dumps(self.to_dict(), indent=2)

    def save(self, path: str | Path) -> None:
        """Write the JSON atomically."""
        write_json_atomic(path, self.to_dict())


def min_test_rows(knn_k: int) -> int:
    """The fewest test rows at which mutual k-NN and CKA are not fixed by the sample size.

    Mutual k-NN needs k <= n - 2: at k = n - 1 every row's neighbours are all the other rows, so
    it is 1 whatever the data. Linear CKA is exactly 1 at n = 2 and unbiased CKA needs n >= 4.
    """
    return max(4, knn_k + 2)


def validate_probe_config(config: ProbeConfig) -> None:
    check_mode(config.pairing)
    if len(config.split) != 3 or min(config.split) <= 0:
        raise UserInputError(f"probe: split must be three positive fractions, got {config.split}")
    for name in ("dim", "batch_size", "eval_batch_size", "max_epochs", "knn_k"):
        if getattr(config, name) < 1:
            raise UserInputError(f"probe: {name} must be >= 1, got {getattr(config, name)}")
    if config.batch_size < 2 or config.eval_batch_size < 2:
        raise UserInputError(
            "probe: batch_size and eval_batch_size must be >= 2 (InfoNCE needs negatives)"
        )
    if config.patience < 1:
        raise UserInputError(f"probe: patience must be >= 1, got {config.patience}")
