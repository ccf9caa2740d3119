"""Metrics of several attack runs over the same first N examples of their (shared) sample.

Attack samples are seeded permutation prefixes of the split, so example ``index < N`` is the
same text in a run of N examples and in a longer one. This compares, e.g., an EOT run stopped
early with the plain run on exactly the examples both attacked:

    python benchmarks/subset_metrics.py --first 15 \
        runs/main/attacks/rsmi-textfooler/seed-0 runs/attacks/rsmi-textfooler-eot4
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rsmi.attacks.metrics import compute_metrics
from rsmi.attacks.records import EXAMPLES_FILE, read_records


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="run directories holding examples.jsonl")
    p.add_argument("--first", type=int, required=True, help="keep examples with index < N")
    args = p.parse_args()
    out = {}
    for run in args.runs:
        records = [r for r in read_records(Path(run) / EXAMPLES_FILE) if r["index"] < args.first]
        indices = sorted(r["index"] for r in records)
        if indices != list(range(args.first)):
            raise SystemExit(f"{run}: has {len(indices)} of the first {args.first} examples")
        out[run] = compute_metrics(records)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
