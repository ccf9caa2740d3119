"""The exported graphs on disk: ``$RSMI_HOME/engine/<key>/``, one per weights and setting.

The key is a sha256 over what the graph is made from: the weights (:func:`rsmi.integrity.
state_digest`, the tensors in memory, so a changed model is exported again whatever its path),
the model's config (architecture), the engine, its precision, the ONNX opset, the token inputs,
the noised blocks and the versions of torch and the engine's package. A directory is exported
into a temporary directory beside it and published whole (:func:`rsmi.store.atomic.
publish_directory`), under a file lock so two processes do not export the same graph at once;
``engine.json`` records the key's fields. Loading a graph executes no code (an OpenVINO IR or an
ONNX file is data, read by its runtime).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rsmi.engine.export import OPSET, NoiseInputs, export_onnx, export_openvino
from rsmi.home import rsmi_home
from rsmi.integrity import state_digest
from rsmi.store.atomic import atomic_write_json, publish_directory
from rsmi.store.names import ENGINE_IR_FILE, ENGINE_META_FILE, ENGINE_ONNX_FILE

CACHE_FORMAT = 1


def cache_root() -> Path:
    """Where exported graphs live: ``$RSMI_HOME/engine`` (created)."""
    root = rsmi_home() / "engine"
    root.mkdir(parents=True, exist_ok=True)
    return root


def package_version(engine: str) -> str:
    """The version of the runtime an engine exports for (part of the key)."""
    if engine == "openvino":
        import openvino

        return str(openvino.__version__)
    import onnxruntime

    return str(onnxruntime.__version__)


def key_fields(
    model: nn.Module, engine: str, precision: str, names: Sequence[str], blocks: Sequence[int]
) -> dict[str, Any]:
    """What the exported graph depends on (the cache key is their digest)."""
    config = {k: v for k, v in model.config.to_dict().items() if k != "_name_or_path"}
    return {
        "format": CACHE_FORMAT,
        "weights_sha256": state_digest(model),
        "config_sha256": _digest(config),
        "engine": engine,
        "precision": precision,
        "opset": OPSET,
        "inputs": list(names),
        "noised_blocks": list(blocks),
        "torch": torch.__version__,
        "runtime": package_version(engine),
    }


def graph_path(directory: Path, engine: str) -> Path:
    return directory / (ENGINE_IR_FILE if engine == "openvino" else ENGINE_ONNX_FILE)


def exported(
    model: nn.Module, engine: str, precision: str, names: Sequence[str], blocks: Sequence[int]
) -> Path:
    """The graph file for this model and setting, exported now if the cache has none."""
    from filelock import FileLock

    fields = key_fields(model, engine, precision, names, blocks)
    key = _digest(fields)[:32]
    root = cache_root()
    final = root / key
    if (final / ENGINE_META_FILE).is_file():
        return graph_path(final, engine)
    with FileLock(str(root / f"{key}.lock")):
        if (final / ENGINE_META_FILE).is_file():  # another process exported it meanwhile
            return graph_path(final, engine)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=root))
        try:
            wrapper = NoiseInputs(model, names, blocks)
            if engine == "openvino":
                export_openvino(wrapper, tmp)
            else:
                export_onnx(wrapper, tmp, int8=precision == "int8")
            atomic_write_json(tmp / ENGINE_META_FILE, fields)
            publish_directory(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return graph_path(final, engine)


def _digest(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
