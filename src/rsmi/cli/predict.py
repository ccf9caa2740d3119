"""`rsmi predict` and `rsmi certify`: the smoothed classifier from the command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from typing import Any

from rsmi.cli._common import (
    add_dtype_flag,
    add_engine_flag,
    add_inference_flags,
    add_input_flags,
    check_numbers,
    inference_overrides,
    print_jsonl,
    resolve_device,
    with_engine,
)
from rsmi.cli._input import CHUNK_LINES, InputText, text_chunks
from rsmi.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="classify texts with the two-step smoothed, masked predictor",
        description="Classify texts (arguments, --input FILE or stdin lines); one JSON object per "
        "line out: text, label, label_name, probs, second_step, forward_passes, truncated. "
        "Empty or whitespace-only texts are an error (exit 2). Lines end at \\n only; input "
        "is read and answered in chunks, so output line k answers input line k and is written "
        "while later lines are still read.",
    )
    _common_flags(p)
    p.set_defaults(func=run_predict)

    c = sub.add_parser(
        "certify",
        help="certify predictions (Cohen et al.'s CERTIFY under the hidden-state noise)",
        description="Certified label (-1 = ABSTAIN) and L2 radius per text. The radius is in the "
        "hidden space of the first noised encoder block, NOT a number of words. It is at most "
        "radius_ceiling = noise_std * Phi^-1(alpha^(1/n)) (all n samples agree; at_ceiling): "
        "raise --n for larger radii. A certificate says the smoothed classifier's decision is "
        "stable, not that it is correct: a wrong label can be certified; compare with gold "
        "labels for certified accuracy. How to read it: docs/method.md.",
    )
    _common_flags(c)
    c.add_argument("--n0", type=int, default=100, help="samples that select the class (100)")
    c.add_argument("--n", type=int, default=1000, help="samples that bound its probability (1000)")
    c.add_argument(
        "--certify-alpha",
        type=float,
        default=0.001,
        help="failure probability of the certificate (0.001)",
    )
    c.set_defaults(func=run_certify)


def _common_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="a saved RSMI model directory")
    add_input_flags(p)
    p.add_argument("--seed", type=int, default=0, help="seed of all noise and mask draws (0)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    add_dtype_flag(p)
    add_engine_flag(p)
    add_inference_flags(p)


def _load(args: argparse.Namespace):
    from rsmi import RSMIClassifier
    from rsmi.cli.train import metadata_warning

    device = resolve_device(args.device)
    clf = RSMIClassifier.from_pretrained(
        args.model, device=device, dtype=args.dtype, **inference_overrides(args)
    )
    clf = with_engine(clf, args.engine)
    warning = metadata_warning(clf.metadata)
    if warning:
        print(f"rsmi {args.command}: warning: {warning}", file=sys.stderr)
    return clf


Records = Callable[[Any, list[str], int], list[dict[str, Any]]]
"""(classifier, texts of a chunk, index of its first text in the stream) → output records."""


def _stream(args: argparse.Namespace, answer: Records) -> int:
    """Read, answer and write the input chunk by chunk; output line k answers input line k.

    The first chunk is read before the model is loaded, so a bad or missing input fails at
    once; each chunk's records are written and flushed as soon as they are done, so an
    interrupted run keeps the answers so far. A progress bar (stderr) shows for long inputs
    when stderr is a terminal or with ``-v``.
    """
    check_numbers(args)
    chunks = text_chunks(args, max(CHUNK_LINES, args.batch_size))
    first = next(chunks)
    clf = _load(args)
    with _progress(args) as bar:
        start = 0
        for chunk in _prepend(first, chunks):
            _check_content(clf, chunk, start)
            print_jsonl(answer(clf, [item.text for item in chunk], start))
            start += len(chunk)
            bar.update(len(chunk))
    return 0


def _prepend(first: list[InputText], rest: Iterator[list[InputText]]) -> Iterator[list[InputText]]:
    yield first
    yield from rest


def _check_content(clf: Any, chunk: list[InputText], start: int) -> None:
    """InputError naming the line of a text that tokenizes to nothing (zero-width only)."""
    for i in clf.content_free([item.text for item in chunk]):
        raise InputError(
            f"text {start + i + 1} ({chunk[i].where}, {chunk[i].text!r}) has no content the "
            "tokenizer keeps (only invisible, zero-width or control characters): it is an empty "
            "text to the model; remove it or give it some words"
        )


def _progress(args: argparse.Namespace) -> Any:
    """A tqdm counter of texts on stderr (after 2 s) for a terminal or ``-v``; else silent."""
    from tqdm import tqdm

    show = sys.stderr.isatty() or getattr(args, "verbose", 0) > 0
    return tqdm(desc=f"rsmi {args.command}", unit=" texts", file=sys.stderr,
                disable=not show, delay=2.0)


def run_predict(args: argparse.Namespace) -> int:
    from rsmi.inference import StreamSeed

    stream = StreamSeed(args.seed)  # a text repeated in later chunks continues its count

    def answer(clf: Any, texts: list[str], start: int) -> list[dict[str, Any]]:
        pred = clf.predict(texts, seed=stream, batch_size=args.batch_size)
        names = clf.label_names
        return [
            {
                "text": text,
                "label": int(pred.labels[i]),
                "label_name": names[int(pred.labels[i])],
                "probs": {name: round(float(p), 6) for name, p in zip(names, pred.probs[i], strict=True)},
                "second_step": bool(pred.second_step[i]),
                "forward_passes": int(pred.forward_passes[i]),
                "truncated": bool(pred.truncated[i]),
            }
            for i, text in enumerate(texts)
        ]

    return _stream(args, answer)


def run_certify(args: argparse.Namespace) -> int:
    from rsmi import ABSTAIN
    from rsmi.inference import RADIUS_SPACE, StreamSeed, radius_ceiling

    stream = StreamSeed(args.seed)  # a text repeated in later chunks continues its count

    def answer(clf: Any, texts: list[str], start: int) -> list[dict[str, Any]]:
        cert = clf.certify(
            texts,
            n0=args.n0,
            n=args.n,
            alpha=args.certify_alpha,
            seed=stream,
            batch_size=args.batch_size,
        )
        ceiling = radius_ceiling(clf.config.noise_std, args.n, args.certify_alpha)
        records = []
        for i, text in enumerate(texts):
            label = int(cert.labels[i])
            records.append(
                {
                    "text": text,
                    "label": label,
                    "label_name": "ABSTAIN" if label == ABSTAIN else clf.label_names[label],
                    "radius": float(cert.radius[i]),
                    "radius_space": RADIUS_SPACE,
                    # The largest radius n samples can show (all n agree); docs/method.md.
                    "radius_ceiling": ceiling,
                    "at_ceiling": label != ABSTAIN and float(cert.radius[i]) >= ceiling,
                    "p_lower": float(cert.p_lower[i]),
                    "counts": {n: int(v) for n, v in zip(clf.label_names, cert.counts[i], strict=True)},
                    "forward_passes": int(cert.forward_passes[i]),
                    "truncated": bool(cert.truncated[i]),
                }
            )
        return records

    return _stream(args, answer)
