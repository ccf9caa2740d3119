"""Turning rows of (text, label[, split]) from any source into a split ``TextDataset``.

Shared by local files, Hugging Face datasets and the built-in corpora so that column
detection, label encoding, bad-data errors and the split policy are the same everywhere.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Sequence

from rsmi.data.splits import DEFAULT_FRACTIONS, stratified_split
from rsmi.data.types import SPLIT_NAMES, DataError, Example, TextDataset

TEXT_COLUMNS = ("text", "sentence", "review", "content")
LABEL_COLUMNS = ("label", "labels", "sentiment", "class")
SPLIT_ALIASES = {
    "train": "train", "training": "train",
    "dev": "dev", "validation": "dev", "valid": "dev", "val": "dev",
    "test": "test", "testing": "test",
}
_INT_RE = re.compile(r"^[+-]?\d+$")
_INTEGRAL_FLOAT_RE = re.compile(r"^[+-]?\d+\.0*$")  # "1.0", "2." — the same class as 1, 2

RowName = Callable[[int], str]
"""Maps a 0-based example index to words naming it, e.g. ``"data.csv, data row 3"``."""


def pick_column(
    columns: Sequence[str], requested: str | None, candidates: Sequence[str], role: str,
    source: str, option: str,
) -> str:
    """The column to read ``role`` (text/label) from: ``requested`` or the first common name."""
    if requested is not None:
        if requested not in columns:
            raise DataError(
                f"{source} has no {role} column {requested!r}; its columns are "
                f"{list(columns)}: pass the right name with {option}"
            )
        return requested
    lowered = {c.lower(): c for c in columns}
    for name in candidates:
        if name in lowered:
            return lowered[name]
    raise DataError(
        f"{source} has no {role} column (looked for {', '.join(candidates)}); its columns are "
        f"{list(columns)}: name it with {option}"
    )


def check_texts(texts: Sequence[object], row_name: RowName) -> list[str]:
    """The texts as ``str``, stripped; DataError naming the first empty or missing one."""
    out: list[str] = []
    for i, value in enumerate(texts):
        if not _is_missing(value) and not isinstance(value, str):
            raise DataError(
                f"{row_name(i)} has a {type(value).__name__} ({_short(value)}) in the text "
                "column, not a text: fix the row, or pick the right column with --text-column"
            )
        text = "" if _is_missing(value) else str(value).strip()
        if not text:
            raise DataError(
                f"{row_name(i)} has an empty text: remove the row or fill in its text"
            )
        if not any(unicodedata.category(ch)[0] not in "CZ" for ch in text):
            raise DataError(
                f"{row_name(i)} has a text of only invisible, zero-width or control characters "
                f"({text!r}): an empty text to a model; remove the row or fill in its text"
            )
        out.append(text)
    return out


def encode_labels(
    values: Sequence[object], label_names: Sequence[str] | None, row_name: RowName, source: str
) -> tuple[list[int], list[str]]:
    """Label indices and label names for raw label values (strings or integers).

    Without ``label_names`` the names are the distinct values sorted (numerically when all
    are integers), so the mapping does not depend on row order. With ``label_names`` their
    order is kept; a value matches a name, or, when it is an integer, indexes the list.
    """
    normalized: list[int | str] = []
    for i, value in enumerate(values):
        if _is_missing(value) or (isinstance(value, str) and not value.strip()):
            raise DataError(f"{row_name(i)} has no label: remove the row or fill in its label")
        normalized.append(_normalize_label(value))
    all_int = all(isinstance(v, int) for v in normalized)

    if label_names is None:
        _refuse_label_variants(normalized, row_name)
        distinct = sorted(set(normalized), key=(lambda v: v) if all_int else str)
        names = [str(v) for v in distinct]
        index = {v: i for i, v in enumerate(distinct)}
        labels = [index[v] for v in normalized]
    else:
        names = [str(n) for n in label_names]
        if len(set(names)) != len(names) or not names:
            raise DataError(f"label_names {names} must be distinct and not empty")
        by_name = {n: i for i, n in enumerate(names)}
        # An integer indexes the list only when no name is itself a number: with names
        # "1", "2", "3" (star ratings) a 0 is an unknown class, not the first one.
        by_index = not any(_INT_RE.match(n.strip()) for n in names)
        labels = []
        for i, v in enumerate(normalized):
            if str(v) in by_name:
                labels.append(by_name[str(v)])
            elif by_index and isinstance(v, int) and 0 <= v < len(names):
                labels.append(v)
            else:
                raise DataError(
                    f"{row_name(i)} has label {v!r}, which is not in the label set {names}: "
                    "fix the row, or pass label_names that include it (a trained model "
                    "knows only the classes it was trained on)"
                )
    # A given label set may be larger than the labels present (a test file need not hold every
    # class); only a label set read from the data must hold two (training checks its own split).
    if label_names is None and len(set(labels)) < 2:
        only = names[labels[0]] if labels else "(no rows)"
        raise DataError(
            f"{source}: only one class ({only!r}) is present; a classifier needs at "
            f"least two: check the label column or the file"
        )
    return labels, names


def _refuse_label_variants(values: Sequence[int | str], row_name: RowName) -> None:
    """DataError when two label values differ only in case or spacing (``pos`` / ``POS``).

    They would silently become two classes; which one was meant is the user's to say. Explicit
    ``label_names`` (``--label-names``) that list both keep them apart on purpose.
    """
    first: dict[str, tuple[str, int]] = {}
    for i, value in enumerate(values):
        if not isinstance(value, str):
            continue
        key = " ".join(value.split()).casefold()
        seen = first.setdefault(key, (value, i))
        if seen[0] != value:
            raise DataError(
                f"labels {seen[0]!r} ({row_name(seen[1])}) and {value!r} ({row_name(i)}) differ "
                "only in case or spacing, so they would become two classes: write each label "
                "one way in the data, or pass label_names (--label-names) listing both if they are two classes"
            )


def build_dataset(
    name: str,
    texts: list[str],
    labels: list[int],
    label_names: list[str],
    info: dict,
    *,
    split_seed: int,
    split_of: Sequence[str] | None = None,
    split_info: dict | None = None,
) -> TextDataset:
    """Split (by ``split_of`` when given, else stratified and seeded) and record the split.

    ``split_info`` describes a given ``split_of`` (default: a ``split`` column of the file);
    ``split_of`` may name other splits than train/dev/test (``["all"] * n``: the whole file).
    """
    if split_of is not None:
        names = [*SPLIT_NAMES, *(s for s in dict.fromkeys(split_of) if s not in SPLIT_NAMES)]
        chosen = {s: [i for i, v in enumerate(split_of) if v == s] for s in names}
        split_info = split_info or {"method": "given", "column": "split"}
    else:
        fractions = DEFAULT_FRACTIONS
        chosen = stratified_split(labels, fractions, split_seed, groups=[
            " ".join(t.split()) for t in texts
        ])
        split_info = {
            "method": "stratified", "seed": split_seed, "fractions": dict(fractions),
            "rng": "numpy.random.default_rng", "duplicate_texts": "kept in one split",
        }
    splits = {
        s: [Example(texts[i], labels[i]) for i in idx] for s, idx in chosen.items() if idx
    }
    dataset = TextDataset(name=name, label_names=list(label_names), splits=splits, info=info)
    info["label_names"] = list(label_names)
    info["split"] = split_info
    info["counts"] = dataset.counts()
    info["num_examples"] = len(texts)
    info["duplicate_texts"] = len(texts) - len({" ".join(t.split()) for t in texts})
    return dataset


def normalize_split_values(values: Sequence[object], row_name: RowName) -> list[str]:
    """``split`` column values as train/dev/test; DataError naming a row with another value."""
    out = []
    for i, value in enumerate(values):
        key = "" if _is_missing(value) else str(value).strip().lower()
        if key not in SPLIT_ALIASES:
            raise DataError(
                f"{row_name(i)} has split {value!r}; use one of train, dev (or validation), "
                f"test, or drop the split column to split automatically"
            )
        out.append(SPLIT_ALIASES[key])
    return out


def _normalize_label(value: object) -> int | str:
    """A label by its value: ``1``, ``1.0``, ``"1"`` and ``" 1.0 "`` are all the class 1."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int) or type(value).__name__.startswith(("int", "uint")):
        return int(value)  # type: ignore[call-overload]
    if isinstance(value, float) or type(value).__name__.startswith("float"):
        number = float(value)  # type: ignore[arg-type]
        return int(number) if number.is_integer() else str(number)
    text = str(value).strip()
    if _INT_RE.match(text) or _INTEGRAL_FLOAT_RE.match(text):
        return int(float(text)) if "." in text else int(text)
    return text


def _short(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
