"""Benchmark of `rsmi train`: base vs freelb vs rsmi, same data, backbone and epochs.

For each method: train (or resume / reuse a finished run in ``--out/<method>``), then measure
clean test accuracy (rsmi with its two-step predictor, base/freelb with one deterministic
pass) and seconds per training epoch (training only: dev evaluation excluded; from
``log.jsonl``). Writes ``--out/results.json``. Targets (issue 4): rsmi within 2 accuracy points
of base, and rsmi ≤ 1.5 × base seconds per epoch.

The run is resumable: kill it and start the same command again; finished methods are reused
and an interrupted one continues from its checkpoint.

Full setting (docs/training.md):
    python benchmarks/bench_training.py --data mr --model minilm --epochs 2 --max-length 64
Small smoke setting:
    python benchmarks/bench_training.py --max-examples 64 --max-eval-examples 32 \
        --max-test-examples 32 --epochs 1 --out runs/bench_training_small
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from rsmi import RSMIClassifier
from rsmi.training import TrainConfig, evaluate, train
from rsmi.training.trainer import LOG_FILE, select_examples


def _log_records(out: Path) -> list[dict]:
    path = out / LOG_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_method(method: str, args: argparse.Namespace, data) -> dict:
    out = Path(args.out) / method
    config = TrainConfig(
        method=method, model=args.model, data=args.data, out=str(out), epochs=args.epochs,
        max_length=args.max_length, batch_size=args.batch_size, seed=args.seed,
        max_examples=args.max_examples, max_eval_examples=args.max_eval_examples,
        adv_steps=args.adv_steps, checkpoint_every=args.checkpoint_every,
    )
    records = _log_records(out)
    finished = any(r["event"] == "finished" for r in records)
    wall = 0.0
    if not finished:
        start = time.perf_counter()
        resume = (out / "checkpoint").exists()
        if not resume and out.exists():
            train(config, data, overwrite=True, progress=sys.stderr.isatty())
        else:
            train(config, data, resume=resume, progress=sys.stderr.isatty())
        wall = time.perf_counter() - start
        records = _log_records(out)
    epochs = [r for r in records if r["event"] == "epoch"]
    clf = RSMIClassifier.from_pretrained(out)
    test = select_examples(data.split("test"), args.max_test_examples, args.seed)
    result = evaluate(clf, test, seed=args.seed, batch_size=args.eval_batch_size)
    return {
        "method": method,
        "clean_accuracy": result["clean_accuracy"],
        "per_class_accuracy": result["per_class_accuracy"],
        "avg_forward_passes": result["avg_forward_passes"],
        "second_step_share": result["second_step_share"],
        "test_examples": result["num_examples"],
        "test_seconds": result["seconds"],
        "seconds_per_epoch": statistics.mean(r["train_seconds"] for r in epochs),
        "epoch_seconds": [r["train_seconds"] for r in epochs],
        "dev_accuracy": [r["dev_accuracy"] for r in epochs],
        "train_loss": [r["train_loss"] for r in epochs],
        "best_epoch": clf.metadata.get("training", {}).get("epoch"),
        "train_wall_seconds_this_invocation": wall,
        "model_dir": str(out),
        "training_config": json.loads((out / "training_config.json").read_text()),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="mr")
    p.add_argument("--model", default="minilm")
    p.add_argument("--methods", default="base,rsmi,freelb")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--eval-batch-size", type=int, default=64)
    p.add_argument("--adv-steps", type=int, default=3)
    p.add_argument("--max-examples", type=int, default=None, help="training subset")
    p.add_argument("--max-eval-examples", type=int, default=None, help="dev subset")
    p.add_argument("--max-test-examples", type=int, default=None, help="test subset")
    p.add_argument("--checkpoint-every", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/bench_training")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from rsmi.data import load_dataset

    data = load_dataset(args.data)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    results = {}
    for method in args.methods.split(","):
        results[method] = run_method(method, args, data)
        print(json.dumps({k: v for k, v in results[method].items() if k != "training_config"}), flush=True)
    summary: dict = {
        "command": " ".join([sys.executable.split("/")[-1], *sys.argv]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, torch threads "
        f"{torch.get_num_threads()}, cuda {torch.cuda.is_available()}",
        "git_revision": subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True,
                                       text=True).stdout.strip(),
        "settings": vars(args),
        "results": results,
    }
    if "base" in results and "rsmi" in results:
        base, rsmi = results["base"], results["rsmi"]
        summary["rsmi_minus_base_accuracy_points"] = 100 * (rsmi["clean_accuracy"] - base["clean_accuracy"])
        summary["rsmi_over_base_seconds_per_epoch"] = rsmi["seconds_per_epoch"] / base["seconds_per_epoch"]
        summary["targets_met"] = {
            "accuracy_within_2_points": summary["rsmi_minus_base_accuracy_points"] >= -2.0,
            "time_at_most_1.5x": summary["rsmi_over_base_seconds_per_epoch"] <= 1.5,
        }
    path = Path(args.out) / "results.json"
    path.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
