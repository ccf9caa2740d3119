"""Hugging Face datasets (``imdb``, ``ag_news``, ``glue/sst2``, ``hf:<name>[/<config>]``).

Loaded through ``datasets`` whenever it can (its cache, or the network where there is one),
or from a directory written by ``Dataset(Dict).save_to_disk`` given as ``hf:<dir>``. The
usual split choice of the field is applied:

- the official test split is the test set, unless its labels are hidden (all ``-1``, as in
  GLUE), in which case the validation split is the test set;
- the validation split is the dev set when it is not already the test set; otherwise 10 % of
  train is carved out as dev (stratified, seeded);
- a dataset with only a train split is split 80/10/10.
"""

from __future__ import annotations

import os
from pathlib import Path

from rsmi.data.splits import DEFAULT_FRACTIONS, DEV_FROM_TRAIN_FRACTIONS, stratified_split
from rsmi.data.tabular import (
    LABEL_COLUMNS,
    TEXT_COLUMNS,
    build_dataset,
    check_texts,
    encode_labels,
    pick_column,
)
from rsmi.data.types import DataError, DatasetUnavailableError, TextDataset

ALIASES: dict[str, tuple[str, str | None]] = {
    "imdb": ("imdb", None),
    "ag_news": ("ag_news", None),
    "glue/sst2": ("glue", "sst2"),
    "sst2": ("glue", "sst2"),
}
_VALIDATION_NAMES = ("validation", "valid", "dev")


def is_hf_name(name: str) -> bool:
    return name in ALIASES or name.startswith("hf:")


def resolve(name: str) -> tuple[str, str | None]:
    """(path or hub id, config) of ``imdb`` / ``glue/sst2`` / ``hf:<name>[/<config>]``."""
    if name in ALIASES:
        return ALIASES[name]
    spec = name[len("hf:"):]
    if not spec:
        raise DataError("empty Hugging Face dataset name: use hf:<name>[/<config>]")
    if Path(spec).exists():
        return spec, None
    parts = spec.split("/")
    # "owner/name/config" or "name/config" when the last part is not part of the repo id.
    if len(parts) == 3:
        return "/".join(parts[:2]), parts[2]
    if len(parts) == 2 and parts[0] in ("glue", "super_glue"):
        return parts[0], parts[1]
    return spec, None


def load_hf(
    name: str,
    *,
    split_seed: int = 0,
    text_column: str | None = None,
    label_column: str | None = None,
    label_names: list[str] | None = None,
) -> TextDataset:
    """A Hugging Face dataset as a ``TextDataset`` with the split policy above."""
    path, config = resolve(name)
    raw = _load(name, path, config)
    if "train" not in raw:
        raise DataError(f"{name} has no train split (it has {list(raw)}); rsmi needs one")
    columns = list(raw["train"].column_names)
    text_col = pick_column(columns, text_column, TEXT_COLUMNS, "text", name,
                           "text_column (--text-column)")
    label_col = pick_column(columns, label_column, LABEL_COLUMNS, "label", name,
                            "label_column (--label-column)")
    feature = raw["train"].features.get(label_col)
    if label_names is None and hasattr(feature, "names"):
        label_names = list(feature.names)

    validation = next((k for k in _VALIDATION_NAMES if k in raw), None)
    test_hidden = "test" in raw and all(v is None or v < 0 for v in _ints(raw["test"][label_col]))
    parts: dict[str, str] = {"train": "train"}  # our split -> their split
    if "test" in raw and not test_hidden:
        parts["test"] = "test"
        if validation:
            parts["dev"] = validation
    elif validation:
        parts["test"] = validation

    raw_texts: list[object] = []
    raw_labels: list[object] = []
    origin: list[str] = []  # our split of each row
    where: list[tuple[str, int]] = []  # (their split, 1-based row) of each row, for errors
    for ours, theirs in parts.items():
        ds = raw[theirs]
        raw_texts.extend(ds[text_col])
        raw_labels.extend(ds[label_col])
        origin.extend([ours] * len(ds))
        where.extend((theirs, row) for row in range(1, len(ds) + 1))

    def row_name(i: int) -> str:
        return f"{name} [{where[i][0]}] row {where[i][1]}"

    texts = check_texts(raw_texts, row_name)
    labels, names = encode_labels(raw_labels, label_names, row_name, name)
    policy = {"train": "train"}
    if "dev" in parts:
        split_of = origin
    else:
        train_idx = [i for i, o in enumerate(origin) if o == "train"]
        fractions = DEV_FROM_TRAIN_FRACTIONS if "test" in parts else DEFAULT_FRACTIONS
        carved = stratified_split([labels[i] for i in train_idx], fractions, split_seed,
                                  groups=[" ".join(texts[i].split()) for i in train_idx])
        split_of = list(origin)
        for ours, positions in carved.items():
            for p in positions:
                split_of[train_idx[p]] = ours
        policy = {"carved_from_train": dict(fractions), "seed": split_seed,
                  "rng": "numpy.random.default_rng", "stratified": True}
    policy.update({ours: theirs for ours, theirs in parts.items()})
    split_info = {"method": "huggingface", **policy, "test_labels_hidden": test_hidden}
    info = {"source": {"kind": "huggingface", "path": path, "config": config,
                       "text_column": text_col, "label_column": label_col,
                       "fingerprints": {k: getattr(raw[k], "_fingerprint", None) for k in raw}}}
    short = name[len("hf:"):] if name.startswith("hf:") else name
    return build_dataset(Path(short).name if Path(short).exists() else short, texts, labels,
                         names, info, split_seed=split_seed, split_of=split_of,
                         split_info=split_info)


def _load(name: str, path: str, config: str | None) -> dict:
    """The dataset's splits: from a save_to_disk directory, else ``datasets.load_dataset``."""
    import datasets  # heavy; imported only when a Hugging Face dataset is asked for

    local = Path(path)
    if local.is_dir() and ((local / "dataset_dict.json").exists() or (local / "state.json").exists()):
        loaded = datasets.load_from_disk(str(local))
        return {"train": loaded} if isinstance(loaded, datasets.Dataset) else dict(loaded)
    try:
        loaded = datasets.load_dataset(path, config) if config else datasets.load_dataset(path)
    except (ConnectionError, OSError) as exc:  # includes FileNotFoundError, hub errors
        raise DatasetUnavailableError(
            f"cannot load the Hugging Face dataset {name!r} ({path}"
            f"{'/' + config if config else ''}): it is not in the local Hugging Face cache and "
            f"the hub cannot be reached ({type(exc).__name__}: {str(exc)[:200]}). Load it once "
            f"where the hub is reachable (it is then cached), or save it with "
            f"`save_to_disk(DIR)` and pass hf:DIR, or export it to a CSV/JSONL/Parquet file and "
            f"pass that path"
            + ("" if os.environ.get("HF_HUB_OFFLINE") else
               "; set HF_HUB_OFFLINE=1 to fail fast without network retries")
        ) from exc
    except ValueError as exc:
        raise DataError(f"cannot load the Hugging Face dataset {name!r}: {exc}") from exc
    return dict(loaded)


def _ints(values: list) -> list[int | None]:
    out: list[int | None] = []
    for v in values:
        try:
            out.append(None if v is None else int(v))
        except (TypeError, ValueError):
            return [0]  # string labels are never "hidden"
    return out
