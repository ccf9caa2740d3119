"""Render an attack summary as a rich table (for ``rsmi attack`` and ``rsmi pipeline``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.table import Table

ROWS = (
    ("clean_accuracy", "clean accuracy %"),
    ("accuracy_under_attack", "accuracy under attack %"),
    ("attack_success_rate", "attack success rate %"),
    ("avg_queries", "avg queries"),
    ("avg_queries_successful", "avg queries (successful)"),
    ("avg_queries_failed", "avg queries (failed)"),
    ("avg_forward_passes", "avg forward passes"),
    ("avg_perturbed_word_pct", "perturbed words %"),
    ("num_examples", "examples"),
    ("num_successful", "successful"),
    ("num_failed", "failed"),
    ("num_skipped", "skipped"),
)


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def render_summary(summary: Mapping[str, Any], title: str | None = None) -> Table:
    """A table of the metrics; mean ± std over seeds when the summary has several."""
    if title is None:
        title = (
            f"{summary.get('recipe')} / {summary.get('preset')}"
            f" (eot={summary.get('eot')}, transfer={summary.get('transfer')}, "
            f"cache={summary.get('cache')})"
        )
    table = Table(title=title)
    table.add_column("metric")
    agg = summary.get("aggregate")
    if agg:
        table.add_column(f"mean ± std over seeds {summary.get('seeds')}", justify="right")
        for seed_summary in summary.get("per_seed", []):
            table.add_column(f"seed {seed_summary.get('seed')}", justify="right")
        for key, label in ROWS:
            cell = agg.get(key, {})
            mean, std = cell.get("mean"), cell.get("std")
            first = "–" if mean is None else f"{mean:.1f} ± {std:.1f}"
            table.add_row(label, first, *(_fmt(s.get(key)) for s in summary.get("per_seed", [])))
    else:
        table.add_column(f"seed {summary.get('seed')}", justify="right")
        for key, label in ROWS:
            table.add_row(label, _fmt(summary.get(key)))
    return table
