"""Discovery: the result files (``summary.json``, ``evaluation.json``) under the paths given.

A directory is searched recursively; a run directory (one holding ``summary.json``) is one
result and is not searched further, so the ``seed-<s>`` and ``shard-*`` directories below a
combined run are never counted twice. A quoted glob gives the results of every match.
"""

from __future__ import annotations

import glob
from pathlib import Path

from rsmi.errors import StoreError
from rsmi.store.names import EVALUATION_FILE, SUMMARY_FILE


class NoResultsYet(StoreError):
    """Every path given was a glob, and none matched a run with results (runs not made yet)."""


def is_glob(path: str | Path) -> bool:
    return not Path(path).exists() and any(ch in str(path) for ch in "*?[")


def find_results(path: str | Path) -> list[Path]:
    """The result files of ``path``: itself if a file, else found recursively (sorted); a
    path with glob characters that names no file gives the results of every match.

    A directory holding ``summary.json`` and/or ``evaluation.json`` gives those and is not
    searched further (its ``seed-<s>`` / ``shard-*`` directories belong to that run).
    """
    path = Path(path)
    if path.is_file():
        return [path]
    if is_glob(path):
        # a glob (``results/study/mr/attacks/*/seed-0/textfooler``): the results of each match
        matches = sorted(Path(m) for m in glob.glob(str(path)))
        if not matches:
            raise FileNotFoundError(f"{path} matches nothing")
        found: list[Path] = []
        for m in matches:  # a match holding no results yet (a run under way) adds nothing
            found += [f for f in ([m] if m.is_file() else _walk(m)) if f not in found]
        if not found:
            raise StoreError(f"{path}: no match holds {SUMMARY_FILE} or {EVALUATION_FILE}")
        return found
    if not path.is_dir():
        raise FileNotFoundError(f"{path} does not exist")
    found = _walk(path)
    if not found:
        raise StoreError(
            f"{path} holds no {SUMMARY_FILE} (rsmi attack) or {EVALUATION_FILE} (rsmi evaluate) "
            "below it"
        )
    return found


def _walk(directory: Path, seen: set[Path] | None = None) -> list[Path]:
    seen = set() if seen is None else seen
    real = directory.resolve()
    if real in seen:  # a symlink loop
        return []
    seen.add(real)
    here = [directory / n for n in (SUMMARY_FILE, EVALUATION_FILE) if (directory / n).is_file()]
    if here:
        return here
    out: list[Path] = []
    for child in sorted(directory.iterdir()):
        if child.is_dir() and not child.name.startswith("."):
            out.extend(_walk(child, seen))
    return out


