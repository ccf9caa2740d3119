"""The ceiling of autocast on this machine: plain encoder forward, float32 vs bfloat16 (issue 8).

The issue's premise measured all-MiniLM-L6-v2's plain forward (no RSMI, inference mode) in
float32 and under ``torch.autocast("cpu", dtype=torch.bfloat16)``; this script repeats that
measurement for a few batch shapes, the two precisions interleaved, so that the speed-ups of
``bench_dtype.py`` (RSMI predict) can be read against what the hardware gives.

    python benchmarks/bench_forward_dtype.py --out results/benchmarks/dtype_forward.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shapes", default="64x24,256x24,1024x24,64x48", help="ROWSxTOKENS,...")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="results/benchmarks/dtype_forward.json")
    args = parser.parse_args()

    from rsmi import RSMIClassifier
    from rsmi.provenance import provenance

    torch.manual_seed(0)
    model = RSMIClassifier.from_pretrained("minilm", num_labels=2).model.eval()
    rows_out = []
    for shape in args.shapes.split(","):
        rows, tokens = (int(x) for x in shape.split("x"))
        ids = torch.randint(1000, 20000, (rows, tokens), generator=torch.Generator().manual_seed(0))
        mask = torch.ones_like(ids)
        times: dict[str, list[float]] = {"float32": [], "bfloat16": []}
        for _ in range(args.repeats):
            for name in times:
                with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=name == "bfloat16"):
                    model(input_ids=ids[:8], attention_mask=mask[:8])  # warm the kernels
                    start = time.perf_counter()
                    model(input_ids=ids, attention_mask=mask)
                    times[name].append(time.perf_counter() - start)
        med = {k: statistics.median(v) for k, v in times.items()}
        rows_out.append({
            "rows": rows, "tokens": tokens,
            "rows_per_second": {k: rows / v for k, v in med.items()},
            "speedup": med["float32"] / med["bfloat16"],
            "seconds": times,
        })
        print(rows, tokens, {k: round(rows / v) for k, v in med.items()}, round(rows_out[-1]["speedup"], 2), flush=True)
    result = {"shapes": rows_out, "provenance": provenance()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
