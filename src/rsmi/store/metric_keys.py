"""The keys of the metrics an attack run records (``summary.json``): one declaration.

:func:`rsmi.attacks.metrics.compute_metrics` writes them, :func:`rsmi.attacks.metrics.aggregate_seeds`
averages them over attack seeds, and the reports (:mod:`rsmi.reports`) average them over training
seeds. Definitions: docs/protocol.md (TextDefender's metrics). A new metric is added here once.
"""

from __future__ import annotations

# percentages and averages: mean ± std over seeds
METRIC_KEYS = (
    "clean_accuracy",
    "accuracy_under_attack",
    "attack_success_rate",
    "avg_queries",
    "avg_queries_successful",
    "avg_queries_failed",
    "avg_forward_passes",
    "avg_perturbed_word_pct",
)
# counts of examples (also averaged over seeds in an aggregate)
COUNT_KEYS = ("num_examples", "num_successful", "num_failed", "num_skipped")

__all__ = ["COUNT_KEYS", "METRIC_KEYS"]
