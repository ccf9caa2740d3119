"""``manifest.json`` of a resource directory: each part's files (sha256, size), source and stats.

A part (``wordnet``, ``stopwords``, ``tagger``, ``embedding``, ...) counts as finished only when
its entry is in the manifest with the same build parameters and every file it lists still has
the recorded size and checksum; that is what makes ``rsmi resources prepare`` idempotent and
``rsmi resources status`` trustworthy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rsmi.errors import StoreError
from rsmi.packages import sha256_file
from rsmi.store.atomic import atomic_write_text

FORMAT_VERSION = 1


def file_record(path: Path) -> dict[str, Any]:
    """``{"sha256", "size"}`` of one file."""
    return {"sha256": sha256_file(path), "size": path.stat().st_size}


def record_files(base: Path, paths: list[Path]) -> dict[str, dict[str, Any]]:
    """Records of ``paths`` keyed by their path relative to ``base`` (sorted, POSIX)."""
    out = {}
    for path in sorted(paths):
        out[path.relative_to(base).as_posix()] = file_record(path)
    return out


def files_under(directory: Path) -> list[Path]:
    """Every regular file below ``directory``."""
    return sorted(p for p in directory.rglob("*") if p.is_file())


@dataclass
class Manifest:
    """The parsed manifest; ``parts[name]`` = {"files", "base", "source", "params", "stats"}."""

    root: Path
    parts: dict[str, dict[str, Any]] = field(default_factory=dict)
    created: str = ""

    @classmethod
    def read(cls, root: Path) -> Manifest:
        path = root / "manifest.json"
        if not path.exists():
            return cls(root=root)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise StoreError(
                f"{path} is not valid JSON ({exc}); delete it and run `rsmi resources prepare`"
            ) from exc
        return cls(root=root, parts=data.get("parts", {}), created=data.get("created", ""))

    def write(self) -> None:
        """Write atomically (a crash leaves the old manifest, never half a new one)."""
        self.root.mkdir(parents=True, exist_ok=True)
        data = {
            "format": FORMAT_VERSION,
            "created": self.created or _now(),
            "updated": _now(),
            "parts": self.parts,
        }
        path = self.root / "manifest.json"
        atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")

    def base_of(self, part: str) -> Path:
        """Directory the part's file paths are relative to (the root unless recorded)."""
        base = self.parts[part].get("base")
        return Path(base) if base else self.root

    def set_part(
        self,
        name: str,
        files: list[Path],
        *,
        source: Any,
        params: dict[str, Any] | None = None,
        stats: dict[str, Any] | None = None,
        base: Path | None = None,
    ) -> None:
        """Record a finished part; ``base`` for files outside the root (e.g. the encoder)."""
        rel_base = base or self.root
        self.parts[name] = {
            "files": record_files(rel_base, files),
            "base": str(base) if base else None,
            "source": source,
            "params": params or {},
            "stats": stats or {},
            "built": _now(),
        }

    def problems(self, part: str, *, checksums: bool = True) -> list[str]:
        """What is wrong with a part's files (empty = verified); ``checksums=False``: sizes only."""
        if part not in self.parts:
            return [f"{part}: not prepared"]
        base = self.base_of(part)
        out = []
        for rel, rec in self.parts[part]["files"].items():
            path = base / rel
            if not path.is_file():
                out.append(f"{part}: missing file {path}")
            elif path.stat().st_size != rec["size"]:
                out.append(f"{part}: {path} has size {path.stat().st_size}, expected {rec['size']}")
            elif checksums and sha256_file(path) != rec["sha256"]:
                out.append(f"{part}: {path} does not match its sha256 in the manifest (corrupt)")
        return out

    def is_done(self, part: str, params: dict[str, Any] | None = None) -> bool:
        """Finished, with the same build parameters, and every file verified."""
        if part not in self.parts:
            return False
        if params is not None and self.parts[part].get("params", {}) != params:
            return False
        return not self.problems(part)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
