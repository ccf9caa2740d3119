"""Inference engines (issue 26, item 3): RSMI predict and TextFooler, eager PyTorch vs engines.

``predict`` — on the MR test sentences (all 400 by default), in one process, interleaved chunk
by chunk (each chunk of ``--chunk`` sentences runs every setting, in an order rotated from chunk
to chunk, so a change of machine load hits every setting alike):

* throughput (predictions / s) of ``RSMIClassifier.predict`` (seed 0, the model's own RSMI
  settings, pre-noise prefix shared where PyTorch runs it) in each setting: torch float32, torch
  bfloat16 autocast (today's fastest), openvino float32 / bfloat16 (precision hint), onnx float32
  and onnx-int8 (ONNX Runtime, dynamically quantized weights);
* against torch bfloat16 (the study's setting) and torch float32: label agreement (same seeds,
  noise on), clean accuracy with a paired exact McNemar test, and the largest difference of the
  probabilities.

``passes`` — the noisy passes alone (``_forward_rows`` as step 1 calls it, 5 copies of a few
sentences), every setting in turn, a few rounds: what the engine gains where it runs.

``attack`` — TextFooler on the RSMI model with the study's flags (textdefender preset, max
length 64, cut to max length, bfloat16) in torch and in an engine, on the same examples,
interleaved shard by shard; seconds per attacked example (the records' ``wall_s``), queries,
AUA and a paired exact McNemar test on the per-example outcome (correct under attack or not).

    python benchmarks/bench_engine.py predict --model runs/bench/mr-rsmi-paper \\
        --out results/benchmarks/engine/predict.json
    python benchmarks/bench_engine.py passes --model runs/bench/mr-rsmi-paper \\
        --out results/benchmarks/engine/passes.json
    python benchmarks/bench_engine.py attack --model runs/bench/mr-rsmi-paper \\
        --num-examples 20 --interleave 4 --run-dir runs/bench_engine \\
        --out results/benchmarks/engine/attack.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from statsmodels.stats.contingency_tables import mcnemar

SETTINGS = {  # name -> (engine, dtype)
    "torch-float32": ("torch", "float32"),
    "torch-bfloat16": ("torch", "bfloat16"),
    "openvino-float32": ("openvino", "float32"),
    "openvino-bf16": ("openvino-bf16", "bfloat16"),
    "openvino-bf16+saliency-float32": ("openvino-bf16", "float32"),
    "onnx-float32": ("onnx", "float32"),
    "onnx-int8": ("onnx-int8", "float32"),
}
REFERENCES = ("torch-bfloat16", "torch-float32")


def machine() -> dict:
    from rsmi.provenance import cpu_model

    return {"cpu": cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "load_average_at_start": os.getloadavg(), "date": datetime.datetime.now(
                datetime.timezone.utc).isoformat(timespec="seconds")}


def paired(a: np.ndarray, b: np.ndarray, labels: np.ndarray) -> dict:
    """Agreement of two label vectors and the exact McNemar test on correct / not correct."""
    x, y = a == labels, b == labels
    table = [[int(np.sum(x & y)), int(np.sum(x & ~y))], [int(np.sum(~x & y)), int(np.sum(~x & ~y))]]
    return {"label_agreement": float(np.mean(a == b)), "accuracy": float(y.mean()),
            "reference_accuracy": float(x.mean()), "mcnemar_table": table,
            "mcnemar_exact_p": float(mcnemar(table, exact=True).pvalue)}


def bench_predict(args: argparse.Namespace) -> dict:
    from rsmi import RSMIClassifier
    from rsmi.data import load_dataset

    base = RSMIClassifier.from_pretrained(args.model)
    views = {name: base.configured(dtype=d, engine=e) for name, (e, d) in SETTINGS.items()
             if name in args.settings}
    test = load_dataset(args.data).split("test")[: args.num_texts]
    texts, labels = [e.text for e in test], np.array([e.label for e in test])
    for name, view in views.items():  # warm-up: export / compile / oneDNN kernels, not timed
        start = time.perf_counter()
        view.predict(texts[:8], seed=0, batch_size=args.batch_size)
        print(f"warm-up {name}: {time.perf_counter() - start:.1f} s", file=sys.stderr)
    seconds = {name: [] for name in views}
    preds = {name: [] for name in views}
    names = list(views)
    for c, start in enumerate(range(0, len(texts), args.chunk)):
        chunk = texts[start : start + args.chunk]
        for name in names[c % len(names):] + names[: c % len(names)]:
            t0 = time.perf_counter()
            pred = views[name].predict(chunk, seed=0, batch_size=args.batch_size)
            seconds[name].append(time.perf_counter() - t0)
            preds[name].append(pred)
        print(f"chunk {c}: " + ", ".join(f"{n} {seconds[n][-1]:.1f}s" for n in names),
              file=sys.stderr)
    out: dict = {"num_texts": len(texts), "chunk": args.chunk, "settings": {}}
    joined = {n: (np.concatenate([p.labels for p in ps]), np.concatenate([p.probs for p in ps]))
              for n, ps in preds.items()}
    for name in names:
        rates = [len(p) / s for p, s in zip(preds[name], seconds[name], strict=True)]
        row = {
            "engine": SETTINGS[name][0], "dtype": SETTINGS[name][1],
            "precision": views[name].engine_precision,
            "total_seconds": sum(seconds[name]),
            "predictions_per_second": len(texts) / sum(seconds[name]),
            "per_chunk_rate_min_median_max": [min(rates), float(np.median(rates)), max(rates)],
            "accuracy": float(np.mean(joined[name][0] == labels)),
        }
        for ref in REFERENCES:
            if ref in joined:
                row[f"vs_{ref}"] = {
                    **paired(joined[ref][0], joined[name][0], labels),
                    "max_abs_prob_difference": float(np.abs(joined[ref][1] - joined[name][1]).max()),
                    "speedup": sum(seconds[ref]) / sum(seconds[name]),
                }
        out["settings"][name] = row
        print(json.dumps({name: row}), file=sys.stderr)
    return out


def bench_passes(args: argparse.Namespace) -> dict:
    """The noisy passes alone (``_forward_rows``, as step 1 calls it): k0 = 5 copies of
    ``--num-texts`` sentences, seeds as step 1's, every setting in turn, ``--rounds`` times."""
    from rsmi import RSMIClassifier
    from rsmi.data import load_dataset
    from rsmi.inference import PASS_STEP1
    from rsmi.noise import row_seed

    base = RSMIClassifier.from_pretrained(args.model)
    views = {name: base.configured(dtype=d, engine=e) for name, (e, d) in SETTINGS.items()
             if name in args.settings}
    texts = [e.text for e in load_dataset(args.data).split("test")[: args.num_texts]]
    (idx, inputs), = base.batches(texts, len(texts))[0]
    rows = base._repeat(inputs, 5)
    seeds = [row_seed(0, int(i), PASS_STEP1, j) for i in idx for j in range(5)]
    seconds: dict[str, list[float]] = {name: [] for name in views}
    for r in range(args.rounds + 1):  # round 0: warm-up
        for name, view in views.items():
            with view.noise.activated():
                t0 = time.perf_counter()
                view._forward_rows(rows, seeds, 1024)
                if r:
                    seconds[name].append(time.perf_counter() - t0)
    ref = float(np.median(seconds["torch-bfloat16"]))
    return {"rows": int(rows["input_ids"].shape[0]), "tokens": int(rows["input_ids"].shape[1]),
            "rounds": args.rounds, "settings": {
                name: {"median_seconds": float(np.median(t)), "min_max": [min(t), max(t)],
                       "speedup_vs_torch_bfloat16": ref / float(np.median(t))}
                for name, t in seconds.items()}}


def bench_attack(args: argparse.Namespace) -> dict:
    from rsmi import RSMIClassifier
    from rsmi.attacks import AttackConfig, run_attack
    from rsmi.data import load_dataset
    from rsmi.resources import Resources

    if not args.summarize_only:
        resources = Resources.load()
        examples = load_dataset(args.data).split("test")
        clf = RSMIClassifier.from_pretrained(args.model, dtype=args.dtype)
        n = args.interleave
        for i in range(n):  # shard by shard, the settings' order alternating
            for setting in args.engines if i % 2 == 0 else args.engines[::-1]:
                engine, _, option = setting.partition(":")
                if option not in ("", "nocache"):
                    raise SystemExit(f"{setting!r}: a setting is ENGINE or ENGINE:nocache")
                cfg = AttackConfig(recipe="textfooler", preset="textdefender",
                                   num_examples=args.num_examples, seeds=(0,), model=args.model,
                                   data=args.data, dtype=clf.compute_dtype,
                                   max_length=args.max_length, cut_to_max_length=True,
                                   shard=(i, n), engine=engine,
                                   harness_cache=option != "nocache")
                run_attack(clf, examples, cfg, Path(args.run_dir) / setting.replace(":", "-"),
                           resources=resources, resume=True)
            print(f"shard {i + 1}/{n} done", file=sys.stderr, flush=True)
    return summarize_attack(args)


def summarize_attack(args: argparse.Namespace) -> dict:
    """Per-example figures over the examples every engine has attacked (a stopped run too)."""
    from rsmi.attacks.records import read_records

    records = {e: {r["index"]: r for path in sorted(
                       (Path(args.run_dir) / e.replace(":", "-")).glob("**/examples.jsonl"))
                   for r in read_records(path)} for e in args.engines}
    common = sorted(set.intersection(*(set(r) for r in records.values())))
    rows = {}
    for engine in args.engines:
        got = [records[engine][i] for i in common]
        robust = np.array([r["result_type"] == "failed" for r in got])
        rows[engine] = {
            "seconds_per_example": float(np.mean([r["wall_s"] for r in got])),
            "median_seconds_per_example": float(np.median([r["wall_s"] for r in got])),
            "accuracy_under_attack": float(robust.mean()),
            "clean_accuracy": float(np.mean([r["result_type"] != "skipped" for r in got])),
            "result_types": {t: sum(r["result_type"] == t for r in got)
                             for t in ("successful", "failed", "skipped")},
            "avg_queries": float(np.mean([r.get("queries", 0) for r in got])),
            "model_seconds_per_example": float(np.mean([r.get("model_s") or 0 for r in got])),
            "seconds_per_query": sum(r["wall_s"] for r in got) / max(sum(r.get("queries", 0)
                                                                        for r in got), 1),
            "model_seconds_per_query": sum(r.get("model_s") or 0 for r in got) / max(
                sum(r.get("queries", 0) for r in got), 1),
        }
        rows[engine]["_robust"] = robust
    ref = args.engines[0]
    for engine in args.engines[1:]:
        a, b = rows[ref]["_robust"], rows[engine]["_robust"]
        table = [[int(np.sum(a & b)), int(np.sum(a & ~b))], [int(np.sum(~a & b)), int(np.sum(~a & ~b))]]
        ratios = [records[ref][i]["wall_s"] / records[engine][i]["wall_s"] for i in common]
        rows[engine][f"vs_{ref}"] = {
            "speedup_per_example": rows[ref]["seconds_per_example"] / rows[engine]["seconds_per_example"],
            "speedup_per_query": rows[ref]["seconds_per_query"] / rows[engine]["seconds_per_query"],
            "model_speedup_per_query": rows[ref]["model_seconds_per_query"]
            / rows[engine]["model_seconds_per_query"],
            "per_example_ratio_min_median_max": [min(ratios), float(np.median(ratios)), max(ratios)],
            "same_outcome_share": float(np.mean(a == b)), "robust_table": table,
            "mcnemar_exact_p": float(mcnemar(table, exact=True).pvalue),
        }
    for row in rows.values():
        row.pop("_robust")
    return {"dtype": args.dtype, "num_examples_asked": args.num_examples,
            "num_examples_done": len(common), "indices": common, "interleave": args.interleave,
            "flags": f"--preset textdefender --max-length {args.max_length} --cut-to-max-length",
            "rows": rows}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="what", required=True)
    pr = sub.add_parser("predict")
    pr.add_argument("--settings", type=lambda s: s.split(","), default=list(SETTINGS))
    pr.add_argument("--num-texts", type=int, default=400)
    pr.add_argument("--chunk", type=int, default=50)
    pr.add_argument("--batch-size", type=int, default=32)
    pa = sub.add_parser("passes")
    pa.add_argument("--settings", type=lambda s: s.split(","), default=list(SETTINGS))
    pa.add_argument("--num-texts", type=int, default=13)
    pa.add_argument("--rounds", type=int, default=7)
    at = sub.add_parser("attack")
    at.add_argument("--engines", type=lambda s: s.split(","), default=["torch", "openvino-bf16"],
                    help="settings, the first the reference: ENGINE, or ENGINE:nocache for the "
                         "attack without item 2's harness caches (the code before issue 26)")
    at.add_argument("--max-length", type=int, default=64, help="64 for MR, 128 for BBC (the study)")
    at.add_argument("--dtype", default="bfloat16")
    at.add_argument("--num-examples", type=int, default=20)
    at.add_argument("--interleave", type=int, default=4)
    at.add_argument("--run-dir", default="runs/bench_engine")
    at.add_argument("--summarize-only", action="store_true",
                    help="only summarize the records already in --run-dir (a stopped run)")
    for q in (pr, pa, at):
        q.add_argument("--model", required=True)
        q.add_argument("--data", default="mr")
        q.add_argument("--out", required=True)
    args = p.parse_args()
    from rsmi.provenance import provenance

    started = machine()
    result = {"predict": bench_predict, "passes": bench_passes, "attack": bench_attack}[args.what](args)
    report = {"command": "python benchmarks/bench_engine.py " + " ".join(sys.argv[1:]),
              "machine": started, "load_average_at_end": os.getloadavg(), **result,
              "provenance": provenance()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
