"""Dynamic padding and seeded, length-grouped batches.

Each epoch's batch order is a pure function of ``(seed, epoch)``, so a resumed run sees the
same batches as an uninterrupted one; the first ``skip`` batches of an epoch can be left out
to continue an epoch where a checkpoint stopped.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch

from rsmi.errors import ConfigError, DataError

# Examples per "mega-batch" (in batches) that is sorted by length before being cut into
# batches: large enough for little padding, small enough to keep the order random.
GROUP_BATCHES = 50


def encode(tokenizer: Any, texts: Sequence[str], labels: Sequence[int], max_length: int) -> list[dict]:
    """Token ids of each text (truncated to ``max_length``), with its label under ``labels``."""
    enc = tokenizer(list(texts), truncation=True, max_length=max_length, verbose=False)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
    return [{**{k: enc[k][i] for k in keys}, "labels": int(labels[i])} for i in range(len(texts))]


class Collator:
    """Pads a list of encoded examples to the longest one of the batch (never to max_length)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        # Padding pre-tokenized ids is what `pad` is for; silence the fast-tokenizer hint.
        getattr(tokenizer, "deprecation_warnings", {})["Asking-to-pad-a-fast-tokenizer"] = True

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        labels = torch.tensor([f["labels"] for f in features], dtype=torch.long)
        rest = [{k: v for k, v in f.items() if k != "labels"} for f in features]
        batch = dict(self.tokenizer.pad(rest, padding="longest", return_tensors="pt"))
        batch["labels"] = labels
        return batch


class LengthGroupedBatches:
    """Batches of indices of similar length, in an order drawn from ``(seed, epoch)``.

    Per epoch: a seeded permutation is cut into groups of ``GROUP_BATCHES`` batches, each group
    is sorted by length and cut into batches, and the batch order is shuffled again. Call
    :meth:`start_epoch` before iterating. (Deliberately not named ``set_epoch``: accelerate
    calls that with its own counter.) There is no ``batch_size`` attribute, so accelerate
    shards these batches as they are, one batch per process in turn.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size={batch_size} is invalid: it must be ≥ 1")
        if not lengths:
            raise DataError("no training examples: the training split is empty")
        self.lengths = torch.tensor(list(lengths))
        self.size = batch_size
        self.seed = seed
        self.epoch = 0
        self.skip = 0

    def start_epoch(self, epoch: int, skip: int = 0) -> None:
        """Iterate over epoch ``epoch``'s batches, leaving out its first ``skip``."""
        self.epoch, self.skip = epoch, skip

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """All batches of epoch ``epoch`` (deterministic)."""
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(len(self.lengths), generator=gen)
        group = self.size * GROUP_BATCHES
        batches: list[list[int]] = []
        for start in range(0, len(order), group):
            chunk = order[start : start + group]
            chunk = chunk[torch.argsort(self.lengths[chunk], descending=True, stable=True)]
            batches += [chunk[i : i + self.size].tolist() for i in range(0, len(chunk), self.size)]
        shuffle = torch.randperm(len(batches), generator=gen).tolist()
        return [batches[i] for i in shuffle]

    def num_batches(self) -> int:
        """Batches in a full epoch."""
        return -(-len(self.lengths) // self.size)

    def __len__(self) -> int:
        return max(self.num_batches() - self.skip, 0)

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.epoch_batches(self.epoch)[self.skip :]
