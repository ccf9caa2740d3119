"""Results as tables, a Markdown report, an HTML report and generated docs tables.

One model of the results (:mod:`rsmi.reports.model`: :class:`ResultRow`, :class:`ResultSet`)
is read from the JSON files runs write; every renderer takes it: the terminal and Markdown
tables (:mod:`~rsmi.reports.tables`), plots (:mod:`~rsmi.reports.plots`), the HTML page
(:mod:`~rsmi.reports.html`) and the tables kept in the docs (:mod:`~rsmi.reports.docs`).
Statistics (Wilson intervals, mean ± std, exact McNemar, paired bootstraps; majority verdicts of
the deployed threat models) live in :mod:`~rsmi.reports.stats`; the threat models' names and
descriptions, which every renderer shows, in :mod:`~rsmi.reports.threat_models`.
Only this package and the CLI know how results look on screen.
"""

from rsmi.reports.model import (
    CLEAN,
    ResultRow,
    ResultSet,
    aggregate_training_seeds,
    attack_label,
    compare,
    find_results,
    load_row,
)
from rsmi.reports.plots import plot
from rsmi.reports.stats import PairedComparison, compare_records, mcnemar_exact, wilson
from rsmi.reports.tables import (
    COLUMNS,
    DEFAULT_COLUMNS,
    markdown_pairs,
    markdown_report,
    markdown_table,
    rich_pairs,
    rich_table,
)

__all__ = [
    "CLEAN",
    "COLUMNS",
    "DEFAULT_COLUMNS",
    "PairedComparison",
    "ResultRow",
    "ResultSet",
    "aggregate_training_seeds",
    "attack_label",
    "compare",
    "compare_records",
    "find_results",
    "load_row",
    "markdown_pairs",
    "markdown_report",
    "markdown_table",
    "mcnemar_exact",
    "plot",
    "rich_pairs",
    "rich_table",
    "wilson",
]
