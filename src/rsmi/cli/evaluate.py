"""`rsmi evaluate`: clean accuracy and cost of a trained model on a dataset split."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rsmi.cli._common import add_dtype_flag


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="clean accuracy of a trained model (two-step prediction for RSMI models)",
        description="Clean accuracy, per-class accuracy, mean forward passes per example and the "
        "share of inputs that needed step 2, as JSON on stdout (and in --out FILE).",
    )
    p.add_argument("--model", required=True, help="a saved RSMI model directory")
    p.add_argument("--data", required=True, help="dataset name or path (rsmi data list)")
    p.add_argument("--split", default="test", help="split to evaluate (default test)")
    p.add_argument("--max-examples", type=int, default=None, help="a seeded subset of N examples")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampling and the subset (0)")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the dataset split (0)")
    p.add_argument("--batch-size", type=int, default=32, help="inputs per batch (32)")
    p.add_argument("--text-column", default=None, help="text column of a local/HF dataset")
    p.add_argument("--label-column", default=None, help="label column of a local/HF dataset")
    p.add_argument("--out", metavar="FILE", default=None, help="also write the JSON to FILE")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    add_dtype_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rsmi import RSMIClassifier
    from rsmi.data import load_dataset
    from rsmi.training.evaluate import evaluate
    from rsmi.training.trainer import select_examples

    if args.max_examples is not None and args.max_examples < 1:
        raise ValueError(f"--max-examples={args.max_examples} is invalid: it must be ≥ 1")
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    clf = RSMIClassifier.from_pretrained(args.model, device=device, dtype=args.dtype)
    data = load_dataset(args.data, split_seed=args.split_seed, text_column=args.text_column,
                        label_column=args.label_column)
    if list(data.label_names) != list(clf.label_names):
        raise ValueError(
            f"the model's classes {clf.label_names} differ from the data's {data.label_names}: "
            "evaluate on the dataset (and label set) the model was trained on"
        )
    examples = select_examples(data.split(args.split), args.max_examples, args.seed)
    result = evaluate(clf, examples, seed=args.seed, batch_size=args.batch_size)
    result = {"model": str(args.model), "data": data.name, "split": args.split, **result}
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0
