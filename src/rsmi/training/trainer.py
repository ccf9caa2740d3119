"""`train`: fine-tune a classifier with ``base``, ``rsmi`` or ``freelb`` and save an RSMI model.

The loop runs under ``accelerate.Accelerator``: the same code trains on one CPU without any
accelerate configuration and on several GPUs/nodes under ``accelerate launch`` (DDP), with
optional mixed precision. Each epoch: seeded length-grouped batches with dynamic padding,
AdamW with linear warm-up/decay and gradient clipping, gradient accumulation, then a dev
evaluation (the two-step predictor ``clf.predict`` for ``rsmi``, one deterministic pass for
``base``/``freelb``). The best epoch's model is saved in the output directory with
``RSMIClassifier.save_pretrained``; checkpoints make a killed run resumable bit for bit.

This module owns the output directory (claim, used / finished, resume identity); the loop is
:class:`rsmi.training.run.TrainingRun`.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from rsmi.classifier import RSMIClassifier
from rsmi.errors import ResumeError, RunDirError
from rsmi.precision import accelerate_mixed_precision, resolve_dtype
from rsmi.runctl import check_resumable
from rsmi.rundir import claim_run
from rsmi.store.model_card import not_learned_warning, training_finished
from rsmi.store.names import (
    CHECKPOINT_DIR,
    HF_CONFIG_FILE,
    MODEL_CARD_FILE,
    TOKENIZER_FILES,
    TRAINING_LOG_FILE,
    WEIGHTS_FILE,
    WEIGHTS_INDEX_FILE,
)
from rsmi.training.build import build_classifier, reset_accelerate_precision
from rsmi.training.checkpoint import checkpoint_path
from rsmi.training.config import CONFIG_FILE, TrainConfig, saved_dtype
from rsmi.training.data import (
    DEV_FRACTION,
    data_digest,
    load_training_data,
    select_examples,
    train_dev_examples,
)
from rsmi.training.learning import LEARNING_P_VALUE, learning_check
from rsmi.training.run import StepInfo, TrainingInterrupted, TrainingRun, evaluate_dev

__all__ = [
    "DEV_FRACTION", "LEARNING_P_VALUE", "LOG_FILE", "RESUMABLE_CHANGES", "TRAINING_RUN_EVIDENCE", "TRAINING_RUN_FILES",
    "StepInfo", "TrainingInterrupted", "TrainingRun", "build_classifier", "check_resume_settings",
    "data_digest", "evaluate_dev", "learning_check", "load_training_data", "not_learned_warning",
    "select_examples", "train", "train_dev_examples",
]

logger = logging.getLogger(__name__)

LOG_FILE = TRAINING_LOG_FILE  # the name other modules import from here

# Files a training run writes (a run directory from before run markers is adopted when it
# holds only these and one of the run's own files).
TRAINING_RUN_FILES = (
    MODEL_CARD_FILE, LOG_FILE, CONFIG_FILE, CHECKPOINT_DIR, HF_CONFIG_FILE, WEIGHTS_FILE,
    WEIGHTS_INDEX_FILE, *TOKENIZER_FILES,
)
TRAINING_RUN_EVIDENCE = (LOG_FILE, CONFIG_FILE, CHECKPOINT_DIR)
# Settings that do not change what is trained: a resumed run may change these.
RESUMABLE_CHANGES = ("out", "checkpoint_every", "keep_checkpoint", "eval_batch_size")
# Checked on its resolved value by _check_resume_dtype ("auto" and "bfloat16" may be the same).
_CHECKED_APART = ("dtype",)
# Resolved values (training_config.json's "resolved") a resumed run must share.
_RESOLVED_IDENTITY = ("lr", "num_train_examples", "num_dev_examples", "data_sha256", "num_processes")
_RESUME_ADVICE = (
    "a resumed run continues with the settings and data it was started with: repeat the original "
    "command with --resume, or train in a new --out"
)


def train(
    config: TrainConfig,
    dataset: Any | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    classifier: RSMIClassifier | None = None,
    progress: bool = False,
    stop: threading.Event | None = None,
    on_step: Callable[[StepInfo], None] | None = None,
) -> Path:
    """Train with ``config.method`` and write an RSMI model directory to ``config.out``.

    Args:
        config: every setting of the run (saved as ``training_config.json``).
        dataset: an already loaded ``rsmi.data.TextDataset``; default: ``load_dataset(config.data)``.
        resume: continue from ``<out>/checkpoint`` (same result as an uninterrupted run).
        overwrite: allow an output directory that already holds a run (without ``resume``).
        classifier: start from this classifier instead of loading ``config.model``.
        progress: show a progress bar (loss, examples/s) on the main process.
        stop: set this event to stop after the next optimizer step with a checkpoint
            (SIGTERM/SIGINT set it too); :class:`TrainingInterrupted` is raised then.
        on_step: called after every optimizer step.

    Returns:
        The output directory; ``RSMIClassifier.from_pretrained(out)`` loads the best epoch.
    """
    from accelerate import Accelerator

    out = Path(config.out)
    dtype = resolve_dtype(config.dtype, "cuda" if torch.cuda.is_available() else "cpu")
    if resume:
        _check_resume_dtype(out, dtype)
    mixed_precision = accelerate_mixed_precision(dtype)
    reset_accelerate_precision(mixed_precision)
    accelerator = Accelerator(mixed_precision=mixed_precision, gradient_accumulation_steps=config.grad_accum)
    with claim_run(out, "train", overwrite=overwrite, legacy=TRAINING_RUN_FILES,
                   evidence=TRAINING_RUN_EVIDENCE, enabled=accelerator.is_main_process):
        resuming = _prepare_out(out, resume, overwrite)
        _clear_out(out, accelerator, overwrite and not resuming)
        run = TrainingRun(config, accelerator, dtype=dtype, progress=progress, stop=stop)
        if on_step is not None:
            run.add_callback("on_step", on_step)
        run.setup(dataset, classifier)
        if resuming:
            check_resume_settings(out, config, run.resolved)
            run.resume()
        run.record_start(resumed=resuming)
        run.fit()
    return out


def _prepare_out(out: Path, resume: bool, overwrite: bool) -> bool:
    """Check the output directory; return whether a checkpoint is to be resumed."""
    has_checkpoint = checkpoint_path(out).exists()
    if resume:
        if has_checkpoint:
            return True
        if training_finished(out):
            raise ResumeError(f"the run in {out} has already finished: nothing to resume")
        logger.info("no checkpoint in %s: starting from the beginning", out)
        return False
    used = out.exists() and any(
        (out / name).exists() for name in (MODEL_CARD_FILE, LOG_FILE, CHECKPOINT_DIR, CONFIG_FILE)
    )
    if used and not overwrite:
        raise RunDirError(
            f"output directory {out} already holds a run: continue it with --resume, or choose "
            "another --out (or --overwrite to start again)"
        )
    return False


def _clear_out(out: Path, accelerator: Any, clear: bool) -> None:
    """Create the output directory; with ``clear`` (overwrite), drop the old log and checkpoints."""
    if accelerator.is_main_process:
        if clear:
            for name in (LOG_FILE, CHECKPOINT_DIR, CHECKPOINT_DIR + ".tmp"):
                path = out / name
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        out.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()


def _check_resume_dtype(out: Path, dtype: str) -> None:
    """A run is resumed in the precision it started in (the finished part was computed so)."""
    path = out / CONFIG_FILE
    if not path.exists():
        return
    saved = json.loads(path.read_text(encoding="utf-8"))
    before = saved_dtype(saved)
    if before != dtype:
        raise ResumeError(
            f"the run in {out} was trained with dtype={before}; resuming it with dtype={dtype} "
            f"would mix precisions: resume with --dtype {before}, or start a new run"
        )


def check_resume_settings(out: Path, config: TrainConfig, resolved: dict[str, Any]) -> None:
    """A resumed run must continue with the settings (and data) that shaped the finished part.

    Every setting but :data:`RESUMABLE_CHANGES` (and ``dtype``, checked on its resolved value)
    and the resolved values of :data:`_RESOLVED_IDENTITY` (``resolved lr`` ...) are compared
    by :func:`rsmi.runctl.check_resumable`; a key the saved run lacks is not compared.
    """
    path = out / CONFIG_FILE
    if not path.exists():
        return
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResumeError(f"{path} cannot be read ({exc}): cannot check what the run was; train "
                          "again without --resume in a new --out") from exc
    settings = {k: v for k, v in config.to_dict().items() if k not in RESUMABLE_CHANGES + _CHECKED_APART}
    before = saved.get("resolved", {})
    check_resumable(
        str(out),
        {**saved, **{f"resolved {k}": before[k] for k in _RESOLVED_IDENTITY if k in before}},
        {**settings, **{f"resolved {k}": resolved.get(k) for k in _RESOLVED_IDENTITY}},
        advice=_RESUME_ADVICE,
    )
