"""Statistics of the report: Wilson intervals, mean ± std, exact McNemar on paired examples.

docs/protocol.md: accuracies carry 95 % Wilson intervals over the N examples; a randomized defense
is reported as mean ± std over attack seeds (clean accuracy of a training method over training
seeds); two models attacked on the same examples are compared pairwise with an exact McNemar
test on robust-or-not (and correct-or-not) per example.

An example is *robust* when its result type is ``failed`` (the model was right and the attack
did not flip it); ``skipped`` (wrong before the attack) and ``successful`` are not robust. It
is *correct* (clean) unless ``skipped``. These are the protocol threat model's verdicts (single
draws); under the deployed threat models (records with fresh draws, rsmi.attacks.fresh) a pair
uses majority verdicts for McNemar and each example's [attacked] × p(correct) for the paired
bootstrap of the deployed AUA (:class:`DeployedComparison`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
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
    # per example (shared indices, in order): robust under A, under B; the bootstrap reads them
    robust_a: tuple[bool, ...] = field(default=(), repr=False, compare=False)
    robust_b: tuple[bool, ...] = field(default=(), repr=False, compare=False)
    training_seed_a: int | None = None
    training_seed_b: int | None = None
    # the deployed threat models on the same examples (majority verdicts of fresh draws), None
    # unless both runs have them (or one is deterministic): :func:`deployed_comparison`
    deployed: DeployedComparison | None = field(default=None, repr=False, compare=False)

    @property
    def across_training_seeds(self) -> bool:
        """A and B are models of different training seeds (both recorded and unequal)."""
        return (self.training_seed_a is not None and self.training_seed_b is not None
                and self.training_seed_a != self.training_seed_b)

    @cached_property
    def interval(self) -> PairedInterval:
        """Difference and ratio of the AUAs with paired bootstrap 95 % intervals (seeded)."""
        return paired_bootstrap(self.robust_a, self.robust_b)


def compare_records(
    records_a: Sequence[Mapping[str, Any]],
    records_b: Sequence[Mapping[str, Any]],
    *,
    label_a: str = "A",
    label_b: str = "B",
    seed_a: int | None = None,
    seed_b: int | None = None,
    deterministic: tuple[bool, bool] = (False, False),
) -> PairedComparison:
    """Exact McNemar of two runs' per-example records, matched by example index.

    Protocol verdicts (:data:`FAILED` = robust). When both runs' records hold fresh-draw
    verdicts, ``deployed`` is the same comparison under the deployed threat models
    (:func:`deployed_comparison`; ``deterministic``: A's / B's model answers without
    randomness, so records without fresh draws stand for their deployed verdicts).

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
        robust_a=tuple(ra[i] for i in idx),
        robust_b=tuple(rb[i] for i in idx),
        deployed=deployed_comparison(records_a, records_b, idx, deterministic),
    )


# ---- the deployed threat models: majority verdicts and p(correct) of fresh draws ----

P_ORIGINAL, P_PERTURBED = "p_correct_original", "p_correct_perturbed"  # rsmi.attacks.fresh


def deployed_by_index(
    records: Iterable[Mapping[str, Any]], deterministic: bool = False
) -> dict[int, tuple[float, float]] | None:
    """``{example index: (p_correct_original, p_correct_perturbed)}`` of a run's records, from
    their fresh draws (rsmi.attacks.fresh); None when a record lacks them. A ``deterministic``
    model's record without them reads its protocol verdict (p ∈ {0, 1}: correct unless
    skipped; correct on the final text iff the attack failed), which is its deployed one."""
    out: dict[int, tuple[float, float]] = {}
    for r in records:
        if P_ORIGINAL in r and P_PERTURBED in r:
            out[int(r["index"])] = (float(r[P_ORIGINAL]), float(r[P_PERTURBED]))
        elif deterministic:
            kind = r.get("result_type")
            out[int(r["index"])] = (float(kind != SKIPPED), float(kind == FAILED))
        else:
            return None
    return out


def _has_fresh_draws(records: Iterable[Mapping[str, Any]]) -> bool:
    return any(P_ORIGINAL in r for r in records)


@dataclass(frozen=True)
class DeployedComparison:
    """Two runs on the same N examples under the deployed threat models (docs/report.md).

    Per example, *attacked* = the majority of the clean text's fresh draws is correct
    (p_correct_original > 0.5) and *robust* (majority verdict) = attacked and the majority of
    the final text's draws is correct (p_correct_perturbed > 0.5). ``b`` / ``c``: robust
    under A only / B only, ``p_value``: exact McNemar on them. ``aua_a`` / ``aua_b``: deployed
    AUA for one submission, mean of [attacked] × p_correct_perturbed (percent); ``majority_a``
    / ``majority_b``: the majority AUAs. ``derived_a`` / ``derived_b``: that side is a
    deterministic model without fresh draws, read from its protocol verdicts.
    """

    n: int
    aua_a: float
    aua_b: float
    majority_a: float
    majority_b: float
    b: int
    c: int
    p_value: float
    values_a: tuple[float, ...] = field(default=(), repr=False, compare=False)
    values_b: tuple[float, ...] = field(default=(), repr=False, compare=False)
    derived_a: bool = False
    derived_b: bool = False

    @cached_property
    def interval(self) -> PairedInterval:
        """Difference and ratio of the deployed AUAs (1 submission), paired bootstrap 95 %."""
        return paired_bootstrap_values(self.values_a, self.values_b)


def deployed_comparison(
    records_a: Sequence[Mapping[str, Any]],
    records_b: Sequence[Mapping[str, Any]],
    indices: Sequence[int],
    deterministic: tuple[bool, bool] = (False, False),
) -> DeployedComparison | None:
    """The deployed comparison of two runs on the example ``indices`` both hold; None unless
    each run has fresh-draw verdicts there (or is deterministic) and one of them has them."""
    da = deployed_by_index(records_a, deterministic[0])
    db = deployed_by_index(records_b, deterministic[1])
    fresh_a, fresh_b = _has_fresh_draws(records_a), _has_fresh_draws(records_b)
    if da is None or db is None or not (fresh_a or fresh_b) or not indices:
        return None

    def verdicts(d: Mapping[int, tuple[float, float]]) -> tuple[list[float], list[bool]]:
        attacked = [d[i][0] > 0.5 for i in indices]
        values = [float(att) * d[i][1] for att, i in zip(attacked, indices, strict=True)]
        robust = [att and d[i][1] > 0.5 for att, i in zip(attacked, indices, strict=True)]
        return values, robust

    (va, rob_a), (vb, rob_b) = verdicts(da), verdicts(db)
    n = len(indices)
    b = sum(x and not y for x, y in zip(rob_a, rob_b, strict=True))
    c = sum(y and not x for x, y in zip(rob_a, rob_b, strict=True))
    return DeployedComparison(
        n=n, aua_a=100.0 * sum(va) / n, aua_b=100.0 * sum(vb) / n,
        majority_a=100.0 * sum(rob_a) / n, majority_b=100.0 * sum(rob_b) / n,
        b=b, c=c, p_value=mcnemar_exact(b, c), values_a=tuple(va), values_b=tuple(vb),
        derived_a=not fresh_a, derived_b=not fresh_b,
    )


# ---- paired bootstrap of two AUAs: difference and ratio (docs/report.md, "Intervals") ----

BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class PairedInterval:
    """Difference (A − B, points) and ratio (A / B) of two AUAs on the same N examples, with
    paired bootstrap percentile intervals. ``ratio`` and ``ratio_ci`` are None when B's AUA is
    0 (the ratio is undefined); ``ratio_ci``'s upper bound is ``inf`` when some resamples have
    B's AUA at 0."""

    n: int
    aua_a: float
    aua_b: float
    diff: float
    diff_ci: tuple[float, float]
    ratio: float | None
    ratio_ci: tuple[float, float] | None
    level: float
    resamples: int
    seed: int


def paired_bootstrap(
    robust_a: Sequence[bool],
    robust_b: Sequence[bool],
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    level: float = 0.95,
) -> PairedInterval:
    """Paired bootstrap of AUA(A) − AUA(B) (points) and AUA(A) / AUA(B) on the same examples.

    ``robust_a[i]`` and ``robust_b[i]`` are the outcomes of one example under A and B. Each
    resample draws the N examples with replacement, keeping each example's pair together;
    since an example is one of four kinds (robust under both, A only, B only, neither), a
    resample is drawn as the multinomial counts of those kinds (the same distribution as
    resampling indices, at no memory cost). Percentile intervals at ``level``; seeded, so the
    same outcomes give the same interval.
    """
    import numpy as np

    a = np.asarray(robust_a, dtype=bool)
    b = np.asarray(robust_b, dtype=bool)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(
            f"paired bootstrap needs two equally long, non-empty outcome lists "
            f"(got {a.shape} and {b.shape})"
        )
    n = int(a.size)
    cells = np.array([(a & b).sum(), (a & ~b).sum(), (~a & b).sum(), (~a & ~b).sum()])
    counts = np.random.default_rng(seed).multinomial(n, cells / n, size=int(resamples))
    aua_a = (counts[:, 0] + counts[:, 1]) / n
    aua_b = (counts[:, 0] + counts[:, 2]) / n
    return _percentile_interval(aua_a, aua_b, 100.0 * a.mean(), 100.0 * b.mean(),
                                n=n, level=level, seed=seed)


RESAMPLE_CHUNK = 500  # resamples drawn at once by paired_bootstrap_values (memory: chunk × N)


def bootstrap_mean_interval(
    values: Sequence[float],
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    level: float = 0.95,
) -> tuple[float, float] | None:
    """Percentile bootstrap interval (percent) of the mean of per-example values in [0, 1] —
    the deployed AUA's [attacked] × p(correct)^k — resampling the N examples with replacement;
    seeded, so the same values give the same interval. None for no values."""
    import numpy as np

    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or v.size == 0:
        return None
    (means,) = _resampled_means((v,), resamples, seed)
    tail = (1.0 - level) / 2.0
    lo, hi = np.quantile(100.0 * means, [tail, 1.0 - tail], method="inverted_cdf")
    return float(lo), float(hi)


def paired_bootstrap_values(
    values_a: Sequence[float],
    values_b: Sequence[float],
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    level: float = 0.95,
) -> PairedInterval:
    """:func:`paired_bootstrap` of per-example values in [0, 1] (the deployed AUA's
    [attacked] × p(correct)): each resample draws the N example indices with replacement,
    keeping each example's pair of values together; the AUA of a resample is the mean of its
    values. Percentile intervals at ``level``, seeded."""
    import numpy as np

    a = np.asarray(values_a, dtype=float)
    b = np.asarray(values_b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(
            f"paired bootstrap needs two equally long, non-empty value lists "
            f"(got {a.shape} and {b.shape})"
        )
    aua_a, aua_b = _resampled_means((a, b), resamples, seed)
    return _percentile_interval(aua_a, aua_b, 100.0 * a.mean(), 100.0 * b.mean(),
                                n=int(a.size), level=level, seed=seed)


def _resampled_means(arrays: Sequence[Any], resamples: int, seed: int) -> list[Any]:
    """The mean of each equally long array over the same seeded resamples of its indices
    (drawn ``RESAMPLE_CHUNK`` at a time: memory chunk × N)."""
    import numpy as np

    n, rng = len(arrays[0]), np.random.default_rng(seed)
    means: list[list[Any]] = [[] for _ in arrays]
    for start in range(0, int(resamples), RESAMPLE_CHUNK):
        idx = rng.integers(0, n, size=(min(RESAMPLE_CHUNK, int(resamples) - start), n))
        for out, values in zip(means, arrays, strict=True):
            out.append(values[idx].mean(axis=1))
    return [np.concatenate(m) for m in means]


def _percentile_interval(aua_a: Any, aua_b: Any, point_a: float, point_b: float, *, n: int,
                         level: float, seed: int) -> PairedInterval:
    """The :class:`PairedInterval` of resampled AUAs (fractions) around the point AUAs (%)."""
    import numpy as np

    resamples = len(aua_a)
    tail = (1.0 - level) / 2.0
    qs = [tail, 1.0 - tail]
    diff = 100.0 * (aua_a - aua_b)
    lo, hi = np.quantile(diff, qs, method="inverted_cdf")
    ratio = ratio_ci = None
    if point_b > 0:
        ratio = float(point_a / point_b)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(aua_b > 0, aua_a / np.where(aua_b > 0, aua_b, 1.0),
                         np.where(aua_a > 0, np.inf, np.nan))
        r = r[~np.isnan(r)]  # 0 / 0: both AUAs 0 in the resample, no ratio
        rlo, rhi = np.quantile(r, qs, method="inverted_cdf")
        ratio_ci = (float(rlo), float(rhi))
    return PairedInterval(
        n=n, aua_a=float(point_a), aua_b=float(point_b), diff=float(point_a - point_b),
        diff_ci=(float(lo), float(hi)), ratio=ratio, ratio_ci=ratio_ci, level=level,
        resamples=int(resamples), seed=seed,
    )


def ratio_verdict(ratio_ci: tuple[float, float] | None, factor: float) -> str:
    """"Is A ≥ factor × B?" from the ratio's interval: ``yes`` (lower bound ≥ factor), ``no``
    (upper bound < factor), ``undetermined`` (the interval holds ``factor``) or ``undefined``
    (no ratio: B's AUA is 0)."""
    if ratio_ci is None:
        return "undefined"
    if ratio_ci[0] >= factor:
        return "yes"
    if ratio_ci[1] < factor:
        return "no"
    return "undetermined"


def difference_wording(diff_ci: tuple[float, float]) -> str:
    """One line for the difference A − B (points) from its interval.

    An interval holding 0 is "not separable; a difference larger than X points is excluded"
    (X: the larger absolute bound), never "refuted"; otherwise which is higher, by how much.
    """
    lo, hi = diff_ci
    if lo <= 0.0 <= hi:
        bound = max(abs(lo), abs(hi))
        return f"not separable; a difference larger than {bound:.1f} points is excluded"
    if lo > 0:
        return f"A higher by {lo:.1f} to {hi:.1f} points"
    return f"B higher by {-hi:.1f} to {-lo:.1f} points"


def verdict(interval: PairedInterval, factor: float | None = None,
            across_training_seeds: bool = False) -> str:
    """The one-line wording of a pair: the difference, optionally "A ≥ factor × B?" and a mark
    when A and B come from different training seeds."""
    parts = [difference_wording(interval.diff_ci)]
    if factor is not None:
        parts.append(f"A ≥ {factor:g}× B: {ratio_verdict(interval.ratio_ci, factor)}")
    elif interval.ratio is None:
        parts.append("ratio undefined (B's AUA is 0)")
    if across_training_seeds:
        parts.append("pair across training seeds")
    return "; ".join(parts)
