"""Training checkpoints: everything needed to continue a run bit for bit.

A checkpoint is a directory ``<out>/checkpoint`` with

* ``model.safetensors``: the model weights;
* ``optimizer.pt``, ``scheduler.pt`` (and ``scaler.pt`` for fp16): ``torch.save`` of state
  dicts made of tensors and numbers only, read back with ``torch.load(weights_only=True)``
  (nothing is unpickled);
* ``rng_<process>.pt``: the torch CPU/CUDA RNG states (dropout), the RSMI noise generator and
  the FreeLB generator of each process;
* ``state.json``: epoch, batches done in it, optimizer steps, best dev accuracy, history.

It is written to ``checkpoint.tmp`` and renamed, so a kill while saving leaves the previous
checkpoint intact.
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

CHECKPOINT_DIR = "checkpoint"


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
            raise ValueError(f"the checkpoint has no state for the {name} generator: it is from another run")
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
    torch.save(rng_states(generators), tmp / f"rng_{accelerator.process_index}.pt")
    if accelerator.is_main_process:
        weights = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
        save_file(weights, str(tmp / "model.safetensors"))
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        scaler = getattr(accelerator, "scaler", None)
        if scaler is not None:
            torch.save(scaler.state_dict(), tmp / "scaler.pt")
        meta = {**asdict(state), "num_processes": accelerator.num_processes}
        (tmp / "state.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        old = final.with_name(CHECKPOINT_DIR + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
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
        meta = json.loads((path / "state.json").read_text(encoding="utf-8"))
        processes = int(meta.pop("num_processes", 1))
        if processes != accelerator.num_processes:
            raise ValueError(
                f"the checkpoint in {path} was written by {processes} processes but this run has "
                f"{accelerator.num_processes}: resume with the same number of processes"
            )
        model.load_state_dict(load_file(str(path / "model.safetensors")))
        optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=True))
        scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=True))
        scaler = getattr(accelerator, "scaler", None)
        if scaler is not None and (path / "scaler.pt").exists():
            scaler.load_state_dict(torch.load(path / "scaler.pt", weights_only=True))
        rng = torch.load(path / f"rng_{accelerator.process_index}.pt", weights_only=True)
    except (OSError, KeyError, json.JSONDecodeError, RuntimeError) as exc:
        raise ValueError(
            f"cannot resume from the checkpoint in {path}: {exc}. Remove it (or the whole output "
            "directory) and train again without --resume"
        ) from exc
    set_rng_states(rng, generators)
    return TrainState(**meta)
