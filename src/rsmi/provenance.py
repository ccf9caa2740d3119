"""Provenance: what produced a result (code revision, packages, machine, date).

One function, :func:`provenance`, is recorded by every command that writes results: attack
summaries (``summary.json``), ``rsmi evaluate``'s ``evaluation.json`` and the training
config (``training_config.json``) and log. Callers may add keys of their own (e.g. the compute
``dtype``): they are passed through unchanged.
"""

from __future__ import annotations

import datetime as _dt
import functools
import importlib.metadata
import os
import platform
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

VERSION_PACKAGES = (
    "rsmi",
    "torch",
    "transformers",
    "textattack",
    "nltk",
    "sentence-transformers",
    "numpy",
    "scipy",
    "accelerate",
)


def package_versions(names: tuple[str, ...] = VERSION_PACKAGES) -> dict[str, str | None]:
    """Installed version of each package (None when it is not installed)."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def _git(*args: str) -> str | None:
    try:
        proc = subprocess.run(
            ["git", *args], cwd=Path(__file__).resolve().parent, capture_output=True,
            text=True, timeout=10, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def git_revision() -> str | None:
    """The git commit of the rsmi source tree (None outside a checkout)."""
    return _git("rev-parse", "HEAD") or None


def git_dirty() -> bool | None:
    """Whether the rsmi checkout has uncommitted changes to tracked files (None outside one)."""
    status = _git("status", "--porcelain", "--untracked-files=no")
    return None if status is None else bool(status)


@functools.lru_cache(maxsize=1)
def cpu_model() -> str | None:
    """The CPU model name (from /proc/cpuinfo on Linux, else ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _first_processor(cpuinfo: str) -> dict[str, str]:
    """The ``key: value`` fields of the first processor in a /proc/cpuinfo file (empty where
    it cannot be read)."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            break
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


@functools.lru_cache(maxsize=1)
def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU feature flags the kernel reports (empty where there is no /proc/cpuinfo)."""
    fields = _first_processor(cpuinfo)
    return frozenset((fields.get("flags") or fields.get("Features") or "").split())


# Instruction sets by which oneDNN and MKL choose their kernels, and so the float bits: one
# model name ("AMD EPYC") covers CPUs with AVX-512 BF16 (Zen 4) and without AVX-512 (Zen 3),
# which train other bfloat16 weights from one seed (docs/training.md).
KERNEL_FLAGS = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
                "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_bf16", "amx_tile", "amx_int8")


# The flags of CPUs that compute bfloat16 dot products natively (rsmi.precision's "auto").
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.lru_cache(maxsize=1)
def cpu_family_model(cpuinfo: str = "/proc/cpuinfo") -> str | None:
    """The x86 CPU family and model numbers, ``"26/2"`` (None where not reported). One model
    name covers several generations ("AMD EPYC": family 25 is Zen 3/4, 26 is Zen 5); the
    numbers say which one a record came from. Diagnostic only: the kind of CPU
    (:func:`cpu_kind`) is its instruction sets, which choose the kernels."""
    fields = _first_processor(cpuinfo)
    family, model = fields.get("cpu family"), fields.get("model")
    return f"{family}/{model}" if family and model else None


def cpu_features() -> list[str] | None:
    """The :data:`KERNEL_FLAGS` this CPU has, sorted (None where no flags can be read)."""
    flags = cpu_flags()
    return sorted(f for f in KERNEL_FLAGS if f in flags) if flags else None


def cpu_kind(machine_record: Mapping[str, Any] | None = None) -> str | None:
    """The kind of CPU a ``provenance.machine`` record names (default: this machine): its
    model name and, where recorded, its :data:`KERNEL_FLAGS` in brackets, e.g.
    ``"AMD EPYC [avx2 avx512_bf16 avx512f]"``. Records made before the flags were recorded
    give the name alone. None when no model name is recorded."""
    record = machine() if machine_record is None else machine_record
    name = record.get("cpu")
    if not isinstance(name, str) or not name:
        return None
    features = record.get("cpu_features")
    if isinstance(features, list) and all(isinstance(f, str) for f in features):
        return f"{name} [{' '.join(features)}]"
    return name


def same_cpu_kind(recorded: str | None, here: str | None) -> bool | None:
    """Whether two :func:`cpu_kind` strings name one kind of CPU: True/False, or None when
    that cannot be told (a side unknown, or the names agree but one side's instruction sets
    were not recorded)."""
    if not recorded or not here:
        return None
    name_a, _, feats_a = recorded.partition(" [")
    name_b, _, feats_b = here.partition(" [")
    if name_a != name_b:
        return False
    if feats_a and feats_b:
        return feats_a == feats_b
    return None


# Environment variables that choose the CPU kernels' code paths, and so the float bits
# (docs/training.md, "Can the instruction set be pinned?").
NUMERICS_ENV = ("ONEDNN_MAX_CPU_ISA", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS")


def machine() -> dict[str, Any]:
    """Platform, CPU model, its kernel-choosing instruction sets (:func:`cpu_features`), its
    family/model numbers (:func:`cpu_family_model`) and cores, torch threads, the GPU (if torch sees one), and the
    kernel-choosing variables of :data:`NUMERICS_ENV` under ``numerics`` when any is set."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_features": cpu_features(),
        "cpu_family_model": cpu_family_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": None,
        "gpu": None,
    }
    numerics = {k: os.environ[k] for k in NUMERICS_ENV if os.environ.get(k)}
    if numerics:
        info["numerics"] = numerics
    try:
        import torch
    except ImportError:
        return info
    info["torch_threads"] = torch.get_num_threads()
    if torch.cuda.is_available():
        index = torch.cuda.current_device()
        info["gpu"] = {
            "name": torch.cuda.get_device_name(index),
            "count": torch.cuda.device_count(),
            "cuda": torch.version.cuda,
        }
    return info


def utc_now() -> str:
    """The current time, UTC, ISO 8601 to the second."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def provenance(**extra: Any) -> dict[str, Any]:
    """Everything a result file records about how it was produced.

    Keys: ``git_revision``, ``git_dirty``, ``versions`` (package → version), ``python``,
    ``machine`` (:func:`machine`), ``created`` (UTC, ISO 8601). Keyword arguments are added
    as they are (e.g. ``dtype="bf16"``) and take precedence.
    """
    return {
        "git_revision": git_revision(),
        "git_dirty": git_dirty(),
        "versions": package_versions(),
        "python": sys.version.split()[0],
        "machine": machine(),
        "created": utc_now(),
        **extra,
    }


__all__ = [
    "VERSION_PACKAGES",
    "CPU_BF16_FLAGS",
    "KERNEL_FLAGS",
    "cpu_family_model",
    "cpu_features",
    "cpu_flags",
    "cpu_kind",
    "cpu_model",
    "git_dirty",
    "git_revision",
    "machine",
    "same_cpu_kind",
    "package_versions",
    "provenance",
    "utc_now",
]
