"""Where does a trained model's clean accuracy go? Inference-time ablation of RSMI's parts.

For each model directory, clean accuracy on a split with the model's weights under four
inference settings: ``plain`` (no noise, no masking, one pass), ``noise`` (σ on, no masking:
the smoothed classifier with k0/k1 voting), ``mask`` (masking on, σ = 0: one deterministic
pass of the masked input), ``full`` (the model's own configuration: the deployed two-step
predictor). The RSMI settings of the non-plain rows are taken from ``--rsmi-config`` (default:
the reference values with the model's ``max_length``).

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

import torch

from rsmi import RSMIClassifier, RSMIConfig
from rsmi.data import load_dataset
from rsmi.training import evaluate


def settings(model_config: RSMIConfig, reference: RSMIConfig) -> dict[str, RSMIConfig]:
    ref = dataclasses.replace(reference, max_length=model_config.max_length)
    return {
        "plain": RSMIConfig.plain(model_config.max_length),
        "noise": dataclasses.replace(ref, num_masks=0, saliency_top_k=0),
        "mask": dataclasses.replace(ref, noise_std=0.0),
        "reference": ref,
        "own": model_config,
    }


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
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    reference = RSMIConfig(**json.loads(args.rsmi_config)) if args.rsmi_config else RSMIConfig()
    data = load_dataset(args.data)
    examples = list(data.split(args.split))[: args.max_examples]
    rows = []
    for model_dir in args.models:
        clf = RSMIClassifier.from_pretrained(model_dir)
        own = clf.config
        wanted = args.settings.split(",")
        for name, config in settings(own, reference).items():
            if name not in wanted:
                continue
            clf.set_config(config)
            result = evaluate(clf, examples, seed=args.seed)
            row = {
                "model": model_dir, "method": clf.method, "setting": name,
                "accuracy": result["clean_accuracy"],
                "avg_forward_passes": result["avg_forward_passes"],
                "second_step_share": result["second_step_share"],
                "config": config.to_dict(),
            }
            rows.append(row)
            print(f"{model_dir:40s} {name:10s} acc {100 * row['accuracy']:6.2f}  "
                  f"passes {row['avg_forward_passes']:5.1f}", flush=True)
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
