"""`rsmi evaluate`: clean accuracy and cost of a trained model on a dataset split."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rsmi.cli._common import (
    add_data_flags,
    add_dtype_flag,
    add_engine_flag,
    add_inference_flags,
    console,
    data_options,
    inference_overrides,
    resolve_device,
    with_engine,
)
from rsmi.cli.main import CLIError
from rsmi.errors import ConfigError
from rsmi.store.evaluation import (
    EvaluationSetup,
    build_evaluation,
    check_outputs,
    confusion_summary,
    evaluation_text,
    predictions_path,
    write_evaluation,
)
from rsmi.store.names import PREDICTIONS_FILE

__all__ = ["confusion_table", "predictions_path", "register", "run", "show_result", "summary_line"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="clean accuracy of a trained model (two-step prediction for RSMI models)",
        description="Clean accuracy with its 95 % Wilson interval, macro-F1, N and mean forward "
        "passes in one line, then the confusion matrix; --json prints the whole result (per-class "
        "accuracy, the share of inputs that needed step 2, ...) as JSON, as --out FILE holds it (with the "
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
    add_engine_flag(p)
    p.add_argument("--json", action="store_true",
                   help="print the whole result as JSON (what --out FILE holds) instead of the "
                   "summary line and the confusion matrix")
    p.add_argument("--out", metavar="FILE", default=None,
                   help="also write the JSON to FILE (e.g. DIR/evaluation.json)")
    p.add_argument("--predictions", metavar="FILE", default=None,
                   help=f"per-example predictions (default: {PREDICTIONS_FILE} beside --out)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --out / --predictions files that are not earlier rsmi evaluate "
                   "outputs")
    p.add_argument("--name", default=None, metavar="NAME",
                   help="the model's name in reports (default: its directory's name)")
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
    if args.name is not None and not args.name.strip():
        raise ConfigError("--name is empty: give the model's name for reports, or leave it out")
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
    clf = with_engine(clf, args.engine)
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
        predictions=None if pred_path is None else pred_path.name, name=args.name,
    )
    measured = {**measured, **confusion_summary(records, clf.label_names)}
    result = build_evaluation(setup, measured, clf.metadata)
    for warning in result.get("warnings", []):
        print(f"rsmi evaluate: warning: {warning}", file=sys.stderr)
    show_result(result, as_json=args.json)  # the result first: a failed save never loses it
    try:
        write_evaluation(args.out, result, records, pred_path)
    except OSError as exc:
        raise CLIError(
            f"the result (printed above) could not be saved to {args.out or pred_path} "
            f"({exc.strerror or exc}): copy it from the output, or fix the path"
        ) from exc
    return 0


def show_result(result: dict[str, Any], *, as_json: bool = False) -> None:
    """The result on stdout: one summary line and the confusion matrix, or (``as_json``) the JSON."""
    if as_json:
        print(evaluation_text(result), flush=True)
        return
    print(summary_line(result), flush=True)
    matrix = result.get("confusion_matrix")
    if matrix:
        console().print(confusion_table(matrix))


def summary_line(result: dict[str, Any]) -> str:
    """``clean accuracy 81.0 % [77.0, 84.5] (95 % Wilson), macro-F1 0.809, N = 400, ...``."""
    from rsmi.reports.stats import wilson

    n, accuracy = int(result["num_examples"]), float(result["clean_accuracy"])
    low, high = wilson(round(accuracy * n), n) or (float("nan"), float("nan"))
    f1 = result.get("macro_f1")
    step2 = result.get("second_step_share")
    return (
        f"clean accuracy {100 * accuracy:.1f} % [{low:.1f}, {high:.1f}] (95 % Wilson), "
        f"macro-F1 {'?' if f1 is None else f'{f1:.3f}'}, N = {n}, "
        f"{result.get('avg_forward_passes', 0):.1f} forward passes per text"
        + ("" if not step2 else f" (step 2 for {100 * step2:.0f} %)")
        + f" — {result.get('data')} {result.get('split')}"
    )


def confusion_table(matrix: dict[str, Any]) -> Any:
    """A rich table of ``confusion_matrix``: rows the gold labels, columns the predicted ones."""
    from rich.table import Table

    names = [str(n) for n in matrix["labels"]]
    table = Table(title="confusion matrix (rows: gold label, columns: predicted)")
    table.add_column("gold \\ predicted")
    for name in names:
        table.add_column(name, justify="right")
    table.add_column("N", justify="right")
    for name, row in zip(names, matrix["counts"], strict=True):
        table.add_row(name, *(str(v) for v in row), str(sum(row)))
    return table
