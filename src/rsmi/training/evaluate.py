"""Clean evaluation of a trained model, as deployed (two-step prediction for RSMI).

The measurements and per-example records here are written to disk by
:mod:`rsmi.store.evaluation` (``evaluation.json`` + ``predictions.jsonl``; docs/protocol.md).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from rsmi.classifier import RSMIClassifier
from rsmi.errors import ConfigError, DataError


def evaluate(
    clf: RSMIClassifier,
    examples: Sequence[Any],
    *,
    seed: int = 0,
    batch_size: int = 32,
    max_rows: int = 1024,
) -> dict[str, Any]:
    """Clean accuracy and cost of ``clf``; see :func:`evaluate_with_predictions`."""
    return evaluate_with_predictions(
        clf, examples, seed=seed, batch_size=batch_size, max_rows=max_rows
    )[0]


def evaluate_with_predictions(
    clf: RSMIClassifier,
    examples: Sequence[Any],
    *,
    seed: int = 0,
    batch_size: int = 32,
    max_rows: int = 1024,
    indices: Sequence[int] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Clean accuracy and cost of ``clf`` on labelled examples (objects with ``text``, ``label``).

    The prediction is ``clf.predict`` with the model's own configuration: the two-step
    Monte-Carlo predictor for an RSMI model, one deterministic pass for a plain one.

    Returns:
        A JSON-ready dict: ``clean_accuracy``, ``per_class_accuracy`` (by label name, with
        counts), ``avg_forward_passes`` (encoder forward passes per example),
        ``second_step_share`` (share of inputs that needed step 2), ``truncated_share``,
        ``num_examples``, ``seed``, ``seconds``, ``method``, the compute ``dtype`` and the RSMI
        ``config``; and one record per example (``index`` = ``indices[i]``, default ``i``;
        ``label``, ``pred``, ``correct``, ``probs``, ``second_step``, ``forward_passes``,
        ``truncated``) so that two models' clean results on the same examples can be compared
        pairwise.
    """
    items = list(examples)
    if not items:
        raise DataError("no examples to evaluate: the split (or --max-examples) leaves none")
    labels = np.array([int(e.label) for e in items])
    if labels.min() < 0 or labels.max() >= clf.num_labels:
        raise DataError(
            f"labels {sorted(set(labels.tolist()))} do not fit the model's {clf.num_labels} classes "
            f"{clf.label_names}: evaluate on data with the same label set"
        )
    start = time.perf_counter()
    pred = clf.predict([e.text for e in items], seed=seed, batch_size=batch_size, max_rows=max_rows)
    seconds = time.perf_counter() - start
    correct = pred.labels == labels
    per_class = {}
    for c, name in enumerate(clf.label_names):
        rows = labels == c
        per_class[name] = {
            "accuracy": float(correct[rows].mean()) if rows.any() else None,
            "num_examples": int(rows.sum()),
        }
    index = list(range(len(items))) if indices is None else [int(i) for i in indices]
    if len(index) != len(items):
        raise ConfigError(f"{len(index)} indices for {len(items)} examples: give one per example")
    records = [
        {
            "index": index[i],
            "label": int(labels[i]),
            "pred": int(pred.labels[i]),
            "correct": bool(correct[i]),
            "probs": [round(float(p), 6) for p in pred.probs[i]],
            "second_step": bool(pred.second_step[i]),
            "forward_passes": int(pred.forward_passes[i]),
            "truncated": bool(pred.truncated[i]),
        }
        for i in range(len(items))
    ]
    return {
        "clean_accuracy": float(correct.mean()),
        "per_class_accuracy": per_class,
        "avg_forward_passes": float(pred.forward_passes.mean()),
        "second_step_share": float(pred.second_step.mean()),
        "truncated_share": float(pred.truncated.mean()),
        "num_examples": len(items),
        "seed": seed,
        "seconds": seconds,
        "method": clf.method,
        "dtype": clf.compute_dtype,
        "engine": getattr(clf, "engine", "torch"),  # rsmi.engine; older evaluations: torch
        "config": clf.config.to_dict(),
    }, records
