"""Attack harness caches (issue 26, item 2): seconds per attacked example, caches off vs on.

For each recipe, attacks the study's seeded sample (``--preset textdefender``,
``--cut-to-max-length``, the given ``--max-length``) of a trained model twice in ONE process,
interleaved example by example (shard ``i/N`` = example ``i``; the order old/new alternates
from example to example): once with ``harness_cache=False`` (TextAttack's own path, "old") and
once with the caches on ("new"). Each path's shards are merged (``merge_runs``) into one run.
Reports the per-example wall seconds (the record's ``wall_s``: the attack of that example
alone) and model seconds, the speed-up per example (median, min–max) and in total (sum old /
sum new, with a bootstrap 95 % interval over examples), and whether the two runs' records and
summaries are byte-identical apart from timing fields (SHA-256 of ``examples.jsonl`` and
``summary.json`` with ``wall_s``, ``model_s``, ``seconds``, ``attack_time_s``,
``wall_time_s`` and ``created`` removed). Needs prepared resources (``rsmi resources prepare``), e.g.

    python benchmarks/bench_harness.py --model /work/main/runs/bench/mr-base --data mr \\
        --max-length 64 --recipes textfooler,pwws --num-examples 20 \\
        --json results/benchmarks/harness/mr_base_float32.json
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

PLAIN = {"noise_std": 0.0, "num_masks": 0, "k0": 1, "k1": 1}  # RSMIConfig.plain: deterministic
TIMING = ("wall_s", "model_s", "seconds", "attack_time_s", "wall_time_s", "created")


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in TIMING}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def timing_free_digest(run: Path) -> dict[str, str]:
    """SHA-256 of the run's records (sorted by seed, index) and summary without timing fields."""
    from rsmi.attacks.records import read_records

    records = sorted(read_records(run / "examples.jsonl"), key=lambda r: (r["seed"], r["index"]))
    summary = json.loads((run / "summary.json").read_text())
    digest = {}
    for name, value in (("examples", records), ("summary", summary)):
        text = json.dumps(_strip(value), sort_keys=True, ensure_ascii=False)
        digest[name] = hashlib.sha256(text.encode()).hexdigest()
    return digest


def bootstrap_ratio(old: np.ndarray, new: np.ndarray, reps: int = 2000, seed: int = 0) -> list[float]:
    """95 % percentile interval of sum(old) / sum(new), resampling examples."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(old), size=(reps, len(old)))
    ratios = old[idx].sum(axis=1) / new[idx].sum(axis=1)
    return [round(float(np.percentile(ratios, 2.5)), 3), round(float(np.percentile(ratios, 97.5)), 3)]


def _machine() -> str:
    from rsmi.provenance import cpu_model

    return cpu_model() or platform.machine()


def compare(clf: Any, examples: Any, recipe: str, args: argparse.Namespace, root: Path,
            resources: Any) -> dict[str, Any]:
    from rsmi.attacks import AttackConfig, merge_runs, run_attack
    from rsmi.attacks.records import read_records

    n = args.num_examples
    paths = {"old": root / f"{recipe}-old", "new": root / f"{recipe}-new"}
    for path in paths.values():
        shutil.rmtree(path, ignore_errors=True)
    for i in range(n):
        order = ("old", "new") if i % 2 == 0 else ("new", "old")
        for which in order:
            cfg = AttackConfig(recipe=recipe, preset="textdefender", num_examples=n,
                               seeds=(args.seed,), sample_seed=args.sample_seed,
                               max_length=args.max_length, cut_to_max_length=True,
                               model=args.model, data=args.data, dtype=clf.compute_dtype,
                               shard=(i, n), harness_cache=which == "new",
                               model_overrides=PLAIN if args.plain else {})
            run_attack(clf, examples, cfg, paths[which], resources=resources)
    runs = {}
    for which, path in paths.items():
        merge_runs([path], path)
        records = sorted(read_records(path / "examples.jsonl"), key=lambda r: r["index"])
        runs[which] = {"records": records, "digest": timing_free_digest(path)}
    old = np.array([r["wall_s"] for r in runs["old"]["records"]])
    new = np.array([r["wall_s"] for r in runs["new"]["records"]])
    model_old = np.array([r["model_s"] for r in runs["old"]["records"]])
    model_new = np.array([r["model_s"] for r in runs["new"]["records"]])
    attacked = np.array([r["result_type"] != "skipped" for r in runs["old"]["records"]])
    ratio = old[attacked] / new[attacked]
    return {
        "recipe": recipe,
        "num_examples": int(len(old)),
        "num_attacked": int(attacked.sum()),
        "per_example": [
            {"index": r["index"], "result_type": r["result_type"], "queries": r["queries"],
             "num_words": r["num_words"],
             "old_s": float(o), "new_s": float(w), "old_model_s": float(mo),
             "new_model_s": float(mn)}
            for r, o, w, mo, mn in zip(runs["old"]["records"], old, new, model_old, model_new,
                                       strict=True)
        ],
        "old_s_per_attacked": round(float(old[attacked].mean()), 4),
        "new_s_per_attacked": round(float(new[attacked].mean()), 4),
        "old_model_s_per_attacked": round(float(model_old[attacked].mean()), 4),
        "new_model_s_per_attacked": round(float(model_new[attacked].mean()), 4),
        "speedup_total": round(float(old[attacked].sum() / new[attacked].sum()), 3),
        "speedup_total_ci95": bootstrap_ratio(old[attacked], new[attacked]),
        "speedup_median": round(float(statistics.median(ratio)), 3),
        "speedup_min_max": [round(float(ratio.min()), 3), round(float(ratio.max()), 3)],
        "digest_old": runs["old"]["digest"],
        "digest_new": runs["new"]["digest"],
        "identical": runs["old"]["digest"] == runs["new"]["digest"],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--data", default="mr")
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--recipes", default="textfooler")
    p.add_argument("--num-examples", type=int, default=20)
    p.add_argument("--seed", type=int, default=0, help="attack seed (0)")
    p.add_argument("--sample-seed", type=int, default=0, help="the study's sample seed (0)")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--plain", action="store_true",
                   help="attack the model's deterministic view (no noise, no masks, one pass)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1)")
    p.add_argument("--out", default="runs/bench_harness")
    p.add_argument("--json", required=True, help="where the result JSON goes")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    from rsmi import RSMIClassifier
    from rsmi.data import load_dataset
    from rsmi.resources import Resources

    resources = Resources.load()
    examples = load_dataset(args.data).split("test")
    clf = RSMIClassifier.from_pretrained(args.model, dtype=args.dtype)
    root = Path(args.out) / f"{Path(args.model).name}-{args.dtype}"
    load_before = os.getloadavg()
    started = time.perf_counter()
    rows = [compare(clf, examples, recipe, args, root, resources)
            for recipe in args.recipes.split(",")]
    for row in rows:
        print(json.dumps({k: v for k, v in row.items() if k != "per_example"}))
    result = {
        "command": "python benchmarks/bench_harness.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
        "machine": f"{_machine()}, {torch.get_num_threads()} torch thread(s)",
        "date": datetime.date.today().isoformat(),
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "wall_s": round(time.perf_counter() - started, 1),
        "model": args.model, "data": args.data, "max_length": args.max_length,
        "dtype": clf.compute_dtype, "rows": rows,
    }
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
