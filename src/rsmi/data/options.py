"""The data options every command that reads data shares, and reading data for a model.

``rsmi train``, ``evaluate``, ``attack``, ``pipeline`` and ``data show`` take the same options
(:class:`DataOptions`: text column, label column, label names, split column, split seed). A
trained model records the columns and label names it was trained with (its card,
``metadata.training.data_options``); :func:`load_for_model` reads a local file with those
columns unless others are given, and maps the data's labels to the model's classes by name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from rsmi.data.types import ALL_SPLIT, TextDataset


@dataclass(frozen=True)
class DataOptions:
    """How to read a data file (each ``None``: detect it, see :func:`rsmi.data.load_dataset`).

    Args:
        text_column, label_column: the columns holding the text and the label.
        label_names: the label set in index order (integer labels index it).
        split_column: the column naming each row's split (default: one named ``split``).
        split_seed: seed of the stratified 80/10/10 split of data without a split column.
    """

    text_column: str | None = None
    label_column: str | None = None
    label_names: tuple[str, ...] | None = None
    split_column: str | None = None
    split_seed: int = 0

    def load(self, name: str, *, whole: bool = False) -> TextDataset:
        """``name`` read with these options (``whole``: a local file unsplit, as ``all``)."""
        from rsmi.data import load_dataset

        return load_dataset(
            name, split_seed=self.split_seed, text_column=self.text_column,
            label_column=self.label_column,
            label_names=None if self.label_names is None else list(self.label_names),
            split_column=self.split_column, whole=whole,
        )

    def with_recorded(self, name: str, recorded: Mapping[str, Any] | None) -> DataOptions:
        """For a local file, the columns a model recorded where none is given here."""
        from rsmi.data import is_local_file

        if not recorded or not is_local_file(name):
            return self
        return replace(
            self,
            text_column=self.text_column or recorded.get("text_column"),
            label_column=self.label_column or recorded.get("label_column"),
        )


def recorded_options(dataset: TextDataset, options: DataOptions) -> dict[str, Any]:
    """What a model records of the data it was trained on (``metadata.training.data_options``):
    the columns actually read, the split column given, and the label names in id order."""
    source = dataset.info.get("source") or {}
    return {
        "text_column": source.get("text_column", options.text_column),
        "label_column": source.get("label_column", options.label_column),
        "split_column": options.split_column,
        "label_names": list(dataset.label_names),
    }


def load_for_model(
    name: str,
    options: DataOptions,
    label_names: Sequence[str],
    *,
    recorded: Mapping[str, Any] | None = None,
    split: str | None = None,
) -> TextDataset:
    """``name`` read for a model whose classes are ``label_names`` (in id order).

    A local file is read with the model's recorded columns (``recorded``) where ``options``
    gives none, and with the model's label names unless ``options.label_names`` are given, so
    a file that lacks a class is read as it is. The data's labels are then mapped to the
    model's ids by name (:meth:`TextDataset.with_label_names`); a label the model does not know
    is a DataError. ``split == "all"`` reads a local file whole, in its row order.
    """
    from rsmi.data import is_local_file

    options = options.with_recorded(name, recorded)
    if options.label_names is None and is_local_file(name):
        options = replace(options, label_names=tuple(str(n) for n in label_names))
    dataset = options.load(name, whole=split == ALL_SPLIT)
    return dataset.with_label_names(label_names)


__all__ = ["DataOptions", "load_for_model", "recorded_options"]
