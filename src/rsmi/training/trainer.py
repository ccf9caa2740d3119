"""`train`: fine-tune a classifier with ``base``, ``rsmi`` or ``freelb`` and save an RSMI model.

The loop runs under ``accelerate.Accelerator``: the same code trains on one CPU without any
accelerate configuration and on several GPUs/nodes under ``accelerate launch`` (DDP), with
optional mixed precision. Each epoch: seeded length-grouped batches with dynamic padding,
AdamW with linear warm-up/decay and gradient clipping, gradient accumulation, then a dev
evaluation (the two-step predictor ``clf.predict`` for ``rsmi``, one deterministic pass for
``base``/``freelb``). The best epoch's model is saved in the output directory with
``RSMIClassifier.save_pretrained``; checkpoints make a killed run resumable bit for bit.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from rsmi.classifier import RSMI_FILE, RSMIClassifier
from rsmi.precision import accelerate_mixed_precision, resolve_dtype
from rsmi.rundir import claim_run
from rsmi.training.batching import Collator, LengthGroupedBatches, encode
from rsmi.training.checkpoint import (
    TrainState,
    checkpoint_path,
    load_checkpoint,
    save_checkpoint,
)
from rsmi.training.config import CONFIG_FILE, TrainConfig, saved_dtype
from rsmi.training.steps import STEPS, StepContext

logger = logging.getLogger(__name__)

LOG_FILE = "log.jsonl"
DEV_FRACTION = 0.1  # share of train held out as dev when a dataset has no dev split
LEARNING_P_VALUE = 0.05  # dev accuracy must beat the majority-class rate at this level

# Files a training run writes (a run directory from before run markers is adopted when it
# holds only these and one of the run's own files).
RUN_FILES = (
    RSMI_FILE, LOG_FILE, CONFIG_FILE, "checkpoint", "config.json", "model.safetensors",
    "model.safetensors.index.json", "tokenizer.json", "tokenizer_config.json",
    "special_tokens_map.json", "vocab.txt", "vocab.json", "merges.txt", "added_tokens.json",
    "sentencepiece.bpe.model", "spiece.model",
)
RUN_EVIDENCE = (LOG_FILE, CONFIG_FILE, "checkpoint")
# Settings that do not change what is trained: a resumed run may change these.
RESUMABLE_CHANGES = ("out", "checkpoint_every", "keep_checkpoint", "eval_batch_size")
# Checked on its resolved value by _check_resume_dtype ("auto" and "bfloat16" may be the same).
_CHECKED_APART = ("dtype",)


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
    """Passed to the ``on_step`` callback after every optimizer step."""

    epoch: int
    global_step: int
    batches_done: int
    loss: float


def select_examples(examples: Sequence[Any], limit: int | None, seed: int) -> list[Any]:
    """A seeded random subset of ``limit`` examples, in their original order (all if None)."""
    items = list(examples)
    if limit is None or limit >= len(items):
        return items
    gen = torch.Generator().manual_seed(seed)
    keep = sorted(torch.randperm(len(items), generator=gen)[:limit].tolist())
    return [items[i] for i in keep]


def train_dev_examples(dataset: Any, config: TrainConfig) -> tuple[list[Any], list[Any], str]:
    """Training and dev examples (dev = a seeded 10 % of train when the dataset has none)."""
    train = list(dataset.split("train"))
    if "dev" in dataset.splits and dataset.splits["dev"]:
        dev, source = list(dataset.split("dev")), "dev"
    else:
        gen = torch.Generator().manual_seed(config.split_seed)
        order = torch.randperm(len(train), generator=gen).tolist()
        cut = max(1, int(round(len(train) * DEV_FRACTION)))
        held = set(order[:cut])
        dev = [ex for i, ex in enumerate(train) if i in held]
        train = [ex for i, ex in enumerate(train) if i not in held]
        source = f"{DEV_FRACTION:.0%} of train (seed {config.split_seed})"
    train = select_examples(train, config.max_examples, config.seed)
    dev = select_examples(dev, config.max_eval_examples, config.seed)
    if not train or not dev:
        raise ValueError(
            f"dataset {dataset.name!r} gives {len(train)} training and {len(dev)} dev examples: "
            "both must be non-empty"
        )
    return train, dev, source


def load_training_data(config: TrainConfig) -> Any:
    """The dataset named by ``config.data`` (via :func:`rsmi.data.load_dataset`)."""
    if config.data is None:
        raise ValueError("no data: give --data NAME_OR_PATH (or pass a loaded TextDataset to train())")
    from rsmi.data import load_dataset

    return load_dataset(
        config.data,
        split_seed=config.split_seed,
        text_column=config.text_column,
        label_column=config.label_column,
    )


def build_classifier(config: TrainConfig, label_names: list[str]) -> RSMIClassifier:
    """The backbone with a fresh (seeded) head, configured for ``config.method``."""
    clf = RSMIClassifier.from_pretrained(
        config.model,
        num_labels=len(label_names),
        label_names=label_names,
        config=config.saved_config(),
    )
    if clf.num_labels != len(label_names):
        raise ValueError(
            f"model {config.model!r} has {clf.num_labels} classes but the data has {len(label_names)}"
        )
    clf.method = config.method
    return clf


def evaluate_dev(clf: RSMIClassifier, texts: list[str], labels: np.ndarray, config: TrainConfig) -> float:
    """Dev accuracy: the two-step predictor for rsmi, one deterministic pass otherwise."""
    pred = clf.predict(texts, seed=config.seed, batch_size=config.eval_batch_size)
    return float(np.mean(pred.labels == labels))


def _optimizer(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW; biases and LayerNorm weights get no weight decay (standard BERT fine-tuning)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or "LayerNorm" in name or "layer_norm" in name else decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr)


def _linear_schedule(optimizer: torch.optim.Optimizer, warmup: int, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    from transformers import get_linear_schedule_with_warmup

    return get_linear_schedule_with_warmup(optimizer, warmup, total)


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM/SIGINT request a checkpoint-and-stop; a second signal stops at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set():
            signal.signal(signum, previous[signum] or signal.SIG_DFL)
            raise KeyboardInterrupt
        logger.warning("signal %d: saving a checkpoint at the next optimizer step, then stopping", signum)
        stop.set()

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _prepare_out(out: Path, resume: bool, overwrite: bool) -> bool:
    """Check the output directory; return whether a checkpoint is to be resumed."""
    has_checkpoint = checkpoint_path(out).exists()
    if resume:
        if has_checkpoint:
            return True
        from rsmi.store.model_card import training_finished

        if training_finished(out):
            raise ValueError(f"the run in {out} has already finished: nothing to resume")
        logger.info("no checkpoint in %s: starting from the beginning", out)
        return False
    used = out.exists() and any(
        (out / name).exists() for name in (RSMI_FILE, LOG_FILE, "checkpoint", "training_config.json")
    )
    if used and not overwrite:
        raise ValueError(
            f"output directory {out} already holds a run: continue it with --resume, or choose "
            "another --out (or --overwrite to start again)"
        )
    return False


def _reset_accelerate_precision(mixed_precision: str) -> None:
    """Let one process train in several precisions one after the other (tests, sweeps).

    accelerate keeps its state in a process-wide singleton and refuses a second
    ``Accelerator`` with another ``mixed_precision``; in a single process nothing else holds
    that state, so it is reset. Under ``accelerate launch`` every process asks for the same.
    """
    from accelerate.state import AcceleratorState

    state = AcceleratorState._shared_state
    if state and state.get("_mixed_precision", mixed_precision) != mixed_precision:
        if int(state.get("num_processes", 1) or 1) > 1:
            raise ValueError(
                f"this process already trains with mixed_precision={state.get('_mixed_precision')}"
                f" under several processes; start a new launch for dtype {mixed_precision}"
            )
        AcceleratorState._reset_state(reset_partial_state=False)


def _check_resume_dtype(out: Path, dtype: str) -> None:
    """A run is resumed in the precision it started in (the finished part was computed so)."""
    path = out / CONFIG_FILE
    if not path.exists():
        return
    saved = json.loads(path.read_text(encoding="utf-8"))
    before = saved_dtype(saved)
    if before != dtype:
        raise ValueError(
            f"the run in {out} was trained with dtype={before}; resuming it with dtype={dtype} "
            f"would mix precisions: resume with --dtype {before}, or start a new run"
        )


def check_resume_settings(out: Path, config: TrainConfig, resolved: dict[str, Any]) -> None:
    """A resumed run must continue with the settings (and data) that shaped the finished part."""
    path = out / CONFIG_FILE
    if not path.exists():
        return
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} cannot be read ({exc}): cannot check what the run was; train "
                         "again without --resume in a new --out") from exc
    wanted = config.to_dict()
    differ = [k for k in wanted if k not in RESUMABLE_CHANGES + _CHECKED_APART and k in saved
              and saved[k] != wanted[k]]
    before = saved.get("resolved", {})
    differ += [f"resolved {k}" for k in ("lr", "num_train_examples", "num_dev_examples",
                                         "data_sha256", "num_processes")
               if k in before and before[k] != resolved.get(k)]
    if differ:
        details = "; ".join(
            f"{k}: was {saved.get(k, before.get(k.removeprefix('resolved ')))!r}, now "
            f"{wanted.get(k, resolved.get(k.removeprefix('resolved ')))!r}" for k in differ
        )
        raise ValueError(
            f"cannot resume {out}: {details}. A resumed run continues with the settings and data "
            "it was started with: repeat the original command with --resume, or train in a new "
            "--out"
        )


def data_digest(examples: Sequence[Any]) -> str:
    """sha256 of the (text, label) pairs in order: which data a run trained on."""
    import hashlib

    digest = hashlib.sha256()
    for ex in examples:
        digest.update(f"{ex.label}\t{ex.text}\n".encode())
    return digest.hexdigest()


def learning_check(accuracy: float, labels: np.ndarray) -> dict[str, Any]:
    """Whether dev accuracy is significantly above the majority-class rate.

    One-sided exact binomial test of ``correct ~ Bin(n, majority rate)``; ``learned`` is
    ``p < 0.05``. A model that is no better than always answering the commonest class learned
    nothing usable, however its accuracy looks.
    """
    from scipy.stats import binomtest

    n = int(len(labels))
    correct = int(round(accuracy * n))
    majority = float(np.bincount(labels).max() / n) if n else 1.0
    p = float(binomtest(correct, n, min(majority, 1.0), alternative="greater").pvalue) if n else 1.0
    return {"dev_accuracy": accuracy, "majority_rate": majority, "num_dev_examples": n,
            "p_value": p, "learned": bool(p < LEARNING_P_VALUE)}


def not_learned_warning(check: dict[str, Any]) -> str:
    return (
        f"the model did not learn: dev accuracy {check['dev_accuracy']:.3f} is not significantly "
        f"above the majority-class rate {check['majority_rate']:.3f} (one-sided binomial test, "
        f"p = {check['p_value']:.3g}, n = {check['num_dev_examples']}); train longer, on more "
        "data, or with another --lr before using it"
    )


def _append_log(out: Path, record: dict[str, Any]) -> None:
    with (out / LOG_FILE).open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


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
    _reset_accelerate_precision(mixed_precision)
    accelerator = Accelerator(mixed_precision=mixed_precision, gradient_accumulation_steps=config.grad_accum)
    with claim_run(out, "train", overwrite=overwrite, legacy=RUN_FILES,
                   evidence=RUN_EVIDENCE, enabled=accelerator.is_main_process):
        return _train(config, dataset, accelerator, dtype=dtype, resume=resume,
                      overwrite=overwrite, classifier=classifier, progress=progress, stop=stop,
                      on_step=on_step)


def _train(
    config: TrainConfig, dataset: Any | None, accelerator: Any, *, dtype: str, resume: bool,
    overwrite: bool, classifier: RSMIClassifier | None, progress: bool,
    stop: threading.Event | None, on_step: Callable[[StepInfo], None] | None,
) -> Path:
    from accelerate.utils import set_seed

    out = Path(config.out)
    resuming = _prepare_out(out, resume, overwrite)
    if accelerator.is_main_process:
        if overwrite and not resuming:
            for name in (LOG_FILE, "checkpoint", "checkpoint.tmp"):
                shutil.rmtree(out / name, ignore_errors=True) if (out / name).is_dir() else (out / name).unlink(missing_ok=True)
        out.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    set_seed(config.seed)

    data = dataset if dataset is not None else load_training_data(config)
    train_examples, dev_examples, dev_source = train_dev_examples(data, config)
    clf = classifier if classifier is not None else build_classifier(config, list(data.label_names))
    clf.method = config.method
    clf.set_config(config.saved_config())
    clf.to(accelerator.device)
    clf.set_dtype(dtype)  # dev evaluation in the training precision
    hidden = int(getattr(clf.model.config, "hidden_size", 768))
    lr = config.resolved_lr(hidden)

    encoded = encode(clf.tokenizer, [e.text for e in train_examples], [e.label for e in train_examples], config.max_length)
    batches = LengthGroupedBatches([len(e["input_ids"]) for e in encoded], config.batch_size, config.seed)
    # Own generator: iterating a DataLoader otherwise draws from the global RNG (which
    # drives dropout), and a resumed run would then draw at another point of the stream.
    loader = DataLoader(encoded, batch_sampler=batches, collate_fn=Collator(clf.tokenizer),
                        generator=torch.Generator().manual_seed(config.seed))
    per_process = math.ceil(batches.num_batches() / accelerator.num_processes)
    steps_per_epoch = math.ceil(per_process / config.grad_accum)
    total_steps = steps_per_epoch * config.epochs
    optimizer = _optimizer(clf.model, lr, config.weight_decay)
    scheduler = _linear_schedule(optimizer, int(config.warmup_ratio * total_steps), total_steps)
    model, optimizer, loader = accelerator.prepare(clf.model, optimizer, loader)
    unwrapped = accelerator.unwrap_model(model)

    device = accelerator.device
    rank_seed = config.seed * 1000 + accelerator.process_index
    generators = {
        "noise": torch.Generator(device=device).manual_seed(rank_seed),
        "freelb": torch.Generator(device=device).manual_seed(rank_seed + 500),
    }
    assert clf.noise is not None
    clf.noise.generator = generators["noise"]

    resolved = {
        "lr": lr, "hidden_size": hidden, "num_train_examples": len(train_examples),
        "num_dev_examples": len(dev_examples), "dev_source": dev_source,
        "data_sha256": data_digest(train_examples + dev_examples),
        "num_processes": accelerator.num_processes, "total_steps": total_steps,
    }
    state = TrainState()
    if resuming:
        check_resume_settings(out, config, resolved)
        state = load_checkpoint(out, accelerator, unwrapped, optimizer, scheduler, generators)
        logger.info("resuming %s at epoch %d, batch %d", out, state.epoch + 1, state.batches_done)
    if accelerator.is_main_process:
        from rsmi.provenance import provenance

        origin = provenance(dtype=dtype)
        _append_log(out, {"event": "start", "resumed": resuming, "provenance": origin})
        config.save(out, provenance=origin, dtype=dtype, **resolved)
    ctx = StepContext(
        model=model, unwrapped=unwrapped, accelerator=accelerator, config=config,
        special_ids=clf.special_ids, mask_token_id=clf.tokenizer.mask_token_id,
        generator=generators["freelb"],
    )
    step_fn = STEPS[config.method]
    dev_texts = [e.text for e in dev_examples]
    dev_labels = np.array([e.label for e in dev_examples])
    stop_event = stop if stop is not None else threading.Event()
    meta = {"data": getattr(data, "name", config.data), "seed": config.seed, "lr": lr}

    with _stop_on_signals(stop_event):
        while state.epoch < config.epochs:
            _train_epoch(
                config, accelerator, model, unwrapped, optimizer, scheduler, loader, batches,
                step_fn, ctx, state, out, generators, stop_event, on_step, progress,
            )
            _end_epoch(config, accelerator, clf, dev_texts, dev_labels, state, out, meta, scheduler)
            state.epoch += 1
            state.batches_done = 0
            state.epoch_loss_sum, state.epoch_loss_count, state.epoch_seconds = 0.0, 0, 0.0
            if state.epoch < config.epochs or config.keep_checkpoint:
                save_checkpoint(out, accelerator, unwrapped, optimizer, scheduler, state, generators)

    if accelerator.is_main_process:
        check = learning_check(state.best_dev_accuracy, dev_labels)
        if not check["learned"]:
            logger.warning("%s: %s", out, not_learned_warning(check))
        _append_log(out, {"event": "finished", "best_epoch": state.best_epoch + 1,
                          "best_dev_accuracy": state.best_dev_accuracy, "global_step": state.global_step,
                          "learned": check["learned"], "learning_p_value": check["p_value"]})
        if not config.keep_checkpoint:
            shutil.rmtree(checkpoint_path(out), ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.free_memory()
    return out


def _train_epoch(
    config: TrainConfig, accelerator: Any, model: torch.nn.Module, unwrapped: torch.nn.Module,
    optimizer: Any, scheduler: Any, loader: Any, batches: LengthGroupedBatches,
    step_fn: Callable[[StepContext, dict[str, torch.Tensor]], float], ctx: StepContext,
    state: TrainState, out: Path, generators: dict[str, torch.Generator],
    stop: threading.Event, on_step: Callable[[StepInfo], None] | None, progress: bool,
) -> None:
    """Train on the rest of epoch ``state.epoch`` (from batch ``state.batches_done``)."""
    batches.start_epoch(state.epoch, skip=state.batches_done)
    total = math.ceil(batches.num_batches() / accelerator.num_processes)
    done_local = state.batches_done // accelerator.num_processes
    bar = None
    if progress and accelerator.is_local_main_process:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, initial=done_local, desc=f"{config.method} epoch {state.epoch + 1}/{config.epochs}",
                   unit="batch", dynamic_ncols=True)
    start = time.perf_counter()
    seconds_before = state.epoch_seconds
    examples = 0
    saving = 0.0  # seconds spent writing checkpoints: not training time
    for batch in loader:
        with accelerator.accumulate(model):
            loss = step_fn(ctx, batch)
            if accelerator.sync_gradients and config.max_grad_norm > 0:
                accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
            if accelerator.sync_gradients and not accelerator.optimizer_step_was_skipped:
                scheduler.step()
            optimizer.zero_grad()
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
        if on_step is not None:
            on_step(StepInfo(state.epoch, state.global_step, state.batches_done, loss))
        requested = _any_process(accelerator, stop.is_set())
        last_batch = state.batches_done >= batches.num_batches()
        if requested and not last_batch:
            save_checkpoint(out, accelerator, unwrapped, optimizer, scheduler, state, generators)
            if bar is not None:
                bar.close()
            raise TrainingInterrupted(out, state)
        if config.checkpoint_every and state.global_step % config.checkpoint_every == 0 and not last_batch:
            began = time.perf_counter()
            save_checkpoint(out, accelerator, unwrapped, optimizer, scheduler, state, generators)
            saving += time.perf_counter() - began
    state.epoch_seconds = seconds_before + (time.perf_counter() - start - saving)
    if bar is not None:
        bar.close()


def _any_process(accelerator: Any, flag: bool) -> bool:
    """Whether ``flag`` is set on any process (all processes stop together)."""
    if accelerator.num_processes == 1:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=accelerator.device)
    return bool(accelerator.reduce(value, reduction="sum").item() > 0)


def _end_epoch(
    config: TrainConfig, accelerator: Any, clf: RSMIClassifier, dev_texts: list[str],
    dev_labels: np.ndarray, state: TrainState, out: Path, meta: dict[str, Any], scheduler: Any,
) -> None:
    """Dev evaluation (main process), keep the best model, append to log.jsonl."""
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        start = time.perf_counter()
        accuracy = evaluate_dev(clf, dev_texts, dev_labels, config)
        dev_seconds = time.perf_counter() - start
        improved = accuracy > state.best_dev_accuracy
        if improved:
            state.best_dev_accuracy, state.best_epoch = accuracy, state.epoch
            clf.metadata = {
                **clf.metadata, "training": {**meta, "method": config.method, "epoch": state.epoch + 1,
                                             "dev_accuracy": accuracy,
                                             "learning_check": learning_check(accuracy, dev_labels)},
            }
            clf.save_pretrained(out)
        steps = state.epoch_loss_count
        record = {
            "event": "epoch", "epoch": state.epoch + 1, "method": config.method,
            "global_step": state.global_step,
            "train_loss": state.epoch_loss_sum / max(steps, 1),
            "train_seconds": state.epoch_seconds,
            "dev_accuracy": accuracy, "dev_seconds": dev_seconds, "best": improved,
            "lr": float(scheduler.get_last_lr()[0]),
        }
        state.history.append(record)
        _append_log(out, record)
        logger.info("epoch %d: loss %.4f, dev accuracy %.4f%s", state.epoch + 1, record["train_loss"],
                    accuracy, " (best)" if improved else "")
    clf.model.train()
    accelerator.wait_for_everyone()
