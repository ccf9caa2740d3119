"""A clean evaluation on disk: ``evaluation.json`` + ``predictions.jsonl``, one writer, one reader.

``rsmi evaluate --out`` and ``rsmi pipeline`` both write them here, in one shape
(docs/protocol.md, "An evaluation"):

* ``evaluation.json`` — what was evaluated (``model``, ``data``, ``split``, ``split_seed``,
  ``max_examples``), the measurements of :func:`rsmi.training.evaluate.evaluate_with_predictions`
  (``clean_accuracy``, ``per_class_accuracy``, ``avg_forward_passes``, ...), ``macro_f1`` and
  ``confusion_matrix`` (:func:`confusion_summary`, from ``rsmi evaluate``), the inference
  ``model_overrides``, the seeding scheme of the predictions' draws (``seeding``,
  :data:`rsmi.inference.SEEDING`; an evaluation without it was made under ``"index"``), the
  model's ``training`` record, the name of the ``predictions`` file, provenance, and
  ``warnings`` (a model that did not learn);
* ``predictions.jsonl`` — one record per example (``index``, ``label``, ``pred``, ``correct``,
  ``probs``, ``second_step``, ``forward_passes``, ``truncated``).

The predictions are written first and ``evaluation.json`` last (both atomically), so an
evaluation file that exists names predictions that exist.

**Which files may be replaced.** A path that is not a regular file (a directory, a device, a
FIFO) is refused. An existing file is replaced only when it is what rsmi writes there: an
``evaluation.json`` is a JSON object holding ``clean_accuracy`` and ``model``; a predictions file
starts with a JSON object holding ``index``, ``label`` and ``pred``. Anything else — the user's
own file, even an empty one — is refused unless ``overwrite`` is given.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rsmi.errors import OutputError, StoreError
from rsmi.inference import SEEDING
from rsmi.store.atomic import atomic_write_text, check_output_file
from rsmi.store.model_card import metadata_warning
from rsmi.store.names import EVALUATION_FILE, PREDICTIONS_FILE

# What marks a file as written by rsmi (see "Which files may be replaced").
EVALUATION_MARKS = ("clean_accuracy", "model")
PREDICTION_MARKS = ("index", "label", "pred")
_MAX_OWN_EVALUATION = 16 << 20  # an evaluation.json is a few kB; larger is not ours
_MAX_FIRST_LINE = 1 << 20


@dataclass(frozen=True)
class EvaluationSetup:
    """What an evaluation evaluated, as ``evaluation.json`` records it.

    Args:
        model: the model directory (or name) as given.
        data: the dataset name or path.
        split: the evaluated split.
        split_seed: the seed of the dataset split.
        max_examples: the size of the seeded subset (None: the whole split).
        model_overrides: inference settings that replaced the saved ones.
        predictions: the name of the predictions file beside it (None: not written).
        name: the model's name in reports (None: its directory's name; recorded when given).
    """

    model: str
    data: str
    split: str = "test"
    split_seed: int = 0
    max_examples: int | None = None
    model_overrides: Mapping[str, Any] = field(default_factory=dict)
    predictions: str | None = None
    name: str | None = None


def predictions_path(out: str | os.PathLike[str] | None, predictions: str | None) -> Path | None:
    """Where the per-example predictions go: ``predictions``, else beside ``out``.

    Beside ``DIR/evaluation.json`` they are ``DIR/predictions.jsonl``; beside ``DIR/NAME.json``
    they are ``DIR/NAME.predictions.jsonl``.
    """
    if predictions:
        return Path(predictions)
    if not out:
        return None
    out_path = Path(out)
    stem = Path(EVALUATION_FILE).stem
    name = PREDICTIONS_FILE if out_path.stem == stem else f"{out_path.stem}.{PREDICTIONS_FILE}"
    return out_path.with_name(name)


def build_evaluation(
    setup: EvaluationSetup, measured: Mapping[str, Any], metadata: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The content of ``evaluation.json`` (keys in the order written; docs/protocol.md).

    ``measured`` is the first result of :func:`rsmi.training.evaluate.evaluate_with_predictions`;
    ``metadata`` the model card's metadata (its ``training`` record and learning check).
    """
    from rsmi.provenance import provenance

    result = {
        "model": setup.model, "data": setup.data, "split": setup.split,
        "split_seed": setup.split_seed, "max_examples": setup.max_examples, **measured,
        "model_overrides": dict(setup.model_overrides),
        "seeding": SEEDING,  # the predictions were made by this rsmi's predict
        "training": (metadata or {}).get("training"),  # data, seed, lr, epoch of the weights
        "predictions": setup.predictions,
        **provenance(),
    }
    if setup.name is not None:
        result["name"] = setup.name
    warning = metadata_warning(metadata)
    if warning:
        result["warnings"] = [warning]
    return result


def confusion_summary(
    records: Iterable[Mapping[str, Any]], label_names: Sequence[str]
) -> dict[str, Any]:
    """``macro_f1`` and ``confusion_matrix`` of prediction records (added to evaluation.json).

    ``confusion_matrix`` is ``{"labels": names, "counts": rows}`` with ``counts[gold][pred]``;
    ``macro_f1`` is the mean F1 over the classes that occur as gold label or prediction.
    """
    size = len(label_names)
    counts = [[0] * size for _ in range(size)]
    for record in records:
        counts[int(record["label"])][int(record["pred"])] += 1
    scores = []
    for c in range(size):
        hits = counts[c][c]
        gold, predicted = sum(counts[c]), sum(row[c] for row in counts)
        if gold + predicted:
            scores.append(2.0 * hits / (gold + predicted))
    return {
        "macro_f1": sum(scores) / len(scores) if scores else None,
        "confusion_matrix": {"labels": list(label_names), "counts": counts},
    }


def evaluation_text(result: Mapping[str, Any]) -> str:
    """``evaluation.json`` as written (and as ``rsmi evaluate`` prints it), without final newline."""
    return json.dumps(result, indent=2)


def predictions_text(records: Iterable[Mapping[str, Any]]) -> str:
    """``predictions.jsonl`` as written: one JSON object per line."""
    return "".join(json.dumps(r) + "\n" for r in records)


def write_evaluation(
    out: str | os.PathLike[str] | None,
    result: Mapping[str, Any],
    records: Iterable[Mapping[str, Any]],
    predictions: str | os.PathLike[str] | None,
) -> None:
    """Write the predictions (when a path is given), then ``evaluation.json`` (when ``out``)."""
    if predictions is not None:
        atomic_write_text(predictions, predictions_text(records))
    if out is not None:
        atomic_write_text(out, evaluation_text(result) + "\n")


def read_evaluation(path: str | os.PathLike[str]) -> dict[str, Any]:
    """An ``evaluation.json`` (or a directory holding one); StoreError when unreadable."""
    path = Path(path)
    if path.is_dir():
        path = path / EVALUATION_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StoreError(f"cannot read evaluation {path} ({' '.join(str(exc).split())})") from exc
    if not isinstance(data, dict):
        raise StoreError(f"{path} does not hold a JSON object: it is not an rsmi evaluation")
    return data


def read_predictions(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of a ``predictions.jsonl``; StoreError naming the line that is not one."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise StoreError(f"cannot read predictions {path} ({exc})") from exc
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise StoreError(f"{path}, line {number}: not JSON ({exc.msg})") from exc
        if not isinstance(record, dict) or any(k not in record for k in PREDICTION_MARKS):
            raise StoreError(f"{path}, line {number}: not a prediction record")
        records.append(record)
    return records


# ---------------------------------------------------------------------------- ownership
def is_evaluation_file(path: Path) -> bool:
    """Whether ``path`` (a regular file) holds an rsmi evaluation (see the module docstring)."""
    try:
        if path.stat().st_size > _MAX_OWN_EVALUATION:
            return False
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and all(k in data for k in EVALUATION_MARKS)


def is_predictions_file(path: Path) -> bool:
    """Whether ``path`` (a regular file) starts with an rsmi prediction record."""
    try:
        with open(path, encoding="utf-8") as fh:
            first = fh.readline(_MAX_FIRST_LINE)
        record = json.loads(first)
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and all(k in record for k in PREDICTION_MARKS)


def check_outputs(
    out: str | os.PathLike[str] | None,
    predictions: str | os.PathLike[str] | None,
    *,
    overwrite: bool = False,
    what: tuple[str, str] = ("--out", "--predictions"),
) -> None:
    """Before any work: refuse output paths that are not regular files or not rsmi's to replace.

    ``what`` names the two paths in messages. Touches nothing.
    """
    from rsmi.rundir import check_writable

    for path, name, ours, kind in (
        (out, what[0], is_evaluation_file, "an rsmi evaluate result"),
        (predictions, what[1], is_predictions_file, "an rsmi predictions file"),
    ):
        if path is None:
            continue
        path = Path(path)
        check_output_file(path, name)
        check_writable(path, name)
        if path.exists() and not overwrite and not ours(path):
            raise OutputError(
                f"{name} {path} exists and is not {kind}: choose another file (or --overwrite "
                "to replace it)"
            )


__all__ = [
    "EvaluationSetup",
    "build_evaluation",
    "check_outputs",
    "confusion_summary",
    "evaluation_text",
    "is_evaluation_file",
    "is_predictions_file",
    "predictions_path",
    "predictions_text",
    "read_evaluation",
    "read_predictions",
    "write_evaluation",
]
