"""Which examples an attack run attacks: the seeded sample, the cuts, the shards, the digest.

The sample depends only on ``sample_seed`` (and the split): it is a prefix of one seeded
permutation of the eligible examples, so a smaller sample is a prefix of a larger one. Its
digest (:func:`examples_digest`) is recorded in ``run.json`` so that a resumed run or a merge
can tell that its examples are still those of the records already written.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rsmi.attacks.config import AttackConfig
from rsmi.errors import DataError


@dataclass(frozen=True)
class AttackExample:
    """One example of the attack sample.

    Attributes:
        index: position in the sample (the key of resume, shards and merge).
        data_index: position in the dataset split.
        text, label: the example (as attacked: after any cut, see :func:`cut_texts`).
        words_cut: whitespace-separated words removed from the end of the text by the cut.
    """

    index: int
    data_index: int
    text: str
    label: int
    words_cut: int = 0


def sample_examples(
    examples: Sequence[Any], num_examples: int, sample_seed: int, min_words: int = 0
) -> list[AttackExample]:
    """A seeded random sample of ``num_examples`` examples with more than ``min_words`` words.

    ``examples`` are ``rsmi.data.Example`` objects or ``(text, label)`` pairs. The sample is a
    prefix of one seeded permutation, so a smaller sample is a prefix of a larger one.
    """
    pairs = [(e.text, int(e.label)) if hasattr(e, "text") else (e[0], int(e[1])) for e in examples]
    eligible = [i for i, (text, _) in enumerate(pairs) if len(text.split()) > min_words]
    if not eligible:
        raise DataError(
            f"no example of the split has more than {min_words} words: nothing to attack"
        )
    order = np.random.default_rng(sample_seed).permutation(len(eligible))[:num_examples]
    return [
        AttackExample(index=k, data_index=eligible[j], text=pairs[eligible[j]][0], label=pairs[eligible[j]][1])
        for k, j in enumerate(order.tolist())
    ]


def cut_words(text: str, num_words: int) -> str:
    """The first ``num_words`` tokens of ``text`` split on single spaces (the RSMI authors' cut).

    ``" ".join(text.split(" ")[:num_words])``, as in their ``textattack_main.py``; a text with
    no more tokens than that is returned unchanged.
    """
    tokens = text.split(" ")
    return text if len(tokens) <= num_words else " ".join(tokens[:num_words])


def cut_to_max_length(text: str, tokenizer: Any, max_length: int) -> str:
    """The longest whitespace-word prefix of ``text`` whose tokenization fits ``max_length``.

    Special tokens count. The model reads only the first ``max_length`` tokens, so words past
    that prefix can never change its output: an attacker who sees them spends queries on them
    and a cap on modified words or a query budget counted in words grows with them. At least
    one word is kept (the model then truncates it, as it would any input).
    """
    ends = [m.end() for m in re.finditer(r"\S+", text)]

    def fits(k: int) -> bool:
        ids = tokenizer(text[: ends[k - 1]], truncation=False, verbose=False)["input_ids"]
        return len(ids) <= max_length

    if not ends or fits(len(ends)):
        return text
    best, lo, hi = 1, 1, len(ends) - 1
    while lo <= hi:  # the token count grows with the prefix: binary search on the word count
        mid = (lo + hi) // 2
        if fits(mid):
            best, lo = mid, mid + 1
        else:
            hi = mid - 1
    return text[: ends[best - 1]]


def cut_texts(
    selected: Sequence[AttackExample], config: AttackConfig, tokenizer: Any, max_length: int
) -> list[AttackExample]:
    """The sample with each text cut as the preset and ``config.cut_to_max_length`` say."""
    preset = config.preset_settings
    if preset.cut_words is None and not config.cut_to_max_length:
        return list(selected)
    out = []
    for ex in selected:
        text = ex.text
        if preset.cut_words is not None:
            text = cut_words(text, preset.cut_words)
        if config.cut_to_max_length:
            text = cut_to_max_length(text, tokenizer, max_length)
        cut = len(ex.text.split()) - len(text.split())
        out.append(dataclasses.replace(ex, text=text, words_cut=cut))
    return out


def shard_examples(selected: Sequence[AttackExample], shard: tuple[int, int]) -> list[AttackExample]:
    """Examples ``i, i + n, i + 2n, ...`` of the sample for shard ``(i, n)``."""
    i, n = shard
    return [ex for ex in selected if ex.index % n == i]


def examples_digest(selected: Sequence[AttackExample]) -> str:
    """sha256 of the whole sample as attacked (index, dataset index, label, text of each).

    The same for every shard and seed of a run; another data file, split, sample seed, filter
    or cut gives another digest.
    """
    rows = [[ex.index, ex.data_index, int(ex.label), ex.text] for ex in selected]
    text = json.dumps(rows, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


__all__ = [
    "AttackExample",
    "cut_texts",
    "cut_to_max_length",
    "cut_words",
    "examples_digest",
    "sample_examples",
    "shard_examples",
]
