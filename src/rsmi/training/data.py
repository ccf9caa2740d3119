"""Which examples a training run uses: train/dev selection and the digest that identifies them."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import torch

from rsmi.errors import ConfigError, DataError
from rsmi.training.config import TrainConfig

DEV_FRACTION = 0.1  # share of train held out as dev when a dataset has no dev split


def select_examples(examples: Sequence[Any], limit: int | None, seed: int) -> list[Any]:
    """A seeded random subset of ``limit`` examples, in their original order (all if None)."""
    items = list(examples)
    if limit is None or limit >= len(items):
        return items
    gen = torch.Generator().manual_seed(seed)
    keep = sorted(torch.randperm(len(items), generator=gen)[:limit].tolist())
    return [items[i] for i in keep]


def train_dev_examples(dataset: Any, config: TrainConfig) -> tuple[list[Any], list[Any], str]:
    """Training and dev examples (dev = a seeded 10 % of train when the dataset has none)."""
    train = list(dataset.split("train"))
    if "dev" in dataset.splits and dataset.splits["dev"]:
        dev, source = list(dataset.split("dev")), "dev"
    else:
        gen = torch.Generator().manual_seed(config.split_seed)
        order = torch.randperm(len(train), generator=gen).tolist()
        cut = max(1, int(round(len(train) * DEV_FRACTION)))
        held = set(order[:cut])
        dev = [ex for i, ex in enumerate(train) if i in held]
        train = [ex for i, ex in enumerate(train) if i not in held]
        source = f"{DEV_FRACTION:.0%} of train (seed {config.split_seed})"
    train = select_examples(train, config.max_examples, config.seed)
    dev = select_examples(dev, config.max_eval_examples, config.seed)
    if not train or not dev:
        raise DataError(
            f"dataset {dataset.name!r} gives {len(train)} training and {len(dev)} dev examples: "
            "both must be non-empty"
        )
    from rsmi.data import check_training_classes

    check_training_classes(train, dataset.label_names, f"dataset {dataset.name!r}")
    return train, dev, source


def load_training_data(config: TrainConfig) -> Any:
    """The dataset named by ``config.data`` (via :func:`rsmi.data.load_dataset`)."""
    if config.data is None:
        raise ConfigError("no data: give --data NAME_OR_PATH (or pass a loaded TextDataset to train())")
    return data_options(config).load(config.data)


def data_options(config: TrainConfig) -> Any:
    """The :class:`rsmi.data.DataOptions` of a training run."""
    from rsmi.data import DataOptions

    names = None if config.label_names is None else tuple(config.label_names)
    return DataOptions(text_column=config.text_column, label_column=config.label_column,
                       label_names=names, split_column=config.split_column,
                       split_seed=config.split_seed)


def data_digest(examples: Sequence[Any]) -> str:
    """sha256 of the (text, label) pairs in order: which data a run trained on."""
    digest = hashlib.sha256()
    for ex in examples:
        digest.update(f"{ex.label}\t{ex.text}\n".encode())
    return digest.hexdigest()
