"""Word-substitution attacks on RSMI and plain classifiers (TextAttack 0.3.11, offline).

* :func:`run_attack`: attack a dataset sample with a recipe under a preset; per-example records
  (``examples.jsonl``), ``summary.json``, resume, shards, several seeds, EOT, transfer.
* :func:`merge_runs`: combine shards; :func:`split_run`: split a run in progress into shards;
  :func:`compute_metrics`: the metrics from records.
* :func:`render_summary`: the summary as a rich table.

TextAttack is the optional extra ``rsmi[attack]``. Importing this package does not import
it; it is loaded (offline, resources activated first) when an attack is built.
"""

from rsmi.attacks.config import (
    MLM_RECIPES,
    PRESETS,
    RECIPES,
    AttackConfig,
    parse_seeds,
    parse_shard,
)
from rsmi.attacks.merge import split_run
from rsmi.attacks.metrics import aggregate_seeds, compute_metrics
from rsmi.attacks.records import read_records
from rsmi.attacks.report import render_summary
from rsmi.attacks.runner import (
    AttackExample,
    merge_runs,
    recompute_summary,
    run_attack,
    sample_examples,
    shard_from_accelerate,
)

__all__ = [
    "MLM_RECIPES",
    "PRESETS",
    "RECIPES",
    "AttackConfig",
    "AttackExample",
    "aggregate_seeds",
    "compute_metrics",
    "merge_runs",
    "parse_seeds",
    "parse_shard",
    "read_records",
    "recompute_summary",
    "render_summary",
    "run_attack",
    "sample_examples",
    "shard_from_accelerate",
    "split_run",
]
