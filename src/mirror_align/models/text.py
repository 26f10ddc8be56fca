"""Instruction encoders: a learned word-token transformer (default) or a local pretrained model.

Both tokenise the whole instruction table once, at construction, and are then called with
instruction ids: ``encoder(ids [B]) -> TextFeatures`` with per-token features (read by the policy's
cross-view attention) and one pooled vector per instruction (read by the video-text model).

Why a small transformer and not mean-pooled word embeddings: the table holds instructions that
differ only in word order (e.g. "push the maroon button, then push the green button" against
"... the green button, then push the maroon button"). A bag of words gives them identical
embeddings, so recognition could never tell them apart; positional embeddings plus one attention
layer can, at negligible cost for ~250 short sentences.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from mirror_align.errors import UserInputError
from mirror_align.models.config import TextConfig, validate_text
from mirror_align.models.layers import Block, init_weights

PAD, UNK, CLS = 0, 1, 2
SPECIAL_TOKENS = ("<pad>", "<unk>", "<cls>")
_WORD = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")


@dataclass
class TextFeatures:
    """Encoded instructions: ``tokens [B, L, D]``, ``mask [B, L]`` (True = real token), ``pooled [B, P]``."""

    tokens: torch.Tensor
    mask: torch.Tensor
    pooled: torch.Tensor


def split_words(text: str) -> list[str]:
    """Lower-cased words and punctuation marks, in order."""
    return _WORD.findall(text.lower())


def build_vocabulary(instructions: Sequence[str]) -> list[str]:
    """Special tokens then the sorted words of ``instructions`` (deterministic for a given table)."""
    words = sorted({w for text in instructions for w in split_words(text)})
    return list(SPECIAL_TOKENS) + words


def tokenize(instructions: Sequence[str], vocabulary: Sequence[str]) -> torch.Tensor:
    """``[N, L]`` int64 ids: ``<cls>`` then the words, right-padded with ``<pad>``; unknown -> ``<unk>``."""
    index = {w: i for i, w in enumerate(vocabulary)}
    rows = [[CLS] + [index.get(w, UNK) for w in split_words(t)] for t in instructions]
    length = max(len(r) for r in rows)
    out = torch.full((len(rows), length), PAD, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row)
    return out


class LearnedTextEncoder(nn.Module):
    """Word embeddings + learned positions + a pre-norm transformer; pooled = the ``<cls>`` token."""

    def __init__(self, config: TextConfig, instructions: Sequence[str]) -> None:
        super().__init__()
        self.vocabulary = build_vocabulary(instructions)
        ids = tokenize(instructions, self.vocabulary)
        # Not persistent: rebuilt from the instruction table, which the model is constructed with.
        self.register_buffer("token_ids", ids, persistent=False)
        self.embed = nn.Embedding(len(self.vocabulary), config.width)
        self.position = nn.Parameter(torch.zeros(ids.shape[1], config.width))
        self.blocks = nn.ModuleList(
            Block(config.width, config.heads, config.mlp_ratio) for _ in range(config.depth)
        )
        self.norm = nn.LayerNorm(config.width)
        self.token_width = self.pooled_width = config.width
        init_weights(self)
        nn.init.trunc_normal_(self.position, std=0.02)

    def forward(self, instruction_ids: torch.Tensor) -> TextFeatures:
        ids = self.token_ids[instruction_ids]
        mask = ids != PAD
        x = self.embed(ids) + self.position
        attn_mask = mask[:, None, None, :]
        for block in self.blocks:
            x = block(x, attn_mask)
        x = self.norm(x)
        return TextFeatures(tokens=x, mask=mask, pooled=x[:, 0])


def _import_or_explain(module: str, kind: str):
    try:
        return importlib.import_module(module)
    except ImportError as err:
        package = module.replace("_", "-")
        raise UserInputError(
            f"text.kind={kind!r} needs the Python package {package!r}, which mirror-align does not "
            f"install by default: pip install {package}"
        ) from err


class PretrainedTextEncoder(nn.Module):
    """A Hugging Face or sentence-transformers model read from a local directory, never a hub.

    Frozen (``text.freeze``) it stays in eval mode and its features for the whole table are computed
    once per device and cached; fine-tuned, the owning model gives it ``text.lr_scale`` times the lr.
    """

    def __init__(self, config: TextConfig, instructions: Sequence[str]) -> None:
        super().__init__()
        path = Path(config.path or "")
        if not config.path or not path.is_dir():
            raise UserInputError(
                f"text.path: {config.path!r} is not a directory; pretrained text models are loaded "
                "from a local directory only (nothing is downloaded)"
            )
        self.kind = config.kind
        self.freeze = config.freeze
        texts = list(instructions)
        if config.kind == "huggingface":
            transformers = _import_or_explain("transformers", config.kind)
            tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            self.model = transformers.AutoModel.from_pretrained(str(path), local_files_only=True)
            features = tokenizer(
                texts,
                padding=True,
                truncation=True,
                max_length=config.max_length,
                return_tensors="pt",
            )
            self.token_width = self.pooled_width = int(self.model.config.hidden_size)
        else:
            st = _import_or_explain("sentence_transformers", config.kind)
            self.model = st.SentenceTransformer(str(path), device="cpu", local_files_only=True)
            self.model.max_seq_length = config.max_length
            features = self.model.tokenize(texts)
            self.pooled_width = int(self.model.get_sentence_embedding_dimension())
            with torch.no_grad():
                probe = self.model({k: v[:1] for k, v in features.items()})
            self.token_width = int(probe["token_embeddings"].shape[-1])
        self._feature_names = sorted(features.keys())
        for name in self._feature_names:
            self.register_buffer(f"feature_{name}", features[name], persistent=False)
        self._cache: TextFeatures | None = None
        if self.freeze:
            self.model.requires_grad_(False)
            self.model.eval()

    def train(self, mode: bool = True) -> PretrainedTextEncoder:
        super().train(mode)
        if self.freeze:
            self.model.eval()
        return self

    def _encode(self, rows: torch.Tensor) -> TextFeatures:
        inputs = {n: getattr(self, f"feature_{n}")[rows] for n in self._feature_names}
        mask = inputs["attention_mask"].bool()
        if self.kind == "huggingface":
            tokens = self.model(**inputs).last_hidden_state
            weights = mask.unsqueeze(-1).to(tokens.dtype)
            pooled = (tokens * weights).sum(1) / weights.sum(1).clamp_min(1.0)
        else:
            out = self.model(inputs)
            tokens, pooled = out["token_embeddings"], out["sentence_embedding"]
        return TextFeatures(tokens=tokens, mask=mask, pooled=pooled)

    def forward(self, instruction_ids: torch.Tensor) -> TextFeatures:
        if not self.freeze:
            return self._encode(instruction_ids)
        device = instruction_ids.device
        if self._cache is None or self._cache.tokens.device != device:
            rows = torch.arange(self.feature_input_ids.shape[0], device=device)
            with torch.no_grad():
                self._cache = self._encode(rows)
        c = self._cache
        return TextFeatures(
            c.tokens[instruction_ids], c.mask[instruction_ids], c.pooled[instruction_ids]
        )


def make_text_encoder(config: TextConfig, instructions: Sequence[str]) -> nn.Module:
    """The encoder ``config.kind`` names, over the instruction table ``instructions``."""
    validate_text(config)
    if not instructions:
        raise UserInputError("instructions: the instruction table is empty")
    if config.kind == "learned":
        return LearnedTextEncoder(config, instructions)
    return PretrainedTextEncoder(config, instructions)


def text_lr_scale(config: TextConfig) -> float:
    """Learning-rate multiplier of the text encoder's parameters (1 for the learned encoder)."""
    return 1.0 if config.kind == "learned" else config.lr_scale


def param_groups_with_text(
    model: nn.Module, text: nn.Module, config: TextConfig, lr: float
) -> list[dict]:
    """Optimizer groups of ``model``: everything at ``lr``, the text encoder at
    ``text_lr_scale(config) * lr`` (frozen parameters are left out)."""
    text_params = [p for p in text.parameters() if p.requires_grad]
    text_ids = {id(p) for p in text_params}
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in text_ids]
    groups = [{"params": rest, "lr": lr}]
    if text_params:
        groups.append({"params": text_params, "lr": lr * text_lr_scale(config)})
    return groups
