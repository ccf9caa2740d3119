"""Export the encoder and its head once, with the hidden-state noise as graph inputs.

:class:`NoiseInputs` wraps a Hugging Face sequence classifier: its ``forward`` takes the token
inputs (``input_ids``, ``attention_mask``, ...) and one ``noise_<block>`` tensor per noised block
(rows × T × hidden, float32) and returns the logits. During the export, forward hooks on those
blocks add the given tensors to the blocks' output hidden states, so the traced graph holds the
additions; the model's own ``forward`` is untouched and rsmi's own noise hooks are silenced.

The graph's rows and tokens are dynamic: one export serves every batch and length.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from torch import nn

from rsmi.errors import ModelLoadError
from rsmi.noise import HiddenStateNoise, find_encoder_blocks
from rsmi.store.names import ENGINE_IR_FILE, ENGINE_ONNX_FILE

OPSET = 17  # the ONNX opset of ONNX Runtime's graph (part of the cache key)


def hidden_size(model: nn.Module) -> int:
    """Width of the encoder's hidden states (the last dimension of a noise input)."""
    size = getattr(model.config, "hidden_size", None) or getattr(model.config, "dim", None)
    if not size:
        raise ModelLoadError(
            f"cannot export {type(model).__name__}: its config names no hidden_size; use "
            "engine='torch'"
        )
    return int(size)


class NoiseInputs(nn.Module):
    """``forward(*token_inputs, *noise) -> logits``: noise ``i`` added to block ``blocks[i]``."""

    def __init__(self, model: nn.Module, names: Sequence[str], blocks: Sequence[int]) -> None:
        super().__init__()
        self.model = model
        self.names = tuple(names)
        self.blocks = tuple(blocks)
        self._noise: dict[int, torch.Tensor] = {}

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        inputs = dict(zip(self.names, tensors[: len(self.names)], strict=True))
        self._noise = dict(zip(self.blocks, tensors[len(self.names) :], strict=True))
        try:
            return self.model(**inputs).logits
        finally:
            self._noise = {}

    def _add(self, index: int, module: nn.Module, args: object, output: object) -> object:
        noise = self._noise[index]
        if isinstance(output, tuple):
            return (output[0] + noise, *output[1:])
        return output + noise

    @contextlib.contextmanager
    def tracing(self) -> Iterator[None]:
        """Hooks adding the noise inputs, rsmi's own noise silenced, no gradients."""
        blocks = find_encoder_blocks(self.model)
        silent = HiddenStateNoise(self.model, 0.0, 1, attach=False)
        handles = [
            blocks[i].register_forward_hook(lambda m, a, o, i=i: self._add(i, m, a, o))
            for i in self.blocks
        ]
        try:
            with silent.activated(), torch.no_grad(), warnings.catch_warnings(), \
                    torch.autocast("cpu", enabled=False):  # a float32 graph, whatever the caller
                warnings.simplefilter("ignore")  # tracer and deprecation chatter
                yield
        finally:
            for handle in handles:
                handle.remove()

    def example(self) -> tuple[torch.Tensor, ...]:
        """Two rows of 8 tokens, the second padded: an input that traces the general case."""
        vocab = int(getattr(self.model.config, "vocab_size", 100))
        ids = (torch.arange(16).view(2, 8) * 7 + 5) % max(vocab - 1, 1) + 1
        mask = torch.ones(2, 8, dtype=torch.long)
        mask[1, 5:] = 0
        token = {"input_ids": ids, "attention_mask": mask}
        tensors = [token.get(name, torch.zeros(2, 8, dtype=torch.long)) for name in self.names]
        width = hidden_size(self.model)
        return (*tensors, *(torch.zeros(2, 8, width) for _ in self.blocks))

    def input_names(self) -> list[str]:
        return [*self.names, *(f"noise_{i}" for i in self.blocks)]


def export_openvino(wrapper: NoiseInputs, directory: Path) -> Path:
    """Convert to an OpenVINO IR (``model.xml`` + ``model.bin``) in ``directory``."""
    import openvino as ov

    with wrapper.tracing():
        graph = ov.convert_model(wrapper, example_input=wrapper.example())
    path = directory / ENGINE_IR_FILE
    ov.save_model(graph, str(path), compress_to_fp16=False)
    return path


def export_onnx(wrapper: NoiseInputs, directory: Path, *, int8: bool = False) -> Path:
    """Export to ONNX (``model.onnx``, opset :data:`OPSET`); int8: dynamic weight quantization."""
    path = directory / ENGINE_ONNX_FILE
    names = wrapper.input_names()
    axes = {name: {0: "rows", 1: "tokens"} for name in names}
    target = directory / ("float32-" + ENGINE_ONNX_FILE) if int8 else path
    with wrapper.tracing():
        torch.onnx.export(
            wrapper, wrapper.example(), str(target), input_names=names, output_names=["logits"],
            dynamic_axes=axes, opset_version=OPSET, dynamo=False,
        )
    if int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(target), str(path), weight_type=QuantType.QInt8)
        target.unlink()
    return path
