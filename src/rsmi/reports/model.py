"""One model of the results, used by every renderer (terminal, Markdown, HTML, docs tables).

Reads attack runs (``summary.json`` of ``rsmi attack``: PROTOCOL.md's fields; with several
attack seeds each metric is also in ``aggregate`` as ``{"mean": .., "std": ..}`` and the
per-seed runs sit in ``seed-<s>/``) and clean evaluations (``evaluation.json`` of
``rsmi evaluate`` / ``rsmi pipeline``). A directory is searched recursively; a run directory
(one holding ``summary.json``) is one row and is not searched further, so the ``seed-<s>`` and
``shard-*`` directories below a combined run are never counted twice.

Fields are read defensively: older summaries lack dtype, machine, training seed ...; a missing
value is ``None`` and is shown as "–".
"""

from __future__ import annotations

import glob
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from rsmi.errors import StoreError
from rsmi.reports import stats

SUMMARY_FILE, EVALUATION_FILE, EXAMPLES_FILE = "summary.json", "evaluation.json", "examples.jsonl"
INCOMPLETE = " (incomplete)"  # attack label suffix of a run stopped before its end
CLEAN = "none (clean)"
RSMI_SETTINGS = ("noise_std", "noise_every", "num_masks")
METRIC_KEYS = (
    "clean_accuracy", "accuracy_under_attack", "attack_success_rate", "avg_queries",
    "avg_forward_passes", "avg_perturbed_word_pct", "num_examples",
)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read results file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a JSON object")
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


def attack_label(config: Mapping[str, Any]) -> str:
    """``textfooler``, ``textfooler (EOT m=8)``, ``textfooler (transfer)`` ..."""
    name = str(config.get("recipe", "?"))
    if config.get("transfer"):
        name += " (transfer)"
    if int(config.get("eot", 1) or 1) > 1:
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


@dataclass
class ResultRow:
    """One line of the results table: a model evaluated clean or under one attack.

    Attributes:
        model, method, attack, dataset: what was evaluated (``attack`` is "none (clean)" for a
            clean evaluation).
        metrics: PROTOCOL.md's keys; a value or ``{"mean", "std"}`` over attack seeds.
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

    def value(self, key: str) -> tuple[float | None, float | None]:
        """``(mean, std)`` of a metric (std ``None`` for a single run)."""
        raw = self.metrics.get(key)
        if isinstance(raw, dict):
            return raw.get("mean"), raw.get("std")
        return (None if raw is None else float(raw)), None

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


# ---------------------------------------------------------------------------- loading
def _model_name(path: Any) -> str:
    """The model's directory name; ``runs/study/mr/base/seed-0`` → ``base`` (the training
    seed is a column of its own, and rows of one model over training seeds are grouped)."""
    text = str(path)
    parts = [p for p in Path(text).parts if p not in ("/", "")]
    while len(parts) > 1 and re.fullmatch(r"seed-\d+", parts[-1]):
        parts.pop()
    return parts[-1] if parts else text


def _without_seed(name: str) -> str:
    """``rsmi-s1`` / ``rsmi_seed2`` → ``rsmi``: a model's name without a training-seed suffix."""
    return re.sub(r"[-_](?:s|seed)[-_]?\d+$", "", name)


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
        **config, **{k: data[k] for k in ("recipe", "eot", "transfer", "cache", "complete") if k in data}
    }
    return ResultRow(
        model=_with_overrides(_model_name(model), config.get("model_overrides")),
        method=str(data.get("model_method") or data.get("method") or model_info.get("method") or "?"),
        attack=attack_label(label_config),
        plain_attack=attack_label({**label_config, "transfer": False, "eot": 1, "complete": True}),
        metrics=dict(data.get("aggregate") or data),
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
        model=_with_overrides(_model_name(model), data.get("model_overrides")),
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
    meta = Path(model) / "rsmi.json"
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


def load_row(path: str | Path) -> ResultRow:
    """A table row from a run directory or a ``summary.json`` / ``evaluation.json`` file."""
    path = Path(path)
    if path.is_dir():
        for name in (SUMMARY_FILE, EVALUATION_FILE):
            if (path / name).exists():
                path = path / name
                break
        else:
            raise ValueError(f"{path} holds neither {SUMMARY_FILE} nor {EVALUATION_FILE}")
    data = _read_json(path)
    if "accuracy_under_attack" in data or "aggregate" in data:
        return _attack_row(data, path)
    if "accuracy" in data or "clean_accuracy" in data:
        return _clean_row(data, path)
    raise ValueError(f"{path} is neither an attack summary nor an evaluation result")


class NoResultsYet(StoreError):
    """Every path given was a glob, and none matched a run with results (runs not made yet)."""


def is_glob(path: str | Path) -> bool:
    return not Path(path).exists() and any(ch in str(path) for ch in "*?[")


def find_results(path: str | Path) -> list[Path]:
    """The result files of ``path``: itself if a file, else found recursively (sorted); a
    path with glob characters that names no file gives the results of every match.

    A directory holding ``summary.json`` and/or ``evaluation.json`` gives those and is not
    searched further (its ``seed-<s>`` / ``shard-*`` directories belong to that run).
    """
    path = Path(path)
    if path.is_file():
        return [path]
    if is_glob(path):
        # a glob (``results/study/mr/attacks/*/seed-0/textfooler``): the results of each match
        matches = sorted(Path(m) for m in glob.glob(str(path)))
        if not matches:
            raise FileNotFoundError(f"{path} matches nothing")
        found: list[Path] = []
        for m in matches:  # a match holding no results yet (a run under way) adds nothing
            found += [f for f in ([m] if m.is_file() else _walk(m)) if f not in found]
        if not found:
            raise ValueError(f"{path}: no match holds {SUMMARY_FILE} or {EVALUATION_FILE}")
        return found
    if not path.is_dir():
        raise FileNotFoundError(f"{path} does not exist")
    found = _walk(path)
    if not found:
        raise ValueError(
            f"{path} holds no {SUMMARY_FILE} (rsmi attack) or {EVALUATION_FILE} (rsmi evaluate) "
            "below it"
        )
    return found


def _walk(directory: Path, seen: set[Path] | None = None) -> list[Path]:
    seen = set() if seen is None else seen
    real = directory.resolve()
    if real in seen:  # a symlink loop
        return []
    seen.add(real)
    here = [directory / n for n in (SUMMARY_FILE, EVALUATION_FILE) if (directory / n).is_file()]
    if here:
        return here
    out: list[Path] = []
    for child in sorted(directory.iterdir()):
        if child.is_dir() and not child.name.startswith("."):
            out.extend(_walk(child, seen))
    return out


# ---------------------------------------------------------------------------- the result set
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
            except (FileNotFoundError, ValueError):
                if not is_glob(p):
                    raise
                empty.append(str(p))  # a glob of runs not made yet adds nothing ...
                continue
            for f in found:
                if f.resolve() not in {g.resolve() for g in files}:
                    files.append(f)
        if empty and not files:  # ... unless nothing at all was found
            raise NoResultsYet(f"no results: {', '.join(empty)} match no summary.json or evaluation.json")
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

    def pairs(self) -> list[stats.PairedComparison]:
        """Exact McNemar of every two attack runs on one dataset, under one attack, on the same
        example indices (first attack seed of each run); then each adaptive run (transfer, EOT)
        against the plain runs of its recipe on that dataset: the same model's (is the plain
        attack the stronger?) and those of deterministic models (base, FreeLB++: their plain
        attack is already the adaptive one), i.e. does the defense still beat them?"""
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
            try:
                out.append(compare(a, b)[0])
            except ValueError:
                continue
        return out


def aggregate_training_seeds(rows: Sequence[ResultRow]) -> ResultRow:
    """One row: each metric as mean ± std over ``rows`` (one per training seed)."""
    first = rows[0]
    metrics: dict[str, Any] = {}
    for key in METRIC_KEYS:
        mean, std = stats.mean_std(r.value(key)[0] for r in rows)
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
    deterministic model) is paired with each seed of the other. Raises ValueError when a run
    kept no examples or the runs did not attack the same example indices.
    """
    for row in (row_a, row_b):
        if not row.records:
            raise ValueError(
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
            raise ValueError(
                f"{row_a.source} (seeds {seeds_a}) and {row_b.source} (seeds {seeds_b}) share no "
                "attack seed: compare runs with the same seeds, or a single-seed run with another"
            )
        pairs = [(s, s) for s in common]
    return [
        stats.compare_records(
            row_a.records[sa], row_b.records[sb], label_a=row_a.label, label_b=row_b.label,
            seed_a=sa, seed_b=sb,
        )
        for sa, sb in pairs
    ]
