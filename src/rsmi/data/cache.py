"""On-disk cache of a parsed, split dataset: one JSONL file per split plus ``meta.json``.

Parsing and splitting the built-in corpora takes seconds; reading the cache is instant. The
cache is trusted only when its format version and source checksum match what the code
expects and every split file still has the checksum recorded when it was written.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path

from rsmi.data.types import Example, TextDataset
from rsmi.packages import sha256_file
from rsmi.store.atomic import atomic_write_json, publish_directory

log = logging.getLogger(__name__)

CACHE_FORMAT = 1
"""Bump when parsing or splitting changes, so old caches are rebuilt rather than reused."""


def write_cache(directory: Path, dataset: TextDataset, key: dict) -> None:
    """Write ``dataset`` to ``directory`` atomically (a half-written cache is never seen)."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=directory.name + ".", dir=directory.parent))
    try:
        files = {}
        for split_name, examples in dataset.splits.items():
            path = tmp / f"{split_name}.jsonl"
            with open(path, "w", encoding="utf-8") as fh:
                for ex in examples:
                    fh.write(json.dumps({"text": ex.text, "label": ex.label}, ensure_ascii=False))
                    fh.write("\n")
            files[split_name] = {"file": path.name, "sha256": sha256_file(path)}
        meta = {
            "format": CACHE_FORMAT, "key": key, "name": dataset.name,
            "label_names": dataset.label_names, "files": files, "info": dataset.info,
        }
        atomic_write_json(tmp / "meta.json", meta)
        publish_directory(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_cache(directory: Path, key: dict) -> TextDataset | None:
    """The cached dataset, or None when absent, stale (other ``key``/format) or corrupt."""
    meta_path = directory / "meta.json"
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        log.warning("ignoring unreadable dataset cache %s", meta_path)
        return None
    if meta.get("format") != CACHE_FORMAT or meta.get("key") != key:
        log.info("dataset cache %s is stale; rebuilding", directory)
        return None
    splits: dict[str, list[Example]] = {}
    for split_name, entry in meta["files"].items():
        path = directory / entry["file"]
        if not path.is_file() or sha256_file(path) != entry["sha256"]:
            log.warning("dataset cache file %s is missing or changed; rebuilding", path)
            return None
        with open(path, encoding="utf-8") as fh:
            splits[split_name] = [
                Example(row["text"], int(row["label"])) for row in map(json.loads, fh)
            ]
    info = dict(meta["info"])
    info["cache"] = str(directory)
    return TextDataset(meta["name"], list(meta["label_names"]), splits, info)
