"""Compute precision and pre-noise sharing: predict throughput and agreement (issue 8).

One run measures, on the same RSMI model, texts and seeds:

* throughput (predictions / s) of ``RSMIClassifier.predict`` in four settings, interleaved
  round by round so that a change of machine load hits every setting alike:
  ``float32`` without sharing (the predictor before issue 8), ``float32`` with the shared
  pre-noise prefix, ``bfloat16`` without, ``bfloat16`` with (the fast setting);
* on all test sentences: label agreement bf16 vs fp32 on the deterministic parts (noise off:
  the plain classifier, and masked inference with noise off), the clean accuracy of the
  two-step predictor in both precisions under the same seeds with a paired exact McNemar test,
  and the overlap of the top-k saliency candidates (noise on, same seeds);
* that fp32 with and without sharing give identical predictions.

    python benchmarks/bench_dtype.py --model runs/dtype/fp32/rsmi \
        --out results/benchmarks/dtype_predict.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from statsmodels.stats.contingency_tables import mcnemar

from rsmi import RSMIClassifier

SETTINGS = (
    ("float32", False),
    ("float32", True),
    ("bfloat16", False),
    ("bfloat16", True),
)


def setting_name(dtype: str, share: bool) -> str:
    return f"{dtype}{'+shared' if share else ''}"


def use(clf: RSMIClassifier, dtype: str, share: bool) -> RSMIClassifier:
    clf.set_dtype(dtype)
    clf.share_prefix = share
    return clf


def throughput(clf: RSMIClassifier, texts: list[str], rounds: int, batch_size: int) -> dict:
    times: dict[str, list[float]] = {setting_name(*s): [] for s in SETTINGS}
    for s in SETTINGS:  # warm-up (oneDNN kernels for each precision)
        use(clf, *s).predict(texts[:16], seed=0, batch_size=batch_size)
    for _ in range(rounds):
        for s in SETTINGS:
            use(clf, *s)
            start = time.perf_counter()
            clf.predict(texts, seed=0, batch_size=batch_size)
            times[setting_name(*s)].append(time.perf_counter() - start)
    base = statistics.median(times["float32"])
    return {
        name: {
            "seconds": t,
            "median_seconds": statistics.median(t),
            "predictions_per_second": len(texts) / statistics.median(t),
            "speedup_vs_float32": base / statistics.median(t),
        }
        for name, t in times.items()
    }


def candidates(clf: RSMIClassifier, texts: list[str], seed: int, batch_size: int) -> list[set[int]]:
    """The saliency candidates of each text as the predictor computes them (noise on)."""
    out: list[set[int]] = [set() for _ in texts]
    batches, _ = clf.batches(texts, batch_size)
    for idx, inputs in batches:
        cand = clf._saliency_candidates(inputs, idx, seed)  # exactly the predictor's step
        for r, i in enumerate(idx):
            out[i] = {int(p) for p in cand.positions[r][: int(cand.counts[r])]}
    return out


def agreement(clf: RSMIClassifier, texts: list[str], labels: np.ndarray, batch_size: int) -> dict:
    saved = clf.config
    result: dict = {}
    # Deterministic parts: noise off (plain classifier; masked inference without noise).
    for name, changes in (
        ("plain (no noise, no masks)", {"noise_std": 0.0, "num_masks": 0, "saliency_top_k": 0}),
        ("masked inference, noise off", {"noise_std": 0.0}),
    ):
        clf.set_config(saved.replace(**changes))
        preds = {d: use(clf, d, True).predict(texts, seed=0, batch_size=batch_size) for d in ("float32", "bfloat16")}
        result[name] = {
            "label_agreement": float(np.mean(preds["float32"].labels == preds["bfloat16"].labels)),
            "accuracy_float32": float(np.mean(preds["float32"].labels == labels)),
            "accuracy_bfloat16": float(np.mean(preds["bfloat16"].labels == labels)),
        }
    clf.set_config(saved)
    # The two-step predictor, same seeds; paired exact McNemar on correct / not correct.
    preds = {d: use(clf, d, True).predict(texts, seed=0, batch_size=batch_size) for d in ("float32", "bfloat16")}
    a = preds["float32"].labels == labels
    b = preds["bfloat16"].labels == labels
    table = [[int(np.sum(a & b)), int(np.sum(a & ~b))], [int(np.sum(~a & b)), int(np.sum(~a & ~b))]]
    result["two-step predictor (noise on, same seeds)"] = {
        "label_agreement": float(np.mean(preds["float32"].labels == preds["bfloat16"].labels)),
        "accuracy_float32": float(a.mean()),
        "accuracy_bfloat16": float(b.mean()),
        "second_step_share_float32": float(preds["float32"].second_step.mean()),
        "second_step_share_bfloat16": float(preds["bfloat16"].second_step.mean()),
        "mcnemar_table": table,
        "mcnemar_exact_p": float(mcnemar(table, exact=True).pvalue),
    }
    # Saliency candidates (noise on, same seeds).
    cand = {d: candidates(use(clf, d, True), texts, 0, batch_size) for d in ("float32", "bfloat16")}
    overlap = [len(x & y) / max(1, len(x)) for x, y in zip(cand["float32"], cand["bfloat16"], strict=True)]
    same = [x == y for x, y in zip(cand["float32"], cand["bfloat16"], strict=True)]
    result["saliency candidates (top-k, noise on)"] = {
        "mean_overlap": float(np.mean(overlap)),
        "identical_sets_share": float(np.mean(same)),
        "top_k": clf.config.saliency_top_k,
    }
    # Sharing the pre-noise prefix changes nothing in float32.
    shared = use(clf, "float32", True).predict(texts, seed=0, batch_size=batch_size)
    unshared = use(clf, "float32", False).predict(texts, seed=0, batch_size=batch_size)
    result["float32 shared vs unshared"] = {
        "identical_probs": bool(np.array_equal(shared.probs, unshared.probs)),
        "identical_labels": bool(np.array_equal(shared.labels, unshared.labels)),
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="a saved RSMI model directory")
    parser.add_argument("--data", default="mr")
    parser.add_argument("--num-timing-texts", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--skip-agreement", action="store_true")
    parser.add_argument("--out", default="results/benchmarks/dtype_predict.json")
    args = parser.parse_args()

    from rsmi.data import load_dataset
    from rsmi.provenance import provenance

    clf = RSMIClassifier.from_pretrained(args.model)
    test = load_dataset(args.data).split("test")
    texts = [e.text for e in test]
    labels = np.array([e.label for e in test])
    rng = np.random.default_rng(0)
    timing = [texts[i] for i in rng.choice(len(texts), size=min(args.num_timing_texts, len(texts)), replace=False)]
    result = {
        "model": args.model,
        "data": args.data,
        "config": clf.config.to_dict(),
        "num_timing_texts": len(timing),
        "rounds": args.rounds,
        "batch_size": args.batch_size,
        "throughput": throughput(clf, timing, args.rounds, args.batch_size),
    }
    print(json.dumps(result["throughput"], indent=2), flush=True)
    if not args.skip_agreement:
        result["num_test_texts"] = len(texts)
        result["agreement"] = agreement(clf, texts, labels, args.batch_size)
    result["machine"] = f"{platform.machine()}, {torch.get_num_threads()} torch threads, CPU"
    result["provenance"] = provenance()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result.get("agreement", {}), indent=2))


if __name__ == "__main__":
    main()
