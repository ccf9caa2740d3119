"""``examples.jsonl``: one JSON line per attacked example, durable as soon as it is written.

A killed run leaves at most one torn (partial) last line; :func:`read_records` drops it (and
:func:`repair` cuts it off the file) so a resumed run neither loses nor repeats an example. An
example that appears twice under one seed (an edited file, two runs joined by hand) is refused:
metrics count each example once. File names come from :mod:`rsmi.store.names`; writes go
through :mod:`rsmi.store.atomic`.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from rsmi.errors import StoreError
from rsmi.store.atomic import JsonlWriter, atomic_write_json
from rsmi.store.names import EXAMPLES_FILE, RUN_FILE, SUMMARY_FILE

logger = logging.getLogger(__name__)

# What an attack run writes (a run from before run markers is adopted when it holds only these),
# and which of them show that a directory holds an attack run (see rsmi.rundir).
ATTACK_RUN_FILES = (EXAMPLES_FILE, RUN_FILE, SUMMARY_FILE, "seed-*", "shard-*-of-*")
ATTACK_RUN_EVIDENCE = (EXAMPLES_FILE, RUN_FILE, "seed-*", "shard-*-of-*")


def read_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The complete records of an ``examples.jsonl`` (a torn last line is ignored).

    Raises:
        StoreError: a broken line that is not the last one (that file was not written by an
            interrupted run and should be inspected, not silently skipped), or an example
            (``index``) that appears twice under one seed (it would be counted twice).
    """
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")
    records = []
    seen: dict[tuple[Any, Any], int] = {}
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            is_last = all(not rest.strip() for rest in lines[number:])
            if is_last:
                logger.warning("%s: ignoring a torn last line (%d bytes)", path, len(raw))
                break
            raise StoreError(
                f"{path} line {number} is not valid JSON ({exc}) and is not the last line: "
                "the file is corrupt; remove that line or start a new run"
            ) from exc
        if isinstance(record, dict) and "index" in record:
            key = (record.get("seed"), record["index"])
            if key in seen:
                raise StoreError(
                    f"{path} line {number} repeats example {record['index']} of seed "
                    f"{record.get('seed')} (first on line {seen[key]}): it would be counted "
                    "twice; the file was edited or runs were joined by hand — delete one of the "
                    "two lines, combine shards with `rsmi attack merge`, or start a new run"
                )
            seen[key] = number
        records.append(record)
    return records


def repair(path: str | os.PathLike[str]) -> int:
    """Cut a torn last line off ``path``; return the number of complete records."""
    path = Path(path)
    if not path.exists():
        return 0
    data = path.read_bytes()
    keep = data.rfind(b"\n") + 1 if not data.endswith(b"\n") else len(data)
    if keep < len(data):
        try:  # an unterminated but complete JSON line is kept (and terminated)
            json.loads(data[keep:].decode("utf-8"))
            with open(path, "ab") as fh:
                fh.write(b"\n")
            keep = len(data) + 1
        except (UnicodeDecodeError, json.JSONDecodeError):
            with open(path, "r+b") as fh:
                fh.truncate(keep)
    return len(read_records(path))


class RecordWriter(JsonlWriter):
    """Appends records to ``examples.jsonl``, flushing and fsyncing each line
    (:class:`rsmi.store.JsonlWriter`)."""


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    """Write JSON atomically (:func:`rsmi.store.atomic_write_json`)."""
    atomic_write_json(path, data)


__all__ = [
    "ATTACK_RUN_EVIDENCE",
    "ATTACK_RUN_FILES",
    "EXAMPLES_FILE",
    "RUN_FILE",
    "SUMMARY_FILE",
    "RecordWriter",
    "read_records",
    "repair",
    "write_json",
]
