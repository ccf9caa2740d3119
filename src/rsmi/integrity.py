"""Integrity checks: file digests, complete loads, where a model comes from, finite outputs.

A saved RSMI model records the sha256 of its weights, ``config.json`` and tokenizer files (and
of its card's own fields) in ``rsmi.json``; loading verifies them
(:mod:`rsmi.store.model_card`, which owns the card; the names are re-exported here), so flipped
bytes in a weights file, an edited config or swapped label names are an error instead of a
model that silently answers otherwise. Non-finite logits (NaN/inf, e.g. from corrupted or
diverged weights) are an error everywhere they come out of the model: never a label, an
accuracy or a certificate.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rsmi.errors import ModelLoadError, NumericalError
from rsmi.store.model_card import (
    WEIGHT_SUFFIX,
    IntegrityError,
    verify,
    verify_digests,
    weight_files,
    weights_digests,
)
from rsmi.store.names import MODEL_CARD_FILE

logger = logging.getLogger(__name__)

__all__ = [
    "WEIGHT_SUFFIX",
    "IntegrityError",
    "ModelLoadError",
    "NonFiniteOutputError",
    "check_finite",
    "check_loading_info",
    "check_saved_files",
    "hub_unreachable",
    "looks_local",
    "notice_new_weights",
    "state_digest",
    "verify_weights",
    "weight_files",
    "weights_digests",
]


class NonFiniteOutputError(NumericalError):
    """The model produced NaN or infinite logits: its weights are corrupt or diverged."""


def verify_weights(directory: Path, recorded: Mapping[str, str]) -> None:
    """Raise :class:`IntegrityError` naming the first weights file whose digest differs."""
    verify_digests(Path(directory), recorded, "weights file")


def state_digest(model: nn.Module) -> str:
    """sha256 over the model's tensors (names, dtypes, shapes, values), independent of files.

    Identifies *which weights* a run used, whatever path they were loaded from.
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().contiguous().cpu().reshape(-1)
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def check_finite(logits: torch.Tensor, what: str = "the model") -> torch.Tensor:
    """``logits`` unchanged, or :class:`NonFiniteOutputError` when any value is NaN/inf."""
    if logits.numel() and not bool(torch.isfinite(logits).all()):
        bad = int((~torch.isfinite(logits)).any(dim=-1).sum()) if logits.dim() > 1 else 1
        raise NonFiniteOutputError(
            f"{what} produced NaN or infinite logits ({bad} of {logits.shape[0]} rows): its "
            "weights are corrupt or training diverged; restore or re-train the model (a "
            "diverged training: lower --lr)"
        )
    return logits


# ---------------------------------------------------------------------------- loading checks
def looks_local(name: str) -> bool:
    """Whether a model name that does not exist is meant as a local path, not a hub id.

    Hub ids are ``name`` or ``org/name``; anything else (absolute, ``./``, ``~``, ``a/b/c``,
    a first component that is a local directory, a trailing slash) is a path.
    """
    if not name or name.startswith((".", "~", os.sep)) or os.path.isabs(name):
        return True
    if "\\" in name or name.endswith("/") or name.count("/") > 1:
        return True
    return "/" in name and Path(name.split("/")[0]).is_dir()


def hub_unreachable(name: str) -> bool:
    """True when a hub id must be loaded from the local cache only.

    Offline mode (``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE``) and a hub that does not answer
    within a few seconds both mean "cache only", so a missing id fails at once instead of
    after the hub client's retries.
    """
    if any(os.environ.get(v, "").lower() in ("1", "true", "yes", "on")
           for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")):
        return True
    import socket
    from urllib.parse import urlparse

    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host, port = endpoint.hostname or "huggingface.co", endpoint.port or 443
    try:
        with socket.create_connection((host, port), timeout=3):
            return False
    except OSError:
        logger.warning("the Hugging Face Hub (%s) is unreachable: looking for %r in the local "
                       "cache only", host, name)
        return True


def check_saved_files(source: Path, meta: Mapping[str, Any], meta_name: str = MODEL_CARD_FILE) -> None:
    """Every file of a saved model matches its card (:func:`rsmi.store.model_card.verify`)."""
    verify(source, meta)


def check_loading_info(source: Path, info: Mapping[str, Any]) -> None:
    """A saved RSMI model must load every tensor it needs: nothing newly initialised."""
    problems = []
    if info.get("missing_keys"):
        problems.append(f"missing {_names(info['missing_keys'])}")
    if info.get("mismatched_keys"):
        problems.append(f"wrong shape {_names([_key(k) for k in info['mismatched_keys']])}")
    if problems:
        raise ModelLoadError(
            f"the weights in {source} do not fit its config.json ({'; '.join(problems)}): these "
            "would be newly (randomly) initialised; restore the model's files or re-save it"
        )


def notice_new_weights(name: str, model: nn.Module, info: Mapping[str, Any]) -> None:
    """A new head on a plain encoder is expected (notice); new encoder weights are a warning."""
    prefix = getattr(model, "base_model_prefix", "") + "."
    missing = list(info.get("missing_keys", [])) + [_key(k) for k in info.get("mismatched_keys", [])]
    head = [k for k in missing if not k.startswith(prefix)]
    encoder = [k for k in missing if k.startswith(prefix)]
    if head:
        logger.info("%s: new classification head %s (to be trained)", name, _names(head))
    if encoder:
        logger.warning("%s: encoder weights %s are not in the checkpoint and start random",
                       name, _names(encoder))


def _key(item: Any) -> str:
    """A tensor name from transformers' loading info (a name, or a (name, shapes...) tuple)."""
    return str(item[0]) if isinstance(item, (tuple, list)) else str(item)


def _names(keys: Sequence[str], limit: int = 6) -> str:
    keys = list(keys)
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more
