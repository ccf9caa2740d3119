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

``attack`` — TextFooler on the RSMI model with the study's flags (textdefender preset, max
length 64, cut to max length, bfloat16) in torch and in an engine, on the same examples,
interleaved shard by shard; seconds per attacked example (the records' ``wall_s``), queries,
AUA and a paired exact McNemar test on the per-example outcome (correct under attack or not).

    python benchmarks/bench_engine.py predict --model runs/bench/mr-rsmi-paper \\
        --out results/benchmarks/engine/predict.json
    python benchmarks/bench_engine.py attack --model runs/bench/mr-rsmi-paper \\
        --num-examples 20 --interleave 4 --run-dir runs/bench_engine \\
        --out results/benchmarks/engine/attack.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
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
    model = next((line.split(":", 1)[1].strip() for line in subprocess.run(
        ["lscpu"], capture_output=True, text=True).stdout.splitlines()
        if line.startswith("Model name")), platform.processor())
    return {"cpu": model, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
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


def bench_attack(args: argparse.Namespace) -> dict:
    from rsmi import RSMIClassifier
    from rsmi.attacks import AttackConfig, merge_runs, run_attack
    from rsmi.attacks.records import read_records
    from rsmi.data import load_dataset
    from rsmi.resources import Resources

    resources = Resources.load()
    examples = load_dataset(args.data).split("test")
    clf = RSMIClassifier.from_pretrained(args.model, dtype=args.dtype)
    wall = dict.fromkeys(args.engines, 0.0)
    n = args.interleave
    for i in range(n):
        for engine in args.engines if i % 2 == 0 else args.engines[::-1]:
            cfg = AttackConfig(recipe="textfooler", preset="textdefender",
                               num_examples=args.num_examples, seeds=(0,), model=args.model,
                               data=args.data, dtype=clf.compute_dtype, max_length=64,
                               cut_to_max_length=True, shard=(i, n), engine=engine)
            t0 = time.perf_counter()
            run_attack(clf, examples, cfg, Path(args.run_dir) / engine, resources=resources,
                       resume=True)
            wall[engine] += time.perf_counter() - t0
    rows, outcome = {}, {}
    for engine in args.engines:
        run = Path(args.run_dir) / engine
        summary = merge_runs([run], run) if n > 1 else json.loads((run / "summary.json").read_text())
        records = sorted(read_records(run / "examples.jsonl"), key=lambda r: r["index"])
        outcome[engine] = {r["index"]: r["result_type"] not in ("successful", "skipped")
                           for r in records}
        rows[engine] = {
            "seconds_per_example": sum(r["wall_s"] for r in records) / max(len(records), 1),
            "wall_s": wall[engine],
            **{k: summary.get(k) for k in ("num_examples", "clean_accuracy",
                                           "accuracy_under_attack", "attack_success_rate",
                                           "avg_queries", "avg_forward_passes")},
        }
    ref = args.engines[0]
    for engine in args.engines[1:]:
        common = sorted(set(outcome[ref]) & set(outcome[engine]))
        a = np.array([outcome[ref][i] for i in common])
        b = np.array([outcome[engine][i] for i in common])
        table = [[int(np.sum(a & b)), int(np.sum(a & ~b))], [int(np.sum(~a & b)), int(np.sum(~a & ~b))]]
        rows[engine][f"vs_{ref}"] = {
            "speedup_per_example": rows[ref]["seconds_per_example"] / rows[engine]["seconds_per_example"],
            "same_outcome_share": float(np.mean(a == b)), "mcnemar_table": table,
            "mcnemar_exact_p": float(mcnemar(table, exact=True).pvalue),
        }
    return {"dtype": args.dtype, "num_examples": args.num_examples, "interleave": n,
            "flags": "--preset textdefender --max-length 64 --cut-to-max-length", "rows": rows}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="what", required=True)
    pr = sub.add_parser("predict")
    pr.add_argument("--settings", type=lambda s: s.split(","), default=list(SETTINGS))
    pr.add_argument("--num-texts", type=int, default=400)
    pr.add_argument("--chunk", type=int, default=50)
    pr.add_argument("--batch-size", type=int, default=32)
    at = sub.add_parser("attack")
    at.add_argument("--engines", type=lambda s: s.split(","), default=["torch", "openvino-bf16"])
    at.add_argument("--dtype", default="bfloat16")
    at.add_argument("--num-examples", type=int, default=20)
    at.add_argument("--interleave", type=int, default=4)
    at.add_argument("--run-dir", default="runs/bench_engine")
    for q in (pr, at):
        q.add_argument("--model", required=True)
        q.add_argument("--data", default="mr")
        q.add_argument("--out", required=True)
    args = p.parse_args()
    from rsmi.provenance import provenance

    started = machine()
    result = bench_predict(args) if args.what == "predict" else bench_attack(args)
    report = {"command": "python benchmarks/bench_engine.py " + " ".join(sys.argv[1:]),
              "machine": started, "load_average_at_end": os.getloadavg(), **result,
              "provenance": provenance()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
