"""Where does a trained model's clean accuracy go? Inference-time ablation of RSMI's parts.

For each model directory, clean accuracy on a split with the model's weights under four
inference settings: ``plain`` (no noise, no masking, one pass), ``noise`` (σ on, no masking:
the smoothed classifier with k0/k1 voting), ``mask`` (masking on, σ = 0: one deterministic
pass of the masked input), ``full`` (the model's own configuration: the deployed two-step
predictor). The RSMI settings of the non-plain rows are taken from ``--rsmi-config`` (default:
the reference values with the model's ``max_length``). Accuracy is also reported by input
length (tokens, special tokens included; ``--length-bins``), to show how the cost of masking
depends on how many other tokens carry the label. Each row after a model's ``plain`` row
carries an exact McNemar test against it (same examples, paired): ``mcnemar_p``.

    python benchmarks/ablate_inference.py runs/main/models/base runs/main/models/rsmi \
        --data mr --split test --out runs/ablate_inference.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from rsmi import RSMIClassifier, RSMIConfig
from rsmi.data import load_dataset


def settings(model_config: RSMIConfig, reference: RSMIConfig) -> dict[str, RSMIConfig]:
    ref = dataclasses.replace(reference, max_length=model_config.max_length)
    return {
        "plain": RSMIConfig.plain(model_config.max_length),
        "noise": dataclasses.replace(ref, num_masks=0, saliency_top_k=0),
        "mask": dataclasses.replace(ref, noise_std=0.0),
        "reference": ref,
        "own": model_config,
    }


def _mcnemar(before: np.ndarray, after: np.ndarray) -> dict:
    """Exact McNemar test of two paired correctness vectors (statsmodels)."""
    from statsmodels.stats.contingency_tables import mcnemar

    lost = int((before & ~after).sum())
    gained = int((~before & after).sum())
    table = [[int((before & after).sum()), lost], [gained, int((~before & ~after).sum())]]
    return {"vs_plain_lost": lost, "vs_plain_gained": gained,
            "mcnemar_p": float(mcnemar(table, exact=True).pvalue)}


def _buckets(lengths: np.ndarray, bounds: list[int]) -> dict[str, np.ndarray]:
    """Boolean row masks of the length buckets ``≤b0``, ``b0+1–b1``, ..., ``>bn``."""
    out, low = {}, 0
    for b in bounds:
        out[f"{low + 1}-{b}" if low else f"<={b}"] = (lengths > low) & (lengths <= b)
        low = b
    out[f">{low}"] = lengths > low
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="model directories (rsmi train outputs)")
    parser.add_argument("--data", default="mr")
    parser.add_argument("--split", default="test")
    parser.add_argument("--max-examples", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rsmi-config", default=None,
                        help="JSON of RSMIConfig fields for the noise/mask/reference rows")
    parser.add_argument("--settings", default="plain,noise,mask,reference,own",
                        help="comma-separated rows to run (default: all five)")
    parser.add_argument("--length-bins", default="20,30",
                        help="upper bounds (tokens) of the length buckets; the last is open")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    reference = RSMIConfig(**json.loads(args.rsmi_config)) if args.rsmi_config else RSMIConfig()
    data = load_dataset(args.data)
    examples = list(data.split(args.split))[: args.max_examples]
    texts = [e.text for e in examples]
    gold = np.array([int(e.label) for e in examples])
    bounds = [int(b) for b in args.length_bins.split(",") if b.strip()]
    rows = []
    for model_dir in args.models:
        clf = RSMIClassifier.from_pretrained(model_dir)
        own = clf.config
        lengths = np.array([len(enc["input_ids"]) for enc in clf.tokenize(texts)[0]])
        buckets = _buckets(lengths, bounds)
        wanted = args.settings.split(",")
        plain_correct = None
        for name, config in settings(own, reference).items():
            if name not in wanted:
                continue
            clf.set_config(config)
            pred = clf.predict(texts, seed=args.seed)
            correct = pred.labels == gold
            if name == "plain":
                plain_correct = correct
            row = {
                "model": model_dir, "method": clf.method, "setting": name,
                "accuracy": float(correct.mean()),
                "accuracy_by_length": {
                    label: {"accuracy": float(correct[rows_].mean()), "n": int(rows_.sum())}
                    for label, rows_ in buckets.items() if rows_.any()
                },
                "avg_forward_passes": float(pred.forward_passes.mean()),
                "second_step_share": float(pred.second_step.mean()),
                "config": config.to_dict(),
            }
            if plain_correct is not None and name != "plain":
                row.update(_mcnemar(plain_correct, correct))
            rows.append(row)
            by_length = "  ".join(
                f"{label}: {100 * v['accuracy']:5.1f}" for label, v in row["accuracy_by_length"].items()
            )
            test = f"  McNemar p {row['mcnemar_p']:.2g}" if "mcnemar_p" in row else ""
            print(f"{model_dir:32s} {name:10s} acc {100 * row['accuracy']:6.2f}  "
                  f"passes {row['avg_forward_passes']:5.1f}  | {by_length}{test}", flush=True)
        clf.set_config(own)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    result = {
        "data": args.data, "split": args.split, "num_examples": len(examples),
        "seed": args.seed, "rows": rows, "machine": platform.platform(),
        "torch": torch.__version__, "threads": torch.get_num_threads(), "git": commit,
        "command": " ".join(["python", *sys.argv]),
    }
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
