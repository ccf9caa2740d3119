"""Attack throughput on a CPU machine: one process with all torch threads vs shard processes.

TextAttack's search (word ranking, candidate filtering, the sentence encoder's bookkeeping) runs
in one Python thread; only the model's matrix products use torch's intra-op threads. On a
2-core machine one attack process therefore leaves a core idle part of the time. This script
attacks the same examples twice with ``rsmi attack`` (subprocesses, the project's own CLI):

* ``single``: one process, torch's default threads (all cores);
* ``shards``: ``--procs`` processes ``--shard i/n``, each with ``OMP_NUM_THREADS=1`` (one core
  each), started together; the wall time is the slowest shard's, and the shards are combined with
  ``rsmi attack merge``.

It reports wall seconds per example, the speed-up of the wall time, the throughput in attack
queries per busy second (summed over the shards: the wall time of a few examples is the slowest
shard's, so an uneven split hides the gain that a long run, whose shards stay busy together,
gets), and whether the two runs gave the same per-example results (they must: every example's
randomness derives from its index, see ``rsmi.attacks.runner``). Needs prepared resources and a
trained model; the measurement in docs/benchmarks.md (BBC TextFooler, bfloat16, 128 tokens are
the defaults):

    python benchmarks/bench_shards.py --model runs/study/bbc/base/seed-0 --num-examples 10 \\
        --out runs/bench_shards/bbc-base
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path


def attack_argv(args: argparse.Namespace, out: Path, shard: str | None) -> list[str]:
    argv = [sys.executable, "-m", "rsmi.cli.main", "attack", "--model", args.model,
            "--data", args.data, "--split", args.split, "--recipe", args.recipe,
            "--num-examples", str(args.num_examples), "--seeds", "0",
            "--max-length", str(args.max_length), "--cut-to-max-length",
            "--dtype", args.dtype, "--device", "cpu", "--no-progress", "--out", str(out)]
    return argv + (["--shard", shard] if shard else [])


def run_procs(argvs: list[list[str]], threads: int | None) -> float:
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    start = time.perf_counter()
    procs = [subprocess.Popen(a, env=env) for a in argvs]
    codes = [p.wait() for p in procs]
    wall = time.perf_counter() - start
    if any(codes):
        sys.exit(f"an attack process failed (exit codes {codes})")
    return wall


def run_records(run: Path) -> list[list[dict]]:
    """The records of each ``examples.jsonl`` below ``run`` (one list per shard)."""
    from rsmi.attacks.records import read_records

    return [read_records(f) for f in sorted(run.rglob("examples.jsonl"))]


def throughput(shards: list[list[dict]]) -> float:
    """Attack queries per second of attack time (summed over shards running side by side)."""
    return sum(sum(r["queries"] for r in recs) / sum(r["wall_s"] for r in recs) for recs in shards)


def outcomes(shards: list[list[dict]]) -> dict[int, tuple]:
    """index -> (result type, adversarial text, queries) of every example record."""
    return {r["index"]: (r["result_type"], r["perturbed_text"], r["queries"])
            for recs in shards for r in recs}


def measure(args: argparse.Namespace, out: Path) -> dict[str, float]:
    """Run the configurations of ``--order`` into ``out``; their wall times."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    walls: dict[str, float] = {}
    for config in args.order.split(","):
        if config == "single":
            walls[config] = run_procs([attack_argv(args, out / "single", None)], None)
        elif config == "shards":
            n = args.procs
            walls[config] = run_procs(
                [attack_argv(args, out / "shards", f"{i}/{n}") for i in range(n)], 1)
            subprocess.run([sys.executable, "-m", "rsmi.cli.main", "attack", "merge",
                            str(out / "shards"), "--out", str(out / "merged")], check=True)
        else:
            sys.exit(f"unknown configuration {config!r} in --order (single, shards)")
        print(f"{config}: {walls[config]:.1f} s for {args.num_examples} examples", flush=True)
    return walls


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--data", default="bbc")
    p.add_argument("--split", default="test")
    p.add_argument("--recipe", default="textfooler")
    p.add_argument("--num-examples", type=int, default=10)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--procs", type=int, default=2, help="shard processes (one thread each)")
    p.add_argument("--order", default="single,shards", help="which configuration runs first")
    p.add_argument("--out", default="runs/bench_shards")
    p.add_argument("--report-only", action="store_true",
                   help="recompute bench.json from the runs already in --out")
    args = p.parse_args()

    out = Path(args.out)
    if args.report_only:  # keep what the measuring run recorded about itself
        meta = json.loads((out / "bench.json").read_text())
    else:
        meta = {"command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
                "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "settings": {k: v for k, v in vars(args).items() if k not in ("out", "report_only")},
                "wall_s": measure(args, out)}
    walls = meta["wall_s"]
    single, shards = run_records(out / "single"), run_records(out / "shards")
    a, b = outcomes(single), outcomes(shards)
    q = {"single": throughput(single), "shards": throughput(shards)}
    result = {
        "command": meta["command"],
        "date": meta["date"],
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "processor": platform.processor()},
        "settings": meta["settings"],
        "wall_s": walls,
        "s_per_example": {k: v / args.num_examples for k, v in walls.items()},
        "speedup_shards_vs_single": walls["single"] / walls["shards"],
        "queries_per_s": q,
        "same_records": a == b and len(a) == args.num_examples,
        "num_records": {"single": len(a), "shards": len(b)},
        "throughput_gain_shards_vs_single": q["shards"] / q["single"],
    }
    (out / "bench.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
