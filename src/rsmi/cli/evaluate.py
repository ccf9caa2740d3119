"""`rsmi evaluate`: clean accuracy and cost of a trained model on a dataset split."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rsmi.cli._common import (
    add_data_flags,
    add_dtype_flag,
    add_inference_flags,
    data_options,
    inference_overrides,
    resolve_device,
)
from rsmi.cli.main import CLIError
from rsmi.errors import ConfigError
from rsmi.store.evaluation import (
    EvaluationSetup,
    build_evaluation,
    check_outputs,
    evaluation_text,
    predictions_path,
    write_evaluation,
)
from rsmi.store.names import PREDICTIONS_FILE

__all__ = ["predictions_path", "register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="clean accuracy of a trained model (two-step prediction for RSMI models)",
        description="Clean accuracy, per-class accuracy, mean forward passes per example and the "
        "share of inputs that needed step 2, as JSON on stdout (and in --out FILE, with the "
        "effective RSMI config, the overrides given and provenance). With --out, one line per "
        "example (index, label, pred, probs, second_step, forward_passes) goes to "
        f"{PREDICTIONS_FILE} beside it (or --predictions FILE): two models evaluated on the same "
        "split can then be compared pairwise (McNemar). An existing file is replaced only when "
        "it is an earlier rsmi evaluate output (else --overwrite); file formats: "
        "docs/protocol.md.",
    )
    p.add_argument("--model", required=True, help="a saved RSMI model directory")
    p.add_argument("--data", required=True, help="dataset name or path (rsmi data list)")
    add_data_flags(p, split="test")
    p.add_argument("--max-examples", type=int, default=None, help="a seeded subset of N examples")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampling and the subset (0)")
    p.add_argument("--batch-size", type=int, default=32, help="inputs per batch (32)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    add_dtype_flag(p)
    p.add_argument("--out", metavar="FILE", default=None,
                   help="also write the JSON to FILE (e.g. DIR/evaluation.json)")
    p.add_argument("--predictions", metavar="FILE", default=None,
                   help=f"per-example predictions (default: {PREDICTIONS_FILE} beside --out)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --out / --predictions files that are not earlier rsmi evaluate "
                   "outputs")
    add_inference_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rsmi import RSMIClassifier
    from rsmi.data import load_for_model
    from rsmi.store.model_card import recorded_data_options
    from rsmi.training.evaluate import evaluate_with_predictions
    from rsmi.training.trainer import select_examples

    if args.max_examples is not None and args.max_examples < 1:
        raise ConfigError(f"--max-examples={args.max_examples} is invalid: it must be ≥ 1")
    pred_path = predictions_path(args.out, args.predictions)
    if args.out and pred_path is not None and Path(args.out).resolve() == pred_path.resolve():
        raise ConfigError(f"--out and --predictions name the same file {args.out}: give two files")
    # Before the long work: a result that cannot be saved, or would replace a user's file, is
    # found out now.
    check_outputs(args.out, pred_path, overwrite=args.overwrite,
                  what=("--out", "--predictions" if args.predictions else "the predictions file"))
    overrides = inference_overrides(args)
    clf = RSMIClassifier.from_pretrained(
        args.model, device=resolve_device(args.device), dtype=args.dtype, **overrides
    )
    # The model's recorded columns for a local file, its classes mapped by name.
    options = data_options(args)
    data = load_for_model(args.data, options, clf.label_names,
                          recorded=recorded_data_options(clf.metadata), split=args.split)
    chosen = select_examples(list(enumerate(data.split(args.split))), args.max_examples, args.seed)
    measured, records = evaluate_with_predictions(
        clf, [ex for _, ex in chosen], seed=args.seed, batch_size=args.batch_size,
        indices=[i for i, _ in chosen],
    )
    setup = EvaluationSetup(
        model=str(args.model), data=data.name, split=args.split, split_seed=options.split_seed,
        max_examples=args.max_examples, model_overrides=overrides,
        predictions=None if pred_path is None else pred_path.name,
    )
    result = build_evaluation(setup, measured, clf.metadata)
    for warning in result.get("warnings", []):
        print(f"rsmi evaluate: warning: {warning}", file=sys.stderr)
    print(evaluation_text(result), flush=True)  # the result first: a failed save never loses it
    try:
        write_evaluation(args.out, result, records, pred_path)
    except OSError as exc:
        raise CLIError(
            f"the result (printed above) could not be saved to {args.out or pred_path} "
            f"({exc.strerror or exc}): copy it from the output, or fix the path"
        ) from exc
    return 0
