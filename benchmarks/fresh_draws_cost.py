"""What fresh-draw verification costs beside the attack (issue 27 item 1: `rsmi pipeline` attacks
a randomized model with `--fresh-draws 20`).

Two measurements, written to results/benchmarks/fresh_draws/cost.json:

1. **Recorded** (exact, no compute): every committed attack run whose records hold fresh-draw
   verdicts — encoder forward passes spent on the fresh draws (`fresh_forward_passes`) against
   those the attack itself spent (`forward_passes`), per example and in total.
2. **Measured** on MR (the main job's dataset, 64 tokens): the first N records of a committed
   MR TextFooler run on RSMI (paper settings) re-scored with R fresh draws by a model of the
   same settings (`--model`, e.g. runs/bench/mr-rsmi-paper: the committed run's own model was
   trained on another CPU kind and cannot be regenerated here, so the texts are the committed
   attack's and the draws are this model's); forward passes and wall seconds of the fresh
   draws against the attack's recorded forward passes of those records. The ratio of passes is
   the cost; the wall time is this machine's, under whatever load it had (noted).

Usage:
    PYTHONPATH=src nice -n 5 python benchmarks/fresh_draws_cost.py \
        --model /work/main/runs/bench/mr-rsmi-paper --n 30 --draws 20
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import json
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MR_RUN = "results/study/mr/attacks/rsmi-paper/seed-0/textfooler/seed-0"
OUT = ROOT / "results" / "benchmarks" / "fresh_draws" / "cost.json"


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def recorded() -> list[dict]:
    """Fresh-draw cost of every committed run whose records hold it."""
    out = []
    for summary in sorted(glob.glob(str(ROOT / "results/**/summary.json"), recursive=True)):
        data = json.loads(Path(summary).read_text(encoding="utf-8"))
        examples = Path(summary).with_name("examples.jsonl")
        if "fresh_draws" not in data or not examples.is_file():
            continue
        recs = [r for r in _records(examples) if "fresh_forward_passes" in r]
        attack = sum(int(r.get("forward_passes") or 0) for r in recs)
        fresh = sum(int(r["fresh_forward_passes"]) for r in recs)
        out.append({
            "run": str(Path(summary).parent.relative_to(ROOT)), "examples": len(recs),
            "draws": data["fresh_draws"]["draws"],
            "attack_forward_passes": attack, "fresh_forward_passes": fresh,
            "fresh_per_example": fresh / max(len(recs), 1),
            "attack_per_example": attack / max(len(recs), 1),
            "fresh_over_attack": fresh / attack if attack else None,
        })
    return out


def measured(model: str, n: int, draws: int, dtype: str) -> dict:
    """Fresh draws of the first ``n`` committed MR records, scored by ``model``."""
    import torch

    from rsmi import RSMIClassifier
    from rsmi.attacks.fresh import score_record

    torch.set_num_threads(1)  # the shared 2-core machine: one thread is the faster (serving bench)
    recs = _records(ROOT / MR_RUN / "examples.jsonl")[:n]
    clf = RSMIClassifier.from_pretrained(model, dtype=dtype)
    settings = json.loads((ROOT / MR_RUN / "summary.json").read_text())["model"]["rsmi_config"]
    view = clf.configured(clf.config.replace(**{k: settings[k] for k in
                                                ("noise_std", "noise_every", "num_masks", "k0",
                                                 "k1", "max_length")}), dtype=dtype)
    rows = []
    for r in recs:
        t0 = time.perf_counter()
        scored = score_record(view, r, draws)
        rows.append({"index": r["index"], "result_type": r["result_type"],
                     "attack_forward_passes": int(r["forward_passes"]),
                     "attack_wall_s_recorded": r.get("wall_s"),
                     "fresh_forward_passes": scored["fresh_forward_passes"],
                     "fresh_wall_s": time.perf_counter() - t0})
    attack = sum(x["attack_forward_passes"] for x in rows)
    fresh = sum(x["fresh_forward_passes"] for x in rows)
    walls = sorted(x["fresh_wall_s"] for x in rows)
    return {
        "run": MR_RUN, "model": model, "dtype": view.compute_dtype, "draws": draws, "n": len(rows),
        "attack_forward_passes": attack, "fresh_forward_passes": fresh,
        "fresh_over_attack": fresh / attack if attack else None,
        "fresh_wall_s_per_example": {"mean": sum(walls) / len(walls), "min": walls[0],
                                     "median": walls[len(walls) // 2], "max": walls[-1]},
        "per_example": rows,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="an RSMI model with the MR run's settings (skip: recorded only)")
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--draws", type=int, default=20)
    ap.add_argument("--dtype", default="bfloat16")
    args = ap.parse_args()
    from rsmi.provenance import cpu_model

    cpu = cpu_model()
    result = {
        "command": "PYTHONPATH=src nice -n 5 python benchmarks/fresh_draws_cost.py "
                   + (f"--model {args.model} --n {args.n} --draws {args.draws} --dtype {args.dtype}"
                      if args.model else ""),
        "machine": cpu, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "load_1min_before": os.getloadavg()[0],
        "recorded": recorded(),
    }
    if args.model:
        result["measured_mr"] = measured(args.model, args.n, args.draws, args.dtype)
    result["load_1min_after"] = os.getloadavg()[0]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "measured_mr"}, indent=2))
    if args.model:
        m = result["measured_mr"]
        print({k: v for k, v in m.items() if k != "per_example"})


if __name__ == "__main__":
    main()
