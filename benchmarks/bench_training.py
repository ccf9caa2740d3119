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
import dataclasses
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

from rsmi import RSMIClassifier, RSMIConfig
from rsmi.training import TrainConfig, evaluate, train
from rsmi.training.config import SETTINGS
from rsmi.training.trainer import LOG_FILE, select_examples


def _log_records(out: Path) -> list[dict]:
    path = out / LOG_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_method(method: str, args: argparse.Namespace, data, seed: int) -> dict:
    out = Path(args.out) / (method if seed == args.seeds[0] else f"{method}-seed{seed}")
    overrides = {**args.overrides, **(args.rsmi_overrides if method == "rsmi" else {})}
    config = TrainConfig(
        method=method, model=args.model, data=args.data, out=str(out), epochs=args.epochs,
        max_length=args.max_length, batch_size=args.batch_size, seed=seed,
        max_examples=args.max_examples, max_eval_examples=args.max_eval_examples,
        adv_steps=args.adv_steps, checkpoint_every=args.checkpoint_every, **overrides,
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
    test = select_examples(data.split("test"), args.max_test_examples, args.seeds[0])
    result = evaluate(clf, test, seed=seed, batch_size=args.eval_batch_size)
    return {
        "method": method,
        "seed": seed,
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


_FIXED = {"method", "model", "data", "out", "epochs", "seed", "max_length", "batch_size",
          "max_examples", "max_eval_examples", "adv_steps", "checkpoint_every"}


def _parse_overrides(parser: argparse.ArgumentParser, items: list[str], rsmi_only: bool) -> dict:
    """``["num_masks=1", "lr=1e-4"]`` → typed TrainConfig keyword arguments."""
    fields = set(SETTINGS)
    allowed = fields & {f.name for f in dataclasses.fields(RSMIConfig)} if rsmi_only else fields
    allowed = allowed - _FIXED
    flag = "--rsmi-set" if rsmi_only else "--set"
    out: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in allowed:
            parser.error(f"{flag} {item!r}: expected FIELD=VALUE with FIELD one of "
                         f"{', '.join(sorted(allowed))} (the others have their own flags)")
        default = getattr(TrainConfig(), key)
        kind = float if key == "lr" else type(default)
        try:
            out[key] = value if kind is str else kind(value)
        except ValueError:
            parser.error(f"{flag} {item!r}: {value!r} is not a valid {kind.__name__}")
    return out


def _aggregate(runs: list[dict]) -> dict:
    """One method's result: the first seed's run at top level (as with one seed), plus every
    seed's run under ``runs`` and mean / std of the accuracy over seeds."""
    result = dict(runs[0])
    accs = [r["clean_accuracy"] for r in runs]
    result["runs"] = runs
    result["seeds"] = [r["seed"] for r in runs]
    result["clean_accuracy"] = statistics.mean(accs)
    result["clean_accuracy_std"] = statistics.stdev(accs) if len(accs) > 1 else 0.0
    result["seconds_per_epoch"] = statistics.mean(r["seconds_per_epoch"] for r in runs)
    return result


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
    p.add_argument("--seed", type=int, default=None,
                   help="one training seed (default 0); same as --seeds S")
    p.add_argument("--seeds", default=None,
                   help="comma-separated training seeds: each method is trained once per seed "
                   "(the first seed in --out/<method>, the others in --out/<method>-seed<S>); "
                   "accuracies are reported per seed and as mean ± std")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a TrainConfig field for every method (e.g. lr=1e-4); "
                   "repeatable; recorded in results.json")
    p.add_argument("--rsmi-set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override an RSMI field for the rsmi method (e.g. num_masks=1); "
                   "repeatable; recorded in results.json")
    p.add_argument("--out", default="runs/bench_training")
    args = p.parse_args(argv)
    if args.seed is not None and args.seeds is not None:
        p.error("give --seed or --seeds, not both")
    args.seeds = [int(s) for s in (args.seeds or str(args.seed or 0)).split(",")]
    args.rsmi_overrides = _parse_overrides(p, args.rsmi_set, rsmi_only=True)
    args.overrides = _parse_overrides(p, args.set, rsmi_only=False)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from rsmi.data import load_dataset

    data = load_dataset(args.data)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    runs: dict[str, list[dict]] = {}
    for seed in args.seeds:
        for method in args.methods.split(","):
            run = run_method(method, args, data, seed)
            runs.setdefault(method, []).append(run)
            print(json.dumps({k: v for k, v in run.items() if k != "training_config"}), flush=True)
    results = {method: _aggregate(method_runs) for method, method_runs in runs.items()}
    summary: dict = {
        "command": " ".join([sys.executable.split("/")[-1], *sys.argv]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, torch threads "
        f"{torch.get_num_threads()}, cuda {torch.cuda.is_available()}",
        "git_revision": subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True,
                                       text=True).stdout.strip(),
        "settings": {k: v for k, v in vars(args).items() if k not in ("rsmi_overrides", "overrides")},
        "rsmi_overrides": args.rsmi_overrides,
        "overrides": args.overrides,
        "results": results,
    }
    if "base" in results and "rsmi" in results:
        base, rsmi = results["base"], results["rsmi"]
        summary["rsmi_minus_base_accuracy_points"] = 100 * (rsmi["clean_accuracy"] - base["clean_accuracy"])
        if len(args.seeds) > 1:
            diffs = [100 * (r["clean_accuracy"] - b["clean_accuracy"])
                     for r, b in zip(rsmi["runs"], base["runs"], strict=True)]
            summary["rsmi_minus_base_points_per_seed"] = diffs
            summary["rsmi_minus_base_points_std"] = statistics.stdev(diffs)
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
