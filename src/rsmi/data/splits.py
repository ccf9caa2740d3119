"""Deterministic, stratified, seeded train/dev/test splits.

Every machine must produce the same split for the same seed, so the only randomness is
``numpy.random.default_rng(seed)`` (PCG64, platform independent) drawn over per-class lists of
indices in sorted order; nothing depends on Python's ``hash`` or dict order of unhashable input.

Identical texts are kept together (``groups``): a duplicate that sat in both train and test
would let a model score by memory, which an honest evaluation must not allow.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence

import numpy as np

from rsmi.errors import ConfigError, DataError

DEFAULT_FRACTIONS: dict[str, float] = {"train": 0.8, "dev": 0.1, "test": 0.1}
DEV_FROM_TRAIN_FRACTIONS: dict[str, float] = {"train": 0.9, "dev": 0.1}


def stratified_split(
    labels: Sequence[int],
    fractions: dict[str, float],
    seed: int,
    groups: Sequence[Hashable] | None = None,
) -> dict[str, list[int]]:
    """Indices of each split, stratified by label, the same for the same ``seed`` everywhere.

    Args:
        labels: the label of each example.
        fractions: split name → fraction (summing to 1); must include ``"train"``, which
            receives the rounding remainder and at least one group of every class.
        seed: seed of ``numpy.random.default_rng``.
        groups: optional key per example (e.g. its text); examples with the same key go to
            the same split, stratified by the label of the group's first example.

    Returns:
        split name → sorted example indices, in the order of ``fractions``.
    """
    _check_fractions(fractions)
    keys: Sequence[Hashable] = groups if groups is not None else range(len(labels))
    if len(keys) != len(labels):
        raise DataError(f"{len(labels)} labels but {len(keys)} group keys")
    members: dict[Hashable, list[int]] = {}
    for index, key in enumerate(keys):
        members.setdefault(key, []).append(index)
    by_class: dict[int, list[list[int]]] = {}
    for group in members.values():  # insertion order = order of first appearance
        by_class.setdefault(int(labels[group[0]]), []).append(group)

    rng = np.random.default_rng(seed)
    out: dict[str, list[int]] = {name: [] for name in fractions}
    held_out = [name for name in fractions if name != "train"]
    for label in sorted(by_class):
        class_groups = by_class[label]
        order = rng.permutation(len(class_groups))
        sizes = _held_out_sizes(len(class_groups), [fractions[n] for n in held_out])
        start = 0
        for name, size in zip(held_out, sizes, strict=True):
            for position in order[start:start + size]:
                out[name].extend(class_groups[position])
            start += size
        for position in order[start:]:
            out["train"].extend(class_groups[position])
    return {name: sorted(indices) for name, indices in out.items()}


def _check_fractions(fractions: dict[str, float]) -> None:
    if "train" not in fractions:
        raise ConfigError(f"split fractions {fractions} must include 'train'")
    if any(f < 0 for f in fractions.values()) or not math.isclose(sum(fractions.values()), 1.0):
        raise ConfigError(f"split fractions {fractions} must be non-negative and sum to 1")


def _held_out_sizes(n: int, fractions: list[float]) -> list[int]:
    """Round-half-up size of each held-out split, shrunk so train keeps at least one group."""
    sizes = [math.floor(n * f + 0.5) for f in fractions]
    while sizes and sum(sizes) > max(n - 1, 0):
        largest = max(range(len(sizes)), key=lambda i: sizes[i])
        sizes[largest] -= 1
    return sizes
