"""Adapters: a :class:`~rsmi.reports.rows.ResultRow` from a result file, whatever its age.

Reads attack runs (``summary.json`` of ``rsmi attack``: docs/protocol.md's fields; with several
attack seeds each metric is also in ``aggregate`` as ``{"mean": .., "std": ..}``) and clean
evaluations (``evaluation.json`` of ``rsmi evaluate`` / ``rsmi pipeline``).

Fields are read defensively, under their old names too: older summaries lack dtype, machine,
training seed ...; older evaluations say ``accuracy`` (a fraction) for ``clean_accuracy`` and
``forward_passes_per_example`` for ``avg_forward_passes``. A missing value is ``None`` and is
shown as "–". A summary's ``fresh_draws`` block (the deployed threat models,
:mod:`rsmi.attacks.fresh`) becomes the metrics of :data:`rsmi.reports.rows.FRESH_METRICS`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rsmi.errors import StoreError
from rsmi.reports.rows import CLEAN, FRESH_METRICS, ResultRow, attack_label
from rsmi.store.names import EVALUATION_FILE, MODEL_CARD_FILE, SUMMARY_FILE


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise StoreError(f"cannot read results file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise StoreError(f"{path} does not hold a JSON object")
    return data


def _get(data: Mapping[str, Any], dotted: str) -> Any:
    cur: Any = data
    for part in dotted.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _first(data: Mapping[str, Any], *paths: str) -> Any:
    """The first of ``paths`` (dotted) that is present and not None."""
    for p in paths:
        value = _get(data, p)
        if value is not None:
            return value
    return None


def _model_name(path: Any) -> str:
    """The model's directory name; ``runs/study/mr/base/seed-0`` → ``base`` (the training
    seed is a column of its own, and rows of one model over training seeds are grouped)."""
    text = str(path)
    parts = [p for p in Path(text).parts if p not in ("/", "")]
    while len(parts) > 1 and re.fullmatch(r"seed-\d+", parts[-1]):
        parts.pop()
    return parts[-1] if parts else text



def _with_overrides(name: str, overrides: Any) -> str:
    """The model's name and the inference settings a run overrode on it:
    ``rsmi-paper [num_masks 0, saliency_top_k 0]`` (the same weights read another way)."""
    if not isinstance(overrides, dict) or not overrides:
        return name
    def show(v: Any) -> str:
        return str(v).lower() if isinstance(v, bool) else str(v)
    return f"{name} [{', '.join(f'{k} {show(v)}' for k, v in sorted(overrides.items()))}]"


def _attack_row(data: dict[str, Any], path: Path) -> ResultRow:
    config = data.get("config") or {}
    model_info = data.get("model") if isinstance(data.get("model"), dict) else {}
    model = config.get("model") or (data.get("model") if isinstance(data.get("model"), str) else None)
    if model is None:
        model = model_info.get("path") or _get(model_info, "metadata.backbone") or "?"
    seeds = data.get("seeds") or config.get("seeds") or ([data["seed"]] if "seed" in data else [])
    training = _first(data, "model.metadata.training", "training") or {}
    label_config = {
        **config,
        **{k: data[k] for k in ("recipe", "eot", "eot_margin", "transfer", "cache", "complete") if k in data},
    }
    return ResultRow(
        model=_with_overrides(config.get("name") or _model_name(model), config.get("model_overrides")),
        method=str(data.get("model_method") or data.get("method") or model_info.get("method") or "?"),
        attack=attack_label(label_config),
        plain_attack=attack_label({**label_config, "transfer": False, "eot": 1, "eot_margin": 0.0,
                                   "complete": True}),
        metrics={**dict(data.get("aggregate") or data), **fresh_metrics(data)},
        source=str(path),
        kind="attack",
        dataset=str(_first(data, "config.data", "data", "model.metadata.training.data") or "?"),
        run_dir=path.parent,
        seeds=[int(s) for s in seeds],
        training_seed=_int_or_none(training.get("seed") if isinstance(training, dict) else None),
        settings=dict(model_info.get("rsmi_config") or {}),
        label_names=[str(x) for x in model_info.get("label_names") or []],
        provenance=_provenance(data, path, seeds=seeds),
        identity_extra=(
            config.get("preset") or data.get("preset"), config.get("split"),
            config.get("sample_seed"), json.dumps(config.get("model_overrides") or {}, sort_keys=True),
            _lr(training),
        ),
    )


def _fresh_figures(block: Any) -> dict[str, float]:
    """The deployed threat models' figures of one ``fresh_draws`` block, by metric key."""
    if not isinstance(block, Mapping):
        return {}
    out = {}
    for key, path in FRESH_METRICS.items():
        value = _get(block, path)
        if isinstance(value, int | float):
            out[key] = float(value)
    return out


def fresh_metrics(data: Mapping[str, Any]) -> dict[str, Any]:
    """Row metrics from a summary's ``fresh_draws`` block (rsmi.attacks.fresh), none without
    it: a value for one attack seed, ``{"mean", "std"}`` over several (from ``per_seed``)."""
    per_seed = [s.get("fresh_draws") for s in data.get("per_seed") or [] if isinstance(s, Mapping)]
    if len(per_seed) > 1 and all(isinstance(b, Mapping) for b in per_seed):
        figures = [_fresh_figures(b) for b in per_seed]
        out: dict[str, Any] = {}
        for key in FRESH_METRICS:
            values = [f[key] for f in figures if key in f]
            if len(values) == len(figures):
                mean = sum(values) / len(values)
                var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
                out[key] = {"mean": mean, "std": var**0.5}
        return out
    return _fresh_figures(data.get("fresh_draws"))


def _clean_row(data: dict[str, Any], path: Path) -> ResultRow:
    accuracy = data.get("clean_accuracy", data.get("accuracy"))
    if accuracy is not None and accuracy <= 1.0:
        accuracy = 100.0 * accuracy
    model = str(data.get("model", "?"))
    training = _first(data, "training", "model_metadata.training", "metadata.training")
    if training is None:
        training = _training_from_model_dir(model)
    settings = data.get("config") if isinstance(data.get("config"), dict) else {}
    return ResultRow(
        model=_with_overrides(data.get("name") or _model_name(model), data.get("model_overrides")),
        method=str(data.get("method", "?")),
        attack=CLEAN,
        metrics={
            "clean_accuracy": accuracy,
            "avg_forward_passes": data.get(
                "avg_forward_passes", data.get("forward_passes_per_example")
            ),
            "num_examples": data.get("num_examples"),
        },
        source=str(path),
        kind="clean",
        dataset=str(data.get("data") or (training or {}).get("data") or "?"),
        run_dir=path.parent,
        training_seed=_int_or_none((training or {}).get("seed", data.get("train_seed"))),
        settings=dict(settings),
        provenance=_provenance(data, path, seeds=None),
        identity_extra=(data.get("split"), _lr(training or {})),
    )


def _lr(training: Any) -> Any:
    return training.get("lr") if isinstance(training, dict) else None


def _int_or_none(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _training_from_model_dir(model: str) -> dict[str, Any] | None:
    """``metadata.training`` of a model directory's ``rsmi.json``, when that directory exists."""
    meta = Path(model) / MODEL_CARD_FILE
    if not meta.is_file():
        return None
    try:
        return _get(json.loads(meta.read_text(encoding="utf-8")), "metadata.training")
    except (OSError, json.JSONDecodeError):
        return None


def _provenance(data: Mapping[str, Any], path: Path, *, seeds: Any) -> dict[str, Any]:
    """What a result file records about how it was made, in display order (None: absent)."""
    versions = _first(data, "versions", "provenance.versions") or {}
    short = {k: versions.get(k) for k in ("rsmi", "torch", "transformers", "textattack") if versions.get(k)}
    revision = _first(data, "git_revision", "provenance.git_revision", "provenance.git.revision")
    dirty = _first(data, "git_dirty", "provenance.git_dirty")
    found = {
        "git revision": None if revision is None else str(revision) + (" (dirty)" if dirty else ""),
        "dtype": _first(data, "dtype", "provenance.dtype", "model.dtype"),
        "device": _first(data, "device", "provenance.device"),
        "machine": _first(data, "machine", "provenance.machine", "provenance.host"),
        "attack seeds": None if seeds is None else ", ".join(map(str, seeds)) or None,
        "evaluation seed": _first(data, "seed") if seeds is None else None,
        "training seed": _first(data, "model.metadata.training.seed", "training.seed"),
        "sample seed": _first(data, "config.sample_seed"),
        "preset": _first(data, "preset", "config.preset"),
        "split": _first(data, "config.split", "split"),
        "output cache": _first(data, "cache", "config.cache") if seeds is not None else None,
        "complete": _first(data, "complete"),
        "date": _first(data, "created", "provenance.created", "date"),
        "wall time (s)": _first(data, "wall_time_s", "seconds"),
        "versions": ", ".join(f"{k} {v}" for k, v in short.items()) or None,
        "file": str(path),
    }
    always = {"git revision", "dtype", "device", "machine", "training seed", "date",
              "attack seeds" if seeds is not None else "evaluation seed"}
    return {k: _flat(v) for k, v in found.items() if v is not None or k in always}


def _flat(value: Any) -> Any:
    """A provenance value for one table cell: a mapping or list becomes ``k v, ...`` text."""
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {_flat(v)}" for k, v in value.items() if v is not None) or None
    if isinstance(value, list | tuple):
        return ", ".join(str(_flat(v)) for v in value) or None
    return value


def _only_result_below(directory: Path) -> Path:
    """The one result file below ``directory`` (a multi-seed run whose other seeds are not
    finished keeps its results in ``seed-<s>/``); an error naming them when there are several."""
    from rsmi.reports.discovery import find_results

    try:
        found = find_results(directory)
    except StoreError:
        raise StoreError(f"{directory} holds neither {SUMMARY_FILE} nor {EVALUATION_FILE}, "
                         "nor a run directory below it that does") from None
    if len(found) > 1:
        listed = ", ".join(str(f.parent) for f in found[:6]) + (" ..." if len(found) > 6 else "")
        raise StoreError(f"{directory} holds no {SUMMARY_FILE} of its own but {len(found)} runs "
                         f"below it ({listed}): name one of them")
    return found[0]


def load_row(path: str | Path) -> ResultRow:
    """A table row from a run directory or a ``summary.json`` / ``evaluation.json`` file."""
    path = Path(path)
    if path.is_dir():
        for name in (SUMMARY_FILE, EVALUATION_FILE):
            if (path / name).exists():
                path = path / name
                break
        else:
            path = _only_result_below(path)
    data = _read_json(path)
    if "accuracy_under_attack" in data or "aggregate" in data:
        return _attack_row(data, path)
    if "accuracy" in data or "clean_accuracy" in data:
        return _clean_row(data, path)
    raise StoreError(f"{path} is neither an attack summary nor an evaluation result")


