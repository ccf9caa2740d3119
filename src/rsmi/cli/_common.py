"""Shared pieces of the CLI: RSMIConfig flags, checked numbers, devices, JSON output."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from typing import Any, TextIO

from rsmi.cli._input import read_texts as read_texts  # re-exported (the input texts)
from rsmi.config import CANDIDATE_RULES, VOTES, RSMIConfig
from rsmi.errors import ConfigError


def console() -> Any:
    """A rich console; 160 columns when stdout is not a terminal (logs: no 80-column wrap)."""
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 160)


# What each RSMI setting does, in the paper's words (docs/method.md, "Hyperparameters"): the
# help of its flag in every command (rsmi train, predict, certify, evaluate, attack).
RSMI_HELP: dict[str, str] = {
    "noise_std": "randomized smoothing: std σ of the Gaussian noise added to the hidden states "
    "of the noised encoder blocks (0 = no smoothing; docs/method.md)",
    "noise_every": "noise the output of every N-th encoder block (block i when i %% N == 0; "
    "MiniLM, 6 blocks, N = 3: blocks 0 and 3)",
    "num_masks": "masked inference: tokens masked per input, chosen among the most salient by "
    "gradient (0 = no masking)",
    "saliency_top_k": "mask candidates: the k tokens with the largest gradient norm (saliency); "
    "the masks are drawn from them",
    "candidate_rule": "mask candidates: content (the top-k non-special tokens) or authors (the "
    "top-k of all tokens, then [CLS]/[SEP] dropped, as the RSMI authors' code)",
    "step2_resample": "inference step 2 as the RSMI authors' code: saliency recomputed, masks "
    "drawn with replacement",
    "grad_noise_weight": "training: weight w of the gradient added to the masked input's "
    "embeddings, E(masked) + w·g",
    "k0": "two-step inference: Monte-Carlo samples of step 1 (noisy, masked forward passes per "
    "input)",
    "k1": "two-step inference: samples of step 2, run only for inputs step 1 left uncertain",
    "alpha": "two-step inference: step 2 runs when the one-sided binomial p-value of step 1's "
    "vote is below alpha (k0 = 5, alpha = 0.98: when the 5 votes are not unanimous)",
    "vote": "how the last step's samples decide: avg (mean logits) or max (majority vote)",
    "max_length": "tokens per input; longer texts are cut and flagged truncated",
}


def add_config_flags(
    parser: argparse.ArgumentParser,
    *,
    defaults: bool = False,
    exclude: tuple[str, ...] = (),
    title: str = "RSMI hyperparameters (RSMIConfig)",
) -> None:
    """One ``--flag`` per :class:`RSMIConfig` field (``noise_std`` → ``--noise-std``).

    With ``defaults=False`` an unset flag stays ``None`` so a saved model keeps its own value.
    Fields in ``exclude`` get no flag (the command has its own, e.g. ``--max-length``).
    """
    group = parser.add_argument_group(title)
    reference = RSMIConfig()
    for f in fields(RSMIConfig):
        if f.name in exclude:
            continue
        value = getattr(reference, f.name)
        kind = type(value)
        kwargs: dict[str, Any] = {"type": kind, "default": value if defaults else None}
        if isinstance(value, bool):  # --step2-resample / --no-step2-resample
            kwargs = {"action": argparse.BooleanOptionalAction, "default": kwargs["default"]}
        elif f.name == "vote":
            kwargs["choices"] = list(VOTES)
        elif f.name == "candidate_rule":
            kwargs["choices"] = list(CANDIDATE_RULES)
        group.add_argument(
            "--" + f.name.replace("_", "-"),
            dest=f.name,
            help=f"{RSMI_HELP.get(f.name, f.name)} (reference {value})",
            **kwargs,
        )


def add_dtype_flag(parser: argparse.ArgumentParser) -> None:
    """``--dtype``: compute precision of the model's forward passes (rsmi.precision)."""
    from rsmi.precision import DTYPES

    parser.add_argument(
        "--dtype", choices=DTYPES, default="float32",
        help="compute precision: auto = bfloat16 autocast where the device runs it natively "
        "(CPUs with AVX-512 BF16 or AMX, CUDA with compute capability ≥ 8), float32 elsewhere; "
        "weights and noise draws stay float32 (default float32)",
    )


def add_engine_flag(parser: argparse.ArgumentParser) -> None:
    """``--engine``: where the forward passes without gradient run (rsmi.engine)."""
    from rsmi.engine import DEFAULT_ENGINE, ENGINES

    parser.add_argument(
        "--engine", choices=ENGINES, default=DEFAULT_ENGINE,
        help="where the Monte-Carlo passes (and the plain classifier's) run: torch (eager "
        "PyTorch, the default), openvino (OpenVINO, float32), openvino-bf16 (OpenVINO's "
        "bfloat16 hint), onnx (ONNX Runtime, float32), onnx-int8; the saliency pass stays in "
        "PyTorch, in --dtype; same seeds, same draws (docs/method.md, 'Inference engines')",
    )


def with_engine(clf: Any, engine: str | None) -> Any:
    """``clf`` itself for the default engine, else a view running in ``engine``."""
    from rsmi.engine import DEFAULT_ENGINE, normalize_engine

    name = normalize_engine(engine)
    return clf if name == DEFAULT_ENGINE else clf.configured(engine=name)


def config_overrides(args: argparse.Namespace, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """The :class:`RSMIConfig` fields given on the command line (less those in ``exclude``)."""
    return {
        f.name: getattr(args, f.name)
        for f in fields(RSMIConfig)
        if f.name not in exclude and getattr(args, f.name, None) is not None
    }


# RSMIConfig fields that only training reads: no inference flag.
TRAINING_ONLY_FIELDS = ("grad_noise_weight",)
INFERENCE_TITLE = (
    "RSMI inference settings (default: the saved model's own; e.g. --num-masks 0 runs the same "
    "weights with randomized smoothing only, --noise-std 0 with masked inference only; what "
    "each does: docs/method.md)"
)


def add_inference_flags(
    parser: argparse.ArgumentParser, *, exclude: tuple[str, ...] = ()
) -> None:
    """The :class:`RSMIConfig` override flags of every command that predicts.

    ``rsmi predict``, ``certify``, ``evaluate`` and ``attack`` share them: an unset flag keeps
    the saved model's value; :func:`inference_overrides` collects those given.
    """
    add_config_flags(parser, exclude=TRAINING_ONLY_FIELDS + exclude, title=INFERENCE_TITLE)


def inference_overrides(
    args: argparse.Namespace, *, exclude: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The inference settings given on the command line (recorded as ``model_overrides``)."""
    return config_overrides(args, exclude=TRAINING_ONLY_FIELDS + exclude)


def add_input_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("texts", nargs="*", metavar="TEXT", help="texts to classify")
    parser.add_argument(
        "--input",
        "-i",
        metavar="FILE",
        help="read one text per line from FILE ('-' = stdin); stdin is read when no TEXT is given",
    )


def resolve_device(name: str | None) -> str:
    """``--device`` checked now (default: cuda when available, else cpu)."""
    import torch

    if name is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(
            f"--device {name!r} is not a torch device: use cpu, cuda, cuda:0, mps"
        ) from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: CUDA is not available here; use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"--device {name}: there are {torch.cuda.device_count()} CUDA devices")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"--device {name}: MPS is not available here; use --device cpu")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"--device {name!r} is not supported: use cpu, cuda, cuda:N or mps")
    return str(device)


def print_jsonl(records: list[dict[str, Any]], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    for record in records:
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
    out.flush()


# ----------------------------------------------------------------------------- checked numbers
SEED_LIMIT = 2**32
"""Seeds are 0 ≤ seed < 2**32: what every consumer accepts (numpy's legacy seeding in training
and attacks takes 32 bits; :func:`rsmi.noise.row_seed` would silently fold larger ones)."""
MAX_SAMPLES_PER_STEP = 10_000
"""Most Monte-Carlo samples of one step per input (``--k0``/``--k1``): step 1 and 2 repeat
each input that many times in memory (the paper uses k0 = 5, k1 = 50)."""
MAX_CERTIFY_SAMPLES = 10_000_000
"""Most certification samples per input (``--n0``/``--n``; Cohen et al. use n = 100,000)."""
MAX_BATCH_SIZE = 65_536

# option dest → (smallest, largest, why the bound): integers, both ends included.
INT_BOUNDS: dict[str, tuple[int, int, str]] = {
    "seed": (0, SEED_LIMIT - 1, "seeds are 32-bit unsigned integers"),
    "batch_size": (1, MAX_BATCH_SIZE, "texts per batch"),
    "k0": (1, MAX_SAMPLES_PER_STEP, "samples per input of step 1 (the paper uses 5)"),
    "k1": (1, MAX_SAMPLES_PER_STEP, "samples per input of step 2 (the paper uses 50)"),
    "n0": (1, MAX_CERTIFY_SAMPLES, "certification samples that select the class"),
    "n": (1, MAX_CERTIFY_SAMPLES, "certification samples per input (Cohen et al. use 100,000)"),
}
# option dest → why it is a probability in the open interval (0, 1).
OPEN_UNIT: dict[str, str] = {
    "alpha": "the p-value threshold of step 1",
    "certify_alpha": "the failure probability of the certificate",
}


def check_numbers(args: argparse.Namespace) -> None:
    """ConfigError naming the first option given out of its range (those in the tables above).

    An option the command does not have, or left unset (``None``), is skipped.
    """
    for dest, (low, high, why) in INT_BOUNDS.items():
        value = getattr(args, dest, None)
        if value is not None and not low <= value <= high:
            raise ConfigError(
                f"--{dest.replace('_', '-')} {value} is out of range: it must be an integer "
                f"from {low:,} to {high:,} ({why})"
            )
    for dest, why in OPEN_UNIT.items():
        value = getattr(args, dest, None)
        if value is not None and not 0.0 < value < 1.0:
            raise ConfigError(
                f"--{dest.replace('_', '-')} {value} is out of range: it must lie strictly "
                f"between 0 and 1 ({why})"
            )


# ----------------------------------------------------------------------------- data options
DATA_TITLE = (
    "data options (the same for train, evaluate, attack, pipeline and data show; a trained "
    "model records its columns and label names, and later commands reading a local file "
    "default to them; docs/data.md)"
)
SPLIT_HELP = (
    "split to read: train, dev, test, or all = every row (a local file whole, in its row "
    "order, without the 80/10/10 split: a separate test file)"
)


def add_data_flags(parser: argparse.ArgumentParser, *, split: str | None = None,
                   split_required: bool = False) -> None:
    """The data options of every command that reads data (:class:`rsmi.data.DataOptions`).

    ``split``: the default of ``--split`` (no ``--split`` flag when None and not
    ``split_required``). Every other flag defaults to ``None`` (not given), so a config file
    or the model's recorded options fill it.
    """
    group = parser.add_argument_group("data", DATA_TITLE)
    group.add_argument("--text-column", default=None, metavar="NAME",
                       help="column holding the text (default: the model's, for a local file; "
                       "else the first of text, sentence, review, content)")
    group.add_argument("--label-column", default=None, metavar="NAME",
                       help="column holding the label (default: the model's, for a local file; "
                       "else the first of label, labels, sentiment, class)")
    group.add_argument("--label-names", default=None, type=_names, metavar="A,B,...",
                       help="the label set in id order, comma-separated; integer labels index "
                       "it (default: the model's classes; training: the distinct labels, sorted)")
    group.add_argument("--split-column", default=None, metavar="NAME",
                       help="column naming each row's split: train, dev (validation), test "
                       "(default: a column named split; without one, a seeded stratified "
                       "80/10/10 split)")
    group.add_argument("--split-seed", type=int, default=None,
                       help="seed of the 80/10/10 split of data without a split column (0)")
    if split is not None or split_required:
        group.add_argument("--split", default=split,
                           help=SPLIT_HELP + (f" (default {split})" if split else ""))


def _names(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(","))
    if not all(names):
        raise argparse.ArgumentTypeError(
            f"{text!r} holds an empty label name: write the names separated by commas, e.g. "
            "negative,neutral,positive"
        )
    return names


def data_options(args: argparse.Namespace) -> Any:
    """The :class:`rsmi.data.DataOptions` of parsed :func:`add_data_flags` arguments."""
    from rsmi.data import DataOptions

    seed = getattr(args, "split_seed", None)
    return DataOptions(
        text_column=getattr(args, "text_column", None),
        label_column=getattr(args, "label_column", None),
        label_names=getattr(args, "label_names", None),
        split_column=getattr(args, "split_column", None),
        split_seed=0 if seed is None else seed,
    )


def clear_subcommand_errors(parser: argparse.ArgumentParser, command: str, *subs: str) -> None:
    """Say what went wrong when an argument lands on ``parser``'s sub-command slot.

    A value after an unknown option (``--colum text``) is read as the name of a sub-command,
    and argparse says ``argument merge: invalid choice``: name the argument instead.
    """
    plain = parser.error

    def error(message: str) -> Any:
        if "invalid choice" in message and f"argument {'|'.join(subs)}" in message:
            word = message.split("invalid choice:", 1)[1].split("(choose", 1)[0].strip()
            message = (
                f"unexpected argument {word}: it follows an option `rsmi {command}` does not "
                f"have, or is one value too many (see rsmi {command} --help; data options: "
                "--text-column, --label-column, --label-names, --split-column, --split); its "
                "sub-commands are " + ", ".join(f"`rsmi {command} {sub}`" for sub in subs)
            )
        return plain(message)

    parser.error = error  # type: ignore[method-assign]
