"""Wall time per attacked example: base vs RSMI models under TextFooler and PWWS on MR.

Runs ``rsmi.attacks.run_attack`` (textdefender preset, no output cache) on ``--num-examples``
MR test sentences for each ``--model`` and each recipe, and reports seconds per example,
queries and forward passes per attacked example, and the metrics. Needs prepared resources
(``rsmi resources prepare``) and trained models, e.g.

    python benchmarks/bench_attack.py --model base=runs/mr-base --model rsmi=runs/mr-rsmi \\
        --recipes textfooler,pwws --num-examples 20 --out runs/bench_attack
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import time
from pathlib import Path

import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", action="append", required=True, metavar="NAME=PATH",
                   help="a model to attack (repeatable); NAME is the row label")
    p.add_argument("--data", default="mr")
    p.add_argument("--recipes", default="textfooler,pwws")
    p.add_argument("--num-examples", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--out", default="runs/bench_attack")
    args = p.parse_args()

    from rsmi import RSMIClassifier
    from rsmi.attacks import AttackConfig, run_attack
    from rsmi.data import load_dataset
    from rsmi.resources import Resources

    resources = Resources.load()
    examples = load_dataset(args.data).split("test")
    rows = []
    for spec in args.model:
        name, _, path = spec.partition("=")
        if not path:
            raise SystemExit(f"--model {spec!r}: write NAME=PATH")
        for recipe in args.recipes.split(","):
            clf = RSMIClassifier.from_pretrained(path)
            cfg = AttackConfig(recipe=recipe, num_examples=args.num_examples, seeds=(args.seed,),
                               batch_size=args.batch_size, model=path, data=args.data)
            out = Path(args.out) / f"{name}-{recipe}"
            start = time.perf_counter()
            summary = run_attack(clf, examples, cfg, out, resources=resources, resume=True)
            wall = time.perf_counter() - start
            rows.append({
                "model": name, "recipe": recipe, "method": summary.get("method"),
                "seconds_per_example": summary["attack_time_s"] / max(summary["num_examples"], 1),
                "wall_s": wall,
                **{k: summary[k] for k in ("num_examples", "clean_accuracy", "accuracy_under_attack",
                                           "attack_success_rate", "avg_queries", "avg_forward_passes")},
            })
            print(json.dumps(rows[-1]))
    report = {
        "command": "python benchmarks/bench_attack.py " + " ".join(
            [f"--model {m}" for m in args.model]
            + [f"--recipes {args.recipes}", f"--num-examples {args.num_examples}"]),
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads",
        "date": datetime.date.today().isoformat(),
        "rows": rows,
    }
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "bench_attack.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
