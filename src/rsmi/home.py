"""Where rsmi keeps downloaded packages, prepared data and resources: ``RSMI_HOME``."""

from __future__ import annotations

import os
from pathlib import Path


def rsmi_home() -> Path:
    """``$RSMI_HOME``, else ``$XDG_CACHE_HOME/rsmi``, else ``~/.cache/rsmi`` (created)."""
    env = os.environ.get("RSMI_HOME")
    if env:
        path = Path(env).expanduser()
    else:
        cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        path = Path(cache) / "rsmi"
    path.mkdir(parents=True, exist_ok=True)
    return path
