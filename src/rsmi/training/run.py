"""`TrainingRun`: one training run with its loop state on ``self`` (minGPT's ``Trainer`` shape).

:func:`rsmi.training.train` checks the output directory and drives a run:

1. :meth:`TrainingRun.setup` — data, classifier, batches, optimiser, schedule, generators (the
   global RNG is drawn from in a fixed order, so the same seeds give the same weights);
2. :meth:`TrainingRun.resume` — weights, optimiser, schedule and RNG states from a checkpoint;
3. :meth:`TrainingRun.record_start` — ``log.jsonl``'s start line and ``training_config.json``;
4. :meth:`TrainingRun.fit` — the epochs: :meth:`train_epoch`, then :meth:`end_epoch` (dev
   evaluation, the best model saved, a log line), then :meth:`next_epoch` (checkpoint), and
   finally :meth:`finish` (the learning check and the last log line).

Callbacks by event name (:meth:`TrainingRun.add_callback`): ``"on_step"`` gets a
:class:`StepInfo` after every optimizer step; ``"on_epoch_end"`` gets the run after the dev
evaluation of epoch ``run.state.epoch`` (before its checkpoint). Setting ``run.stop`` (or
SIGTERM/SIGINT) stops at the next optimizer step with a checkpoint
(:class:`TrainingInterrupted`); a second signal stops at once.
"""

from __future__ import annotations

import logging
import math
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from rsmi.classifier import RSMIClassifier
from rsmi.data.options import recorded_options
from rsmi.errors import ConfigError
from rsmi.runctl import stop_on_signals
from rsmi.store.atomic import JsonlWriter
from rsmi.store.model_card import not_learned_warning
from rsmi.store.names import TRAINING_LOG_FILE
from rsmi.training.batching import Collator, LengthGroupedBatches, encode
from rsmi.training.build import (
    build_classifier,
    configure_for_training,
    linear_schedule,
    make_optimizer,
)
from rsmi.training.checkpoint import TrainState, checkpoint_path, load_checkpoint, save_checkpoint
from rsmi.training.config import TrainConfig
from rsmi.training.data import data_digest, data_options, load_training_data, train_dev_examples
from rsmi.training.learning import learning_check
from rsmi.training.steps import STEPS, StepContext

logger = logging.getLogger(__name__)

EVENTS = ("on_step", "on_epoch_end")
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class TrainingInterrupted(Exception):
    """The run was stopped (SIGTERM/SIGINT or a stop request) after saving a checkpoint."""

    def __init__(self, out: Path, state: TrainState) -> None:
        super().__init__(
            f"training stopped at epoch {state.epoch + 1}, batch {state.batches_done}; a checkpoint "
            f"is in {checkpoint_path(out)}: continue with the same command and --resume"
        )
        self.out = out
        self.state = state


@dataclass
class StepInfo:
    """Passed to the ``on_step`` callbacks after every optimizer step."""

    epoch: int
    global_step: int
    batches_done: int
    loss: float


def evaluate_dev(clf: RSMIClassifier, texts: list[str], labels: np.ndarray, config: TrainConfig) -> float:
    """Dev accuracy: the two-step predictor for rsmi, one deterministic pass otherwise."""
    pred = clf.predict(texts, seed=config.seed, batch_size=config.eval_batch_size)
    return float(np.mean(pred.labels == labels))


MIN_OPTIMISER_STEPS = 50
"""Fewer optimiser steps than this in a whole run rarely move a pretrained encoder off its
majority-class answer (on ~240 rows the defaults give 8): :func:`small_run_warning`."""


def small_run_warning(num_examples: int, config: TrainConfig, total_steps: int) -> str | None:
    """A warning, before training, when the run is too short to learn (else None)."""
    if total_steps >= MIN_OPTIMISER_STEPS:
        return None
    per_epoch = max(1, total_steps // max(config.epochs, 1))
    epochs = math.ceil(MIN_OPTIMISER_STEPS / per_epoch)
    accum = f" × {config.grad_accum} accumulated" if config.grad_accum > 1 else ""
    small_batch = min(8, config.batch_size)
    per_small = math.ceil(num_examples / (small_batch * config.grad_accum))
    return (
        f"{num_examples} training examples in batches of {config.batch_size}{accum} for "
        f"{config.epochs} epoch(s) give only {total_steps} optimiser steps (fewer than "
        f"{MIN_OPTIMISER_STEPS}): the model will likely not learn. Raise --epochs to "
        f"{epochs} or more, lower --batch-size (--batch-size {small_batch} gives {per_small} "
        "steps per epoch), or train on more data"
    )


def append_log(out: Path, record: dict[str, Any]) -> None:
    """One line of ``log.jsonl`` (durable: flushed and fsynced)."""
    with JsonlWriter(Path(out) / TRAINING_LOG_FILE) as log:
        log.write(record)


class TrainingRun:
    """One training run of ``config`` under ``accelerator``; see the module docstring.

    Attributes (after :meth:`setup`): ``clf`` (the classifier), ``model`` (as prepared by
    accelerate), ``unwrapped``, ``optimizer``, ``scheduler``, ``loader``, ``batches``,
    ``generators`` (``noise``, ``freelb``), ``resolved`` (values recorded in
    ``training_config.json``: lr, data digest, ...), ``state`` (:class:`TrainState`).
    """

    def __init__(
        self, config: TrainConfig, accelerator: Any, *, dtype: str, progress: bool = False,
        stop: threading.Event | None = None,
    ) -> None:
        self.config = config
        self.accelerator = accelerator
        self.out = Path(config.out)
        self.dtype = dtype
        self.progress = progress
        self.stop = stop if stop is not None else threading.Event()
        self.state = TrainState()
        self.callbacks: dict[str, list[Callable[[Any], None]]] = {event: [] for event in EVENTS}

    # ------------------------------------------------------------------ callbacks
    def add_callback(self, event: str, callback: Callable[[Any], None]) -> None:
        """Call ``callback`` on ``event`` (``"on_step"``: a StepInfo; ``"on_epoch_end"``: the run)."""
        if event not in self.callbacks:
            raise ConfigError(f"unknown training event {event!r}: choose one of {', '.join(EVENTS)}")
        self.callbacks[event].append(callback)

    def trigger(self, event: str, payload: Any) -> None:
        for callback in self.callbacks[event]:
            callback(payload)

    # ------------------------------------------------------------------ setup
    def setup(self, dataset: Any | None = None, classifier: RSMIClassifier | None = None) -> None:
        """Build everything the loop needs (``dataset`` default: ``config.data``)."""
        from accelerate.utils import set_seed

        config = self.config
        set_seed(config.seed)
        data = dataset if dataset is not None else load_training_data(config)
        train_examples, dev_examples, dev_source = train_dev_examples(data, config)
        if classifier is None:
            classifier = build_classifier(config, list(data.label_names))
        self.clf = configure_for_training(classifier, config, self.accelerator.device, self.dtype)
        hidden = int(getattr(self.clf.model.config, "hidden_size", 768))
        self.lr = config.resolved_lr(hidden)
        loader = self._build_loader(train_examples)
        total_steps = self._build_optimisation(loader)
        self._build_generators()
        self.resolved = {
            "lr": self.lr, "hidden_size": hidden, "num_train_examples": len(train_examples),
            "num_dev_examples": len(dev_examples), "dev_source": dev_source,
            "data_sha256": data_digest(train_examples + dev_examples),
            "num_processes": self.accelerator.num_processes, "total_steps": total_steps,
        }
        self.dev_texts = [e.text for e in dev_examples]
        self.dev_labels = np.array([e.label for e in dev_examples])
        self.meta = {"data": getattr(data, "name", config.data), "seed": config.seed, "lr": self.lr,
                     "data_options": recorded_options(data, data_options(config))}
        warning = small_run_warning(len(train_examples), config, total_steps)
        if warning and self.accelerator.is_main_process:
            logger.warning("%s", warning)
        self.ctx = StepContext(
            model=self.model, unwrapped=self.unwrapped, accelerator=self.accelerator, config=config,
            special_ids=self.clf.special_ids, mask_token_id=self.clf.tokenizer.mask_token_id,
            generator=self.generators["freelb"],
        )
        self.step_fn = STEPS[config.method]

    def _build_loader(self, examples: list[Any]) -> DataLoader:
        config, tokenizer = self.config, self.clf.tokenizer
        encoded = encode(tokenizer, [e.text for e in examples], [e.label for e in examples], config.max_length)
        self.batches = LengthGroupedBatches([len(e["input_ids"]) for e in encoded], config.batch_size, config.seed)
        # Own generator: iterating a DataLoader otherwise draws from the global RNG (which
        # drives dropout), and a resumed run would then draw at another point of the stream.
        return DataLoader(encoded, batch_sampler=self.batches, collate_fn=Collator(tokenizer),
                          generator=torch.Generator().manual_seed(config.seed))

    def _build_optimisation(self, loader: DataLoader) -> int:
        """Optimiser, schedule and the accelerate-prepared model; returns the total steps."""
        config, accelerator = self.config, self.accelerator
        per_process = math.ceil(self.batches.num_batches() / accelerator.num_processes)
        steps_per_epoch = math.ceil(per_process / config.grad_accum)
        total_steps = steps_per_epoch * config.epochs
        optimizer = make_optimizer(self.clf.model, self.lr, config.weight_decay)
        self.scheduler = linear_schedule(optimizer, int(config.warmup_ratio * total_steps), total_steps)
        self.model, self.optimizer, self.loader = accelerator.prepare(self.clf.model, optimizer, loader)
        self.unwrapped = accelerator.unwrap_model(self.model)
        return total_steps

    def _build_generators(self) -> None:
        """One RSMI-noise and one FreeLB generator per process, seeded by the run and the rank."""
        device = self.accelerator.device
        rank_seed = self.config.seed * 1000 + self.accelerator.process_index
        self.generators = {
            "noise": torch.Generator(device=device).manual_seed(rank_seed),
            "freelb": torch.Generator(device=device).manual_seed(rank_seed + 500),
        }
        assert self.clf.noise is not None
        self.clf.noise.generator = self.generators["noise"]

    # ------------------------------------------------------------------ checkpoints
    def resume(self) -> None:
        """Continue from the checkpoint in the output directory (same result as no stop)."""
        self.state = load_checkpoint(self.out, self.accelerator, self.unwrapped, self.optimizer,
                                     self.scheduler, self.generators)
        logger.info("resuming %s at epoch %d, batch %d", self.out, self.state.epoch + 1,
                    self.state.batches_done)

    def save_checkpoint(self) -> Path:
        """Write the checkpoint (all processes together)."""
        return save_checkpoint(self.out, self.accelerator, self.unwrapped, self.optimizer,
                               self.scheduler, self.state, self.generators)

    def record_start(self, resumed: bool) -> None:
        """The start line of ``log.jsonl`` and ``training_config.json`` (main process)."""
        if not self.accelerator.is_main_process:
            return
        from rsmi.provenance import provenance

        origin = provenance(dtype=self.dtype)
        append_log(self.out, {"event": "start", "resumed": resumed, "provenance": origin})
        self.config.save(self.out, provenance=origin, dtype=self.dtype, **self.resolved)

    # ------------------------------------------------------------------ the loop
    def fit(self) -> None:
        """Train the remaining epochs, then :meth:`finish`."""
        what = "saving a checkpoint at the next optimizer step, then stopping"
        # The loop calls the model directly: the view's noise (and its seeded generator) runs.
        with stop_on_signals(self.stop, STOP_SIGNALS, what=what), self.clf.activated():
            while self.state.epoch < self.config.epochs:
                self.train_epoch()
                self.end_epoch()
                self.trigger("on_epoch_end", self)
                self.next_epoch()
        self.finish()

    def train_epoch(self) -> None:
        """Train on the rest of epoch ``state.epoch`` (from batch ``state.batches_done``)."""
        accelerator, state = self.accelerator, self.state
        self.batches.start_epoch(state.epoch, skip=state.batches_done)
        bar = self._progress_bar()
        start = time.perf_counter()
        seconds_before = state.epoch_seconds
        examples = 0
        saving = 0.0  # seconds spent writing checkpoints: not training time
        try:
            for batch in self.loader:
                loss = self._micro_step(batch)
                examples += int(batch["labels"].shape[0]) * accelerator.num_processes
                state.batches_done += accelerator.num_processes
                state.epoch_loss_sum += loss
                state.epoch_loss_count += 1
                elapsed = time.perf_counter() - start - saving
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{state.epoch_loss_sum / state.epoch_loss_count:.4f}",
                                    ex_per_s=f"{examples / max(elapsed, 1e-9):.1f}")
                if not accelerator.sync_gradients:
                    continue
                state.global_step += 1
                state.epoch_seconds = seconds_before + elapsed
                saving += self._after_optimizer_step(loss)
        finally:
            if bar is not None:
                bar.close()
        state.epoch_seconds = seconds_before + (time.perf_counter() - start - saving)

    def _micro_step(self, batch: dict[str, torch.Tensor]) -> float:
        """Forward, backward and (on the last micro-batch of a step) the optimizer step."""
        accelerator, config = self.accelerator, self.config
        with accelerator.accumulate(self.model):
            loss = self.step_fn(self.ctx, batch)
            if accelerator.sync_gradients and config.max_grad_norm > 0:
                accelerator.clip_grad_norm_(self.model.parameters(), config.max_grad_norm)
            self.optimizer.step()
            if accelerator.sync_gradients and not accelerator.optimizer_step_was_skipped:
                self.scheduler.step()
            self.optimizer.zero_grad()
        return loss

    def _after_optimizer_step(self, loss: float) -> float:
        """Callbacks, a requested stop, periodic checkpoints; returns seconds spent saving."""
        state = self.state
        self.trigger("on_step", StepInfo(state.epoch, state.global_step, state.batches_done, loss))
        requested = _any_process(self.accelerator, self.stop.is_set())
        last_batch = state.batches_done >= self.batches.num_batches()
        if requested and not last_batch:
            self.save_checkpoint()
            raise TrainingInterrupted(self.out, state)
        every = self.config.checkpoint_every
        if every and state.global_step % every == 0 and not last_batch:
            began = time.perf_counter()
            self.save_checkpoint()
            return time.perf_counter() - began
        return 0.0

    def _progress_bar(self) -> Any:
        if not (self.progress and self.accelerator.is_local_main_process):
            return None
        from tqdm.auto import tqdm

        total = math.ceil(self.batches.num_batches() / self.accelerator.num_processes)
        done = self.state.batches_done // self.accelerator.num_processes
        return tqdm(total=total, initial=done, unit="batch", dynamic_ncols=True,
                    desc=f"{self.config.method} epoch {self.state.epoch + 1}/{self.config.epochs}")

    def end_epoch(self) -> None:
        """Dev evaluation (main process), keep the best model, append to ``log.jsonl``."""
        self.accelerator.wait_for_everyone()
        if self.accelerator.is_main_process:
            self._evaluate_epoch()
        self.clf.model.train()
        self.accelerator.wait_for_everyone()

    def _evaluate_epoch(self) -> None:
        config, state = self.config, self.state
        start = time.perf_counter()
        accuracy = evaluate_dev(self.clf, self.dev_texts, self.dev_labels, config)
        dev_seconds = time.perf_counter() - start
        if config.select_epoch is None:
            improved = accuracy > state.best_dev_accuracy
        else:  # the epoch named by the user (regenerating an earlier run's selection)
            improved = state.epoch + 1 == config.select_epoch
        if improved:
            state.best_dev_accuracy, state.best_epoch = accuracy, state.epoch
            training = {**self.meta, "method": config.method, "epoch": state.epoch + 1,
                        "dev_accuracy": accuracy,
                        "learning_check": learning_check(accuracy, self.dev_labels)}
            self.clf.metadata = {**self.clf.metadata, "training": training}
            self.clf.save_pretrained(self.out)
            from rsmi.reports.model_card import write_model_card

            write_model_card(self.out)  # README.md: the Hugging Face style card of the model
        record = {
            "event": "epoch", "epoch": state.epoch + 1, "method": config.method,
            "global_step": state.global_step,
            "train_loss": state.epoch_loss_sum / max(state.epoch_loss_count, 1),
            "train_seconds": state.epoch_seconds,
            "dev_accuracy": accuracy, "dev_seconds": dev_seconds, "best": improved,
            "lr": float(self.scheduler.get_last_lr()[0]),
        }
        state.history.append(record)
        append_log(self.out, record)
        logger.info("epoch %d: loss %.4f, dev accuracy %.4f%s", state.epoch + 1, record["train_loss"],
                    accuracy, " (best)" if improved else "")

    def next_epoch(self) -> None:
        """Move to the next epoch; checkpoint unless the run is over (or keep_checkpoint)."""
        state = self.state
        state.epoch += 1
        state.batches_done = 0
        state.epoch_loss_sum, state.epoch_loss_count, state.epoch_seconds = 0.0, 0, 0.0
        if state.epoch < self.config.epochs or self.config.keep_checkpoint:
            self.save_checkpoint()

    def finish(self) -> None:
        """The learning check and the last log line; the checkpoint goes unless kept."""
        accelerator, state = self.accelerator, self.state
        if accelerator.is_main_process:
            check = learning_check(state.best_dev_accuracy, self.dev_labels)
            if not check["learned"]:
                logger.warning("%s: %s", self.out, not_learned_warning(check))
            append_log(self.out, {"event": "finished", "best_epoch": state.best_epoch + 1,
                                  "best_dev_accuracy": state.best_dev_accuracy,
                                  "global_step": state.global_step, "learned": check["learned"],
                                  "learning_p_value": check["p_value"]})
            if not self.config.keep_checkpoint:
                shutil.rmtree(checkpoint_path(self.out), ignore_errors=True)
        accelerator.wait_for_everyone()
        accelerator.free_memory()


def _any_process(accelerator: Any, flag: bool) -> bool:
    """Whether ``flag`` is set on any process (all processes stop together)."""
    if accelerator.num_processes == 1:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=accelerator.device)
    return bool(accelerator.reduce(value, reduction="sum").item() > 0)
