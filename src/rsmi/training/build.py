"""What a training run is built from: the classifier, the optimiser and its schedule, accelerate.

Each builder draws from the global RNG (seeded by the run) in a fixed order; the run calls
them in that order so that the same seeds give the same weights.
"""

from __future__ import annotations

from typing import Any

import torch

from rsmi.classifier import RSMIClassifier
from rsmi.errors import ConfigError, DataError
from rsmi.training.config import TrainConfig


def build_classifier(config: TrainConfig, label_names: list[str]) -> RSMIClassifier:
    """The backbone with a fresh (seeded) head, configured for ``config.method``."""
    clf = RSMIClassifier.from_pretrained(
        config.model,
        num_labels=len(label_names),
        label_names=label_names,
        config=config.saved_config(),
    )
    if clf.num_labels != len(label_names):
        raise DataError(
            f"model {config.model!r} has {clf.num_labels} classes but the data has {len(label_names)}"
        )
    clf.method = config.method
    return clf


def configure_for_training(
    clf: RSMIClassifier, config: TrainConfig, device: Any, dtype: str
) -> RSMIClassifier:
    """The classifier as the run trains and evaluates it: a view (:meth:`RSMIClassifier.configured`)
    of ``clf``'s weights with ``config.method``, the saved RSMI settings and the training
    precision (for the dev evaluation), on the accelerator's device.

    ``clf``'s own settings are not changed (its weights, shared with the view, are trained). The
    loop calls the model directly, so it runs inside the view's :meth:`~RSMIClassifier.activated`.
    """
    clf.to(device)
    view = clf.configured(config.saved_config(), dtype=dtype)
    view.method = config.method
    return view


def make_optimizer(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW; biases and LayerNorm weights get no weight decay (standard BERT fine-tuning)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or "LayerNorm" in name or "layer_norm" in name else decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr)


def linear_schedule(
    optimizer: torch.optim.Optimizer, warmup: int, total: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over ``warmup`` steps, then linear decay to 0 at ``total``."""
    from transformers import get_linear_schedule_with_warmup

    return get_linear_schedule_with_warmup(optimizer, warmup, total)


def reset_accelerate_precision(mixed_precision: str) -> None:
    """Let one process train in several precisions one after the other (tests, sweeps).

    accelerate keeps its state in a process-wide singleton and refuses a second
    ``Accelerator`` with another ``mixed_precision``; in a single process nothing else holds
    that state, so it is reset. Under ``accelerate launch`` every process asks for the same.
    """
    from accelerate.state import AcceleratorState

    state = AcceleratorState._shared_state
    if state and state.get("_mixed_precision", mixed_precision) != mixed_precision:
        if int(state.get("num_processes", 1) or 1) > 1:
            raise ConfigError(
                f"this process already trains with mixed_precision={state.get('_mixed_precision')}"
                f" under several processes; start a new launch for dtype {mixed_precision}"
            )
        AcceleratorState._reset_state(reset_partial_state=False)
