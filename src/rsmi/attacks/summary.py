"""``summary.json``: one seed's summary from its records, and the summary over several seeds.

The metrics come from :func:`rsmi.attacks.metrics.compute_metrics` alone (each example counted
once); the rest records the run's settings, the attacked model, the seeding scheme of the
records' draws (``seeding``, :data:`rsmi.inference.SEEDING`) and provenance.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rsmi.attacks.config import AttackConfig
from rsmi.attacks.fresh import combine_blocks, fresh_block, is_deterministic
from rsmi.attacks.metrics import METRIC_KEYS, aggregate_seeds, compute_metrics
from rsmi.inference import SEEDING, recorded_seeding
from rsmi.provenance import provenance


def describe_model(classifier: Any) -> dict[str, Any]:
    """What the summary records about the attacked model."""
    return {
        "method": getattr(classifier, "method", None),
        "rsmi_config": classifier.config.to_dict(),
        "label_names": list(classifier.label_names),
        "metadata": dict(getattr(classifier, "metadata", {}) or {}),
    }


def _run_fields(
    config: AttackConfig, wall_time_s: float | None, seeding: str = SEEDING
) -> dict[str, Any]:
    """What every summary records about the run: settings, seeding scheme and provenance."""
    return {
        "recipe": config.recipe,
        "preset": config.preset,
        "eot": config.eot,
        "eot_margin": config.eot_margin,
        "attacker": config.attacker,
        "transfer": config.transfer,
        "cache": config.cache,
        "dtype": config.dtype,
        "engine": config.engine,
        "cut_to_max_length": config.cut_to_max_length,
        "preset_settings": dataclasses.asdict(config.preset_settings),
        "config": config.to_dict(),
        "seeding": seeding,
        "wall_time_s": None if wall_time_s is None else round(wall_time_s, 3),
        **provenance(),
    }


def build_summary(
    records: Iterable[Mapping[str, Any]],
    config: AttackConfig,
    *,
    num_selected: int,
    model_info: Mapping[str, Any] | None = None,
    wall_time_s: float | None = None,
    seeding: str = SEEDING,
) -> dict[str, Any]:
    """``summary.json`` of one seed: metrics from the records, plus provenance.

    ``seeding``: the scheme the records were made under (a merge of old records passes theirs).
    """
    recs = list(records)
    metrics = compute_metrics(recs)
    return {
        **metrics,
        "num_selected": num_selected,
        "complete": metrics["num_examples"] == len(range(config.shard[0], num_selected, config.shard[1])),
        "seed": config.seeds[0],
        "seeds": list(config.seeds),
        "model": dict(model_info or {}),
        "method": (model_info or {}).get("method"),
        "attack_time_s": round(float(sum(r.get("wall_s", 0.0) for r in recs)), 3),
        "seconds": time_split(recs),
        **_run_fields(config, wall_time_s, seeding),
        **_fresh(recs, model_info),
    }


def _fresh(records: Sequence[Mapping[str, Any]], model_info: Mapping[str, Any] | None) -> dict:
    """``{"fresh_draws": block}`` when records hold fresh-draw verdicts (rsmi.attacks.fresh)."""
    settings = (model_info or {}).get("rsmi_config")
    block = fresh_block(records, deterministic=None if not settings else is_deterministic(settings))
    return {} if block is None else {"fresh_draws": block}


def time_split(records: Sequence[Mapping[str, Any]]) -> dict[str, float | None]:
    """Where an attack's time went: ``total`` (wall time attacking the examples), ``model``
    (inside the defended classifier: its noisy, saliency and plain passes), ``harness`` (the
    rest: TextAttack's search, constraints, transformation, tokenisation). ``model`` and
    ``harness`` are None for records made before ``model_s`` was recorded."""
    total = float(sum(r.get("wall_s", 0.0) for r in records))
    timed = [r for r in records if "model_s" in r]
    if len(timed) != len(records):
        return {"total": round(total, 3), "model": None, "harness": None}
    total, model = round(total, 3), round(float(sum(r["model_s"] for r in timed)), 3)
    # The rest from the rounded figures, so that total = model + harness as printed.
    return {"total": total, "model": model, "harness": round(total - model, 3)}


def combine_seeds(
    summaries: Sequence[Mapping[str, Any]], config: AttackConfig, wall_time_s: float | None
) -> dict[str, Any]:
    """The multi-seed summary: per-seed results, mean ± std, and the means at top level."""
    agg = aggregate_seeds(summaries)
    top = {key: agg[key]["mean"] for key in METRIC_KEYS}
    for key in ("num_examples", "num_successful", "num_failed", "num_skipped"):
        top[key] = agg[key]["mean"]
    first = summaries[0]
    return {
        **top,
        "aggregate": agg,
        "per_seed": [dict(s) for s in summaries],
        "seeds": [s["seed"] for s in summaries],
        "model": first.get("model", {}),
        "method": first.get("method"),
        "complete": all(s.get("complete") for s in summaries),
        "attack_time_s": round(sum(float(s.get("attack_time_s") or 0.0) for s in summaries), 3),
        "seconds": _sum_splits([s.get("seconds") or {} for s in summaries]),
        **_run_fields(config, wall_time_s, recorded_seeding(first)),
        **_combined_fresh(summaries),
    }


def _combined_fresh(summaries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    block = combine_blocks([s.get("fresh_draws") for s in summaries])
    return {} if block is None else {"fresh_draws": block}


def _sum_splits(splits: Sequence[Mapping[str, Any]]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for key in ("total", "model", "harness"):
        values = [s.get(key) for s in splits]
        out[key] = None if not values or any(v is None for v in values) else round(sum(values), 3)
    return out


__all__ = ["build_summary", "combine_seeds", "describe_model"]
