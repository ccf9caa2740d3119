"""Local CSV / TSV / JSONL / JSON / Parquet files of labelled texts, read with pandas."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from rsmi.data.tabular import (
    LABEL_COLUMNS,
    TEXT_COLUMNS,
    build_dataset,
    check_texts,
    encode_labels,
    normalize_split_values,
    pick_column,
)
from rsmi.data.types import ALL_SPLIT, DataError, TextDataset
from rsmi.packages import sha256_file

SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet")


def is_local_path(name_or_path: str) -> bool:
    """Whether ``name_or_path`` names a data file by its suffix (it need not exist yet)."""
    return Path(name_or_path).suffix.lower() in SUFFIXES


def load_local(
    path: str | Path,
    *,
    split_seed: int = 0,
    text_column: str | None = None,
    label_column: str | None = None,
    label_names: list[str] | None = None,
    split_column: str | None = None,
    whole: bool = False,
) -> TextDataset:
    """A dataset from one local file; a ``split`` column (or ``split_column``) is used when
    present. With ``whole`` every row goes, in file order, to one split ``all`` (no split).

    Rows are numbered as data rows from 1 (the header of a CSV/TSV is not counted) in every
    error, so a message points at the row to fix.
    """
    path = Path(path)
    frame = read_table(path)
    source = str(path)
    text_col = pick_column(list(frame.columns), text_column, TEXT_COLUMNS, "text", source,
                           "text_column (--text-column)")
    label_col = pick_column(list(frame.columns), label_column, LABEL_COLUMNS, "label", source,
                            "label_column (--label-column)")
    if len(frame) == 0:
        raise DataError(f"{source} has no data rows")

    def row_name(i: int) -> str:
        return f"{source}, data row {i + 1}"

    texts = check_texts(frame[text_col].tolist(), row_name)
    labels, names = encode_labels(frame[label_col].tolist(), label_names, row_name, source)
    if split_column is not None:
        split_col = pick_column(list(frame.columns), split_column, (), "split", source,
                                "split_column (--split-column)")
    else:
        split_col = next((c for c in frame.columns if str(c).lower() == "split"), None)
    split_of, split_info = None, None
    if whole:
        split_of, split_info = [ALL_SPLIT] * len(texts), {"method": "whole"}
    elif split_col is not None and split_col not in (text_col, label_col):
        split_of = normalize_split_values(frame[split_col].tolist(), row_name)
        split_info = {"method": "given", "column": str(split_col)}
    info = {"source": {
        "kind": "local", "path": str(path.resolve()), "sha256": sha256_file(path),
        "text_column": text_col, "label_column": label_col,
    }}
    return build_dataset(path.stem, texts, labels, names, info, split_seed=split_seed,
                         split_of=split_of, split_info=split_info)


def read_table(path: Path) -> pd.DataFrame:
    """The file as a DataFrame (CSV/TSV cells kept as strings); DataError if unreadable."""
    if not path.is_file():
        raise DataError(f"data file {path} does not exist (or is not a file)")
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".tsv"):
            return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype=str,
                               keep_default_na=False, encoding="utf-8-sig")
        if suffix == ".jsonl":
            return _read_jsonl(path)
        if suffix == ".json":
            return _read_json(path)
        if suffix == ".parquet":
            return pd.read_parquet(path)
    except DataError:
        raise
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text ({exc}): re-save it as UTF-8") from exc
    except (ValueError, OSError, pd.errors.ParserError, ImportError) as exc:
        raise DataError(
            f"cannot read {path} as {suffix[1:].upper()} ({type(exc).__name__}: {exc}); check "
            f"the file's format matches its suffix"
        ) from exc
    raise DataError(f"{path}: unsupported file type {suffix!r}; use one of {', '.join(SUFFIXES)}")


def _read_jsonl(path: Path) -> pd.DataFrame:
    """One JSON object per line; DataError naming the line of the first bad one."""
    rows = []
    with path.open(encoding="utf-8-sig") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}, line {number} is not valid JSON ({exc.msg}, column "
                                f"{exc.colno}): fix or remove that line") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}, line {number} is a JSON {type(row).__name__}, not an "
                                'object: write one {"text": ..., "label": ...} object per line')
            rows.append(row)
    return pd.DataFrame(rows)


def _read_json(path: Path) -> pd.DataFrame:
    """A JSON array of row objects, or a JSON-lines file saved with a .json suffix."""
    try:
        return pd.read_json(path, orient="records", dtype=False)
    except ValueError:
        return pd.read_json(path, lines=True, dtype=False)
