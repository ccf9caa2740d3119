"""The robustness study (issue 11): train, evaluate and attack every row of a YAML plan.

    python benchmarks/study.py benchmarks/study.yaml --dry-run       # the plan, with status
    python benchmarks/study.py benchmarks/study.yaml                 # run what is not done
    python benchmarks/study.py benchmarks/study.yaml --only 'mr/*/rsmi-paper/*'

Every step is one of the project's own commands (``rsmi train``, ``rsmi evaluate``,
``rsmi attack``), run as a subprocess with ``--resume`` (nothing here reimplements them), so a
killed study continues where it stopped and a finished step is skipped. Steps run in priority
order (phases below), so a study cut short still has the most important rows:

1. ``train``: the fixed models (``models:``) on the first training seed;
2. ``evaluate``: their clean test accuracy (``evaluation.json`` + ``predictions.jsonl``);
3. ``attack``: the main attacks (``attacks.main``) on them;
4. ``sweep-train`` / ``sweep-attack``: each dev sweep — the RSMI grid (``sweep:``) and the named
   ones (``sweeps:``, e.g. FreeLB++'s) — trained on one seed and attacked on the **dev** split;
   the best by the chosen metric (ties: clean accuracy, then fewer forward passes) becomes the
   sweep's model (``name``: ``rsmi-dev``, ``freelb-dev``; ``selection.json``). A sweep with
   ``long_epochs`` then retrains its grid's winner for that many epochs (same seed,
   ``<winner>-<E>ep``), attacks it on the same dev examples, and the better of the two by the
   same rule (a full tie keeps the shorter training) becomes the model (``selection.json``:
   ``grid_selected``, ``long``, ``why``);
5. each sweep's model: evaluation and main attacks (its first seed is the sweep's run);
6. ``extra`` rows (transfer, EOT, authors' preset and masking, inference ablations), on the
   first training seed unless a row lists ``train_seeds`` and on every dataset unless it lists
   ``datasets``; a row with inference ``overrides`` also gets its clean evaluation
   (``eval/.../test-<row>/``);
7. the other training seeds: training, evaluation, main attacks.

Models and checkpoints go under ``runs_dir`` (git-ignored); what may be committed goes under
``results_dir``/<dataset>/: ``models/<model>/seed-<s>/`` (training_config.json, log.jsonl,
rsmi.json — never weights), ``eval/<model>/seed-<s>/test/`` (evaluation.json,
predictions.jsonl), ``attacks/<model>/seed-<s>/<row>/`` (summary.json, examples.jsonl,
run.json), ``sweep/`` (the ``sweep:`` block's dev attacks, selection.json), ``sweep-<name>/``
(those of ``sweeps: {<name>: ...}``). Run from the repository root.
"""

from __future__ import annotations

import argparse
import fnmatch
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rsmi.errors import ModelLoadError
from rsmi.provenance import CPU_BF16_FLAGS, cpu_kind, same_cpu_kind
from rsmi.store.model_card import (
    did_not_learn,
    finished_event,
    read_card,
    training_cpu,
    training_dtype,
    training_events,
    training_finished,
    training_threads,
)

# Runs one ``rsmi`` command line (argv after ``rsmi``); ``env`` holds the variables a job sets
# on top of this process's environment (a regenerated model's thread count).
Executor = Callable[..., int]

# Training records copied into the results tree (small; never the weights).
TRAINING_RECORDS = ("training_config.json", "log.jsonl", "rsmi.json")


@dataclass
class Job:
    """One step of the study: an ``rsmi`` command line and how to tell it is finished."""

    id: str
    argv: list[str]
    done: bool
    blocked: str | None = None
    after: Callable[[], None] | None = None
    env: dict[str, str] | None = None  # set for this job only (see train_job)

    @property
    def command(self) -> str:
        """The command line as a shell would run it, with the job's own variables first."""
        prefix = "".join(f"{k}={v} " for k, v in (self.env or {}).items())
        return f"{prefix}rsmi {' '.join(self.argv)}" if self.argv else ""

    @property
    def status(self) -> str:
        return "done" if self.done else (f"blocked: {self.blocked}" if self.blocked else "todo")


@dataclass
class Sweep:
    """One dev sweep: a grid of settings trained on one seed and attacked on **dev**; the best
    by the rule ``select_by`` becomes the model ``name``. With ``long_epochs``, the grid's winner
    is also trained for that many epochs (same seed) and attacked on the same dev examples, and
    the better of the two by the same rule becomes the model.

    ``key`` is None for the plan's single ``sweep:`` block (results in ``sweep/``, grid models
    ``sweep-…``, model ``rsmi-dev`` by default); a named sweep of ``sweeps:`` has results in
    ``sweep-<key>/``, grid models ``sweep-<key>-…`` and model ``<key>-dev`` by default.
    """

    key: str | None
    spec: dict[str, Any]
    default_seed: int = 0

    @property
    def folder(self) -> str:
        """The results folder (under ``results_dir/<dataset>/``) and the grid models' prefix."""
        return "sweep" if self.key is None else f"sweep-{self.key}"

    @property
    def name(self) -> str:
        return str(self.spec.get("name", "rsmi-dev" if self.key is None else f"{self.key}-dev"))

    @property
    def seed(self) -> int:
        return int(self.spec.get("seed", self.default_seed))

    @property
    def rule(self) -> dict[str, Any]:
        return dict(self.spec.get("select_by") or {})

    @property
    def long_epochs(self) -> int | None:
        value = self.spec.get("long_epochs")
        return None if value is None else int(value)

    def grid_models(self) -> dict[str, dict[str, Any]]:
        """The grid's models, named ``<folder>-s<σ>-n<every>-m<masks>`` (and so on per key)."""
        grid = self.spec.get("grid") or {}
        keys = list(grid)
        out = {}
        for values in itertools.product(*(grid[k] for k in keys)):
            name = self.folder + "-" + "-".join(
                f"{_short(k)}{v}" for k, v in zip(keys, values, strict=True))
            out[name] = {**(self.spec.get("base") or {}), **dict(zip(keys, values, strict=True))}
        return out

    def long_model(self, winner: str) -> str:
        """The grid winner retrained for ``long_epochs``: ``<winner>-<epochs>ep``."""
        return f"{winner}-{self.long_epochs}ep"

    def settings(self, model: str) -> dict[str, Any] | None:
        """A grid model's or a long model's settings (None: not one of this sweep's)."""
        grid = self.grid_models()
        if model in grid:
            return grid[model]
        suffix = f"-{self.long_epochs}ep"
        if self.long_epochs and model.endswith(suffix) and model[: -len(suffix)] in grid:
            return {**grid[model[: -len(suffix)]], "epochs": self.long_epochs}
        return None

    def attack_row(self) -> dict[str, Any]:
        return {"recipe": self.rule.get("recipe", "textfooler"),
                "attack_seeds": self.rule.get("attack_seeds", [0])}

    def attack_dir(self, results_dir: Path, ds: str, model: str) -> Path:
        name = f"{self.rule.get('split', 'dev')}-{self.rule.get('recipe', 'textfooler')}"
        return results_dir / ds / self.folder / model / name


# A named sweep's key becomes a folder and a model-name prefix.
_SWEEP_KEY = re.compile(r"[a-z0-9][a-z0-9-]*")


def _load_sweeps(path: str | Path, raw: dict[str, Any], first_seed: int) -> list[Sweep]:
    """``sweep:`` (one unnamed sweep, as the plan always had) and ``sweeps:`` (named ones)."""
    sweeps = [Sweep(None, dict(raw["sweep"]), first_seed)] if raw.get("sweep") else []
    named = raw.get("sweeps") or {}
    if not isinstance(named, dict):
        raise ValueError(f"{path}: sweeps must map a name to a sweep block (as sweep:), "
                         f"got {type(named).__name__}")
    for key, spec in named.items():
        if not _SWEEP_KEY.fullmatch(str(key)):
            raise ValueError(f"{path}: sweep name {key!r} must be lower-case letters, digits "
                             "and '-' (it names a results folder)")
        sweeps.append(Sweep(str(key), dict(spec or {}), first_seed))
    names = [s.name for s in sweeps]  # folders differ: a key names one
    twice = sorted({v for v in names if names.count(v) > 1})
    if twice:
        raise ValueError(f"{path}: two sweeps share the model name {twice}: give each its own "
                         "`name:`")
    return sweeps


# The selections found so far, by the sweep's model name (``rsmi-dev``, ``freelb-dev``).
Selections = dict[str, dict[str, Any]]


@dataclass
class Study:
    """The parsed YAML plan (see ``benchmarks/study.yaml`` for every key)."""

    runs_dir: Path
    results_dir: Path
    backbone: str
    datasets: dict[str, dict[str, Any]]
    train: dict[str, Any]
    seeds: list[int]
    models: dict[str, dict[str, Any]]
    sweeps: list[Sweep]
    attacks: dict[str, Any]
    device: str | None = None
    dtype: str | None = None
    python: list[str] = field(default_factory=lambda: [sys.executable, "-m", "rsmi.cli.main"])
    # This machine's kind of CPU (model name and kernel-choosing instruction sets), and whether
    # to retrain a model whose committed training records come from another kind (train_job).
    cpu: str | None = field(default_factory=cpu_kind)
    allow_other_cpu: bool = False

    @classmethod
    def load(cls, path: str | Path, **overrides: Any) -> Study:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        known = {"name", "runs_dir", "results_dir", "backbone", "datasets", "train", "models",
                 "sweep", "sweeps", "attacks", "device", "dtype"}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"{path}: unknown key(s) {unknown}; known: {sorted(known)}")
        train = dict(raw.get("train") or {})
        seeds = [int(s) for s in train.pop("seeds", [0])]
        study = cls(
            runs_dir=Path(raw.get("runs_dir", "runs/study")),
            results_dir=Path(raw.get("results_dir", "results/study")),
            backbone=str(raw.get("backbone", "minilm")),
            datasets=dict(raw.get("datasets") or {}),
            train=train,
            seeds=seeds,
            models=dict(raw.get("models") or {}),
            sweeps=_load_sweeps(path, raw, seeds[0]),
            attacks=dict(raw.get("attacks") or {}),
            device=raw.get("device"),
            dtype=raw.get("dtype"),
        )
        for key, value in overrides.items():
            if value is not None:
                setattr(study, key, Path(value) if key.endswith("_dir") else value)
        if not study.datasets or not study.models:
            raise ValueError(f"{path}: give at least one dataset and one model")
        clash = sorted(set(study.models) & {s.name for s in study.sweeps})
        if clash:
            raise ValueError(f"{path}: {clash} is both a fixed model and a sweep's model: "
                             "rename one")
        return study

    # ------------------------------------------------------------------ models
    def sweep_for(self, model: str) -> Sweep | None:
        """The sweep whose selected model is ``model`` (``rsmi-dev``), if any."""
        return next((s for s in self.sweeps if s.name == model), None)

    def sweep_models(self) -> dict[str, dict[str, Any]]:
        """Every sweep's grid models, by name."""
        return {name: spec for s in self.sweeps for name, spec in s.grid_models().items()}

    def model_dir(self, ds: str, model: str, seed: int, selections: Selections | None) -> Path:
        sweep, chosen = self.sweep_for(model), (selections or {}).get(model)
        if sweep and chosen and seed == sweep.seed:
            model = chosen["selected"]  # the selected setting's sweep run is its seed
        return self.runs_dir / ds / model / f"seed-{seed}"

    def records_dir(self, ds: str, model: str, seed: int) -> Path:
        """Where a model's training records are committed (never weights)."""
        return self.results_dir / ds / "models" / model / f"seed-{seed}"

    def model_settings(self, model: str, selections: Selections | None) -> dict[str, Any]:
        sweep = self.sweep_for(model)
        if sweep:
            chosen = (selections or {}).get(model)
            if not chosen:
                raise LookupError(model)
            return dict(sweep.settings(chosen["selected"]) or {})
        if model in self.models:
            return dict(self.models[model])
        for sweep in self.sweeps:
            settings = sweep.settings(model)
            if settings is not None:
                return settings
        raise LookupError(model)

    def model_seeds(self, model: str) -> list[int]:
        spec = self.models.get(model, {})
        return [int(s) for s in spec.get("seeds", self.seeds)]

    def main_models(self) -> list[str]:
        return list(self.models) + [s.name for s in self.sweeps]


def _short(key: str) -> str:
    return {"noise_std": "s", "noise_every": "n", "num_masks": "m", "adv_steps": "k"}.get(
        key, key + "_")


def _flags(settings: dict[str, Any], skip: Iterable[str] = ()) -> list[str]:
    """``{"noise_std": 0.2, "step2_resample": True}`` → ``--noise-std 0.2 --step2-resample``."""
    out: list[str] = []
    for key, value in settings.items():
        if key in skip or value is None:
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            out.append(flag if value else "--no-" + key.replace("_", "-"))
        else:
            out += [flag, str(value)]
    return out


def _train_flags(settings: dict[str, Any]) -> list[str]:
    # rsmi train's boolean flags only switch on (store_const True): drop false values.
    return _flags({k: v for k, v in settings.items() if v is not False}, skip=("seeds",))


# Whether a training finished, and whether it learned (rsmi train's binomial test of dev
# accuracy against the majority-class rate, issue 9): read from its records by the store. A
# sweep setting whose model did not learn is not eligible for the selection: a near-chance
# randomized model can look "robust" only because the attacker sees noise.
finished_training = training_finished


def training_record(study: Study, ds: str, model: str, seed: int) -> Path:
    """Where a sweep model's finished training is read: its run folder once that training has
    finished there, else its committed records. A fresh clone has no run folders, and the
    records alone say whether a setting learned (and so whether the selection waits for it)."""
    run = study.model_dir(ds, model, seed, None)
    return run if finished_training(run) else study.records_dir(ds, model, seed)


def complete_summary(out: Path) -> dict[str, Any] | None:
    path = out / "summary.json"
    if not path.exists():
        return None
    summary = json.loads(path.read_text(encoding="utf-8"))
    return summary if summary.get("complete") else None


def randomized(settings: dict[str, Any], overrides: dict[str, Any]) -> bool:
    """Whether the attacked predictor samples noise (then it gets every attack seed)."""
    if settings.get("method", "rsmi") != "rsmi":
        return False
    return float({**settings, **overrides}.get("noise_std", 0.2)) > 0


class RecordsKept(RuntimeError):
    """A regeneration gave other weights than the committed records name: they were kept."""


def copy_records(src: Path, dst: Path, *, replace: bool = False) -> None:
    """Copy a finished training's records into the results tree.

    A model regenerated bit for bit (its ``rsmi.json`` names the weights digest the committed
    records name) keeps the committed records, which describe the training the committed runs
    attacked; the regeneration's ``log.jsonl`` goes beside them, under ``regenerated/``, as the
    evidence (its dev readings may differ: other draws of a randomized model). A training that
    gave *other* weights keeps them too, its log saved as ``regenerated/log-<stamp>-other-
    weights.jsonl``, and raises :class:`RecordsKept` — unless ``replace`` (``--allow-other-cpu``:
    a new model on purpose), which replaces the records.
    """
    dst.mkdir(parents=True, exist_ok=True)
    new, old = _weights_digest(src), _weights_digest(dst)
    if new is not None and old is not None and (new == old or not replace):
        log = src / "log.jsonl"
        if log.exists():
            start = next(iter(training_events(src)), {})
            created = (start.get("provenance") or {}).get("created") or ""
            stamp = re.sub(r"[^0-9T]", "", created)[:15] or "unknown"
            (dst / "regenerated").mkdir(exist_ok=True)
            suffix = "" if new == old else "-other-weights"
            shutil.copy2(log, dst / "regenerated" / f"log-{stamp}{suffix}.jsonl")
        if new != old:
            raise RecordsKept(
                f"the training in {src} gave other weights than the committed records in {dst} "
                f"name (this kind of CPU, {training_cpu(src)!r}, or this thread count cannot "
                "regenerate them; the committed runs refuse these weights): the committed "
                "records are kept, this training's log is under regenerated/. Delete that "
                "model to retry, or pass --allow-other-cpu to replace the records with a new "
                "model")
        return
    for name in TRAINING_RECORDS:
        if (src / name).exists():
            shutil.copy2(src / name, dst / name)


def other_cpu_kind(trained_on: str | None, here: str | None, dtype: str | None) -> str | None:
    """Why committed records name another kind of CPU than this one (``None``: the same kind,
    as far as can be told): the recorded kind, and this machine's, in words.

    Records made before the instruction sets were recorded name the CPU model alone; a
    bfloat16 model among them is taken to be trained on a CPU with native bfloat16 (every such
    record in this project was), which a CPU without it (``avx512_bf16``/``amx_bf16``; e.g. AMD
    EPYC Zen 3, "AMD EPYC" too) cannot regenerate: it emulates bfloat16 with other kernels.
    """
    same = same_cpu_kind(trained_on, here)
    if same is False or (same is None and trained_on and here and dtype == "bfloat16"
                         and "[" in here and not any(f in here for f in CPU_BF16_FLAGS)):
        return f"{trained_on!r}; this machine is {here!r}"
    return None


def _weights_digest(directory: Path) -> str | None:
    """The weights digest a model's ``rsmi.json`` records (None: no readable card)."""
    try:
        digests = read_card(directory).get("weights_sha256")
    except ModelLoadError:
        return None
    return json.dumps(digests, sort_keys=True) if digests else None


# ---------------------------------------------------------------------- selection
def selection(study: Study, ds: str, sweep: Sweep | None = None
              ) -> tuple[dict[str, Any] | None, str | None]:
    """A sweep's model on dev (written to ``<folder>/selection.json``), or why not yet.

    ``sweep`` defaults to the plan's first sweep. Without ``long_epochs`` the grid's winner;
    with it, the better of the grid's winner and its ``long_epochs`` retraining.
    """
    sweep = sweep or (study.sweeps[0] if study.sweeps else None)
    if sweep is None:
        return None, "no sweep"
    chosen, why = grid_selection(study, ds, sweep)
    if chosen is None or not sweep.long_epochs:
        return chosen, why
    return long_selection(study, ds, sweep, chosen)


def _rank(metric: str) -> Callable[[dict[str, Any]], tuple]:
    """The selection rule: higher ``metric``; ties: higher clean accuracy, fewer forward passes."""
    return lambda r: (-r[metric], -r["clean_accuracy"], r["avg_forward_passes"] or 0)


def _dev_row(study: Study, ds: str, sweep: Sweep, name: str, metric: str) -> dict[str, Any] | None:
    summary = complete_summary(sweep.attack_dir(study.results_dir, ds, name))
    if summary is None:
        return None
    return {"model": name, metric: summary[metric], "clean_accuracy": summary["clean_accuracy"],
            "avg_forward_passes": summary.get("avg_forward_passes"),
            "settings": sweep.settings(name)}


def grid_selection(study: Study, ds: str, sweep: Sweep) -> tuple[dict[str, Any] | None, str | None]:
    """The best grid setting on dev by the sweep's rule, or why not yet."""
    rows, missing, excluded = [], 0, []
    rule = sweep.rule
    metric = rule.get("metric", "accuracy_under_attack")
    for name, settings in sweep.grid_models().items():
        why = did_not_learn(training_record(study, ds, name, sweep.seed))
        if why:
            excluded.append({"model": name, "reason": why, "settings": settings})
            continue
        row = _dev_row(study, ds, sweep, name, metric)
        if row is None:
            missing += 1
            continue
        rows.append(row)
    if missing:
        return None, f"selection waits for {missing} sweep dev attack(s)"
    if not rows:
        return None, "no sweep setting gave a model that learned"
    rows.sort(key=_rank(metric))
    chosen = {"selected": rows[0]["model"], "metric": metric, "split": rule.get("split", "dev"),
              "recipe": rule.get("recipe", "textfooler"), "rows": rows, "excluded": excluded}
    return chosen, None


def long_selection(study: Study, ds: str, sweep: Sweep, grid: dict[str, Any]
                   ) -> tuple[dict[str, Any] | None, str | None]:
    """The better on dev of the grid's winner and its ``long_epochs`` retraining (same seed,
    same dev examples, the same rule; a full tie keeps the shorter training), or why not yet."""
    winner, metric = grid["selected"], grid["metric"]
    long = sweep.long_model(winner)
    long_dir = training_record(study, ds, long, sweep.seed)
    record = {"model": long, "epochs": sweep.long_epochs}
    why = did_not_learn(long_dir)
    if why:
        reason = f"{long} {why}: the grid's winner {winner} is kept"
        return {**grid, "grid_selected": winner,
                "long": {**record, "excluded": why}, "why": reason}, None
    if not finished_training(long_dir):
        return None, f"selection waits for {long} ({sweep.long_epochs} epochs) to train"
    row = _dev_row(study, ds, sweep, long, metric)
    if row is None:
        return None, f"selection waits for the dev attack of {long}"
    compared = sorted([grid["rows"][0], row], key=_rank(metric))  # stable: a tie keeps winner
    return {**grid, "selected": compared[0]["model"], "grid_selected": winner,
            "long": {**record, "rows": compared},
            "why": _why(compared[0], compared[1], metric)}, None


def _why(best: dict[str, Any], other: dict[str, Any], metric: str) -> str:
    """Which step of the rule put ``best`` before ``other``, in words."""
    head = f"{best['model']} over {other['model']}: "
    if best[metric] != other[metric]:
        return head + f"higher dev {metric} ({best[metric]} vs {other[metric]})"
    tie = f"equal dev {metric} ({best[metric]}); "
    if best["clean_accuracy"] != other["clean_accuracy"]:
        return head + tie + (f"higher dev clean accuracy ({best['clean_accuracy']} vs "
                             f"{other['clean_accuracy']})")
    if (best["avg_forward_passes"] or 0) != (other["avg_forward_passes"] or 0):
        return head + tie + (f"equal clean accuracy; fewer forward passes "
                             f"({best['avg_forward_passes']} vs {other['avg_forward_passes']})")
    return head + tie + "a full tie on the rule: the shorter training is kept"


# ---------------------------------------------------------------------- jobs
def train_job(study: Study, ds: str, model: str, seed: int, selections: Selections | None,
              phase: str = "train") -> Job:
    spec = study.datasets[ds]
    out = study.model_dir(ds, model, seed, selections)
    settings = {**study.train, **study.model_settings(model, selections)}
    settings.pop("seeds", None)
    argv = ["train", "--data", str(spec.get("data", ds)), "--model", study.backbone,
            "--out", str(out), "--seed", str(seed), "--max-length", str(spec["max_length"]),
            "--resume", *_train_flags({**({"dtype": study.dtype} if study.dtype else {}), **settings})]
    results = study.records_dir(ds, model, seed)
    name = f"{ds}/{phase}/{model}" + ("" if phase == "sweep-train" else f"/seed-{seed}")
    job = Job(name, argv, finished_training(out),
              after=lambda: copy_records(out, results, replace=study.allow_other_cpu))
    # A model whose committed records were trained on another kind of CPU is not retrained
    # here: the same seed trains other (bfloat16) weights on another kind, which the committed
    # attack runs' digest check refuses.
    other = other_cpu_kind(training_cpu(results), study.cpu, training_dtype(results))
    if not job.done and other and not study.allow_other_cpu:
        job.blocked = (f"its committed records ({results}) were trained on {other}: the same "
                       "seed trains other weights here, which the committed runs refuse; run it "
                       "on that kind of machine (--allow-other-cpu retrains here and replaces "
                       "those records)")
    # A sweep setting whose committed training did not learn is used by nothing (neither its dev
    # attack nor the selection): it is not trained again on a machine that lacks its folder.
    unusable = did_not_learn(results) if phase == "sweep-train" else None
    if not job.done and unusable:
        job.blocked = (f"not needed: its committed records ({results}) say the model {unusable}, "
                       "so no job uses it (delete those records to train it again)")
    # The thread count is part of the arithmetic too (bfloat16 reductions split by thread): a
    # model with committed records is regenerated with the torch threads they name.
    threads = training_threads(results)
    if not job.done and threads:
        job.env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    # ... and saves the epoch those records selected: a randomized model's dev accuracy reads
    # otherwise with today's draws (issue 28's seeding), which can pick another epoch.
    finished = finished_event(results)
    best = finished.get("best_epoch") if finished else None
    if not job.done and isinstance(best, int) and not isinstance(best, bool) and best >= 1:
        job.argv += ["--select-epoch", str(best)]
    return job


def evaluate_job(study: Study, ds: str, model: str, seed: int, selections: Selections | None,
                 overrides: dict[str, Any] | None = None, name: str | None = None) -> Job:
    """Clean test accuracy; with ``overrides`` (an inference setting) under ``test-<name>``."""
    spec = study.datasets[ds]
    model_dir = study.model_dir(ds, model, seed, selections)
    folder = "test" if name is None else f"test-{name}"
    out = study.results_dir / ds / "eval" / model / f"seed-{seed}" / folder / "evaluation.json"
    argv = ["evaluate", "--model", str(model_dir), "--data", str(spec.get("data", ds)),
            "--split", "test", "--out", str(out), *_device(study), *_flags(overrides or {}),
            *_name(model, model_dir)]
    job = Job(f"{ds}/evaluate/{model}/seed-{seed}/{folder}", argv, out.exists())
    if not job.done and not finished_training(model_dir):
        job.blocked = "model not trained"
    return job


def attack_job(study: Study, ds: str, model: str, seed: int, row: dict[str, Any],
               selections: Selections | None, *, out: Path | None = None, job_id: str | None = None,
               split: str = "test", num_examples: int | None = None) -> Job:
    spec = study.datasets[ds]
    cfg = study.attacks
    model_dir = study.model_dir(ds, model, seed, selections)
    name = row.get("name", row["recipe"])
    out = out or study.results_dir / ds / "attacks" / model / f"seed-{seed}" / name
    overrides = dict(row.get("overrides") or {})
    seeds = [int(s) for s in row.get("attack_seeds", cfg.get("attack_seeds", [0, 1, 2]))]
    if not randomized(study.model_settings(model, selections), overrides):
        seeds = seeds[:1]  # a deterministic model gives the same result for every seed
    preset = row.get("preset", cfg.get("preset", "textdefender"))
    cut = row.get("cut_to_max_length", spec.get("cut_to_max_length", False))
    argv = ["attack", "--model", str(model_dir), "--data", str(spec.get("data", ds)),
            "--split", split, "--recipe", row["recipe"], "--preset", preset,
            "--num-examples", str(num_examples or row.get("num_examples", spec["num_examples"])),
            "--sample-seed", str(cfg.get("sample_seed", 0)),
            "--seeds", ",".join(map(str, seeds)), "--max-length", str(spec["max_length"]),
            "--out", str(out), "--resume", "--no-progress", *_device(study)]
    if preset != "authors" or cut:  # the authors' preset keeps its own word cut only
        argv.append("--cut-to-max-length" if cut else "--no-cut-to-max-length")
    if row.get("transfer"):
        argv.append("--transfer")
    if int(row.get("eot", 1)) > 1:
        argv += ["--eot", str(row["eot"])]
    if float(row.get("eot_margin", 0) or 0) > 0:  # the adaptive margin-EOT attacker
        argv += ["--eot-margin", f"{float(row['eot_margin']):g}"]
    # the deployed threat models' verdicts (issue 27): R fresh draws of each original and final
    # text (a deterministic model takes one); `attacks.fresh_draws`, a row's own `fresh_draws`
    fresh = int(row.get("fresh_draws", cfg.get("fresh_draws", 0)) or 0)
    if fresh > 0:
        argv += ["--fresh-draws", str(fresh)]
    if row.get("engine"):  # e.g. openvino-bf16 for new rows (part of the run's identity)
        argv += ["--engine", str(row["engine"])]
    argv += _flags(overrides) + _name(model, model_dir)
    job = Job(job_id or f"{ds}/attack/{model}/seed-{seed}/{name}", argv,
              complete_summary(out) is not None)
    legacy = legacy_seed_dirs(out, seeds)
    if not job.done and legacy:
        job.blocked = (f"attack seed(s) {', '.join(d.name for d in legacy)} were made under "
                       "another seeding scheme ('index', before issue 28), which this code never "
                       "resumes or extends; their finished records are re-scored as they are, "
                       "and more attack seeds need a new row (another --out)")
    elif not job.done and not finished_training(model_dir):
        job.blocked = "model not trained"
    return job


def attack_jobs(study: Study, ds: str, model: str, seed: int, row: dict[str, Any],
                selections: Selections | None) -> list[Job]:
    """:func:`attack_job`, or, for a run split into shards (``rsmi attack split``: its
    records in ``shard-<i>-of-<n>/``, none of its own), one job per shard (``.../shard-<i>``,
    the command plus ``--shard i/n``; two runners with ``--only`` patterns of one shard each
    use two cores) and the merge (``.../merge``) once every shard is complete."""
    job = attack_job(study, ds, model, seed, row, selections)
    out = Path(job.argv[job.argv.index("--out") + 1])
    shards = sorted(out.glob("shard-*-of-*/run.json"))
    if job.done or not shards or (out / "run.json").exists():
        return [job]
    n = int(shards[0].parent.name.rsplit("-", 1)[1])
    jobs = []
    for i in range(n):
        shard = Job(f"{job.id}/shard-{i}", [*job.argv, "--shard", f"{i}/{n}"],
                    complete_summary(out / f"shard-{i}-of-{n}") is not None, blocked=job.blocked)
        jobs.append(shard)
    waiting = [j.id.rsplit("/", 1)[1] for j in jobs if not j.done]
    jobs.append(Job(f"{job.id}/merge", ["attack", "merge", str(out), "--out", str(out)], False,
                    blocked=f"shards not complete: {', '.join(waiting)}" if waiting else None))
    return jobs


def legacy_seed_dirs(out: Path, seeds: list[int]) -> list[Path]:
    """The seed directories of a run (``out/seed-S``, or ``out`` itself for one seed) whose
    ``run.json`` names another seeding scheme than this code's: never resumed or extended."""
    from rsmi.inference import SEEDING, recorded_seeding

    dirs = [out] if len(seeds) == 1 else [out / f"seed-{s}" for s in seeds]
    found = []
    for d in dirs:
        try:
            meta = json.loads((d / "run.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(meta, dict) and recorded_seeding(meta) != SEEDING:
            found.append(d)
    return found


def _name(model: str, model_dir: Path) -> list[str]:
    """``--name ROW`` where the row's model lives in a directory of another name (a selected
    row's seed-0 model is its sweep run): the reports then name the row, on every seed."""
    return [] if Path(model_dir).parent.name == model else ["--name", model]


def _device(study: Study) -> list[str]:
    """The runtime flags of evaluate/attack: device and compute precision."""
    out = ["--device", study.device] if study.device else []
    return out + (["--dtype", study.dtype] if study.dtype else [])


def applies(row: dict[str, Any], model: str) -> bool:
    """Whether an attack row (``models: all`` or a list) is run on ``model``."""
    models = row.get("models", "all")
    return models == "all" or model in models


def extra_scope(study: Study, row: dict[str, Any], first: int) -> tuple[list[str], list[int]]:
    """Where an extra row runs: its ``datasets:`` (else all) and ``train_seeds:`` (else the
    first), each checked against the study's."""
    what = f"attacks.extra row {row.get('name', row.get('recipe'))!r}"
    names = [str(d) for d in row.get("datasets", list(study.datasets))]
    unknown = sorted(set(names) - set(study.datasets))
    if unknown:
        raise ValueError(f"{what}: unknown dataset(s) {unknown}; the study has "
                         f"{sorted(study.datasets)}")
    seeds = [int(s) for s in row.get("train_seeds", [first])]
    unknown_seeds = sorted(set(seeds) - set(study.seeds))
    if unknown_seeds:
        raise ValueError(f"{what}: training seed(s) {unknown_seeds} are not in train.seeds "
                         f"{study.seeds}")
    return names, seeds


def sweep_jobs(study: Study, sweep: Sweep) -> list[Job]:
    """A sweep's dev jobs: its grid trained on one seed, attacked on dev; with ``long_epochs``,
    then the grid's winner retrained for that many epochs and attacked on the same examples."""
    jobs: list[Job] = []
    rule, row, seed = sweep.rule, sweep.attack_row(), sweep.seed

    def dev_attack(ds: str, m: str) -> Job:
        job = attack_job(study, ds, m, seed, row, None, out=sweep.attack_dir(study.results_dir, ds, m),
                         job_id=f"{ds}/sweep-attack/{m}", split=rule.get("split", "dev"),
                         num_examples=int(rule.get("num_examples", 100)))
        why = did_not_learn(training_record(study, ds, m, seed))
        if why and not job.done:
            job.blocked = f"not eligible: the model {why}"
        return job

    for ds in study.datasets:
        jobs += [train_job(study, ds, m, seed, None, phase="sweep-train") for m in sweep.grid_models()]
    for ds in study.datasets:
        jobs += [dev_attack(ds, m) for m in sweep.grid_models()]
    if not sweep.long_epochs:
        return jobs
    winners = {ds: grid_selection(study, ds, sweep) for ds in study.datasets}
    for ds, (grid, why) in winners.items():
        if grid is None:
            jobs.append(Job(f"{ds}/sweep-train/{sweep.folder}-winner-{sweep.long_epochs}ep", [],
                            False, blocked=f"waits for the grid's winner: {why}"))
        else:
            long = sweep.long_model(grid["selected"])
            jobs.append(train_job(study, ds, long, seed, None, phase="sweep-train"))
    for ds, (grid, _) in winners.items():
        if grid is not None:
            jobs.append(dev_attack(ds, sweep.long_model(grid["selected"])))
    return jobs


def plan(study: Study) -> list[Job]:
    """Every job of the study, in priority order, with its status on disk."""
    jobs: list[Job] = []
    main_rows = list(study.attacks.get("main") or [])
    extra_rows = list(study.attacks.get("extra") or [])
    attack_train_seeds = [int(s) for s in study.attacks.get("train_seeds", study.seeds)]
    first = study.seeds[0]
    found = {ds: {s.name: selection(study, ds, s) for s in study.sweeps} for ds in study.datasets}
    chosen: dict[str, Selections] = {
        ds: {name: sel for name, (sel, _) in by_name.items() if sel is not None}
        for ds, by_name in found.items()}
    fixed = list(study.models)

    def waiting(ds: str, model: str) -> bool:
        """A sweep's model whose selection is not there yet (its placeholder says why)."""
        return study.sweep_for(model) is not None and model not in chosen[ds]

    def main_attacks(models: list[str], seeds: list[int]) -> None:
        for ds in study.datasets:
            sel = chosen[ds]
            for row, model, seed in itertools.product(main_rows, models, seeds):
                if waiting(ds, model):
                    continue  # its own blocked placeholder says why
                if applies(row, model) and seed in study.model_seeds(model) \
                        and seed in attack_train_seeds:
                    jobs.extend(attack_jobs(study, ds, model, seed, row, sel))

    # 1–3: the fixed models on the first seed.
    for ds in study.datasets:
        jobs += [train_job(study, ds, m, first, None) for m in fixed if first in study.model_seeds(m)]
    for ds in study.datasets:
        jobs += [evaluate_job(study, ds, m, first, None) for m in fixed if first in study.model_seeds(m)]
    main_attacks(fixed, [first])
    # 4: each sweep on dev (and its long step), then the selection.
    for sweep in study.sweeps:
        jobs += sweep_jobs(study, sweep)
    # 5: each sweep's selected model on the first seed.
    for sweep in study.sweeps:
        name = sweep.name
        for ds in study.datasets:
            sel, why = found[ds][name]
            if sel is None:
                jobs.append(Job(f"{ds}/evaluate/{name}/seed-{first}/test", [], False, blocked=why))
                continue
            if first != sweep.seed:
                jobs.append(train_job(study, ds, name, first, chosen[ds]))
            jobs.append(evaluate_job(study, ds, name, first, chosen[ds]))
        main_attacks([name], [first])
    # 6: extra rows, on the first seed unless the row names its ``train_seeds`` (and on every
    # dataset unless it names its ``datasets``).
    scopes = [extra_scope(study, row, first) for row in extra_rows]
    for ds in study.datasets:
        sel = chosen[ds]
        for row, (row_datasets, row_seeds) in zip(extra_rows, scopes, strict=True):
            if ds not in row_datasets:
                continue
            for model, seed in itertools.product(row.get("models", []), row_seeds):
                if waiting(ds, model) or seed not in study.model_seeds(model):
                    continue
                if row.get("overrides"):  # the same inference setting's clean accuracy
                    jobs.append(evaluate_job(study, ds, model, seed, sel, row["overrides"],
                                             row.get("name", row["recipe"])))
                jobs.extend(attack_jobs(study, ds, model, seed, row, sel))
    # 7: the other seeds.
    rest = [s for s in study.seeds if s != first]
    models = study.main_models()
    for ds in study.datasets:
        sel = chosen[ds]
        for seed in rest:
            for m in models:
                if waiting(ds, m) or seed not in study.model_seeds(m):
                    continue
                jobs.append(train_job(study, ds, m, seed, sel))
                jobs.append(evaluate_job(study, ds, m, seed, sel))
    main_attacks(models, rest)
    return with_rescoring(jobs)


def with_rescoring(jobs: list[Job]) -> list[Job]:
    """After each finished attack of a randomized model that lacks the fresh-draw verdicts its
    row asks for (``--fresh-draws R``; runs finished before issue 27), a ``rsmi attack rescore``
    job that adds them in place (the model's weights digest is checked by rescore itself)."""
    from rsmi.attacks.fresh import is_deterministic

    out: list[Job] = []
    for job in jobs:
        out.append(job)
        argv = job.argv
        if not (argv[:1] == ["attack"] and "--fresh-draws" in argv):
            continue
        draws = int(argv[argv.index("--fresh-draws") + 1])
        run, model_dir = Path(argv[argv.index("--out") + 1]), argv[argv.index("--model") + 1]
        if job.done:
            runs = [(run, "")]
        else:  # a row that cannot be extended (old seeding): its finished seeds, one by one
            seeds = argv[argv.index("--seeds") + 1].split(",")
            runs = [(d, f"/{d.name}") for d in legacy_seed_dirs(run, seeds)
                    if complete_summary(d) is not None]
        for path, suffix in runs:
            summary = complete_summary(path) or {}
            settings = (summary.get("model") or {}).get("rsmi_config") or {}
            if not settings or is_deterministic(settings):
                continue  # a deterministic model's deployed verdicts are its protocol ones
            blocks = [summary.get("fresh_draws")] + [
                s.get("fresh_draws") for s in summary.get("per_seed") or [] if isinstance(s, dict)]
            if any(isinstance(b, dict) and b.get("draws") == draws and b.get("complete", True)
                   for b in blocks):
                continue
            rescore = Job(job.id.replace("/attack/", "/rescore/", 1).replace(
                "/sweep-attack/", "/sweep-rescore/", 1) + suffix,
                ["attack", "rescore", "--run", str(path), "--model", model_dir,
                 "--draws", str(draws)], False)
            if not finished_training(Path(model_dir)):
                rescore.blocked = "model not trained (rescore needs the weights the run attacked)"
            out.append(rescore)
    return out


def select_jobs(jobs: list[Job], only: str | None) -> list[Job]:
    if not only:
        return jobs
    patterns = [p.strip() for p in only.split(",") if p.strip()]
    return [j for j in jobs if any(fnmatch.fnmatchcase(j.id, p) for p in patterns)]


def write_selections(study: Study) -> None:
    for ds, sweep in itertools.product(study.datasets, study.sweeps):
        sel, _ = selection(study, ds, sweep)
        if sel is not None:
            path = study.results_dir / ds / sweep.folder / "selection.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(sel, indent=2) + "\n", encoding="utf-8")


def run(study: Study, only: str | None = None, *, execute: Executor | None = None,
        say: Callable[[str], None] = print) -> int:
    """Run every job not done, in order, re-planning after each (selection unblocks jobs)."""
    def subprocess_executor(argv: list[str], env: dict[str, str] | None = None) -> int:
        full = {**os.environ, **env} if env else None
        return subprocess.run([*study.python, *argv], check=False, env=full).returncode

    execute = execute or subprocess_executor
    failed: set[str] = set()
    while True:
        jobs = select_jobs(plan(study), only)
        # finished trainings' records (copy_records; the one just run included): kept or copied
        for job in jobs:
            if job.done and job.after is not None and job.id not in failed:
                try:
                    job.after()
                except RecordsKept as exc:
                    say(f"[study] {job.id}: failed: {exc}")
                    failed.add(job.id)
        write_selections(study)
        todo = [j for j in jobs if not j.done and not j.blocked and j.id not in failed]
        if not todo:
            break
        job = todo[0]
        say(f"[study] {job.id}: {job.command}")
        code = execute(job.argv, env=job.env) if job.env else execute(job.argv)
        if code != 0:
            say(f"[study] {job.id}: failed (exit {code}); continuing with the others")
            failed.add(job.id)
    blocked = [j for j in select_jobs(plan(study), only) if j.blocked and not j.done]
    for job in blocked:
        say(f"[study] {job.id}: {job.status}")
    if failed:
        say(f"[study] {len(failed)} job(s) failed: {', '.join(sorted(failed))}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="the study's YAML plan (benchmarks/study.yaml)")
    parser.add_argument("--only", help="run only jobs whose id matches (fnmatch, comma-separated "
                        "patterns, e.g. 'mr/*' or '*/attack/*/seed-0/textfooler')")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    parser.add_argument("--runs-dir", help="override runs_dir (models, checkpoints)")
    parser.add_argument("--results-dir", help="override results_dir (committable results)")
    parser.add_argument("--device", help="torch device for evaluate/attack (default: cuda if any)")
    parser.add_argument("--allow-other-cpu", action="store_true",
                        help="retrain models whose committed training records come from another "
                             "CPU model (blocked by default: other weights, which the committed "
                             "attack runs refuse; their records are replaced)")
    args = parser.parse_args(argv)
    study = Study.load(args.config, runs_dir=args.runs_dir, results_dir=args.results_dir,
                       device=args.device)
    study.allow_other_cpu = args.allow_other_cpu
    if args.dry_run:
        jobs = select_jobs(plan(study), args.only)
        for job in jobs:
            print(f"[{job.status}] {job.id}\n    {job.command}")
        counts = {s: sum(j.status.split(":")[0] == s for j in jobs) for s in ("done", "todo", "blocked")}
        print(f"{len(jobs)} jobs: {counts['done']} done, {counts['todo']} to do, "
              f"{counts['blocked']} blocked (this machine: {study.cpu or 'unknown CPU'})")
        return 0
    return run(study, args.only)


if __name__ == "__main__":
    sys.exit(main())
