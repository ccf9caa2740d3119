"""`rsmi predict` and `rsmi certify`: the smoothed classifier from the command line."""

from __future__ import annotations

import argparse
import sys

from rsmi.cli._common import (
    add_dtype_flag,
    add_inference_flags,
    add_input_flags,
    inference_overrides,
    print_jsonl,
    read_texts,
    resolve_device,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="classify texts with the two-step smoothed, masked predictor",
        description="Classify texts (arguments, --input FILE or stdin lines); one JSON object per "
        "line out: text, label, label_name, probs, second_step, forward_passes, truncated. "
        "Empty or whitespace-only texts are an error (exit 2).",
    )
    _common_flags(p)
    p.set_defaults(func=run_predict)

    c = sub.add_parser(
        "certify",
        help="certify predictions (Cohen et al.'s CERTIFY under the hidden-state noise)",
        description="Certified label (-1 = ABSTAIN) and L2 radius per text. The radius is in the "
        "hidden space of the first noised encoder block, NOT a number of words.",
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
    add_inference_flags(p)


def _load(args: argparse.Namespace):
    from rsmi import RSMIClassifier
    from rsmi.cli.train import metadata_warning

    device = resolve_device(args.device)
    clf = RSMIClassifier.from_pretrained(
        args.model, device=device, dtype=args.dtype, **inference_overrides(args)
    )
    warning = metadata_warning(clf.metadata)
    if warning:
        print(f"rsmi {args.command}: warning: {warning}", file=sys.stderr)
    return clf


def run_predict(args: argparse.Namespace) -> int:
    texts = read_texts(args)
    clf = _load(args)
    pred = clf.predict(texts, seed=args.seed, batch_size=args.batch_size)
    print_jsonl(
        [
            {
                "text": text,
                "label": int(pred.labels[i]),
                "label_name": clf.label_names[int(pred.labels[i])],
                "probs": {name: round(float(p), 6) for name, p in zip(clf.label_names, pred.probs[i], strict=True)},
                "second_step": bool(pred.second_step[i]),
                "forward_passes": int(pred.forward_passes[i]),
                "truncated": bool(pred.truncated[i]),
            }
            for i, text in enumerate(texts)
        ]
    )
    return 0


def run_certify(args: argparse.Namespace) -> int:
    from rsmi import ABSTAIN

    texts = read_texts(args)
    clf = _load(args)
    cert = clf.certify(
        texts,
        n0=args.n0,
        n=args.n,
        alpha=args.certify_alpha,
        seed=args.seed,
        batch_size=args.batch_size,
    )
    records = []
    for i, text in enumerate(texts):
        label = int(cert.labels[i])
        records.append(
            {
                "text": text,
                "label": label,
                "label_name": "ABSTAIN" if label == ABSTAIN else clf.label_names[label],
                "radius": float(cert.radius[i]),
                "radius_space": "hidden states of the first noised encoder block (L2)",
                "p_lower": float(cert.p_lower[i]),
                "counts": {n: int(v) for n, v in zip(clf.label_names, cert.counts[i], strict=True)},
                "forward_passes": int(cert.forward_passes[i]),
                "truncated": bool(cert.truncated[i]),
            }
        )
    print_jsonl(records)
    return 0
