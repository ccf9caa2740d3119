"""Shared pieces of the CLI: reading input texts, RSMIConfig flags, JSON output."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any, TextIO

from rsmi.config import CANDIDATE_RULES, VOTES, RSMIConfig


def console() -> Any:
    """A rich console; 160 columns when stdout is not a terminal (logs: no 80-column wrap)."""
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 160)


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
            help=f"reference {value}",
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
    "weights with randomized smoothing only, --noise-std 0 with masked inference only)"
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
        raise ValueError(
            f"--device {name!r} is not a torch device: use cpu, cuda, cuda:0, mps"
        ) from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available here; use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"--device {name}: there are {torch.cuda.device_count()} CUDA devices")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {name}: MPS is not available here; use --device cpu")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"--device {name!r} is not supported: use cpu, cuda, cuda:N or mps")
    return str(device)


def _decode_lines(data: bytes, source: str) -> list[str]:
    """UTF-8 lines of ``data``; ValueError naming the line of the first bad byte."""
    try:
        return data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ValueError(
            f"{source}, line {line}: byte 0x{data[exc.start]:02x} is not UTF-8: re-save the "
            "text as UTF-8"
        ) from None


def _read_stream(stdin: TextIO, source: str) -> list[str]:
    buffer = getattr(stdin, "buffer", None)
    if buffer is not None:
        return _decode_lines(buffer.read(), source)
    return stdin.read().splitlines()


def read_texts(args: argparse.Namespace, stdin: TextIO | None = None) -> list[str]:
    """Texts from the arguments, ``--input FILE`` or stdin; blank lines are an error."""
    stdin = stdin or sys.stdin
    texts = list(args.texts)
    for i, text in enumerate(texts, start=1):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(
                f"TEXT argument {i} is not valid UTF-8 (the shell passed undecodable bytes): "
                "give the text in UTF-8"
            ) from None
    source = "argument"
    if args.input:
        source = args.input
        if args.input == "-":
            texts += _read_stream(stdin, "stdin")
        else:
            try:
                data = Path(args.input).read_bytes()
            except OSError as exc:
                raise ValueError(
                    f"--input {args.input} cannot be read ({exc.strerror or exc}): check the path"
                ) from None
            texts += _decode_lines(data, args.input)
    elif not texts:
        source = "stdin"
        texts = _read_stream(stdin, "stdin")
    if not texts:
        raise ValueError("no input texts: give TEXT arguments, --input FILE, or lines on stdin")
    for i, text in enumerate(texts, start=1):
        if not text.strip():
            raise ValueError(
                f"text {i} ({source}) is empty or whitespace only: RSMI cannot classify an "
                "empty text; remove the blank line"
            )
    return texts


def print_jsonl(records: list[dict[str, Any]], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    for record in records:
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
    out.flush()
