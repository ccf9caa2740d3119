"""``examples.jsonl``: one JSON line per attacked example, durable as soon as it is written.

A killed run leaves at most one torn (partial) last line; :func:`read_records` drops it (and
:func:`repair` cuts it off the file) so a resumed run neither loses nor repeats an example.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

logger = logging.getLogger(__name__)

EXAMPLES_FILE = "examples.jsonl"
SUMMARY_FILE = "summary.json"
RUN_FILE = "run.json"


def read_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The complete records of an ``examples.jsonl`` (a torn last line is ignored).

    Raises ValueError for a broken line that is not the last one: that file was not written by
    an interrupted run and should be inspected, not silently skipped.
    """
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")
    records = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            records.append(json.loads(raw.decode("utf-8")))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            is_last = all(not rest.strip() for rest in lines[number:])
            if is_last:
                logger.warning("%s: ignoring a torn last line (%d bytes)", path, len(raw))
                break
            raise ValueError(
                f"{path} line {number} is not valid JSON ({exc}) and is not the last line: "
                "the file is corrupt; remove that line or start a new run"
            ) from exc
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


class RecordWriter:
    """Appends records to ``examples.jsonl``, flushing and fsyncing each line."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[str] = open(self.path, "a", encoding="utf-8")  # noqa: SIM115

    def write(self, record: Mapping[str, Any]) -> None:
        self._fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    """Write JSON atomically (temporary file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
