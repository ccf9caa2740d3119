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
4. ``sweep-train`` / ``sweep-attack``: the RSMI grid (``sweep:``) trained on one seed and
   attacked on the **dev** split; the best by the chosen metric (ties: clean accuracy, then
   fewer forward passes) becomes the model ``sweep.name`` (``selection.json``);
5. the selected model: evaluation and main attacks (its first seed is the sweep's run);
6. ``extra`` rows (transfer, EOT, authors' preset and masking, inference ablations), on the
   first training seed unless a row lists ``train_seeds`` and on every dataset unless it lists
   ``datasets``; a row with inference ``overrides`` also gets its clean evaluation
   (``eval/.../test-<row>/``);
7. the other training seeds: training, evaluation, main attacks.

Models and checkpoints go under ``runs_dir`` (git-ignored); what may be committed goes under
``results_dir``/<dataset>/: ``models/<model>/seed-<s>/`` (training_config.json, log.jsonl,
rsmi.json — never weights), ``eval/<model>/seed-<s>/test/`` (evaluation.json,
predictions.jsonl), ``attacks/<model>/seed-<s>/<row>/`` (summary.json, examples.jsonl,
run.json), ``sweep/`` (dev attacks, selection.json). Run from the repository root.
"""

from __future__ import annotations

import argparse
import fnmatch
import itertools
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rsmi.store.model_card import did_not_learn, training_finished

Executor = Callable[[list[str]], int]

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

    @property
    def status(self) -> str:
        return "done" if self.done else (f"blocked: {self.blocked}" if self.blocked else "todo")


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
    sweep: dict[str, Any] | None
    attacks: dict[str, Any]
    device: str | None = None
    dtype: str | None = None
    python: list[str] = field(default_factory=lambda: [sys.executable, "-m", "rsmi.cli.main"])

    @classmethod
    def load(cls, path: str | Path, **overrides: Any) -> Study:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        known = {"name", "runs_dir", "results_dir", "backbone", "datasets", "train", "models",
                 "sweep", "attacks", "device", "dtype"}
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
            sweep=raw.get("sweep"),
            attacks=dict(raw.get("attacks") or {}),
            device=raw.get("device"),
            dtype=raw.get("dtype"),
        )
        for key, value in overrides.items():
            if value is not None:
                setattr(study, key, Path(value) if key.endswith("_dir") else value)
        if not study.datasets or not study.models:
            raise ValueError(f"{path}: give at least one dataset and one model")
        return study

    # ------------------------------------------------------------------ models
    def sweep_models(self) -> dict[str, dict[str, Any]]:
        """The grid's models, named ``sweep-s<σ>-n<every>-m<masks>`` (and so on per key)."""
        if not self.sweep:
            return {}
        grid = self.sweep.get("grid") or {}
        keys = list(grid)
        out = {}
        for values in itertools.product(*(grid[k] for k in keys)):
            name = "sweep-" + "-".join(f"{_short(k)}{v}" for k, v in zip(keys, values, strict=True))
            out[name] = {**(self.sweep.get("base") or {}), **dict(zip(keys, values, strict=True))}
        return out

    @property
    def selected_name(self) -> str | None:
        return None if not self.sweep else str(self.sweep.get("name", "rsmi-dev"))

    @property
    def sweep_seed(self) -> int:
        return int((self.sweep or {}).get("seed", self.seeds[0]))

    def model_dir(self, ds: str, model: str, seed: int, selection: dict[str, Any] | None) -> Path:
        if model == self.selected_name and selection and seed == self.sweep_seed:
            model = selection["selected"]  # the selected setting's sweep run is its seed
        return self.runs_dir / ds / model / f"seed-{seed}"

    def model_settings(self, model: str, selection: dict[str, Any] | None) -> dict[str, Any]:
        if model == self.selected_name:
            if not selection:
                raise LookupError(model)
            return self.sweep_models()[selection["selected"]]
        if model in self.models:
            return dict(self.models[model])
        return self.sweep_models()[model]

    def model_seeds(self, model: str) -> list[int]:
        spec = self.models.get(model, {})
        return [int(s) for s in spec.get("seeds", self.seeds)]

    def main_models(self) -> list[str]:
        names = list(self.models)
        return names + ([self.selected_name] if self.selected_name else [])


def _short(key: str) -> str:
    return {"noise_std": "s", "noise_every": "n", "num_masks": "m"}.get(key, key + "_")


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


def copy_records(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for name in TRAINING_RECORDS:
        if (src / name).exists():
            shutil.copy2(src / name, dst / name)


# ---------------------------------------------------------------------- selection
def selection(study: Study, ds: str) -> tuple[dict[str, Any] | None, str | None]:
    """The sweep's winner on dev (written to ``sweep/selection.json``), or why not yet."""
    if not study.sweep:
        return None, "no sweep"
    rows, missing, excluded = [], 0, []
    rule = study.sweep.get("select_by") or {}
    metric = rule.get("metric", "accuracy_under_attack")
    for name in study.sweep_models():
        why = did_not_learn(study.model_dir(ds, name, study.sweep_seed, None))
        if why:
            excluded.append({"model": name, "reason": why, "settings": study.sweep_models()[name]})
            continue
        summary = complete_summary(sweep_attack_dir(study, ds, name))
        if summary is None:
            missing += 1
            continue
        rows.append({"model": name, metric: summary[metric],
                     "clean_accuracy": summary["clean_accuracy"],
                     "avg_forward_passes": summary.get("avg_forward_passes"),
                     "settings": study.sweep_models()[name]})
    if missing:
        return None, f"selection waits for {missing} sweep dev attack(s)"
    if not rows:
        return None, "no sweep setting gave a model that learned"
    rows.sort(key=lambda r: (-r[metric], -r["clean_accuracy"], r["avg_forward_passes"] or 0))
    chosen = {"selected": rows[0]["model"], "metric": metric, "split": rule.get("split", "dev"),
              "recipe": rule.get("recipe", "textfooler"), "rows": rows, "excluded": excluded}
    return chosen, None


def sweep_attack_dir(study: Study, ds: str, model: str) -> Path:
    rule = (study.sweep or {}).get("select_by") or {}
    name = f"{rule.get('split', 'dev')}-{rule.get('recipe', 'textfooler')}"
    return study.results_dir / ds / "sweep" / model / name


# ---------------------------------------------------------------------- jobs
def train_job(study: Study, ds: str, model: str, seed: int, selection_: dict | None,
              phase: str = "train") -> Job:
    spec = study.datasets[ds]
    out = study.model_dir(ds, model, seed, selection_)
    settings = {**study.train, **study.model_settings(model, selection_)}
    settings.pop("seeds", None)
    argv = ["train", "--data", str(spec.get("data", ds)), "--model", study.backbone,
            "--out", str(out), "--seed", str(seed), "--max-length", str(spec["max_length"]),
            "--resume", *_train_flags({**({"dtype": study.dtype} if study.dtype else {}), **settings})]
    results = study.results_dir / ds / "models" / model / f"seed-{seed}"
    name = f"{ds}/{phase}/{model}" + ("" if phase == "sweep-train" else f"/seed-{seed}")
    return Job(name, argv, finished_training(out), after=lambda: copy_records(out, results))


def evaluate_job(study: Study, ds: str, model: str, seed: int, selection_: dict | None,
                 overrides: dict[str, Any] | None = None, name: str | None = None) -> Job:
    """Clean test accuracy; with ``overrides`` (an inference setting) under ``test-<name>``."""
    spec = study.datasets[ds]
    model_dir = study.model_dir(ds, model, seed, selection_)
    folder = "test" if name is None else f"test-{name}"
    out = study.results_dir / ds / "eval" / model / f"seed-{seed}" / folder / "evaluation.json"
    argv = ["evaluate", "--model", str(model_dir), "--data", str(spec.get("data", ds)),
            "--split", "test", "--out", str(out), *_device(study), *_flags(overrides or {})]
    job = Job(f"{ds}/evaluate/{model}/seed-{seed}/{folder}", argv, out.exists())
    if not job.done and not finished_training(model_dir):
        job.blocked = "model not trained"
    return job


def attack_job(study: Study, ds: str, model: str, seed: int, row: dict[str, Any],
               selection_: dict | None, *, out: Path | None = None, job_id: str | None = None,
               split: str = "test", num_examples: int | None = None) -> Job:
    spec = study.datasets[ds]
    cfg = study.attacks
    model_dir = study.model_dir(ds, model, seed, selection_)
    name = row.get("name", row["recipe"])
    out = out or study.results_dir / ds / "attacks" / model / f"seed-{seed}" / name
    overrides = dict(row.get("overrides") or {})
    seeds = [int(s) for s in row.get("attack_seeds", cfg.get("attack_seeds", [0, 1, 2]))]
    if not randomized(study.model_settings(model, selection_), overrides):
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
    argv += _flags(overrides)
    job = Job(job_id or f"{ds}/attack/{model}/seed-{seed}/{name}", argv,
              complete_summary(out) is not None)
    if not job.done and not finished_training(model_dir):
        job.blocked = "model not trained"
    return job


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


def plan(study: Study) -> list[Job]:
    """Every job of the study, in priority order, with its status on disk."""
    jobs: list[Job] = []
    main_rows = list(study.attacks.get("main") or [])
    extra_rows = list(study.attacks.get("extra") or [])
    attack_train_seeds = [int(s) for s in study.attacks.get("train_seeds", study.seeds)]
    first = study.seeds[0]
    selections = {ds: selection(study, ds) for ds in study.datasets}
    fixed = list(study.models)

    def main_attacks(models: list[str], seeds: list[int]) -> None:
        for ds in study.datasets:
            sel = selections[ds][0]
            for row, model, seed in itertools.product(main_rows, models, seeds):
                if model == study.selected_name and sel is None:
                    continue  # its own blocked placeholder says why
                if applies(row, model) and seed in study.model_seeds(model) \
                        and seed in attack_train_seeds:
                    jobs.append(attack_job(study, ds, model, seed, row, sel))

    # 1–3: the fixed models on the first seed.
    for ds in study.datasets:
        jobs += [train_job(study, ds, m, first, None) for m in fixed if first in study.model_seeds(m)]
    for ds in study.datasets:
        jobs += [evaluate_job(study, ds, m, first, None) for m in fixed if first in study.model_seeds(m)]
    main_attacks(fixed, [first])
    # 4: the sweep on dev, then the selection.
    if study.sweep:
        rule = study.sweep.get("select_by") or {}
        row = {"recipe": rule.get("recipe", "textfooler"),
               "attack_seeds": rule.get("attack_seeds", [0])}
        for ds in study.datasets:
            jobs += [train_job(study, ds, m, study.sweep_seed, None, phase="sweep-train")
                     for m in study.sweep_models()]
        for ds in study.datasets:
            for m in study.sweep_models():
                job = attack_job(
                    study, ds, m, study.sweep_seed, row, None, out=sweep_attack_dir(study, ds, m),
                    job_id=f"{ds}/sweep-attack/{m}", split=rule.get("split", "dev"),
                    num_examples=int(rule.get("num_examples", 100)),
                )
                why = did_not_learn(study.model_dir(ds, m, study.sweep_seed, None))
                if why and not job.done:
                    job.blocked = f"not eligible: the model {why}"
                jobs.append(job)
    # 5: the selected model on the first seed.
    name = study.selected_name
    if name:
        for ds in study.datasets:
            sel, why = selections[ds]
            if sel is None:
                jobs.append(Job(f"{ds}/evaluate/{name}/seed-{first}/test", [], False, blocked=why))
                continue
            if first != study.sweep_seed:
                jobs.append(train_job(study, ds, name, first, sel))
            jobs.append(evaluate_job(study, ds, name, first, sel))
        main_attacks([name], [first])
    # 6: extra rows, on the first seed unless the row names its ``train_seeds`` (and on every
    # dataset unless it names its ``datasets``).
    scopes = [extra_scope(study, row, first) for row in extra_rows]
    for ds in study.datasets:
        sel = selections[ds][0]
        for row, (row_datasets, row_seeds) in zip(extra_rows, scopes, strict=True):
            if ds not in row_datasets:
                continue
            for model, seed in itertools.product(row.get("models", []), row_seeds):
                if (model == name and sel is None) or seed not in study.model_seeds(model):
                    continue
                if row.get("overrides"):  # the same inference setting's clean accuracy
                    jobs.append(evaluate_job(study, ds, model, seed, sel, row["overrides"],
                                             row.get("name", row["recipe"])))
                jobs.append(attack_job(study, ds, model, seed, row, sel))
    # 7: the other seeds.
    rest = [s for s in study.seeds if s != first]
    models = fixed + ([name] if name else [])
    for ds in study.datasets:
        sel = selections[ds][0]
        for seed in rest:
            for m in models:
                if (m == name and sel is None) or seed not in study.model_seeds(m):
                    continue
                jobs.append(train_job(study, ds, m, seed, sel))
                jobs.append(evaluate_job(study, ds, m, seed, sel))
    main_attacks(models, rest)
    return jobs


def select_jobs(jobs: list[Job], only: str | None) -> list[Job]:
    if not only:
        return jobs
    patterns = [p.strip() for p in only.split(",") if p.strip()]
    return [j for j in jobs if any(fnmatch.fnmatchcase(j.id, p) for p in patterns)]


def write_selections(study: Study) -> None:
    for ds in study.datasets:
        sel, _ = selection(study, ds)
        if sel is not None:
            path = study.results_dir / ds / "sweep" / "selection.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(sel, indent=2) + "\n", encoding="utf-8")


def run(study: Study, only: str | None = None, *, execute: Executor | None = None,
        say: Callable[[str], None] = print) -> int:
    """Run every job not done, in order, re-planning after each (selection unblocks jobs)."""
    execute = execute or (lambda argv: subprocess.run([*study.python, *argv], check=False).returncode)
    failed: set[str] = set()
    while True:
        jobs = select_jobs(plan(study), only)
        for job in jobs:  # finished training whose records were not copied yet
            if job.done and job.after is not None:
                job.after()
        write_selections(study)
        todo = [j for j in jobs if not j.done and not j.blocked and j.id not in failed]
        if not todo:
            break
        job = todo[0]
        say(f"[study] {job.id}: rsmi {' '.join(job.argv)}")
        code = execute(job.argv)
        if code != 0:
            say(f"[study] {job.id}: failed (exit {code}); continuing with the others")
            failed.add(job.id)
        elif job.after is not None:
            job.after()
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
    args = parser.parse_args(argv)
    study = Study.load(args.config, runs_dir=args.runs_dir, results_dir=args.results_dir,
                       device=args.device)
    if args.dry_run:
        jobs = select_jobs(plan(study), args.only)
        for job in jobs:
            command = f"rsmi {' '.join(job.argv)}" if job.argv else ""
            print(f"[{job.status}] {job.id}\n    {command}")
        counts = {s: sum(j.status.split(":")[0] == s for j in jobs) for s in ("done", "todo", "blocked")}
        print(f"{len(jobs)} jobs: {counts['done']} done, {counts['todo']} to do, "
              f"{counts['blocked']} blocked")
        return 0
    return run(study, args.only)


if __name__ == "__main__":
    sys.exit(main())
