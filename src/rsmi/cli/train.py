"""`rsmi train`: fine-tune a classifier with base, rsmi or freelb training.

Every :class:`rsmi.training.TrainConfig` field is a flag (``noise_std`` → ``--noise-std``);
``--config FILE`` (YAML or JSON, same keys) gives defaults that flags override.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from rsmi.cli._common import RSMI_HELP, add_data_flags
from rsmi.config import CANDIDATE_RULES
from rsmi.errors import ConfigError
from rsmi.precision import DTYPES
from rsmi.store.model_card import metadata_warning, model_warning, training_summary
from rsmi.training.config import FREELB_PRESETS, METHODS, RSMI_FIELDS, TrainConfig, setting_fields

__all__ = ["build_config", "metadata_warning", "model_warning", "register", "run"]

# Flags whose value may be absent (None) and their element type.
_OPTIONAL = {"data": str, "max_examples": int, "max_eval_examples": int, "lr": float,
             "freelb_preset": str, "select_epoch": int}
# Settings whose flags are the data options every data-reading command shares (cli._common).
_DATA_FIELDS = ("text_column", "label_column", "label_names", "split_column", "split_seed")
_HELP = {
    "method": "base (fine-tuning), rsmi (docs/method.md training step), freelb (FreeLB++)",
    "model": "backbone: minilm (offline default), a model directory or a Hugging Face id",
    "data": "dataset name or path (rsmi data list)",
    "out": "output directory (model, training_config.json, log.jsonl, checkpoint)",
    "max_examples": "train on a seeded subset of this many training examples",
    "max_eval_examples": "evaluate on a seeded subset of this many dev examples per epoch",
    "lr": "AdamW learning rate (default: 5e-5 for hidden size <= 512, else 1e-5)",
    "batch_size": "examples per forward pass per process",
    "grad_accum": "micro-batches per optimizer step",
    "max_grad_norm": "gradient-norm clipping (0 = off)",
    "adv_steps": "FreeLB ascent steps K (FreeLB++: 10; CPU default 3)",
    "adv_lr": "FreeLB ascent step size",
    "adv_init_mag": "FreeLB random-start magnitude (0 = zero start)",
    "adv_max_norm": "FreeLB per-example L2 bound of the perturbation (0 = unbounded)",
    "freelb_preset": "named FreeLB settings: textdefender = FreeLB++ as TextDefender runs it "
    "(10 steps, adv_lr 0.03, init 0.05, unbounded); fills the adv_* values not given",
    "checkpoint_every": "also checkpoint every N optimizer steps (0 = per epoch and on signals)",
    "keep_checkpoint": "keep the last checkpoint after the run finishes",
    "select_epoch": "save this epoch's model (1-based) instead of the best dev epoch: to "
    "regenerate the model an earlier run selected (its log.jsonl's best_epoch)",
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a classifier (base, rsmi or freelb) and save an RSMI model directory",
        description="Train with --method and save the best dev epoch to --out (loadable with "
        "RSMIClassifier.from_pretrained / rsmi predict). SIGTERM/SIGINT save a checkpoint; "
        "continue with --resume. Runs as is on one CPU and under `accelerate launch`.",
    )
    p.add_argument("--config", metavar="FILE", help="YAML/JSON file of settings (flags override)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint")
    p.add_argument("--overwrite", action="store_true", help="start again in an OUT that holds a run")
    reference = TrainConfig()
    groups = {
        "rsmi": p.add_argument_group("RSMI hyperparameters (RSMIConfig; saved with rsmi models)"),
        "run": p.add_argument_group("training settings"),
    }
    add_data_flags(p)
    for f in setting_fields():
        if f.name in _DATA_FIELDS:
            continue
        flag = "--" + f.name.replace("-", "_").replace("_", "-")
        group = groups["rsmi" if f.name in RSMI_FIELDS else "run"]
        default = getattr(reference, f.name)
        what = _HELP.get(f.name) or RSMI_HELP.get(f.name) or f.name.replace("_", " ")
        help_text = f"{what} (default {default})"
        if isinstance(default, bool):
            group.add_argument(flag, dest=f.name, action="store_const", const=True, default=None,
                               help=help_text)
            continue
        kind = _OPTIONAL.get(f.name, type(default))
        kwargs: dict[str, Any] = {"type": kind, "default": None, "help": help_text}
        if f.name == "method":
            kwargs["choices"] = METHODS
        elif f.name == "dtype":
            kwargs["choices"] = DTYPES
        elif f.name == "vote":
            kwargs["choices"] = ["avg", "max"]
        elif f.name == "candidate_rule":
            kwargs["choices"] = list(CANDIDATE_RULES)
        elif f.name == "freelb_preset":
            kwargs["choices"] = list(FREELB_PRESETS)
        group.add_argument(flag, dest=f.name, **kwargs)
    p.set_defaults(func=run)


def build_config(args: argparse.Namespace) -> TrainConfig:
    """Defaults < ``--config`` file < flags given on the command line."""
    from rsmi.training.config import load_config_file

    settings: dict[str, Any] = load_config_file(args.config) if args.config else {}
    for f in setting_fields():
        value = getattr(args, f.name, None)
        if value is not None:
            settings[f.name] = list(value) if f.name == "label_names" else value
    return TrainConfig.from_dict(settings)


def run(args: argparse.Namespace) -> int:
    from rsmi.training import TrainingInterrupted, train

    config = build_config(args)
    if config.data is None:
        raise ConfigError("no data: give --data NAME_OR_PATH (see `rsmi data list`) or data: in --config")
    try:
        out = train(config, resume=args.resume, overwrite=args.overwrite, progress=sys.stderr.isatty())
    except TrainingInterrupted as exc:
        print(f"rsmi train: {exc}", file=sys.stderr)
        return 130
    if os.environ.get("RANK", "0") == "0":  # once, also under accelerate launch / torchrun
        warning = model_warning(out)
        if warning:
            print(f"rsmi train: warning: {warning}", file=sys.stderr)
        # How it did, in one line (stderr, beside the progress), then the model directory alone
        # on stdout, for scripts (`out=$(rsmi train ...)`).
        summary = training_summary(out)
        if summary:
            print(f"rsmi train: {summary}", file=sys.stderr, flush=True)
        print(str(out), flush=True)
    return 0
