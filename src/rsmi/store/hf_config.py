"""``config.json`` of a saved RSMI model: guarded so that plain transformers refuses it.

A saved RSMI directory holds ordinary safetensors weights and a transformers ``config.json``.
Loaded with plain ``transformers`` (``pipeline("text-classification", model=DIR)``,
``AutoModelForSequenceClassification.from_pretrained(DIR)``) it would give the *bare* encoder —
no noise, no masked inference, none of RSMI's robustness — without a word. So
:func:`guard` rewrites ``config.json`` with ``model_type = "rsmi-<base type>"``, a type
transformers does not know: every Auto class then fails with

    The checkpoint you are trying to load has model type `rsmi-bert` but Transformers does not
    recognize this architecture ...

and ``rsmi_note`` in the file says what to use instead. The real type is kept under
``rsmi_model_type``; :func:`load_config` restores it for rsmi's own loader. ``architectures``,
``id2label`` and every other key stay as transformers wrote them (the model card checks them).
The guarded bytes are what ``rsmi.json`` records in ``files_sha256`` (the guard runs before the
card is written). A directory saved before the guard (a plain ``config.json``) loads as before.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from rsmi.errors import ModelLoadError
from rsmi.store.atomic import atomic_write_text
from rsmi.store.names import HF_CONFIG_FILE

PREFIX = "rsmi-"
REAL_TYPE_KEY = "rsmi_model_type"
NOTE_KEY = "rsmi_note"
NOTE = (
    "An RSMI model (randomized smoothing with masked inference). Load it with "
    "rsmi.RSMIClassifier.from_pretrained(DIR) or rsmi.text_classification_pipeline(DIR): plain "
    "transformers would load the bare encoder without the noise and masks that make it robust."
)


def guard(directory: str | os.PathLike[str]) -> Path:
    """Rewrite ``directory/config.json`` so that plain transformers refuses to load it."""
    path = Path(directory) / HF_CONFIG_FILE
    data = json.loads(path.read_text(encoding="utf-8"))
    real = data.get(REAL_TYPE_KEY) or data.get("model_type")
    if not real:
        raise ModelLoadError(f"{path} has no model_type: transformers did not write it")
    data = {NOTE_KEY: NOTE, **data, "model_type": PREFIX + real, REAL_TYPE_KEY: real}
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def is_guarded(data: dict[str, Any]) -> bool:
    """Whether a ``config.json`` dict was written by :func:`guard`."""
    return REAL_TYPE_KEY in data and str(data.get("model_type", "")).startswith(PREFIX)


def load_config(directory: str | os.PathLike[str]) -> Any | None:
    """The transformers config of a guarded ``config.json`` (None: a plain one; load as is)."""
    from transformers import CONFIG_MAPPING

    path = Path(directory) / HF_CONFIG_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None  # transformers' own loader names the problem
    if not isinstance(data, dict) or not is_guarded(data):
        return None
    real = data.pop(REAL_TYPE_KEY)
    data.pop(NOTE_KEY, None)
    data["model_type"] = real
    try:
        config_class = CONFIG_MAPPING[real]
    except KeyError as exc:
        raise ModelLoadError(
            f"{path} names the model type {real!r}, which this transformers does not know: "
            "install the transformers version the model was saved with"
        ) from exc
    return config_class.from_dict(data)


__all__ = ["NOTE", "guard", "is_guarded", "load_config"]
