"""Statistics of the report: Wilson intervals, mean ± std, exact McNemar on paired examples.

docs/protocol.md: accuracies carry 95 % Wilson intervals over the N examples; a randomized defense
is reported as mean ± std over attack seeds (clean accuracy of a training method over training
seeds); two models attacked on the same examples are compared pairwise with an exact McNemar
test on robust-or-not (and correct-or-not) per example.

An example is *robust* when its result type is ``failed`` (the model was right and the attack
did not flip it); ``skipped`` (wrong before the attack) and ``successful`` are not robust. It
is *correct* (clean) unless ``skipped``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rsmi.errors import StoreError

FAILED, SKIPPED = "failed", "skipped"


def wilson(successes: int, n: int, level: float = 0.95) -> tuple[float, float] | None:
    """The Wilson score interval of ``successes / n``, in percent (None when ``n`` is 0)."""
    if n <= 0:
        return None
    from statsmodels.stats.proportion import proportion_confint

    k = min(max(int(successes), 0), int(n))
    lo, hi = proportion_confint(k, int(n), alpha=1.0 - level, method="wilson")
    return 100.0 * float(lo), 100.0 * float(hi)


def mean_std(values: Iterable[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (ddof = 1; 0 for one value) of the non-missing values."""
    xs = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not xs:
        return None, None
    mean = sum(xs) / len(xs)
    if len(xs) == 1:
        return mean, 0.0
    return mean, math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1))


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts ``b`` and ``c``."""
    if b + c == 0:
        return 1.0
    from statsmodels.stats.contingency_tables import mcnemar

    return float(mcnemar([[0, b], [c, 0]], exact=True).pvalue)


def robust_by_index(records: Iterable[Mapping[str, Any]]) -> dict[int, bool]:
    """``{example index: robust}`` of an attack run's records."""
    return {int(r["index"]): r.get("result_type") == FAILED for r in records}


def _texts_by_index(records: Iterable[Mapping[str, Any]]) -> dict[int, Any]:
    """``{example index: (data index, original text)}`` where the records keep them."""
    out = {}
    for r in records:
        if "original_text" in r or "data_index" in r:
            out[int(r["index"])] = (r.get("data_index"), r.get("original_text"))
    return out


def correct_by_index(records: Iterable[Mapping[str, Any]]) -> dict[int, bool]:
    """``{example index: correct before the attack}`` of an attack run's records."""
    return {int(r["index"]): r.get("result_type") != SKIPPED for r in records}


@dataclass(frozen=True)
class PairedComparison:
    """Two models attacked on the same examples: robust (and correct) per example, paired.

    ``b``: examples robust under A only; ``c``: robust under B only; ``p_value``: exact
    McNemar on (b, c). ``clean_b``, ``clean_c``, ``clean_p_value``: the same on clean
    correctness (``clean_acc_a``, ``clean_acc_b``: clean accuracies). Accuracies in percent.
    """

    label_a: str
    label_b: str
    seed_a: int | None
    seed_b: int | None
    n: int
    aua_a: float
    aua_b: float
    b: int
    c: int
    p_value: float
    clean_acc_a: float
    clean_acc_b: float
    clean_b: int
    clean_c: int
    clean_p_value: float


def compare_records(
    records_a: Sequence[Mapping[str, Any]],
    records_b: Sequence[Mapping[str, Any]],
    *,
    label_a: str = "A",
    label_b: str = "B",
    seed_a: int | None = None,
    seed_b: int | None = None,
) -> PairedComparison:
    """Exact McNemar of two runs' per-example records, matched by example index.

    When one run attacked a prefix of the other's sample (100 of the same seeded 300, say),
    the test runs on the examples both attacked, and ``n`` says how many. Raises StoreError
    when neither run's examples contain the other's, or when a shared index holds a different
    text (another sample, data or cut): a paired test on different examples means nothing.
    """
    ra, rb = robust_by_index(records_a), robust_by_index(records_b)
    if not ra or not rb or not (set(ra) <= set(rb) or set(rb) <= set(ra)):
        only_a, only_b = sorted(set(ra) - set(rb)), sorted(set(rb) - set(ra))
        raise StoreError(
            f"{label_a} and {label_b} were not attacked on the same examples "
            f"({len(ra)} vs {len(rb)} records; only in A: {only_a[:5]}, only in B: {only_b[:5]}): "
            "a paired comparison needs the same sample (same data, split, sample seed; one N "
            "may be a prefix of the other)"
        )
    idx = sorted(set(ra) & set(rb))
    ta, tb = _texts_by_index(records_a), _texts_by_index(records_b)
    differ = [i for i in idx if i in ta and i in tb and ta[i] != tb[i]]
    if differ:
        raise StoreError(
            f"{label_a} and {label_b} hold different texts at example indices {differ[:5]}: "
            "they attacked different samples (data, split, sample seed or word cut); a paired "
            "comparison needs the same examples"
        )
    ca, cb = correct_by_index(records_a), correct_by_index(records_b)
    n = len(idx)
    b = sum(ra[i] and not rb[i] for i in idx)
    c = sum(rb[i] and not ra[i] for i in idx)
    cb_ = sum(ca[i] and not cb[i] for i in idx)
    cc_ = sum(cb[i] and not ca[i] for i in idx)
    return PairedComparison(
        label_a=label_a,
        label_b=label_b,
        seed_a=seed_a,
        seed_b=seed_b,
        n=n,
        aua_a=100.0 * sum(ra[i] for i in idx) / n,
        aua_b=100.0 * sum(rb[i] for i in idx) / n,
        b=b,
        c=c,
        p_value=mcnemar_exact(b, c),
        clean_acc_a=100.0 * sum(ca[i] for i in idx) / n,
        clean_acc_b=100.0 * sum(cb[i] for i in idx) / n,
        clean_b=cb_,
        clean_c=cc_,
        clean_p_value=mcnemar_exact(cb_, cc_),
    )
