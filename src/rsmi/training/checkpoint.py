"""Training checkpoints: everything needed to continue a run bit for bit.

A checkpoint is a directory ``<out>/checkpoint`` with

* ``model.safetensors``: the model weights;
* ``optimizer.pt``, ``scheduler.pt`` (and ``scaler.pt`` for fp16): ``torch.save`` of state
  dicts made of tensors and numbers only, read back with ``torch.load(weights_only=True)``
  (nothing is unpickled);
* ``rng_<process>.pt``: the torch CPU/CUDA RNG states (dropout), the RSMI noise generator and
  the FreeLB generator of each process;
* ``state.json``: epoch, batches done in it, optimizer steps, best dev accuracy, history.

The directory is written as ``checkpoint.tmp`` and renamed (a directory rename), so a kill while
saving leaves the previous checkpoint intact; ``state.json`` itself is written with
:func:`rsmi.store.atomic.atomic_write_json`. File names: :mod:`rsmi.store.names`.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from rsmi.errors import ResumeError
from rsmi.store.atomic import atomic_write_json, publish_directory
from rsmi.store.names import CHECKPOINT_DIR, CHECKPOINT_STATE_FILE, WEIGHTS_FILE

__all__ = ["CHECKPOINT_DIR", "TrainState", "checkpoint_path", "load_checkpoint", "save_checkpoint"]

# Names of the checkpoint's own files (inside CHECKPOINT_DIR only).
_OPTIMIZER = "optimizer.pt"
_SCHEDULER = "scheduler.pt"
_SCALER = "scaler.pt"


def _rng_file(process: int) -> str:
    return f"rng_{process}.pt"


@dataclass
class TrainState:
    """Where a run stands.

    Attributes:
        epoch: the epoch in progress (0-based).
        batches_done: batches of this epoch already trained on, over all processes.
        global_step: optimizer steps so far.
        best_dev_accuracy: best dev accuracy so far (-1 before the first evaluation).
        best_epoch: epoch of that accuracy (-1 before).
        epoch_loss_sum, epoch_loss_count: running training loss of the epoch in progress.
        epoch_seconds: training seconds spent on the epoch in progress (before a resume).
        history: one record per finished epoch.
    """

    epoch: int = 0
    batches_done: int = 0
    global_step: int = 0
    best_dev_accuracy: float = -1.0
    best_epoch: int = -1
    epoch_loss_sum: float = 0.0
    epoch_loss_count: int = 0
    epoch_seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)


def checkpoint_path(out: Path) -> Path:
    return Path(out) / CHECKPOINT_DIR


def rng_states(generators: dict[str, torch.Generator]) -> dict[str, torch.Tensor]:
    """The RNG states of this process: torch CPU, every CUDA device, and the named generators."""
    states = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            states[f"torch_cuda_{i}"] = state
    for name, gen in generators.items():
        states[f"generator_{name}"] = gen.get_state()
    return states


def set_rng_states(states: dict[str, torch.Tensor], generators: dict[str, torch.Generator]) -> None:
    torch.set_rng_state(states["torch_cpu"])
    if torch.cuda.is_available():
        cuda = [states[k] for k in sorted(states) if k.startswith("torch_cuda_")]
        if cuda:
            torch.cuda.set_rng_state_all(cuda)
    for name, gen in generators.items():
        key = f"generator_{name}"
        if key not in states:
            raise ResumeError(f"the checkpoint has no state for the {name} generator: it is from another "
                              "run; remove it (or the whole output directory) and train again without --resume")
        gen.set_state(states[key])


def save_checkpoint(
    out: Path,
    accelerator: Any,
    model: nn.Module,
    optimizer: Any,
    scheduler: Any,
    state: TrainState,
    generators: dict[str, torch.Generator],
) -> Path:
    """Write a checkpoint of the run (all processes must call this together)."""
    final = checkpoint_path(out)
    tmp = final.with_name(CHECKPOINT_DIR + ".tmp")
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    torch.save(rng_states(generators), tmp / _rng_file(accelerator.process_index))
    if accelerator.is_main_process:
        weights = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
        save_file(weights, str(tmp / WEIGHTS_FILE))
        torch.save(optimizer.state_dict(), tmp / _OPTIMIZER)
        torch.save(scheduler.state_dict(), tmp / _SCHEDULER)
        scaler = getattr(accelerator, "scaler", None)
        if scaler is not None:
            torch.save(scaler.state_dict(), tmp / _SCALER)
        meta = {**asdict(state), "num_processes": accelerator.num_processes}
        atomic_write_json(tmp / CHECKPOINT_STATE_FILE, meta)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        publish_directory(tmp, final)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(
    out: Path,
    accelerator: Any,
    model: nn.Module,
    optimizer: Any,
    scheduler: Any,
    generators: dict[str, torch.Generator],
) -> TrainState:
    """Restore weights, optimizer, scheduler and RNG states; return where the run stood."""
    path = checkpoint_path(out)
    try:
        meta = json.loads((path / CHECKPOINT_STATE_FILE).read_text(encoding="utf-8"))
        processes = int(meta.pop("num_processes", 1))
        if processes != accelerator.num_processes:
            raise ResumeError(
                f"the checkpoint in {path} was written by {processes} processes but this run has "
                f"{accelerator.num_processes}: resume with the same number of processes"
            )
        model.load_state_dict(load_file(str(path / WEIGHTS_FILE)))
        optimizer.load_state_dict(torch.load(path / _OPTIMIZER, weights_only=True))
        scheduler.load_state_dict(torch.load(path / _SCHEDULER, weights_only=True))
        scaler = getattr(accelerator, "scaler", None)
        if scaler is not None and (path / _SCALER).exists():
            scaler.load_state_dict(torch.load(path / _SCALER, weights_only=True))
        rng = torch.load(path / _rng_file(accelerator.process_index), weights_only=True)
    except (OSError, KeyError, json.JSONDecodeError, RuntimeError) as exc:
        raise ResumeError(
            f"cannot resume from the checkpoint in {path}: {exc}. Remove it (or the whole output "
            "directory) and train again without --resume"
        ) from exc
    set_rng_states(rng, generators)
    return TrainState(**meta)
