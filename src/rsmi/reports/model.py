"""One model of the results, used by every renderer (terminal, Markdown, HTML, docs tables).

The model is split by job; this module gathers its public names (``from rsmi.reports.model
import ResultSet`` keeps working):

* :mod:`rsmi.reports.rows` — :class:`ResultRow` (one line of a report), :func:`attack_label`.
* :mod:`rsmi.reports.adapters` — :func:`load_row`: a row from a ``summary.json`` /
  ``evaluation.json``, old field names included.
* :mod:`rsmi.reports.discovery` — :func:`find_results`: the result files under a path or glob.
* :mod:`rsmi.reports.grouping` — :class:`ResultSet`: display order, training-seed aggregates,
  paired comparisons (:func:`compare`).

File names come from :mod:`rsmi.store.names`, metric keys from :mod:`rsmi.store.metric_keys`.
"""

from __future__ import annotations

from rsmi.reports.adapters import load_row
from rsmi.reports.discovery import NoResultsYet, find_results, is_glob
from rsmi.reports.grouping import AGGREGATED_KEYS, ResultSet, aggregate_training_seeds, compare
from rsmi.reports.rows import CLEAN, INCOMPLETE, RSMI_SETTINGS, ResultRow, attack_label
from rsmi.store.metric_keys import METRIC_KEYS
from rsmi.store.names import EVALUATION_FILE, EXAMPLES_FILE, SUMMARY_FILE

__all__ = [
    "AGGREGATED_KEYS",
    "CLEAN",
    "EVALUATION_FILE",
    "EXAMPLES_FILE",
    "INCOMPLETE",
    "METRIC_KEYS",
    "RSMI_SETTINGS",
    "SUMMARY_FILE",
    "NoResultsYet",
    "ResultRow",
    "ResultSet",
    "aggregate_training_seeds",
    "attack_label",
    "compare",
    "find_results",
    "is_glob",
    "load_row",
]
