"""Metrics of several attack runs over the same first N examples of their (shared) sample.

Attack samples are seeded permutation prefixes of the split, so example ``index < N`` is the
same text in a run of N examples and in a longer one. This compares, e.g., an EOT run stopped
early with the plain run on exactly the examples both attacked:

    python benchmarks/subset_metrics.py --first 15 \
        runs/main/attacks/rsmi-textfooler/seed-0 runs/attacks/rsmi-textfooler-eot4

With two runs it also gives the paired exact McNemar test on robust / not robust (and on clean
correctness) over those examples; ``--out FILE`` writes the JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rsmi.attacks.metrics import compute_metrics
from rsmi.attacks.records import EXAMPLES_FILE, read_records
from rsmi.reports.stats import compare_records


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="run directories holding examples.jsonl")
    p.add_argument("--first", type=int, required=True, help="keep examples with index < N")
    p.add_argument("--out", help="also write the JSON to this file")
    args = p.parse_args()
    out: dict = {"first": args.first, "runs": {}}
    kept = {}
    for run in args.runs:
        records = [r for r in read_records(Path(run) / EXAMPLES_FILE) if r["index"] < args.first]
        indices = sorted(r["index"] for r in records)
        if indices != list(range(args.first)):
            raise SystemExit(f"{run}: has {len(indices)} of the first {args.first} examples")
        out["runs"][run] = compute_metrics(records)
        kept[run] = records
    if len(args.runs) == 2:
        a, b = args.runs
        pair = compare_records(kept[a], kept[b], label_a=a, label_b=b)
        out["paired"] = {k: getattr(pair, k) for k in pair.__dataclass_fields__}
    text = json.dumps(out, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
