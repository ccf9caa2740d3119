"""Cost probe of the FreeLB++ dev sweep (issue 27 item 2): seconds per optimiser step by ascent steps.

Trains FreeLB++ (TextDefender's adv_lr 0.03, init 0.05, unbounded norm) with each number of
ascent steps K for one short epoch on the same seeded subset of MR's training split
(``--max-examples`` sentences, i.e. that / 32 optimiser steps) in bfloat16, and records the
wall and the process's CPU seconds per optimiser step between the first and the last step
(``train``'s ``on_step`` callback; the first step's warm-up, model load and dev pass are
outside). ``--threads 1`` (the default) keeps an oversubscribed machine's OpenMP spin-waiting
out of the CPU seconds: one thread's CPU seconds are its work. The settings are interleaved round by round so
that a change of machine load hits each K alike. On a shared machine the wall seconds measure
the load as much as the work, so the estimate uses only the *ratio* t(K)/t(10) (a line
``a + b·K`` through the medians of CPU seconds per step: every ascent step is one
forward/backward of the same batch) and scales the study's committed FreeLB++ trainings
(K = 10, 2 epochs, ``results/study/<ds>/models/freelb/seed-0/log.jsonl``, their own machine,
alone) by it: each dataset's steps and seconds per epoch from that log.

    nice -n 5 python benchmarks/bench_freelb_cost.py --adv-steps 5,10,30 --max-examples 160 \
        --rounds 2 --threads 1 --out results/benchmarks/freelb_cost/mr_probe.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rsmi.training import TrainConfig, train

# FreeLB++ as TextDefender runs it, less the number of ascent steps (src/rsmi/training/config.py).
FREELB_PP = {"adv_lr": 0.03, "adv_init_mag": 0.05, "adv_max_norm": 0.0}
# The FreeLB++ sweep (benchmarks/study.yaml `sweeps: freelb`): K at 2 epochs; the winner at 10.
SWEEP_STEPS = (5, 10, 30)
SHORT_EPOCHS, LONG_EPOCHS = 2, 10


def reference(ds: str) -> dict:
    """The study's committed K = 10 FreeLB++ training of ``ds``: steps and seconds per epoch."""
    folder = Path("results/study") / ds / "models" / "freelb" / "seed-0"
    records = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines() if line.strip()]
    epochs = [r for r in records if r["event"] == "epoch"]
    config = json.loads((folder / "training_config.json").read_text())
    steps = epochs[0]["global_step"]
    return {"log": str(folder / "log.jsonl"), "adv_steps": config["adv_steps"],
            "cpu": config.get("provenance", {}).get("machine", {}).get("cpu"),
            "steps_per_epoch": steps,
            "seconds_per_epoch": statistics.mean(r["train_seconds"] for r in epochs)}


def lscpu_model() -> str:
    from rsmi.provenance import cpu_model

    return cpu_model() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="mr")
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--adv-steps", default="5,10,30")
    parser.add_argument("--max-examples", type=int, default=160)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (CPU)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default="results/benchmarks/freelb_cost/mr_probe.json")
    args = parser.parse_args()

    import torch

    from rsmi.provenance import provenance
    from rsmi.training.trainer import load_training_data

    torch.set_num_threads(args.threads)
    steps_list = [int(k) for k in args.adv_steps.split(",")]
    data = load_training_data(TrainConfig(data=args.data))
    load_before = os.getloadavg()
    per_step: dict[int, list[float]] = {k: [] for k in steps_list}
    cpu_per_step: dict[int, list[float]] = {k: [] for k in steps_list}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for k in steps_list:
                out = Path(tmp) / f"k{k}-{r}"
                config = TrainConfig(
                    method="freelb", model="minilm", data=args.data, out=str(out), epochs=1,
                    max_examples=args.max_examples, max_eval_examples=32, batch_size=32,
                    max_length=args.max_length, seed=0, dtype="bfloat16", adv_steps=k,
                    **FREELB_PP,
                )
                marks: list[tuple[float, float]] = []
                train(config, data,
                      on_step=lambda _, marks=marks: marks.append((time.perf_counter(), time.process_time())))
                steps = len(marks) - 1  # the intervals between the first and the last step
                per_step[k].append((marks[-1][0] - marks[0][0]) / steps)
                cpu_per_step[k].append((marks[-1][1] - marks[0][1]) / steps)
                print(f"K={k} round {r}: {per_step[k][-1]:.2f} wall s/step, "
                      f"{cpu_per_step[k][-1]:.2f} CPU s/step ({steps} steps timed)", flush=True)
    median = {k: statistics.median(v) for k, v in cpu_per_step.items()}
    # Least-squares line through the medians of CPU seconds per step: a + b·K.
    ks = list(median)
    mk, mt = statistics.mean(ks), statistics.mean(median.values())
    b = sum((k - mk) * (median[k] - mt) for k in ks) / sum((k - mk) ** 2 for k in ks)
    a = mt - b * mk

    def fit(k: int) -> float:
        return a + b * k

    estimate = {}
    for ds in ("mr", "bbc"):
        ref = reference(ds)
        # The committed run's seconds per step at its K, scaled to K by this machine's ratio.
        per_step_ref = ref["seconds_per_epoch"] / ref["steps_per_epoch"]
        hours = {k: per_step_ref * fit(k) / fit(ref["adv_steps"]) * ref["steps_per_epoch"]
                 * SHORT_EPOCHS / 3600 for k in SWEEP_STEPS}
        estimate[ds] = {"reference": ref, "ratio_to_reference": {
                            k: fit(k) / fit(ref["adv_steps"]) for k in SWEEP_STEPS},
                        "hours_2_epochs": hours,
                        "hours_10_epochs": {k: h * LONG_EPOCHS / SHORT_EPOCHS for k, h in hours.items()}}
    result = {
        "command": " ".join(["python", *sys.argv]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": lscpu_model(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "data": args.data,
        "max_length": args.max_length,
        "max_examples": args.max_examples,
        "torch_threads": args.threads,
        "rounds": args.rounds,
        "wall_seconds_per_step": per_step,
        "cpu_seconds_per_step": cpu_per_step,
        "median_cpu_seconds_per_step": median,
        "fit_cpu_seconds_per_step": {"a": a, "b_per_ascent_step": b},
        "estimate": estimate,
        "provenance": provenance(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"median_cpu_seconds_per_step": median, "estimate": {
        ds: {"hours_2_epochs": e["hours_2_epochs"], "hours_10_epochs": e["hours_10_epochs"]}
        for ds, e in estimate.items()}}, indent=2))


if __name__ == "__main__":
    main()
