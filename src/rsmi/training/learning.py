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
