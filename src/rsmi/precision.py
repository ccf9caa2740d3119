"""Compute precision: which dtype the encoder's matrix products run in.

RSMI's weights, saved files and noise draws stay in float32 whatever the setting; ``dtype``
only chooses the precision of the forward (and saliency / training backward) computation,
through :func:`torch.autocast`. RSMI's own noise (σ = 0.2 on hidden states of scale ≈ 0.5) is
orders of magnitude larger than bfloat16's rounding (relative 2⁻⁸).

``"auto"`` resolves to ``"bfloat16"`` where the device computes it natively and to
``"float32"`` elsewhere:

* CUDA: ``torch.cuda.is_bf16_supported()`` (compute capability ≥ 8.0, e.g. A100, H100);
* CPU: the processor advertises bfloat16 dot-product instructions, i.e. the Linux
  ``/proc/cpuinfo`` flags ``avx512_bf16`` (AVX-512 BF16: AMD Zen 4+, Intel Cooper Lake+) or
  ``amx_bf16`` (Intel AMX, Sapphire Rapids+). Without them oneDNN emulates bfloat16, which is
  slower than float32, so ``auto`` keeps float32;
* any other device (MPS, ...): float32.

``"float16"`` is accepted on CUDA only (CPU autocast in float16 is neither fast nor safe).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from rsmi.errors import ConfigError
from rsmi.provenance import CPU_BF16_FLAGS, cpu_flags  # their owner: rsmi.provenance

DTYPES: tuple[str, ...] = ("auto", "float32", "bfloat16", "float16")
TORCH_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}
_ALIASES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "no": "float32"}


def normalize_dtype(name: str) -> str:
    """The canonical name of a dtype setting (``bf16`` → ``bfloat16``); an error if unknown."""
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in DTYPES:
        raise ConfigError(
            f"dtype={name!r} is invalid: choose one of {', '.join(DTYPES)} "
            "(auto = bfloat16 where the device runs it natively, float32 elsewhere)"
        )
    return key


def native_bf16(device: str | torch.device) -> bool:
    """Whether ``device`` computes bfloat16 matrix products natively (see the module doc)."""
    kind = torch.device(device).type
    if kind == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if kind == "cpu":
        return any(flag in cpu_flags() for flag in CPU_BF16_FLAGS)
    return False


def resolve_dtype(name: str, device: str | torch.device) -> str:
    """The effective compute dtype (``float32`` / ``bfloat16`` / ``float16``) of a setting."""
    key = normalize_dtype(name)
    kind = torch.device(device).type
    if key == "auto":
        return "bfloat16" if native_bf16(device) else "float32"
    if key == "float16" and kind != "cuda":
        raise ConfigError(
            f"dtype=float16 needs a CUDA device (this one is {kind}): use bfloat16 or float32"
        )
    return key


@contextlib.contextmanager
def autocast(device: str | torch.device, dtype: str) -> Iterator[None]:
    """``torch.autocast`` in the resolved ``dtype`` (nothing for float32)."""
    if dtype == "float32":
        yield
        return
    kind = torch.device(device).type
    with torch.autocast(device_type=kind, dtype=TORCH_DTYPES[dtype]):
        yield


def accelerate_mixed_precision(dtype: str) -> str:
    """accelerate's ``mixed_precision`` for a resolved compute dtype."""
    return {"float32": "no", "bfloat16": "bf16", "float16": "fp16"}[dtype]
