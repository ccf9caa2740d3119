"""Grouping: the rows of a report in display order, aggregated over training seeds, paired.

:class:`ResultSet` loads every result under the paths given (:mod:`rsmi.reports.discovery`,
:mod:`rsmi.reports.adapters`) and groups them for the renderers: by dataset and attack, rows
that differ only by training seed (:func:`aggregate_training_seeds`), and runs attacked on the
same examples (:func:`compare`, exact McNemar; under the deployed threat models too when the
runs have fresh draws).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rsmi.errors import StoreError
from rsmi.reports import stats
from rsmi.reports.adapters import load_row
from rsmi.reports.discovery import NoResultsYet, find_results, is_glob
from rsmi.reports.rows import CLEAN, FRESH_METRICS, INCOMPLETE, ResultRow
from rsmi.store.metric_keys import METRIC_KEYS
from rsmi.store.names import EVALUATION_FILE, EXAMPLES_FILE, SUMMARY_FILE

# what a row aggregated over training seeds averages: every metric and N
AGGREGATED_KEYS = (*METRIC_KEYS, "num_examples", *FRESH_METRICS)  # fresh: deployed threat models


def _attack_order(attack: str) -> tuple[int, str]:
    return (0 if attack == CLEAN else 1, attack)


@dataclass
class ResultSet:
    """Every row of a report, in display order, with the groupings renderers need."""

    rows: list[ResultRow]

    def __post_init__(self) -> None:
        # One model trained on several seeds: its rows name their seed (labels, plots, pairs).
        seeds: dict[tuple[str, str], set[int]] = {}
        for row in self.rows:
            if row.training_seed is not None:
                seeds.setdefault((row.dataset, row.model), set()).add(row.training_seed)
        for row in self.rows:
            if len(seeds.get((row.dataset, row.model), ())) > 1:
                row.seed_shown = True

    @classmethod
    def load(cls, paths: Iterable[str | Path], *, sort: bool = True) -> ResultSet:
        """Rows of every result found under ``paths`` (a file given twice is read once)."""
        files: list[Path] = []
        empty: list[str] = []
        for p in paths:
            try:
                found = find_results(p)
            except (FileNotFoundError, StoreError):
                if not is_glob(p):
                    raise
                empty.append(str(p))  # a glob of runs not made yet adds nothing ...
                continue
            for f in found:
                if f.resolve() not in {g.resolve() for g in files}:
                    files.append(f)
        if empty and not files:  # ... unless nothing at all was found
            raise NoResultsYet(
                f"no results: {', '.join(empty)} match no {SUMMARY_FILE} or {EVALUATION_FILE}"
            )
        rows = [load_row(f) for f in files]
        if sort:
            rows.sort(key=lambda r: (r.dataset, _attack_order(r.attack), r.method, r.model))
        return cls(rows)

    def __iter__(self) -> Iterator[ResultRow]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def groups(self) -> list[tuple[str, list[tuple[str, list[ResultRow]]]]]:
        """``[(dataset, [(attack, rows), ...]), ...]`` in display order."""
        out: dict[str, dict[str, list[ResultRow]]] = {}
        for row in self.rows:
            out.setdefault(row.dataset, {}).setdefault(row.attack, []).append(row)
        return [(d, list(attacks.items())) for d, attacks in out.items()]

    @property
    def attack_rows(self) -> list[ResultRow]:
        return [r for r in self.rows if r.kind == "attack"]

    def training_seed_groups(self) -> list[ResultRow]:
        """Rows that differ only by training seed, aggregated: mean ± std over training seeds.

        Only groups of at least two rows, each with its own training seed, are returned (the
        same seed twice, e.g. two evaluations of one model, is not a spread over seeds).
        """
        groups: dict[tuple[Any, ...], list[ResultRow]] = {}
        for row in self.rows:
            if row.training_seed is not None:
                groups.setdefault(row.identity, []).append(row)
        out = []
        for members in groups.values():
            seeds = {r.training_seed for r in members}
            if len(members) >= 2 and len(seeds) == len(members):
                out.append(aggregate_training_seeds(members))
        return out

    def pairs(self, reference: Sequence[str] = ()) -> list[stats.PairedComparison]:
        """Exact McNemar of every two attack runs on one dataset, under one attack, on the same
        example indices (first attack seed of each run); then each adaptive run (transfer, EOT)
        against the plain runs of its recipe on that dataset: the same model's (is the plain
        attack the stronger?) and those of deterministic models (base, FreeLB++: their plain
        attack is already the adaptive one), i.e. does the defense still beat them?

        ``reference``: model names that go on the B side (the denominator of the ratio): a pair
        with one of them is oriented "other vs reference", two of them "later-listed vs
        earlier-listed" (``("base", "freelb")``: rsmi vs base, rsmi vs freelb, freelb vs base)."""
        # a run stopped early ("(incomplete)") attacked a prefix of its sample: it pairs with
        # the finished runs of its attack on the examples it holds
        same: dict[tuple[str, str], list[ResultRow]] = {}
        for row in self.attack_rows:
            if row.records:
                same.setdefault((row.dataset, row.attack.removesuffix(INCOMPLETE)), []).append(row)
        candidates = [(a, b) for runs in same.values()
                      for i, a in enumerate(runs) for b in runs[i + 1:]]
        for (dataset, attack), runs in same.items():
            for row in runs:
                if (row.plain_attack or attack) == attack:
                    continue  # not an adaptive run
                plain = same.get((dataset, row.plain_attack), [])
                same_model = [r for r in plain if r.model == row.model]
                deterministic = [r for r in plain if r.model != row.model and r.method != "rsmi"]
                candidates.extend((base, row) for base in same_model + deterministic)
        out = []
        for a, b in candidates:
            if _reference_rank(a, reference) < _reference_rank(b, reference):
                a, b = b, a
            try:
                out.append(compare(a, b)[0])
            except ValueError:
                continue
        return out


def _reference_rank(row: ResultRow, reference: Sequence[str]) -> int:
    """How much of a reference the row's model is: lower = more (B side); others rank last."""
    return reference.index(row.model) if row.model in reference else len(reference)


def aggregate_training_seeds(rows: Sequence[ResultRow]) -> ResultRow:
    """One row: each metric as mean ± std over ``rows`` (one per training seed)."""
    first = rows[0]
    metrics: dict[str, Any] = {}
    for key in AGGREGATED_KEYS:
        values = [r.value(key)[0] for r in rows]
        if key in FRESH_METRICS and None in values:  # not every seed has fresh draws: no
            values = []  # spread over seeds to show (one seed's figure is not a mean ± std)
        mean, std = stats.mean_std(values)
        metrics[key] = {"mean": mean, "std": std}
    seeds = sorted(r.training_seed for r in rows if r.training_seed is not None)
    models = sorted({r.model for r in rows})
    return ResultRow(
        model=models[0] if len(models) == 1 else ", ".join(models),
        method=first.method,
        attack=first.attack,
        metrics=metrics,
        source=", ".join(r.source for r in rows),
        kind=first.kind,
        dataset=first.dataset,
        seeds=first.seeds,
        settings=first.settings,
        label_names=first.label_names,
        provenance={"dtype": first.dtype, "training seeds": ", ".join(map(str, seeds)),
                    "files": ", ".join(r.source for r in rows)},
        training_seeds=seeds,
    )


def compare(row_a: ResultRow, row_b: ResultRow) -> list[stats.PairedComparison]:
    """Exact McNemar of two attack runs, per attack seed.

    Runs with the same attack seeds are paired seed by seed; otherwise a single-seed run (a
    deterministic model) is paired with each seed of the other. Raises StoreError when a run
    kept no examples or the runs did not attack the same example indices.
    """
    for row in (row_a, row_b):
        if not row.records:
            raise StoreError(
                f"{row.source} has no {EXAMPLES_FILE} beside it: a paired comparison needs "
                "the per-example records of both runs"
            )
    seeds_a, seeds_b = list(row_a.records), list(row_b.records)
    if seeds_a == seeds_b:
        pairs = list(zip(seeds_a, seeds_b, strict=True))
    elif len(seeds_a) == 1:
        pairs = [(seeds_a[0], s) for s in seeds_b]
    elif len(seeds_b) == 1:
        pairs = [(s, seeds_b[0]) for s in seeds_a]
    else:
        common = [s for s in seeds_a if s in seeds_b]
        if not common:
            raise StoreError(
                f"{row_a.source} (seeds {seeds_a}) and {row_b.source} (seeds {seeds_b}) share no "
                "attack seed: compare runs with the same seeds, or a single-seed run with another"
            )
        pairs = [(s, s) for s in common]
    deterministic = (row_a.deterministic, row_b.deterministic)
    return [
        replace(
            stats.compare_records(
                row_a.records[sa], row_b.records[sb], label_a=row_a.label, label_b=row_b.label,
                seed_a=sa, seed_b=sb, deterministic=deterministic,
            ),
            training_seed_a=row_a.training_seed, training_seed_b=row_b.training_seed,
        )
        for sa, sb in pairs
    ]


