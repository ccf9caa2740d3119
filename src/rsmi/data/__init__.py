"""Datasets for rsmi: one interface over built-in, Hugging Face and local-file sources.

``load_dataset(name_or_path)`` returns a ``TextDataset`` (texts, integer labels, label names,
train/dev/test splits and an ``info`` dict recording provenance, checksums and the split):

- built-in, offline: ``mr``, ``mr-docs``, ``bbc``, ``tweets`` (see ``rsmi.data.builtin``);
- Hugging Face: ``imdb``, ``ag_news``, ``glue/sst2`` or ``hf:<name>[/<config>]`` /
  ``hf:<save_to_disk dir>`` (see ``rsmi.data.hf``);
- a local ``.csv`` / ``.tsv`` / ``.jsonl`` / ``.json`` / ``.parquet`` file (``rsmi.data.local``).

Corpora without official splits get deterministic, stratified, seeded 80/10/10 splits
(``rsmi.data.splits``); duplicate texts never straddle two splits.
"""

from __future__ import annotations

from pathlib import Path

from rsmi.data.builtin import BUILTINS, load_builtin
from rsmi.data.hf import ALIASES as HF_ALIASES
from rsmi.data.hf import is_hf_name, load_hf
from rsmi.data.local import SUFFIXES, is_local_path, load_local
from rsmi.data.splits import stratified_split
from rsmi.data.types import (
    ALL_SPLIT,
    DataError,
    DatasetUnavailableError,
    Example,
    TextDataset,
    check_training_classes,
)

__all__ = [
    "ALL_SPLIT",
    "DataError",
    "DataOptions",
    "DatasetUnavailableError",
    "Example",
    "TextDataset",
    "check_training_classes",
    "is_builtin",
    "list_datasets",
    "load_dataset",
    "load_for_model",
    "stratified_split",
]


def load_dataset(
    name_or_path: str,
    *,
    split_seed: int = 0,
    text_column: str | None = None,
    label_column: str | None = None,
    label_names: list[str] | None = None,
    split_column: str | None = None,
    whole: bool = False,
) -> TextDataset:
    """Load a built-in corpus, a Hugging Face dataset or a local file as a ``TextDataset``.

    Args:
        name_or_path: ``mr`` / ``mr-docs`` / ``bbc`` / ``tweets``; ``imdb`` / ``ag_news`` /
            ``glue/sst2`` / ``hf:<name>[/<config>]``; or a path to a data file.
        split_seed: seed of the stratified split (where the source has no official split).
        text_column, label_column: column names (files and Hugging Face datasets; default:
            the first of text/sentence/review/content and label/labels/sentiment/class).
        label_names: the label set in index order (default: the distinct labels, sorted).
        split_column: the column of a local file naming each row's split (default: a column
            named ``split``, if any).
        whole: a local file is read whole into one split ``all``, in file order (no split);
            for other sources ``dataset.split("all")`` joins their splits.

    Raises:
        DataError (a ValueError): unknown name, unreadable file or bad rows, with the file and
            row and what to do; DatasetUnavailableError when a hub dataset cannot be loaded.
        rsmi.packages.ResourceError: a built-in corpus's package cannot be fetched or is corrupt.
    """
    name = str(name_or_path)
    if name in BUILTINS:
        given = {"text_column": text_column, "label_column": label_column,
                 "label_names": label_names, "split_column": split_column}
        used = [k for k, v in given.items() if v is not None]
        if used:
            raise DataError(
                f"{', '.join(used)} apply to files and Hugging Face datasets, not to the "
                f"built-in {name!r}, whose columns and labels are fixed; drop them"
            )
        return load_builtin(name, split_seed=split_seed)
    options = {"split_seed": split_seed, "text_column": text_column,
               "label_column": label_column, "label_names": label_names}
    if is_hf_name(name):
        if split_column is not None:
            raise DataError(f"split_column applies to local files, not to {name!r}: drop it")
        return load_hf(name, **options)
    if is_local_path(name) or Path(name).is_file():
        return load_local(name, **options, split_column=split_column, whole=whole)
    raise DataError(
        f"unknown dataset {name!r}: use a built-in ({', '.join(BUILTINS)}), a Hugging Face "
        f"dataset ({', '.join(HF_ALIASES)} or hf:<name>[/<config>]), or a path to a "
        f"{'/'.join(s[1:] for s in SUFFIXES)} file"
    )


def list_datasets() -> list[dict]:
    """The built-in corpora: name, one-line description, package, labels."""
    return [
        {"name": spec.name, "description": spec.description, "package": spec.requirement,
         "label_names": list(spec.label_names), "num_labels": len(spec.label_names)}
        for spec in BUILTINS.values()
    ]


def is_builtin(name: str) -> bool:
    """Whether ``name`` is a built-in corpus (fixed columns and labels)."""
    return str(name) in BUILTINS


def is_local_file(name: str) -> bool:
    """Whether ``name`` is read as a local file (not a built-in or Hugging Face name)."""
    name = str(name)
    return not is_builtin(name) and not is_hf_name(name) and (
        is_local_path(name) or Path(name).is_file())


from rsmi.data.options import DataOptions, load_for_model  # noqa: E402 (uses load_dataset)
