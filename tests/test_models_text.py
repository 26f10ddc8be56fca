"""The instruction encoders: vocabulary, word order, and the errors of the pretrained option."""

import sys

import pytest
import torch

from mirror_align.errors import UserInputError
from mirror_align.models.config import TextConfig
from mirror_align.models.text import (
    CLS,
    PAD,
    UNK,
    build_vocabulary,
    make_text_encoder,
    split_words,
    text_lr_scale,
    tokenize,
)

TABLE = [
    "push the maroon button, then push the green button",
    "push the green button, then push the maroon button",
    "open the top drawer",
]


def test_vocabulary_and_tokens_come_from_the_table():
    vocab = build_vocabulary(TABLE)
    assert vocab[:3] == ["<pad>", "<unk>", "<cls>"]
    assert sorted(vocab[3:]) == vocab[3:]
    assert set(vocab[3:]) == {
        "push", "the", "maroon", "button", ",", "then", "green", "open", "top", "drawer",
    }  # fmt: skip
    ids = tokenize(TABLE + ["open the blue drawer"], vocab)
    assert ids.shape == (4, 1 + len(split_words(TABLE[0])))
    assert (ids[:, 0] == CLS).all()
    assert ids[2, 5:].eq(PAD).all() and ids[2, 1:5].ne(PAD).all()
    assert ids[3, 3].item() == UNK  # "blue" is not in the table


def test_learned_encoder_tells_apart_instructions_that_differ_only_in_word_order():
    torch.manual_seed(0)
    encoder = make_text_encoder(TextConfig(width=16, depth=1, heads=2), TABLE)
    features = encoder(torch.tensor([0, 1, 2, 0]))
    assert features.tokens.shape == (4, encoder.token_ids.shape[1], 16)
    assert features.pooled.shape == (4, 16)
    assert features.mask[2].sum() == 1 + len(split_words(TABLE[2]))
    assert torch.allclose(features.pooled[0], features.pooled[3])
    assert not torch.allclose(features.pooled[0], features.pooled[1], atol=1e-4)
    assert text_lr_scale(TextConfig()) == 1.0


def test_padding_does_not_change_an_instructions_features():
    torch.manual_seed(0)
    short_table = ["open the top drawer"]
    encoder = make_text_encoder(TextConfig(width=16, depth=2, heads=2), TABLE)
    alone = make_text_encoder(TextConfig(width=16, depth=2, heads=2), short_table)
    alone.blocks.load_state_dict(encoder.blocks.state_dict())
    alone.norm.load_state_dict(encoder.norm.state_dict())
    # The vocabularies differ: copy the embeddings word by word.
    with torch.no_grad():
        for i, word in enumerate(alone.vocabulary):
            alone.embed.weight[i] = encoder.embed.weight[encoder.vocabulary.index(word)]
        alone.position.copy_(encoder.position[: alone.position.shape[0]])
    padded = encoder(torch.tensor([2])).pooled
    unpadded = alone(torch.tensor([0])).pooled
    assert torch.allclose(padded, unpadded, atol=1e-5)


@pytest.mark.parametrize("kind", ["huggingface", "sentence-transformers"])
def test_pretrained_text_model_needs_an_existing_local_directory(kind, tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(UserInputError, match="text.path.*no-such-model.*local directory"):
        make_text_encoder(TextConfig(kind=kind, path=str(missing)), TABLE)
    with pytest.raises(UserInputError, match="text.path"):
        make_text_encoder(TextConfig(kind=kind, path=None), TABLE)


@pytest.mark.parametrize(
    "kind,package",
    [("huggingface", "transformers"), ("sentence-transformers", "sentence-transformers")],
)
def test_pretrained_text_model_names_the_package_to_install(kind, package, tmp_path, monkeypatch):
    # Fault injection: make the import fail whether or not the package is installed here.
    monkeypatch.setitem(sys.modules, package.replace("-", "_"), None)
    with pytest.raises(UserInputError, match=f"pip install {package}"):
        make_text_encoder(TextConfig(kind=kind, path=str(tmp_path)), TABLE)


def test_bad_text_config_names_the_field():
    with pytest.raises(UserInputError, match="text.heads"):
        make_text_encoder(TextConfig(width=10, heads=4), TABLE)
    with pytest.raises(UserInputError, match="instruction table is empty"):
        make_text_encoder(TextConfig(), [])
