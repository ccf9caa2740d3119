"""Did a training run learn? Dev accuracy against the majority-class rate."""

from __future__ import annotations

from typing import Any

import numpy as np

LEARNING_P_VALUE = 0.05  # dev accuracy must beat the majority-class rate at this level


def learning_check(accuracy: float, labels: np.ndarray) -> dict[str, Any]:
    """Whether dev accuracy is significantly above the majority-class rate.

    One-sided exact binomial test of ``correct ~ Bin(n, majority rate)``; ``learned`` is
    ``p < 0.05``. A model that is no better than always answering the commonest class learned
    nothing usable, however its accuracy looks.
    """
    from scipy.stats import binomtest

    n = int(len(labels))
    correct = int(round(accuracy * n))
    majority = float(np.bincount(labels).max() / n) if n else 1.0
    p = float(binomtest(correct, n, min(majority, 1.0), alternative="greater").pvalue) if n else 1.0
    return {"dev_accuracy": accuracy, "majority_rate": majority, "num_dev_examples": n,
            "p_value": p, "learned": bool(p < LEARNING_P_VALUE)}


def not_learned_warning(check: dict[str, Any]) -> str:
    """The one-line warning for a run whose :func:`learning_check` says it did not learn."""
    return (
        f"the model did not learn: dev accuracy {check['dev_accuracy']:.3f} is not significantly "
        f"above the majority-class rate {check['majority_rate']:.3f} (one-sided binomial test, "
        f"p = {check['p_value']:.3g}, n = {check['num_dev_examples']}); train longer, on more "
        "data, or with another --lr before using it"
    )
