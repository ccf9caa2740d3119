"""Wall time per attacked example: base vs RSMI models under TextFooler and PWWS on MR.

Runs ``rsmi.attacks.run_attack`` (textdefender preset, no output cache) on ``--num-examples``
MR test sentences for each ``--model`` and each recipe, and reports seconds per example,
queries and forward passes per attacked example, and the metrics. With ``--dtypes
float32,bfloat16`` each model is attacked in both compute precisions on the same examples,
interleaved shard by shard (``--interleave N``) so that a change of machine load hits both
alike; the speed-up is the ratio of the summed per-example wall times. Needs prepared resources
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
    p.add_argument("--dtypes", default="float32", help="compute precisions, e.g. float32,bfloat16")
    p.add_argument("--interleave", type=int, default=1,
                   help="split the examples into N shards and alternate the dtypes shard by shard")
    p.add_argument("--out", default="runs/bench_attack")
    args = p.parse_args()

    from rsmi import RSMIClassifier
    from rsmi.attacks import AttackConfig, merge_runs, run_attack
    from rsmi.attacks.records import read_records
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
            dtypes = args.dtypes.split(",")
            wall = dict.fromkeys(dtypes, 0.0)
            n = args.interleave
            for i in range(n):
                for dtype in dtypes:
                    clf = RSMIClassifier.from_pretrained(path, dtype=dtype)
                    cfg = AttackConfig(recipe=recipe, num_examples=args.num_examples,
                                       seeds=(args.seed,), batch_size=args.batch_size, model=path,
                                       data=args.data, dtype=clf.compute_dtype, shard=(i, n))
                    out = Path(args.out) / f"{name}-{recipe}-{dtype}"
                    start = time.perf_counter()
                    run_attack(clf, examples, cfg, out, resources=resources, resume=True)
                    wall[dtype] += time.perf_counter() - start
            for dtype in dtypes:
                out = Path(args.out) / f"{name}-{recipe}-{dtype}"
                summary = merge_runs([out], out) if n > 1 else json.loads((out / "summary.json").read_text())
                records = read_records(out / "examples.jsonl")
                rows.append({
                    "model": name, "recipe": recipe, "dtype": dtype, "method": summary.get("method"),
                    "seconds_per_example": sum(r["wall_s"] for r in records) / max(len(records), 1),
                    "wall_s": wall[dtype],
                    **{k: summary[k] for k in ("num_examples", "clean_accuracy", "accuracy_under_attack",
                                               "attack_success_rate", "avg_queries", "avg_forward_passes")},
                })
                print(json.dumps(rows[-1]))
    report = {
        "command": "python benchmarks/bench_attack.py " + " ".join(
            [f"--model {m}" for m in args.model]
            + [f"--recipes {args.recipes}", f"--num-examples {args.num_examples}",
               f"--dtypes {args.dtypes}", f"--interleave {args.interleave}"]),
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads",
        "date": datetime.date.today().isoformat(),
        "rows": rows,
    }
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "bench_attack.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
