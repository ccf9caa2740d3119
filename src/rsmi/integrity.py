"""Integrity checks: weight digests of saved models and finite model outputs.

A saved RSMI model records the sha256 of each weights file in ``rsmi.json``; loading verifies
it, so flipped bytes in a weights file are an error instead of a model that silently predicts
NaN. Non-finite logits (NaN/inf, e.g. from corrupted or diverged weights) are an error
everywhere they come out of the model: never a label, an accuracy or a certificate.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from rsmi.packages import sha256_file

WEIGHT_SUFFIX = ".safetensors"


class NonFiniteOutputError(ArithmeticError):
    """The model produced NaN or infinite logits: its weights are corrupt or diverged."""


class IntegrityError(ValueError):
    """A file does not match the digest recorded when it was written."""


def weight_files(directory: Path) -> list[Path]:
    """The safetensors weight files of a model directory, sorted by name."""
    return sorted(p for p in Path(directory).iterdir() if p.name.endswith(WEIGHT_SUFFIX))


def weights_digests(directory: Path) -> dict[str, str]:
    """``{file name: sha256}`` of every safetensors weight file in ``directory``."""
    return {p.name: sha256_file(p) for p in weight_files(directory)}


def verify_weights(directory: Path, recorded: Mapping[str, str]) -> None:
    """Raise :class:`IntegrityError` naming the first weights file whose digest differs."""
    for name, expected in sorted(recorded.items()):
        path = Path(directory) / name
        if not path.is_file():
            raise IntegrityError(
                f"{path} is missing (rsmi.json records its sha256): restore the file or re-save "
                "the model"
            )
        actual = sha256_file(path)
        if actual != expected:
            raise IntegrityError(
                f"{path} is corrupt: its sha256 is {actual[:16]}…, but {expected[:16]}… was "
                "recorded when the model was saved; restore the file from a backup or re-save "
                "(re-train) the model"
            )


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
