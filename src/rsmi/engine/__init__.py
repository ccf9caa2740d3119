"""Inference engines for the forward passes that need no gradient.

RSMI's Monte-Carlo samples (step 1, step 2, CERTIFY's samples), the plain classifier's passes
and an attack's transfer surrogate only need logits. With ``engine="openvino"`` or ``"onnx"``
they run in an exported graph of the encoder and its head (:mod:`rsmi.engine.export`) instead
of eager PyTorch; the saliency pass (it needs gradients) stays in PyTorch.

The hidden-state noise is an explicit input of the graph: one ``noise_<block>`` tensor
(rows × T × hidden, float32) per noised block, added to that block's output. Those tensors are
drawn in PyTorch by :meth:`rsmi.noise.HiddenStateNoise.row_draws`: the same generators, in the
same order, at the same positions as the forward hooks of the PyTorch path, so the same seeds
give the same draws and, in float32, logits equal to PyTorch's within rounding.

Engines (:data:`ENGINES`) and their precision:

* ``"torch"`` — eager PyTorch (the default, the fallback and the reference);
* ``"openvino"`` — OpenVINO on the CPU, float32;
* ``"openvino-bf16"`` — OpenVINO with its bfloat16 inference-precision hint (the graph and the
  noise inputs stay float32; OpenVINO computes the matrix products in bfloat16);
* ``"onnx"`` — ONNX Runtime on the CPU, float32;
* ``"onnx-int8"`` — ONNX Runtime with dynamically quantized int8 weights (a measured candidate,
  not adopted: docs/benchmarks.md).

An engine's name says its precision; the classifier's ``dtype`` still sets the precision of the
passes that stay in PyTorch (the saliency pass), so ``dtype="float32", engine="openvino-bf16"``
is a valid pair.

The exported graph is cached under ``$RSMI_HOME/engine`` (:mod:`rsmi.engine.cache`), keyed by the
weights, the engine, its precision and the opset; loading it runs no code (an OpenVINO IR or an
ONNX file is data). Engines run on the CPU only.
"""

from __future__ import annotations

from typing import Any

import torch

from rsmi.errors import ConfigError

ENGINES: tuple[str, ...] = ("torch", "openvino", "openvino-bf16", "onnx", "onnx-int8")
DEFAULT_ENGINE = "torch"
# The PyPI package each engine needs (pinned in pyproject.toml's `engine` extra).
PACKAGES: dict[str, tuple[str, str]] = {
    "onnx": ("onnxruntime", "onnxruntime onnx"),
    "onnx-int8": ("onnxruntime", "onnxruntime onnx"),
    "openvino": ("openvino", "openvino"),
    "openvino-bf16": ("openvino", "openvino"),
}
# The precision of each engine's passes (torch: the classifier's compute dtype).
PRECISIONS: dict[str, str] = {
    "openvino": "float32", "openvino-bf16": "bfloat16", "onnx": "float32", "onnx-int8": "int8",
}
INSTALL_HINT = "pip install -e '.[engine]' (scripts/setup.sh installs it)"


class EngineUnavailableError(ConfigError):
    """The chosen engine cannot run here (its package is missing, or the device is not a CPU)."""


def normalize_engine(name: str | None) -> str:
    """The canonical name of an engine setting; a :class:`ConfigError` if unknown."""
    key = DEFAULT_ENGINE if name is None else str(name).strip().lower()
    if key not in ENGINES:
        raise ConfigError(
            f"engine={name!r} is invalid: choose one of {', '.join(ENGINES)} (torch = eager "
            "PyTorch, the default; docs/inference.md, 'Inference engines')"
        )
    return key


def require_engine(engine: str, device: str | torch.device = "cpu") -> None:
    """Raise :class:`EngineUnavailableError` unless ``engine`` can run on ``device`` here."""
    if engine == DEFAULT_ENGINE:
        return
    if torch.device(device).type != "cpu":
        raise EngineUnavailableError(
            f"engine={engine!r} runs on the CPU only and the model is on {device}: use "
            "engine='torch' (--engine torch) on this device"
        )
    module, packages = PACKAGES[engine]
    try:
        __import__(module)
    except ImportError as exc:
        raise EngineUnavailableError(
            f"engine={engine!r} needs the Python package {module!r}, which is not installed: "
            f"install it with `{INSTALL_HINT}` (or `pip install {packages}`), or use "
            "engine='torch'"
        ) from exc


def engine_precision(engine: str, compute_dtype: str) -> str:
    """The precision an engine's passes run in: its own, or ``compute_dtype`` for torch."""
    return PRECISIONS.get(engine, compute_dtype)


def runtime(engine: str) -> str:
    """The runtime behind an engine name (``openvino`` or ``onnx``)."""
    return "openvino" if engine.startswith("openvino") else "onnx"


class EngineSetting:
    """The ``engine`` setting of :class:`rsmi.RSMIClassifier` (mixed into it).

    The class using it provides ``model``, ``noise``, ``device`` and ``compute_dtype``.
    :meth:`engine_runner` is what :meth:`rsmi.inference.SmoothedInference._forward_rows` calls.
    """

    engine: str = DEFAULT_ENGINE
    model: Any
    device: Any
    compute_dtype: str

    def _set_engine(self, engine: str | None) -> None:
        """Switch where the passes without gradient run (checked now: package, device)."""
        name = normalize_engine(engine)
        require_engine(name, self.device)
        self.engine = name

    @property
    def engine_precision(self) -> str:
        """The precision of the engine's passes (``float32``, ``bfloat16``, ``int8``)."""
        return engine_precision(self.engine, self.compute_dtype)

    def engine_runner(self) -> Any:
        """A callable ``(noise, inputs, seeds) -> logits`` for the engine; None for torch."""
        if self.engine == DEFAULT_ENGINE:
            return None
        from rsmi.engine.session import runner

        require_engine(self.engine, self.device)
        return runner(self.model, runtime(self.engine), self.engine_precision)


__all__ = [
    "DEFAULT_ENGINE", "ENGINES", "EngineSetting", "EngineUnavailableError", "engine_precision",
    "normalize_engine", "require_engine", "runtime",
]
