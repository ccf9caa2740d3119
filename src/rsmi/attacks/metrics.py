"""Metrics of an attack run, computed from its per-example records (docs/protocol.md).

One pure function, :func:`compute_metrics`, turns the records of ``examples.jsonl`` into the
numbers of ``summary.json``; a finished run, a resumed run, a merge of shards and a later
recomputation all call it, so they cannot disagree.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rsmi.errors import StoreError
from rsmi.store.metric_keys import COUNT_KEYS, METRIC_KEYS  # the one declaration

SUCCESSFUL, FAILED, SKIPPED = "successful", "failed", "skipped"
RESULT_TYPES = (SUCCESSFUL, FAILED, SKIPPED)


def _mean(values: Sequence[float]) -> float | None:
    return float(sum(values) / len(values)) if values else None


def compute_metrics(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """TextDefender's metrics over per-example records.

    Each record needs ``result_type`` (successful/failed/skipped), ``queries``,
    ``forward_passes`` and ``perturbed_word_pct``. Percentages are in [0, 100].

    * clean_accuracy = (successful + failed) / all: skipped examples were misclassified
      before any perturbation.
    * accuracy_under_attack = failed / all.
    * attack_success_rate = successful / (successful + failed).
    * avg_queries, avg_forward_passes: per attacked (not skipped) example; also queries of
      successful and failed attacks apart.
    * avg_perturbed_word_pct: mean share of words changed in successful attacks.

    Averages over an empty set are ``None``. An example (``seed``, ``index``) given twice is a
    :class:`~rsmi.errors.StoreError`: no metric counts one twice.
    """
    recs = list(records)
    for rec in recs:
        if rec.get("result_type") not in RESULT_TYPES:
            raise StoreError(
                f"record {rec.get('index')} has result_type {rec.get('result_type')!r}; "
                f"expected one of {', '.join(RESULT_TYPES)}"
            )
    seen: set[tuple[Any, Any]] = set()
    for rec in recs:
        key = (rec.get("seed"), rec.get("index"))
        if key[1] is not None and key in seen:
            raise StoreError(
                f"example {key[1]} of seed {key[0]} appears twice among the records: each "
                "example counts once; remove the repeated record (see rsmi.attacks.read_records)"
            )
        seen.add(key)
    by_type = {t: [r for r in recs if r["result_type"] == t] for t in RESULT_TYPES}
    n = len(recs)
    n_succ, n_fail, n_skip = (len(by_type[t]) for t in RESULT_TYPES)
    attacked = by_type[SUCCESSFUL] + by_type[FAILED]
    pct = lambda k: 100.0 * k / n if n else None  # noqa: E731
    return {
        "num_examples": n,
        "num_successful": n_succ,
        "num_failed": n_fail,
        "num_skipped": n_skip,
        "clean_accuracy": pct(n_succ + n_fail),
        "accuracy_under_attack": pct(n_fail),
        "attack_success_rate": 100.0 * n_succ / len(attacked) if attacked else None,
        "avg_queries": _mean([r["queries"] for r in attacked]),
        "avg_queries_successful": _mean([r["queries"] for r in by_type[SUCCESSFUL]]),
        "avg_queries_failed": _mean([r["queries"] for r in by_type[FAILED]]),
        "avg_forward_passes": _mean([r["forward_passes"] for r in attacked]),
        "avg_perturbed_word_pct": _mean([r["perturbed_word_pct"] for r in by_type[SUCCESSFUL]]),
        "total_queries": int(sum(r["queries"] for r in recs)),
        "total_forward_passes": int(sum(r["forward_passes"] for r in recs)),
    }


def aggregate_seeds(per_seed: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean and sample standard deviation (ddof = 1; 0 for one seed) of each metric over seeds."""
    out: dict[str, Any] = {"num_seeds": len(per_seed)}
    for key in (*METRIC_KEYS, *COUNT_KEYS):
        values = [float(m[key]) for m in per_seed if m.get(key) is not None]
        if not values:
            out[key] = {"mean": None, "std": None}
            continue
        mean = sum(values) / len(values)
        var = sum((v - mean) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
        out[key] = {"mean": mean, "std": math.sqrt(var)}
    return out
