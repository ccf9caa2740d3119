"""Run an exported graph: the engine's answer to one chunk of noisy forward passes.

:func:`runner` gives :meth:`rsmi.inference.SmoothedInference._forward_rows` a callable
``(noise, inputs, seeds) -> logits``. It draws the noise of each row in PyTorch
(:meth:`rsmi.noise.HiddenStateNoise.row_draws`, the hooks' draws), feeds the token inputs and
the draws to the compiled graph, and returns float32 logits as a tensor.

Compiled graphs are kept per model (weakly, so they go with it) and per setting; a model whose
parameters were changed in place since (an optimiser step) or replaced gets its graph exported
(or loaded) again, since the cache key follows the weights.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import sys
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rsmi.engine.cache import exported
from rsmi.engine.export import hidden_size

# model -> {(engine, precision, inputs, blocks, threads): (weights signature, session)}
_SESSIONS: weakref.WeakKeyDictionary[nn.Module, dict[tuple, tuple[tuple, Any]]] = (
    weakref.WeakKeyDictionary()
)


class _StackT(ctypes.Structure):
    """``stack_t`` of sigaltstack(2), glibc/musl layout on Linux (macOS orders it otherwise)."""

    _fields_ = [("ss_sp", ctypes.c_void_p), ("ss_flags", ctypes.c_int), ("ss_size", ctypes.c_size_t)]


_SS_DISABLE = 2  # Linux


def _sigaltstack() -> Callable[..., int] | None:
    """libc's sigaltstack on Linux (where the plugin's behaviour was found), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).sigaltstack
    except (OSError, AttributeError):  # pragma: no cover - a libc without it
        return None


def signal_stack() -> tuple[int, int, int] | None:
    """The calling thread's alternate signal stack ``(sp, flags, size)``; None where unknown."""
    call = _sigaltstack()
    if call is None:
        return None
    current = _StackT()
    if call(None, ctypes.byref(current)) != 0:
        return None
    return (current.ss_sp or 0, current.ss_flags, current.ss_size)


@contextlib.contextmanager
def kept_signal_stack() -> Any:
    """Give the calling thread back the alternate signal stack it had before the block.

    OpenVINO's CPU plugin (2024–2025 releases) installs an alternate signal stack of its own on
    the thread that compiles a model and, when a compiled model is destroyed, puts back the stack
    that was current when *that* model was compiled. Compiled models that are not destroyed in
    the reverse order of their creation therefore leave the thread pointing at a stack another
    compiled model has already freed; the next signal handled on that thread (Python installs
    its handlers with ``SA_ONSTACK``: SIGTERM to a training run, SIGINT) then dies with SIGSEGV
    (the kernel cannot write the signal frame). Restoring the previous stack around compiling
    and destroying keeps the thread's stack Python's own (none, or faulthandler's), and the
    plugin, finding a stack that is not its own, leaves it alone when its model goes.
    """
    call = _sigaltstack()
    before = _StackT()
    if call is None or call(None, ctypes.byref(before)) != 0:
        yield
        return
    try:
        yield
    finally:
        flags = before.ss_flags & _SS_DISABLE  # SS_ONSTACK is reported, never set
        restore = _StackT(before.ss_sp, flags, before.ss_size)
        call(ctypes.byref(restore), None)


class OpenVINOSession:
    """An OpenVINO compiled model on the CPU (precision hint ``f32`` or ``bf16``)."""

    def __init__(self, path: Path, precision: str, threads: int) -> None:
        import openvino as ov

        core = ov.Core()
        hint = {"float32": "f32", "bfloat16": "bf16"}[precision]
        with kept_signal_stack():  # see kept_signal_stack: the plugin swaps the thread's stack
            self.compiled = core.compile_model(
                core.read_model(str(path)), "CPU",
                {"INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": threads,
                 "PERFORMANCE_HINT": "LATENCY"},
            )
            self.request = self.compiled.create_infer_request()
        self.lock = threading.Lock()  # one infer request: one call at a time (a server's threads)

    def run(self, feeds: Sequence[np.ndarray]) -> np.ndarray:
        with self.lock:
            result = self.request.infer(list(feeds))
            return np.array(result[self.compiled.output(0)], dtype=np.float32)

    def close(self) -> None:
        """Destroy the compiled model now, keeping the thread's signal stack."""
        with kept_signal_stack():
            self.__dict__.pop("request", None)
            self.__dict__.pop("compiled", None)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown: ctypes may be gone already
            pass


class OnnxSession:
    """An ONNX Runtime session on the CPU (float32 or int8-quantized weights)."""

    def __init__(self, path: Path, precision: str, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        self.names = [i.name for i in self.session.get_inputs()]

    def run(self, feeds: Sequence[np.ndarray]) -> np.ndarray:
        out = self.session.run(None, dict(zip(self.names, feeds, strict=True)))[0]
        return np.asarray(out, dtype=np.float32)


def _signature(model: nn.Module) -> tuple:
    """Changes when a parameter is modified in place or replaced (cheap, unlike a digest)."""
    return tuple((id(p), p._version) for p in model.parameters())


def session(
    model: nn.Module, engine: str, precision: str, names: Sequence[str], blocks: Sequence[int]
) -> Any:
    """The compiled graph for this model and setting (exported or loaded on first use)."""
    threads = max(1, torch.get_num_threads())
    key = (engine, precision, tuple(names), tuple(blocks), threads)
    kept = _SESSIONS.setdefault(model, {})
    signature = _signature(model)
    if key in kept and kept[key][0] == signature:
        return kept[key][1]
    path = exported(model, engine, precision, names, blocks)
    kind = OpenVINOSession if engine == "openvino" else OnnxSession
    made = kind(path, precision, threads)
    kept[key] = (signature, made)
    return made


def draws(noise: Any, inputs: Mapping[str, torch.Tensor], seeds: Sequence[int], width: int):
    """The noise inputs of a chunk: ``{block: tensor}``, empty when the noise is off."""
    if not (noise.enabled and noise.noise_std > 0 and noise.noised_blocks):
        return {}
    return noise.row_draws(seeds, inputs["attention_mask"], width)


def run(
    model: nn.Module,
    engine: str,
    precision: str,
    noise: Any,
    inputs: Mapping[str, torch.Tensor],
    seeds: Sequence[int],
) -> torch.Tensor:
    """Logits (rows × classes, float32) of the noisy passes of ``inputs``, row r from seeds[r]."""
    names = tuple(sorted(inputs))
    noise_in = draws(noise, inputs, seeds, hidden_size(model))
    graph = session(model, engine, precision, names, tuple(noise_in))
    feeds = [np.ascontiguousarray(inputs[n].cpu().numpy()) for n in names]
    feeds += [np.ascontiguousarray(t.cpu().numpy()) for t in noise_in.values()]
    return torch.from_numpy(graph.run(feeds))


def runner(model: nn.Module, engine: str, precision: str) -> Callable[..., torch.Tensor]:
    """``(noise, inputs, seeds) -> logits`` for :meth:`SmoothedInference._forward_rows`."""
    return functools.partial(run, model, engine, precision)
