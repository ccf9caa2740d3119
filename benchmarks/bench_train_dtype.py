"""Training speed, float32 vs bfloat16 autocast, for base / rsmi / freelb (issue 8).

Trains each (method, dtype) on the same seeded subset of the training split for one epoch
(``--max-examples`` sentences) and reads the epoch's training seconds (dev evaluation
excluded) from ``log.jsonl``. The settings are interleaved round by round, so that a change
of machine load hits both precisions alike; the speed-up is the ratio of the medians.
Accuracy over full trainings is ``bench_training.py``'s job (``--set dtype=bfloat16``).

    python benchmarks/bench_train_dtype.py --methods base,rsmi --rounds 2 \
        --out results/benchmarks/dtype_training.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
from pathlib import Path

import torch

from rsmi.training import TrainConfig, train


def epoch_seconds(out: Path) -> float:
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines() if line.strip()]
    return float(next(r["train_seconds"] for r in records if r["event"] == "epoch"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="mr")
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--methods", default="base,rsmi")
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--max-examples", type=int, default=640)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default="results/benchmarks/dtype_training.json")
    args = parser.parse_args()

    from rsmi.provenance import provenance
    from rsmi.training.trainer import load_training_data

    methods = args.methods.split(",")
    dtypes = args.dtypes.split(",")
    data = load_training_data(TrainConfig(data=args.data))
    seconds: dict[str, dict[str, list[float]]] = {m: {d: [] for d in dtypes} for m in methods}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for method in methods:
                for dtype in dtypes:
                    out = Path(tmp) / f"{method}-{dtype}-{r}"
                    config = TrainConfig(
                        method=method, model=args.model, data=args.data, out=str(out), epochs=1,
                        max_examples=args.max_examples, max_eval_examples=32,
                        max_length=args.max_length, seed=0, dtype=dtype,
                    )
                    train(config, data)
                    seconds[method][dtype].append(epoch_seconds(out))
                    print(method, dtype, r, seconds[method][dtype][-1], flush=True)
    result = {
        "data": args.data,
        "model": args.model,
        "max_examples": args.max_examples,
        "max_length": args.max_length,
        "rounds": args.rounds,
        "epoch_seconds": seconds,
        "speedup_vs_float32": {
            m: {
                d: statistics.median(seconds[m][dtypes[0]]) / statistics.median(seconds[m][d])
                for d in dtypes
            }
            for m in methods
        },
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, CPU",
        "provenance": provenance(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["speedup_vs_float32"], indent=2))


if __name__ == "__main__":
    main()
