"""Where rsmi keeps downloaded packages, prepared data and resources: ``RSMI_HOME``."""

from __future__ import annotations

import os
from pathlib import Path

from rsmi.errors import ConfigError


class HomeError(ConfigError):
    """RSMI_HOME cannot be used (a file, not writable)."""


def rsmi_home() -> Path:
    """``$RSMI_HOME``, else ``$XDG_CACHE_HOME/rsmi``, else ``~/.cache/rsmi`` (created)."""
    env = os.environ.get("RSMI_HOME")
    if env:
        path = Path(env).expanduser()
    else:
        cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        path = Path(cache) / "rsmi"
    name = f"RSMI_HOME={path}" if env else f"the rsmi cache {path}"
    if path.exists() and not path.is_dir():
        raise HomeError(f"{name} is a file, not a directory: set RSMI_HOME to a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HomeError(
            f"{name} cannot be created ({exc.strerror or exc}): set RSMI_HOME to a writable "
            "directory"
        ) from exc
    if not os.access(path, os.W_OK | os.X_OK):
        raise HomeError(f"{name} is not writable: set RSMI_HOME to a writable directory")
    return path
