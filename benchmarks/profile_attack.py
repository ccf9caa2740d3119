"""Where an attack's wall time goes (issue 26, item 1): exclusive time per part of `rsmi attack`.

Each configuration runs the real command (``rsmi.cli.main.main(["attack", ...])``, the study's
flags: ``--preset textdefender --max-length 64|128 --cut-to-max-length --dtype ...``) while
timers wrapped around methods from the outside split its wall time into parts. The wrappers are
installed on the classes for the run and the originals put back afterwards; nothing in
``src/`` is changed. A timer's time is *exclusive*: time spent in a nested timed method is
counted in that method's part, never twice, so the parts add up to the measured total.

Parts (``PARTS``): inside ``RSMIClassifier.predict`` (the defended model, what
``summary.json`` ``seconds.model`` measures): the noisy Monte-Carlo forward passes (the one
plain pass of a base model), the saliency pass, tokenisation + collation, the rest of
``predict``; outside it: the TextAttack model wrapper, the goal function, each constraint by
class (the sentence encoder's and the POS tagger's own calls apart), the transformation (its
neighbour look-ups apart), the Attack's transformation/constraint caches and filtering, the
search method's own time, TextAttack's per-example set-up, rsmi's per-example record, the
runner loop (records, summaries, IO), and the one-time set-up (model, data, resources, attack
construction). Shares are of the attack loop (total minus set-up).

A second, shorter run of each configuration under ``cProfile`` (``--cprofile-examples``, not
timed) writes the top 25 functions by cumulative and by own time beside the JSON, to name the
hot functions inside each part.

    nice -n 5 python benchmarks/profile_attack.py --threads 1        # every configuration
    nice -n 5 python benchmarks/profile_attack.py --threads 1 --only mr-textfooler-base-bfloat16
    python benchmarks/profile_attack.py --table                      # markdown from the JSON

On a shared, loaded machine use ``--threads 1``: two torch threads then mostly wait for each
other (docs/benchmarks.md); the JSON records wall and CPU seconds per part either way.

Output: ``results/benchmarks/profile/<dataset>-<recipe>-<model>-<dtype>.json`` and
``...cprofile.txt``.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime
import functools
import io
import json
import os
import platform
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "benchmarks" / "profile"

MODELS = {  # (dataset, model) → trained model directory (git-ignored, on the lab machine)
    ("mr", "base"): "/work/main/runs/bench/mr-base",
    ("mr", "rsmi"): "/work/main/runs/bench/mr-rsmi-paper",
    ("bbc", "base"): "/work/main/runs/bench/bbc-base",
    ("bbc", "rsmi"): "/work/main/runs/study/bbc/rsmi-paper/seed-1",
}
MAX_LENGTH = {"mr": 64, "bbc": 128}  # the study's max length per dataset
NUM_EXAMPLES = {"mr": 20, "bbc": 4}  # the first of the study's seeded sample (sample seed 0)
CPROFILE_EXAMPLES = {"mr": 2, "bbc": 1}

# Setup: the one-time cost (loading model, data, resources; building the attack).
SETUP, RUNNER = "setup", "runner"
# key → (group, what it is). Constraint parts are "constraint.<Class>" (and ".encode",
# ".tagger" for the sentence encoder's and POS tagger's own calls), made at run time.
PARTS: dict[str, tuple[str, str]] = {
    "model.forward": ("model", "forward passes: the noisy Monte-Carlo samples (a base model: its "
                      "one plain pass) — SmoothedInference._forward_rows"),
    "model.saliency": ("model", "saliency pass (noisy forward + backward) and mask candidates — "
                       "SmoothedInference._saliency_candidates"),
    "model.tokenize": ("model", "tokenisation, content check, padding/collation inside predict — "
                       "RSMIClassifier.tokenize / batches / collate / content_free"),
    "model.other": ("model", "the rest of RSMIClassifier.predict (input checks, row keys, votes, "
                    "binomial test, result arrays)"),
    "wrapper": ("harness", "RSMIModelWrapper.predict_probs outside predict"),
    "wrapper.tokenize": ("harness", "the wrapper's own content check (a second tokenisation) — "
                         "RSMIClassifier.content_free outside predict"),
    "goal_function": ("harness", "TextAttack goal function: query budget, result objects, batching "
                      "— GoalFunction.get_results"),
    "transformation": ("harness", "transformation: candidate texts — Transformation.__call__"),
    "transformation.neighbours": ("harness", "replacement words: embedding neighbours / WordNet "
                                  "synonyms — WordSwap*._get_replacement_words"),
    "attack.filter": ("harness", "Attack's transformation and constraint caches, filtering and "
                      "sorting — Attack.get_transformations / filter_transformations / "
                      "get_indices_to_order"),
    "search": ("harness", "the search method's own time (word importance order, candidate choice, "
               "AttackedText edits) — SearchMethod.__call__"),
    "attack.other": ("harness", "TextAttack per-example set-up and results — Attack.attack"),
    "record": ("harness", "rsmi per-example seeding, budget and record — attack_example"),
    RUNNER: ("runner", "runner loop: records written, summaries, resume check — _AttackRun.run"),
    SETUP: ("setup", "one-time: load model, data, resources; build the attack; print"),
}
CONSTRAINT_DESCRIPTION = "constraint {name} — Constraint.call_many / PreTransformationConstraint"


def describe(part: str) -> tuple[str, str]:
    """(group, description) of a part key."""
    if part in PARTS:
        return PARTS[part]
    if part.startswith("constraint."):
        return "harness", CONSTRAINT_DESCRIPTION.format(name=part.split(".", 1)[1])
    return "harness", part


# ----------------------------------------------------------------------------- the timers


class PartTimer:
    """Exclusive wall time (and process CPU time) per part from nested ``enter``/``exit`` calls.

    A frame's exclusive time is its elapsed time minus that of the frames nested in it, so the
    exclusive times of all parts add up to the root frame's elapsed time. ``inclusive`` counts
    a part's outermost frames only (a part nested in itself is not counted twice). ``cpu``:
    the same split of the process's CPU time (all its threads), which a busy shared machine
    disturbs less than wall time.
    """

    def __init__(
        self, clock: Callable[[], float] = time.perf_counter,
        cpu_clock: Callable[[], float] = time.process_time,
    ) -> None:
        self.clock, self.cpu_clock = clock, cpu_clock
        self.exclusive: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self.inclusive: dict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self.active = False
        self._stack: list[list[Any]] = []  # [part, start, cpu start, nested time, nested cpu]
        self._depth: Counter[str] = Counter()

    def enter(self, part: str) -> None:
        self._depth[part] += 1
        self._stack.append([part, self.clock(), self.cpu_clock(), 0.0, 0.0])

    def exit(self) -> None:
        now, cpu_now = self.clock(), self.cpu_clock()
        part, start, cpu_start, nested, nested_cpu = self._stack.pop()
        elapsed, cpu = now - start, cpu_now - cpu_start
        self.exclusive[part] += elapsed - nested
        self.cpu[part] += cpu - nested_cpu
        self.calls[part] += 1
        self._depth[part] -= 1
        if not self._depth[part]:
            self.inclusive[part] += elapsed
        if self._stack:
            self._stack[-1][3] += elapsed
            self._stack[-1][4] += cpu

    def inside(self, part: str) -> bool:
        return self._depth[part] > 0

    @contextlib.contextmanager
    def measure(self, root: str = SETUP) -> Iterator[PartTimer]:
        """Time the block as the root frame ``root``; wrapped methods time their parts."""
        self.active = True
        self.enter(root)
        try:
            yield self
        finally:
            self.exit()
            self.active = False


Namer = Callable[[tuple[Any, ...]], str]


def timed(timer: PartTimer, original: Callable[..., Any], namer: Namer) -> Callable[..., Any]:
    """``original`` with its calls timed as part ``namer(args)`` while ``timer`` is active."""

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not timer.active:
            return original(*args, **kwargs)
        timer.enter(namer(args))
        try:
            return original(*args, **kwargs)
        finally:
            timer.exit()

    wrapper.__profile_original__ = original  # type: ignore[attr-defined]
    return wrapper


@dataclass(frozen=True)
class Patch:
    """``owner.name`` (a class or module attribute) timed as the part ``namer`` names."""

    owner: Any
    name: str
    namer: Namer


def patches(timer: PartTimer) -> list[Patch]:
    """Every method the profile times (TextAttack must be loaded: ``load_textattack``)."""
    from rsmi.attacks._textattack import require_textattack

    require_textattack()
    from textattack import Attack
    from textattack.constraints import Constraint, PreTransformationConstraint
    from textattack.constraints.grammaticality import PartOfSpeech
    from textattack.constraints.semantics.sentence_encoders import SBERT
    from textattack.goal_functions import GoalFunction
    from textattack.search_methods import SearchMethod
    from textattack.transformations import Transformation, WordSwapEmbedding, WordSwapWordNet

    import rsmi.attacks.runner as runner
    from rsmi.attacks.wrapper import RSMIModelWrapper
    from rsmi.classifier import RSMIClassifier
    from rsmi.inference import SmoothedInference

    def fixed(part: str) -> Namer:
        return lambda args: part

    from rsmi.attacks.harness import CachedSentenceEncoder

    # The harness's cached encoder (rsmi.attacks.harness) is the SBERT constraint: one part.
    aliases = {CachedSentenceEncoder.__name__: SBERT.__name__}

    def by_class(suffix: str = "") -> Namer:
        def name(args: tuple[Any, ...]) -> str:
            cls = type(args[0]).__name__
            return f"constraint.{aliases.get(cls, cls)}{suffix}"

        return name

    def tokenizing(args: tuple[Any, ...]) -> str:  # inside predict: the model's own
        return "model.tokenize" if timer.inside("model.other") else "wrapper.tokenize"

    out = [
        Patch(SmoothedInference, "predict", fixed("model.other")),
        Patch(SmoothedInference, "_forward_rows", fixed("model.forward")),
        Patch(SmoothedInference, "_saliency_candidates", fixed("model.saliency")),
        *(Patch(RSMIClassifier, m, tokenizing)
          for m in ("tokenize", "batches", "collate", "content_free")),
        Patch(RSMIModelWrapper, "predict_probs", fixed("wrapper")),
        Patch(GoalFunction, "get_results", fixed("goal_function")),
        Patch(Constraint, "call_many", by_class()),
        Patch(Constraint, "__call__", by_class()),
        Patch(PreTransformationConstraint, "__call__", by_class()),
        Patch(SBERT, "encode", by_class(".encode")),
        Patch(CachedSentenceEncoder, "encode", by_class(".encode")),
        Patch(PartOfSpeech, "_get_pos", by_class(".tagger")),
        Patch(Transformation, "__call__", fixed("transformation")),
        Patch(WordSwapEmbedding, "_get_replacement_words", fixed("transformation.neighbours")),
        Patch(WordSwapWordNet, "_get_replacement_words", fixed("transformation.neighbours")),
        *(Patch(Attack, m, fixed("attack.filter"))
          for m in ("get_transformations", "filter_transformations", "get_indices_to_order")),
        Patch(SearchMethod, "__call__", fixed("search")),
        Patch(Attack, "attack", fixed("attack.other")),
        Patch(runner, "attack_example", fixed("record")),
        Patch(runner._AttackRun, "run", fixed(RUNNER)),
    ]
    return out


@contextlib.contextmanager
def instrument(timer: PartTimer) -> Iterator[list[Patch]]:
    """Install the timing wrappers; put every original back afterwards (even on error).

    Objects built inside the block (an Attack binds its methods at construction) keep calling
    the wrappers, which pass straight through once the timer is inactive.
    """
    done: list[tuple[Patch, Any]] = []
    try:
        for p in patches(timer):
            original = vars(p.owner)[p.name]  # defined on this class/module itself
            setattr(p.owner, p.name, timed(timer, original, p.namer))
            done.append((p, original))
        yield [p for p, _ in done]
    finally:
        for p, original in reversed(done):
            setattr(p.owner, p.name, original)


def split(timer: PartTimer) -> dict[str, dict[str, Any]]:
    """The parts' exclusive seconds, calls and inclusive seconds, largest first."""
    rows = sorted(timer.exclusive.items(), key=lambda kv: -kv[1])
    return {
        part: {"seconds": round(s, 4), "cpu_s": round(timer.cpu[part], 4), "calls": timer.calls[part],
               "inclusive_s": round(timer.inclusive[part], 4), "group": describe(part)[0],
               "description": describe(part)[1]}
        for part, s in rows
    }


# ----------------------------------------------------------------------------- a configuration


@dataclass(frozen=True)
class Config:
    dataset: str
    recipe: str
    model: str
    dtype: str

    @property
    def name(self) -> str:
        return f"{self.dataset}-{self.recipe}-{self.model}-{self.dtype}"

    def argv(self, out: Path, num_examples: int) -> list[str]:
        """The `rsmi attack` command line (the study's flags)."""
        return ["attack", "--model", MODELS[self.dataset, self.model], "--data", self.dataset,
                "--split", "test", "--recipe", self.recipe, "--preset", "textdefender",
                "--num-examples", str(num_examples), "--sample-seed", "0", "--seed", "0",
                "--max-length", str(MAX_LENGTH[self.dataset]), "--cut-to-max-length",
                "--dtype", self.dtype, "--out", str(out), "--no-progress"]


CONFIGS = (  # MR first (cheap), then BBC; RSMI BBC last (≈ 1–3 min per document)
    *(Config("mr", r, m, "bfloat16") for m in ("base", "rsmi") for r in ("textfooler", "pwws")),
    Config("mr", "textfooler", "base", "float32"),
    *(Config("bbc", r, "base", "bfloat16") for r in ("textfooler", "pwws")),
    *(Config("bbc", r, "rsmi", "bfloat16") for r in ("textfooler", "pwws")),
)


def run_cli(argv: Sequence[str]) -> None:
    from rsmi.cli.main import main

    with contextlib.redirect_stdout(io.StringIO()):  # the summary table
        status = main(list(argv))
    if status != 0:
        raise SystemExit(f"rsmi {' '.join(argv)} failed with exit status {status}")


def profile_config(
    cfg: Config, num_examples: int, cprofile_examples: int, out: Path = OUT
) -> dict[str, Any]:
    """Run ``cfg`` timed (and a shorter run under cProfile); the JSON of the profile."""
    from rsmi.attacks.records import read_records

    work = Path(tempfile.mkdtemp(prefix=f"profile-{cfg.name}-"))
    try:
        timer = PartTimer()
        load_before = os.getloadavg()
        with instrument(timer):
            started = time.perf_counter()
            with timer.measure(SETUP):
                run_cli(cfg.argv(work / "run", num_examples))
            total = time.perf_counter() - started
        load_after = os.getloadavg()
        records = read_records(work / "run" / "examples.jsonl")
        summary = json.loads((work / "run" / "summary.json").read_text())
        result = report(cfg, timer, total, records, summary)
        result.update(load_before=[round(x, 2) for x in load_before],
                      load_after=[round(x, 2) for x in load_after])
        if cprofile_examples:
            result["cprofile"] = write_cprofile(cfg, work / "cprofile", cprofile_examples, out)
            result["cprofile_examples"] = cprofile_examples
        result["rsmi_attack_command"] = "rsmi " + " ".join(cfg.argv(Path("OUT"), num_examples))
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(cfg: Config, timer: PartTimer, total: float, records: list[dict[str, Any]],
           summary: dict[str, Any]) -> dict[str, Any]:
    parts = split(timer)
    loop = total - parts[SETUP]["seconds"]
    loop_cpu = sum(r["cpu_s"] for r in parts.values() if r["group"] != "setup")
    for row in parts.values():
        loop_part = row["group"] != "setup"
        row["share"] = round(row["seconds"] / loop, 4) if loop_part else None
        row["cpu_share"] = round(row["cpu_s"] / loop_cpu, 4) if loop_part else None
    groups: dict[str, dict[str, float]] = defaultdict(lambda: {"seconds": 0.0, "cpu_s": 0.0})
    for row in parts.values():
        groups[row["group"]]["seconds"] += row["seconds"]
        groups[row["group"]]["cpu_s"] += row["cpu_s"]
    for g, row in groups.items():
        row.update(seconds=round(row["seconds"], 3), cpu_s=round(row["cpu_s"], 3),
                   share=None if g == "setup" else round(row["seconds"] / loop, 4),
                   cpu_share=None if g == "setup" else round(row["cpu_s"] / loop_cpu, 4))
    n = len(records)
    queries = sum(int(r.get("queries", 0)) for r in records)
    passes = sum(int(r.get("forward_passes", 0)) for r in records)
    model = groups["model"]["seconds"]
    return {
        "configuration": {**cfg.__dict__, "model_path": MODELS[cfg.dataset, cfg.model],
                          "max_length": MAX_LENGTH[cfg.dataset], "preset": "textdefender",
                          "cut_to_max_length": True, "sample_seed": 0, "seed": 0},
        "n": n,
        "total_s": round(total, 3),
        "sum_of_parts_s": round(sum(r["seconds"] for r in parts.values()), 3),
        "setup_s": parts[SETUP]["seconds"],
        "loop_s": round(loop, 3),
        "loop_cpu_s": round(loop_cpu, 3),
        "per_example_s": round(loop / n, 3) if n else None,
        "records_wall_s": round(sum(float(r.get("wall_s", 0.0)) for r in records), 3),
        "queries": queries,
        "queries_per_example": round(queries / n, 1) if n else None,
        "forward_passes": passes,
        "forward_passes_per_query": round(passes / queries, 3) if queries else None,
        "ms_per_query": round(1000 * loop / queries, 2) if queries else None,
        "results": dict(Counter(r["result_type"] for r in records)),
        "groups": dict(groups),
        "parts": parts,
        # Amdahl: the loop's speed-up if a part took no time at all (wall, and CPU shares).
        "amdahl": amdahl(groups, parts, "share"),
        "amdahl_cpu": amdahl(groups, parts, "cpu_share"),
        # summary.json's own split, against the profile's model parts (predict, inclusive).
        "summary_seconds": summary.get("seconds"),
        "weights_sha256": (summary.get("model") or {}).get("weights_sha256"),
        "model_epoch": ((summary.get("model") or {}).get("metadata") or {}).get("training", {}).get("epoch"),
        "profile_model_s": round(model, 3),
        "profile_predict_inclusive_s": round(timer.inclusive.get("model.other", 0.0), 3),
        **provenance(),
    }


def amdahl(groups: dict[str, dict[str, float]], parts: dict[str, dict[str, Any]],
           key: str) -> dict[str, float]:
    """1 / (1 - share): the best speed-up of the loop if that part went to zero."""
    shares = {"harness_to_zero": groups["harness"][key], "model_to_zero": groups["model"][key],
              "forward_to_zero": parts.get("model.forward", {}).get(key) or 0.0}
    return {k: round(1.0 / (1.0 - v), 2) for k, v in shares.items()}


def write_cprofile(cfg: Config, work: Path, num_examples: int, out: Path) -> str:
    prof = cProfile.Profile()
    prof.enable()
    try:
        run_cli(cfg.argv(work, num_examples))
    finally:
        prof.disable()
    text = io.StringIO()
    text.write(f"# cProfile of `rsmi {' '.join(cfg.argv(Path('OUT'), num_examples))}`\n"
               f"# {num_examples} example(s), separate from the timed run (cProfile slows "
               "Python-heavy parts more than native ones: read it for names, not shares)\n\n")
    stats = pstats.Stats(prof, stream=text).strip_dirs()
    text.write("## top 25 by cumulative time\n")
    stats.sort_stats("cumulative").print_stats(25)
    text.write("## top 25 by own time\n")
    stats.sort_stats("tottime").print_stats(25)
    path = out / f"{cfg.name}.cprofile.txt"
    path.write_text(text.getvalue())
    return path.name


def provenance() -> dict[str, Any]:
    import torch

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    from rsmi.provenance import cpu_model

    return {
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "python": platform.python_version(), "torch": torch.__version__},
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git_revision": git("rev-parse", "HEAD") + ("-dirty" if git("status", "--porcelain", "src")
                                                    else ""),
        "command": " ".join(["python benchmarks/profile_attack.py", *sys.argv[1:]]),
    }


# ----------------------------------------------------------------------------- the tables

LABEL = {"textfooler": "TextFooler", "pwws": "PWWS", "bfloat16": "bf16", "float32": "fp32"}
TABLE_PARTS = [
    ("model.forward", "noisy / plain forward passes"), ("model.saliency", "saliency pass"),
    ("model.tokenize", "tokenise + collate (in predict)"), ("model.other", "rest of predict"),
    ("wrapper*", "model wrapper (+ its content check)"), ("goal_function", "goal function"),
    ("constraint.SBERT.encode", "SBERT encoder forward"), ("constraint.SBERT", "SBERT constraint, rest"),
    ("constraint.PartOfSpeech.tagger", "POS tagger (+ its cache)"),
    ("constraint.PartOfSpeech", "POS constraint, rest"),
    ("constraint.WordEmbeddingDistance", "WordEmbeddingDistance"),
    ("constraint.StopwordModification", "StopwordModification"),
    ("constraint.RepeatModification", "RepeatModification"),
    ("constraint.MaxWordsPerturbed", "MaxWordsPerturbed"),
    ("transformation.neighbours", "neighbour / synonym look-ups"),
    ("transformation", "transformation, rest"), ("attack.filter", "Attack caches + filtering"),
    ("search", "search method (own)"), ("attack.other", "Attack.attack (own)"),
    ("record", "rsmi record"), ("runner", "runner loop, IO"),
]


def label(d: dict[str, Any]) -> str:
    c = d["configuration"]
    return f"{c['dataset'].upper()} {LABEL[c['recipe']]} {c['model']} {LABEL[c['dtype']]}"


def share(d: dict[str, Any], key: str, kind: str = "share") -> float:
    if key.endswith("*"):
        return sum(r[kind] or 0.0 for k, r in d["parts"].items() if k.startswith(key[:-1]))
    return (d["parts"].get(key) or {}).get(kind) or 0.0


def pct(wall: float, cpu: float) -> str:
    return f"{100 * wall:.1f} ({100 * cpu:.1f})"


def tables(directory: Path = OUT) -> str:
    """The docs' tables, from the JSON files (configuration order)."""
    found = {p.stem: json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))}
    runs = [found[c.name] for c in CONFIGS if c.name in found]
    out = ["| configuration | N | queries / example | passes / query | s / example | ms / query "
           "| model % | harness % | summary `model` / profile model, s "
           "| speed-up bound: harness → 0 | noisy/plain passes → 0 | model → 0 |",
           "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for d in runs:
        g, a, c, s = d["groups"], d["amdahl"], d["amdahl_cpu"], d.get("summary_seconds") or {}
        cpu = d["loop_cpu_s"]
        out.append(
            f"| {label(d)} | {d['n']} | {d['queries_per_example']:.0f} "
            f"| {d['forward_passes_per_query']:.2f} "
            f"| {d['per_example_s']:.2f} ({cpu / d['n']:.2f}) "
            f"| {d['ms_per_query']:.0f} ({1000 * cpu / d['queries']:.1f}) "
            f"| {pct(g['model']['share'], g['model']['cpu_share'])} "
            f"| {pct(g['harness']['share'], g['harness']['cpu_share'])} "
            f"| {s.get('model')} / {d['profile_model_s']} | "
            + " | ".join(f"{a[k]:.2f}× ({c[k]:.2f}×)"
                         for k in ("harness_to_zero", "forward_to_zero", "model_to_zero")) + " |")
    out += ["", "Share of the attack loop (total minus one-time set-up) by part, % of wall time "
            "(% of CPU time):", "",
            "| part | " + " | ".join(label(d) for d in runs) + " |",
            "|---|" + "--:|" * len(runs)]
    for key, name in TABLE_PARTS:
        cells = [(share(d, key), share(d, key, "cpu_share")) for d in runs]
        if any(w or c for w, c in cells):
            out.append(f"| {name} | " + " | ".join(pct(w, c) for w, c in cells) + " |")
    out.append("| one-time set-up, s (not in the shares) | "
               + " | ".join(f"{d['setup_s']:.0f}" for d in runs) + " |")
    out.append("| load average (1 min) before → after | "
               + " | ".join(f"{d['load_before'][0]:.1f} → {d['load_after'][0]:.1f}" for d in runs)
               + " |")
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", action="append", metavar="NAME",
                   help="run only this configuration (repeatable): " + ", ".join(c.name for c in CONFIGS))
    p.add_argument("--skip-done", action="store_true", help="skip configurations whose JSON exists")
    p.add_argument("--num-examples", type=int, default=None,
                   help="examples per configuration (default: 20 MR, 4 BBC)")
    p.add_argument("--cprofile-examples", type=int, default=None,
                   help="examples of the cProfile run (default: 2 MR, 1 BBC; 0: none)")
    p.add_argument("--out", type=Path, default=OUT, help=f"output directory ({OUT.relative_to(ROOT)})")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (default: torch's, one per core); recorded")
    p.add_argument("--table", action="store_true", help="print the markdown tables and stop")
    args = p.parse_args()
    if args.table:
        print(tables(args.out))
        return
    names = {c.name for c in CONFIGS}
    unknown = sorted(set(args.only or ()) - names)
    if unknown:
        raise SystemExit(f"--only {unknown[0]}: not a configuration; choose from {sorted(names)}")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from rsmi.attacks._textattack import load_textattack
    from rsmi.resources import Resources

    load_textattack(Resources.load())
    args.out.mkdir(parents=True, exist_ok=True)
    for cfg in CONFIGS:
        path = args.out / f"{cfg.name}.json"
        if (args.only and cfg.name not in args.only) or (args.skip_done and path.exists()):
            continue
        if not (Path(MODELS[cfg.dataset, cfg.model]) / "rsmi.json").is_file():
            print(f"{cfg.name}: model {MODELS[cfg.dataset, cfg.model]} not ready, skipped",
                  file=sys.stderr)
            continue
        n = args.num_examples or NUM_EXAMPLES[cfg.dataset]
        k = CPROFILE_EXAMPLES[cfg.dataset] if args.cprofile_examples is None else args.cprofile_examples
        result = profile_config(cfg, n, min(k, n), args.out)
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(f"{cfg.name}: {result['per_example_s']} s/example, model "
              f"{100 * result['groups']['model']['share']:.0f} % → {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
