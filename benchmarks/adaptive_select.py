"""Choose the adaptive attacker's (m, δ) on dev: the lowest deployed AUA (issue 27, item 1).

For each grid point (m, δ) this runs ``rsmi attack --eot m --eot-margin δ --fresh-draws R``
(TextFooler, the study's flags) on the same N dev examples of one randomized model, reads each
run's ``summary.json`` ``fresh_draws`` block and its records, and selects the point with the
lowest deployed AUA for one submission (k = 1); ties go to fewer forward passes per example.
Every attack is ``rsmi attack`` itself, run as a subprocess with ``--resume`` (a killed
selection continues where it stopped; a finished point is read, not re-run).

Writes, under ``--out``: ``attacks/m<m>-d<δ>/`` (each point's run: examples.jsonl, summary.json,
run.json) and ``selection.json``: per point the protocol AUA (Wilson 95 %), the deployed AUA for
k = 1, 5, 25 submissions (percentile bootstrap 95 % over examples), the majority AUA (Wilson),
the paired bootstrap of each point's deployed AUA (k = 1) minus the first and the previous
point's and the selected point's minus every other's, the cost
(forward passes and seconds per example), and the selected point; with the exact command, the
machine (lscpu model name), date and load.

    # the study's grid (9 points)
    python benchmarks/adaptive_select.py --model runs/study/mr/rsmi-paper/seed-0 --out results/...
    # two grid points at a time on a 2-core machine (one torch thread each)
    python benchmarks/adaptive_select.py --model DIR --jobs 2 --out results/...
    # the pilot of docs/study.md
    nice -n 5 python benchmarks/adaptive_select.py --model runs/bench/mr-rsmi-paper \\
        --num-examples 25 --grid 1:0,4:0,4:0.2 --out results/adaptive-pilot
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

STUDY_GRID = ((1, 0.0), (1, 0.1), (1, 0.3), (4, 0.0), (4, 0.1), (4, 0.3), (8, 0.0), (8, 0.1), (8, 0.3))
K_SUBMISSIONS = (1, 5, 25)
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0


def parse_grid(text: str) -> list[tuple[int, float]]:
    """``"1:0,4:0,4:0.2"`` → ``[(1, 0.0), (4, 0.0), (4, 0.2)]``."""
    points = []
    for item in text.split(","):
        m, _, delta = item.partition(":")
        try:
            points.append((int(m), float(delta or 0.0)))
        except ValueError:
            raise SystemExit(f"--grid {text!r}: write m:δ pairs separated by commas, e.g. 1:0,4:0.2") from None
    return points


def point_name(m: int, delta: float) -> str:
    return f"m{m}-d{delta:g}"


def attack_argv(args: argparse.Namespace, m: int, delta: float, out: Path) -> list[str]:
    """The ``rsmi attack`` arguments of one grid point (the study's flags)."""
    argv = ["attack", "--model", str(args.model), "--data", args.data, "--split", args.split,
            "--recipe", args.recipe, "--preset", "textdefender",
            "--num-examples", str(args.num_examples), "--sample-seed", "0", "--seed", "0",
            "--max-length", str(args.max_length), "--cut-to-max-length", "--dtype", args.dtype,
            "--fresh-draws", str(args.fresh_draws), "--out", str(out), "--resume", "--no-progress"]
    if m > 1:
        argv += ["--eot", str(m)]
    if delta > 0:
        argv += ["--eot-margin", f"{delta:g}"]
    return argv


def _bootstrap(values: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    idx = rng.integers(0, values.size, size=(BOOTSTRAP_RESAMPLES, values.size))
    means = 100.0 * values[idx].mean(axis=1)
    lo, hi = np.quantile(means, [0.025, 0.975], method="inverted_cdf")
    return round(float(lo), 2), round(float(hi), 2)


def _wilson(k: int, n: int) -> tuple[float, float]:
    from rsmi.reports.stats import wilson

    lo, hi = wilson(k, n)
    return round(lo, 2), round(hi, 2)


def per_example(records: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Per example (ordered by index): protocol robust, deployed values for each k, majority."""
    recs = sorted(records, key=lambda r: int(r["index"]))
    attacked = np.array([float(r["p_correct_original"]) > 0.5 for r in recs])
    p = np.array([float(r["p_correct_perturbed"]) for r in recs])
    out = {"robust": np.array([r["result_type"] == "failed" for r in recs]),
           "majority": attacked & (p > 0.5), "index": np.array([int(r["index"]) for r in recs])}
    for k in K_SUBMISSIONS:
        out[f"k{k}"] = attacked * p**k
    return out


def figures(summary: dict[str, Any], records: list[dict[str, Any]], seed: int) -> dict[str, Any]:
    """One point's figures with their intervals: the metrics from its records (rsmi's own
    ``compute_metrics`` and ``fresh_block``, so an unfinished run is read as far as it got), the
    attacker from its summary."""
    from rsmi.attacks import compute_metrics
    from rsmi.attacks.fresh import fresh_block

    ex = per_example(records)
    n = int(ex["robust"].size)
    rng = np.random.default_rng(seed)
    metrics = compute_metrics(records)
    block = fresh_block(records, deterministic=False) or {}
    deployed = {str(k): {"aua": round(100.0 * float(ex[f"k{k}"].mean()), 2),
                         "ci95_bootstrap": _bootstrap(ex[f"k{k}"], rng)} for k in K_SUBMISSIONS}
    return {
        "attacker": summary.get("attacker"),
        "num_examples": n,
        "protocol": {"clean_accuracy": metrics["clean_accuracy"],
                     "aua": round(100.0 * float(ex["robust"].mean()), 2),
                     "ci95_wilson": _wilson(int(ex["robust"].sum()), n),
                     "num_successful": metrics["num_successful"],
                     "num_failed": metrics["num_failed"],
                     "num_skipped": metrics["num_skipped"]},
        "deployed": {"draws": block.get("draws"), "clean_accuracy": block.get("clean_accuracy"),
                     "num_attacked": block.get("num_attacked"), "k": deployed,
                     "majority_aua": round(100.0 * float(ex["majority"].mean()), 2),
                     "majority_ci95_wilson": _wilson(int(ex["majority"].sum()), n)},
        "fresh_draws_block": {k: block.get(k) for k in (
            "accuracy_under_attack", "majority_accuracy_under_attack", "accuracy_under_attack_k")},
        "cost": {"avg_forward_passes": metrics["avg_forward_passes"],
                 "avg_queries": metrics["avg_queries"],
                 "seconds_per_example": round(sum(float(r.get("wall_s", 0.0)) for r in records)
                                              / max(n, 1), 2),
                 "fresh_forward_passes_per_example": round(
                     float(block.get("forward_passes") or 0) / max(n, 1), 1)},
    }


def paired_difference(a: np.ndarray, b: np.ndarray, seed: int) -> dict[str, Any]:
    """Deployed AUA (k = 1) of a minus b on the same examples, paired bootstrap 95 %."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, a.size, size=(BOOTSTRAP_RESAMPLES, a.size))
    diff = 100.0 * (a[idx].mean(axis=1) - b[idx].mean(axis=1))
    lo, hi = np.quantile(diff, [0.025, 0.975], method="inverted_cdf")
    return {"diff": round(100.0 * float(a.mean() - b.mean()), 2),
            "ci95_paired_bootstrap": (round(float(lo), 2), round(float(hi), 2))}


def select(points: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The point of lowest deployed AUA (k = 1) among the finished ones; ties: fewer forward
    passes per example."""
    done = [p for p in points if p.get("figures") and p.get("complete", True)]
    if not done:
        return None
    return min(done, key=lambda p: (p["figures"]["deployed"]["k"]["1"]["aua"],
                                    p["figures"]["cost"]["avg_forward_passes"] or 0.0))


def _ci(pair: Any) -> str:
    return f"[{pair[0]:.1f}, {pair[1]:.1f}]"


def markdown(selection: dict[str, Any]) -> str:
    """The table of docs/study.md's pilot subsection, from ``selection.json``."""
    lines = ["| attacker (m, δ) | N | protocol AUA | deployed AUA, k = 1 | k = 5 | k = 25 | majority "
             "of 20 | deployed k = 1 minus the first and the previous point (paired) | forward passes / attacked example | s / example |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for pt in selection["points"]:
        f = pt.get("figures")
        if not f:
            lines.append(f"| m = {pt['m']}, δ = {pt['delta']:g} | not run | | | | | | | | |")
            continue
        d, pr, k = f["deployed"], f["protocol"], f["deployed"]["k"]
        diffs = [pt.get("deployed_k1_minus_first"), pt.get("deployed_k1_minus_previous")]
        if diffs[0] is not None and diffs[1] is not None and diffs[0]["versus"] == diffs[1]["versus"]:
            diffs = diffs[:1]  # the previous point is the first
        diff_text = " / ".join(
            f"{x['diff']:+.1f} {_ci(x['ci95_paired_bootstrap'])} vs {x['versus']} (N = {x['num_examples']})"
            for x in diffs if x) or "—"
        n = f"{f['num_examples']}" + ("" if pt.get("complete", True) else " (unfinished)")
        lines.append(
            f"| {f['attacker']} | {n} | {pr['aua']:.1f} {_ci(pr['ci95_wilson'])} | "
            f"{k['1']['aua']:.1f} {_ci(k['1']['ci95_bootstrap'])} | "
            f"{k['5']['aua']:.1f} {_ci(k['5']['ci95_bootstrap'])} | "
            f"{k['25']['aua']:.1f} {_ci(k['25']['ci95_bootstrap'])} | "
            f"{d['majority_aua']:.1f} {_ci(d['majority_ci95_wilson'])} | {diff_text} | "
            f"{f['cost']['avg_forward_passes']:,.0f} | {f['cost']['seconds_per_example']:.0f} |")
    return "\n".join(lines)


def markdown_versus(selection: dict[str, Any]) -> str:
    """The selected point's deployed AUA (k = 1) minus every other point's, paired on the same
    examples: which alternatives the selection is separable from (``selection.json``)."""
    sel = selection["selected"]
    name = point_name(sel["m"], sel["delta"])
    lines = [f"| selected {name} minus | N | difference, deployed AUA k = 1 (paired bootstrap 95 %) |",
             "|---|---:|---:|"]
    for x in selection.get("selected_minus_others") or []:
        lines.append(f"| {x['versus']} | {x['num_examples']} | {x['diff']:+.1f} {_ci(x['ci95_paired_bootstrap'])} |")
    return "\n".join(lines)


def _read(run: Path) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    from rsmi.attacks import read_records

    path = run / "summary.json"
    if not path.is_file():
        return None, []
    return json.loads(path.read_text(encoding="utf-8")), read_records(run / "examples.jsonl")


def _machine() -> dict[str, Any]:
    from rsmi.provenance import cpu_model

    return {"cpu": cpu_model(), "cores": os.cpu_count(), "load_1_5_15": [round(x, 2) for x in os.getloadavg()]}


def run_pending(pending: dict[str, list[str]], jobs: int,
                runner: Any = subprocess.run) -> dict[str, int]:
    """Run the grid points' attack commands, ``jobs`` at a time, in grid order; the exit status
    of each (a point that fails is reported and left unfinished: ``--resume`` picks it up)."""
    from concurrent.futures import ThreadPoolExecutor

    env = dict(os.environ)
    if jobs > 1:  # never more torch threads than cores: one per job unless the caller said
        env.setdefault("OMP_NUM_THREADS", "1")
        env.setdefault("MKL_NUM_THREADS", env["OMP_NUM_THREADS"])

    def one(name: str) -> int:
        print(f"[{name}] {shlex.join(pending[name])}", file=sys.stderr, flush=True)
        rc = runner(pending[name], check=False, env=env).returncode
        if rc != 0:
            print(f"[{name}] failed (exit {rc})", file=sys.stderr, flush=True)
        return rc

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return dict(zip(pending, pool.map(one, pending), strict=True))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="a randomized (RSMI) model directory")
    p.add_argument("--data", default="mr")
    p.add_argument("--split", default="dev")
    p.add_argument("--recipe", default="textfooler")
    p.add_argument("--num-examples", type=int, default=100)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--fresh-draws", type=int, default=20)
    p.add_argument("--grid", default=",".join(f"{m}:{d:g}" for m, d in STUDY_GRID),
                   help="m:δ points, e.g. 1:0,4:0,4:0.2 (default: the study's 3 × 3 grid)")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--only-read", action="store_true", help="run nothing: select from what is there")
    p.add_argument("--dry-run", action="store_true", help="print the attack commands only")
    p.add_argument("--jobs", type=int, default=1,
                   help="grid points attacked at a time, each a process with one torch thread "
                        "unless OMP_NUM_THREADS is set (1; use at most the CPU cores)")
    args = p.parse_args(argv)
    if args.jobs < 1:
        raise SystemExit(f"--jobs {args.jobs}: give 1 or more")
    grid = parse_grid(args.grid)
    python = [sys.executable, "-m", "rsmi.cli.main"]
    commands = {point_name(m, d): attack_argv(args, m, d, args.out / "attacks" / point_name(m, d))
                for m, d in grid}
    if args.dry_run:
        for cmd in commands.values():
            print(shlex.join(["rsmi", *cmd]))
        return 0
    if not args.only_read:
        pending = {name: [*python, *cmd] for name, cmd in commands.items()
                   if not (_read(args.out / "attacks" / name)[0] or {}).get("complete")}
        run_pending(pending, args.jobs)
    points: list[dict[str, Any]] = []
    for i, (m, delta) in enumerate(grid):
        run = args.out / "attacks" / point_name(m, delta)
        cmd = commands[point_name(m, delta)]
        summary, records = _read(run)
        point: dict[str, Any] = {"m": m, "delta": delta, "run": str(run), "command": shlex.join(["rsmi", *cmd])}
        records = [r for r in records if "p_correct_perturbed" in r]
        if summary and records:  # an unfinished run is read as far as it got (complete: false)
            point["complete"] = bool(summary.get("complete"))
            point["figures"] = figures(summary, records, BOOTSTRAP_SEED + i)
            ex = per_example(records)
            point["_values"] = dict(zip(ex["index"].tolist(), ex["k1"].tolist(), strict=True))
        points.append(point)
    run_points = [pt for pt in points if "_values" in pt]
    for j, pt in enumerate(run_points[1:], start=1):  # against the first and the previous point
        for key, other in (("deployed_k1_minus_first", run_points[0]),
                           ("deployed_k1_minus_previous", run_points[j - 1])):
            common = sorted(set(pt["_values"]) & set(other["_values"]))  # the same examples
            if common:
                pt[key] = {"versus": point_name(other["m"], other["delta"]), "num_examples": len(common),
                           **paired_difference(np.array([pt["_values"][i] for i in common]),
                                               np.array([other["_values"][i] for i in common]),
                                               BOOTSTRAP_SEED)}
    best = select(points)
    versus = []  # the selected point against every other finished one: is the choice separable?
    if best is not None:
        for pt in run_points:
            common = sorted(set(best["_values"]) & set(pt["_values"]))
            if pt is not best and common:
                versus.append({"versus": point_name(pt["m"], pt["delta"]), "num_examples": len(common),
                               **paired_difference(np.array([best["_values"][i] for i in common]),
                                                   np.array([pt["_values"][i] for i in common]),
                                                   BOOTSTRAP_SEED)})
    for pt in points:
        pt.pop("_values", None)
    out = {
        "what": "adaptive attacker (margin-EOT) selection on dev: lowest deployed AUA (k = 1), "
                "ties to fewer forward passes (benchmarks/adaptive_select.py)",
        "command": shlex.join([sys.executable, *sys.argv]) if argv is None else shlex.join(argv),
        "model": str(args.model), "data": args.data, "split": args.split, "recipe": args.recipe,
        "num_examples": args.num_examples, "fresh_draws": args.fresh_draws,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": _machine(),
        "intervals": f"protocol and majority AUA: Wilson 95 %; deployed AUA: percentile bootstrap "
                     f"95 % over examples ({BOOTSTRAP_RESAMPLES} resamples, seeded); differences: "
                     "paired bootstrap on the same examples",
        "points": points,
        "complete": all(pt.get("complete") for pt in points),
        "selected": None if best is None else {"m": best["m"], "delta": best["delta"],
                                               "attacker": best["figures"]["attacker"]},
        "selected_minus_others": versus,
    }
    from rsmi.store.atomic import atomic_write_json

    atomic_write_json(args.out / "selection.json", out)
    print(markdown(out))
    if versus:
        print()
        print(markdown_versus(out))
    print(f"selected (finished points only): {out['selected']} → {args.out / 'selection.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
