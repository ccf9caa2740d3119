"""Import TextAttack offline, through :func:`rsmi.resources.import_textattack`.

``import textattack`` downloads NLTK/stanza data unless the prepared resources are activated
first; every module of this package that needs TextAttack at import time goes through here.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any


def load_textattack(resources: Any | None = None) -> ModuleType:
    """The ``textattack`` module, imported without any download attempt.

    Args:
        resources: an ``rsmi.resources.Resources`` (or an object with the same ``activate()``);
            default: ``Resources.load()``, which says how to prepare it when it is missing.
    """
    from rsmi.resources import import_textattack

    try:
        return import_textattack(resources)
    except ImportError as exc:
        raise ImportError(
            "attacks need the optional extra rsmi[attack]: pip install 'rsmi[attack]' "
            f"(TextAttack 0.3.11, nltk, sentence-transformers) ({exc})"
        ) from exc


def require_textattack() -> ModuleType:
    """TextAttack if it is loaded; otherwise load it with the default prepared resources."""
    return sys.modules["textattack"] if "textattack" in sys.modules else load_textattack()
