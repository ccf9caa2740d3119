"""Result rows: one line of a report (a model evaluated clean or under one attack).

:class:`ResultRow` is what every renderer reads; :func:`attack_label` names an attack run the
way tables and plots show it. Rows are made from result files by :mod:`rsmi.reports.adapters`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from rsmi.reports import stats
from rsmi.store.names import EXAMPLES_FILE

INCOMPLETE = " (incomplete)"  # attack label suffix of a run stopped before its end
CLEAN = "none (clean)"
RSMI_SETTINGS = ("noise_std", "noise_every", "num_masks")  # RSMIConfig fields a sweep varies

# The deployed threat models' figures of a run (summary.json ``fresh_draws``, read by
# rsmi.reports.adapters): row metric key → the block's field. The attack-time figures
# (``accuracy_under_attack`` ...) are the protocol threat model's.
FRESH_METRICS = {
    "clean_deployed": "clean_accuracy",
    "aua_deployed": "accuracy_under_attack",
    "aua_deployed_k5": "accuracy_under_attack_k.5",
    "aua_deployed_k25": "accuracy_under_attack_k.25",
    "aua_majority": "majority_accuracy_under_attack",
}
# A deterministic model (no noise, no masks) answers every draw alike: its deployed figures are
# its protocol ones, read from these metrics when the run has no fresh draws.
FRESH_FROM_PROTOCOL = {
    "clean_deployed": "clean_accuracy",
    "aua_deployed": "accuracy_under_attack",
    "aua_deployed_k5": "accuracy_under_attack",
    "aua_deployed_k25": "accuracy_under_attack",
    "aua_majority": "accuracy_under_attack",
}


def attack_label(config: Mapping[str, Any]) -> str:
    """``textfooler``, ``textfooler (EOT m=8)``, ``textfooler (margin-EOT m=8 δ=0.2)``,
    ``textfooler (transfer)`` ... (the attacker: direct, EOT, adaptive margin-EOT, transfer)."""
    name = str(config.get("recipe", "?"))
    if config.get("transfer"):
        name += " (transfer)"
    margin = float(config.get("eot_margin", 0.0) or 0.0)
    if margin:
        name += f" (margin-EOT m={int(config.get('eot', 1) or 1)} δ={margin:g})"
    elif int(config.get("eot", 1) or 1) > 1:
        name += f" (EOT m={config['eot']})"
    preset = config.get("preset")
    if preset and preset != "textdefender":  # the protocol of every other row
        name += f" ({preset} preset)"
    if config.get("cache"):
        name += " (cached)"
    shard = config.get("shard") or (0, 1)
    if isinstance(shard, list | tuple) and len(shard) == 2 and int(shard[1]) > 1:
        name += f" (shard {int(shard[0])}/{int(shard[1])})"
    if config.get("complete") is False:
        name += INCOMPLETE
    return name



def _without_seed(name: str) -> str:
    """``rsmi-s1`` / ``rsmi_seed2`` → ``rsmi``: a model's name without a training-seed suffix."""
    return re.sub(r"[-_](?:s|seed)[-_]?\d+$", "", name)


@dataclass
class ResultRow:
    """One line of the results table: a model evaluated clean or under one attack.

    Attributes:
        model, method, attack, dataset: what was evaluated (``attack`` is "none (clean)" for a
            clean evaluation).
        metrics: docs/protocol.md's keys; a value or ``{"mean", "std"}`` over attack seeds;
            with fresh-draw verdicts also :data:`FRESH_METRICS`' keys (deployed threat models).
        source: the file read.
        kind: "attack" or "clean".
        run_dir: the run directory (its ``examples.jsonl`` / ``seed-<s>/examples.jsonl``).
        seeds: the attack seeds.
        training_seed: the model's training seed, where recorded.
        settings: the model's RSMI configuration (``RSMIConfig.to_dict()``), where recorded.
        label_names: class names, where recorded.
        provenance: what the file records about how the numbers were made (display order).
        training_seeds: for a row aggregated over training seeds, those seeds.
    """

    model: str
    method: str
    attack: str
    metrics: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    kind: str = "attack"
    dataset: str = "?"
    run_dir: Path | None = None
    seeds: list[int] = field(default_factory=list)
    training_seed: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    label_names: list[str] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    training_seeds: list[int] = field(default_factory=list)
    identity_extra: tuple[Any, ...] = ()
    plain_attack: str | None = None  # the attack label without transfer / EOT (adaptive runs)
    seed_shown: bool = False  # the set holds other training seeds of this model: name the seed

    @property
    def deterministic(self) -> bool:
        """The row's model answers without randomness (no noise, no masks), as recorded; a row
        whose settings were not recorded is not taken for one."""
        from rsmi.attacks.fresh import is_deterministic

        return bool(self.settings) and is_deterministic(self.settings)

    def value(self, key: str) -> tuple[float | None, float | None]:
        """``(mean, std)`` of a metric (std ``None`` for a single run)."""
        raw = self.metrics.get(key)
        if isinstance(raw, dict):
            return raw.get("mean"), raw.get("std")
        return (None if raw is None else float(raw)), None

    def deployed_value(self, key: str) -> tuple[float | None, float | None]:
        """A deployed threat model's figure (a :data:`FRESH_METRICS` key): the run's own, or for
        a deterministic model's attack run without fresh draws its protocol figure (the same
        number: every draw answers alike)."""
        mean, std = self.value(key)
        if mean is None and self.kind == "attack" and self.deterministic:
            return self.value(FRESH_FROM_PROTOCOL[key])
        return mean, std

    @property
    def num_examples(self) -> int | None:
        n = self.value("num_examples")[0]
        return None if n is None else int(round(n))

    def interval(self, key: str) -> tuple[float, float] | None:
        """95 % Wilson interval (percent) of an accuracy over the row's N examples.

        With several attack (or training) seeds, the interval is that of the mean accuracy
        over N examples: it shows the sampling error of the example sample; the ± std beside
        it shows the spread over seeds.
        """
        mean, n = self.value(key)[0], self.num_examples
        if mean is None or not n:
            return None
        return stats.wilson(round(mean * n / 100.0), n)

    def deployed_values(self, k: int = 1) -> list[float] | None:
        """Per example, ``[attacked] × p(correct)^k`` of the deployed threat model with ``k``
        submissions (attacked: the majority of the clean text's fresh draws is correct), averaged
        over the row's attack seeds on the examples they share; a deterministic model's records
        without fresh draws give their protocol verdicts. None without records or fresh draws."""
        per_seed = []
        for records in self.records.values():
            found = stats.deployed_by_index(records, self.deterministic)
            if not found:
                return None
            per_seed.append({i: (1.0 if p0 > 0.5 else 0.0) * p1**k for i, (p0, p1) in found.items()})
        if not per_seed:
            return None
        common = sorted(set.intersection(*(set(d) for d in per_seed)))
        return [sum(d[i] for d in per_seed) / len(per_seed) for i in common]

    def deployed_interval(self, k: int = 1) -> tuple[float, float] | None:
        """Percentile bootstrap 95 % interval of the deployed AUA with ``k`` submissions, over
        the examples (:func:`rsmi.reports.stats.bootstrap_mean_interval`)."""
        values = self.deployed_values(k)
        return None if values is None else stats.bootstrap_mean_interval(values)

    @property
    def shown_model(self) -> str:
        """The model's name, with its training seed where the result set holds other training
        seeds of the same model (``rsmi-paper (seed 1)``), so that labels stay unique."""
        if self.seed_shown and self.training_seed is not None:
            return f"{self.model} (seed {self.training_seed})"
        return self.model

    @property
    def label(self) -> str:
        """A short unique-ish name: model (with its training seed where needed) and attack."""
        return f"{self.shown_model} · {self.attack}"

    @property
    def identity(self) -> tuple[Any, ...]:
        """What the row measures, minus the training seed (rows equal here differ by seed only).

        The model's name (its directory, seed directories stripped) is part of it: two models
        with the same method and settings but another training recipe (``rsmi-paper`` and
        ``rsmi-paper-10ep``) are not seeds of one another; a seed suffix (``rsmi-s1``,
        ``rsmi_seed2``) is not part of the name.
        """
        return (
            _without_seed(self.model), self.kind, self.dataset, self.method, self.attack, self.dtype,
            json.dumps(self.settings, sort_keys=True), self.num_examples, *self.identity_extra,
        )

    @property
    def dtype(self) -> str | None:
        """The compute precision the numbers were made in (older files: none recorded)."""
        value = self.provenance.get("dtype")
        return None if value in (None, "–") else str(value)

    def example_files(self) -> list[tuple[int | None, Path]]:
        """``(attack seed, examples.jsonl)`` of each seed of the run that has its records."""
        if self.run_dir is None or self.kind != "attack":
            return []
        if len(self.seeds) > 1:
            files = [(s, self.run_dir / f"seed-{s}" / EXAMPLES_FILE) for s in self.seeds]
        else:
            files = [(self.seeds[0] if self.seeds else None, self.run_dir / EXAMPLES_FILE)]
        return [(s, f) for s, f in files if f.is_file()]

    @cached_property
    def records(self) -> dict[int | None, list[dict[str, Any]]]:
        """The run's attacked examples, per attack seed (empty when none were kept)."""
        from rsmi.attacks.records import read_records

        return {seed: read_records(path) for seed, path in self.example_files()}

