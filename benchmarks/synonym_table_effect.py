"""Does the machine's synonym table change TextFooler's result? (issue 27: the cross-kind confound)

`rsmi resources prepare` builds TextFooler's synonym table (counter-fitted GloVe) on each machine,
and its bits follow the CPU's BLAS (docs/training.md, "Attack resources"): the Intel and the AMD
kinds built other tables, so MR training seed 0 (attacked on AMD) and seeds 1–2 (Intel) drew
their substitutions from different candidate sets. This measures how much that moves AUA: one
model, one machine, the same 300 MR test sentences, attacked twice — with this machine's default
table (A) and with the table the same machine builds under ``MKL_CBWR=COMPATIBLE`` (B: another
BLAS branch; on the AMD kind it differs from the default build in about as many candidate sets,
57 % of words, as the Intel build does). Everything else is equal, so the paired difference
(McNemar, paired bootstrap) is the table's effect.

Decided before the run: the study's verdicts quote cross-kind seed spreads (MR seeds 0–2); if
the tables move AUA by less than the seed spread (≈ 1–3 points), the confound is negligible
next to it; if they move it by more, the cross-kind numbers carry that caveat in size. Models:
``base`` (deterministic; protocol verdicts) on 300 sentences and ``rsmi-paper`` (RSMI's paper
settings; protocol and deployed verdicts, 20 fresh draws) on the first 100, trained here in
float32 (this kind has no native bfloat16) with the study's other settings, seed 0.

    python benchmarks/synonym_table_effect.py            # resumable; results/repro/synonym-table/
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from rsmi.attacks import read_records
from rsmi.provenance import cpu_kind, utc_now
from rsmi.reports.stats import compare_records, paired_bootstrap, paired_bootstrap_values
from rsmi.resources.core import Resources

PYTHON = [sys.executable, "-m", "rsmi.cli.main"]
TRAIN = ["--data", "mr", "--model", "minilm", "--seed", "0", "--max-length", "64", "--epochs", "2",
         "--batch-size", "32", "--dtype", "float32", "--resume"]
MODELS = {"base": ["--method", "base"],
          "rsmi-paper": ["--method", "rsmi", "--noise-std", "0.2", "--noise-every", "3",
                         "--num-masks", "2"]}
EXAMPLES = {"base": 300, "rsmi-paper": 100}


def run(argv: list[str], env: dict[str, str] | None = None) -> None:
    print("+", " ".join(argv), flush=True)
    subprocess.run(argv, check=True, env={**os.environ, **(env or {})})


def table_env(work: Path) -> dict[str, dict[str, str]]:
    """The two tables: A, this machine's default build; B, its MKL_CBWR=COMPATIBLE build (the
    attacks themselves run at the default MKL branch: only the table differs)."""
    return {"A": {}, "B": {"RSMI_HOME": str(work / "home-mkl-compatible")}}


def candidate_sets_differ(root_a: Path, root_b: Path, min_cos: float = 0.5) -> dict[str, float]:
    """Of the words with TextFooler candidates (top 50, the word itself left out, cosine ≥
    ``min_cos``) in either table, the share whose candidate set differs, and the mean Jaccard
    overlap of those that differ."""
    sets = []
    for root in (root_a, root_b):
        unit, _, nn = Resources.load(root).embedding_arrays()  # unit rows; nn[:, 0] is the word
        nn = nn[:, 1:]
        cos = np.einsum("id,ikd->ik", unit, unit[nn])
        sets.append([frozenset(row[c >= min_cos].tolist()) for row, c in zip(nn, cos, strict=True)])
    pairs = [(a, b) for a, b in zip(*sets, strict=True) if a or b]
    differ = [(a, b) for a, b in pairs if a != b]
    return {"words_with_candidates": len(pairs), "words_differing": len(differ),
            "share_differing": len(differ) / max(len(pairs), 1),
            "mean_jaccard_of_differing": float(np.mean([len(a & b) / len(a | b)
                                                        for a, b in differ])) if differ else 1.0}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, default=Path("runs/synonym-table"),
                   help="models and the second resource directory (not committed)")
    p.add_argument("--out", type=Path, default=Path("results/repro/synonym-table"))
    p.add_argument("--models", default="base,rsmi-paper")
    p.add_argument("--analyse-only", action="store_true", help="run nothing: compare what is there")
    args = p.parse_args()
    envs = table_env(args.work)
    models = args.models.split(",")
    if not args.analyse_only:
        run([*PYTHON, "resources", "prepare"], {**envs["B"], "MKL_CBWR": "COMPATIBLE"})
        for name in models:
            run([*PYTHON, "train", *TRAIN, *MODELS[name], "--out", str(args.work / name)])
            for table, env in envs.items():
                fresh = ["--fresh-draws", "20"] if name != "base" else []
                run([*PYTHON, "attack", "--model", str(args.work / name), "--data", "mr",
                     "--split", "test", "--recipe", "textfooler", "--preset", "textdefender",
                     "--num-examples", str(EXAMPLES[name]), "--sample-seed", "0", "--seeds", "0",
                     "--max-length", "64", "--cut-to-max-length", "--dtype", "float32", *fresh,
                     "--out", str(args.out / f"{name}-table-{table}"), "--resume", "--no-progress"],
                    env)
    root_b = Path(envs["B"]["RSMI_HOME"]) / "resources"
    result = {"command": "python benchmarks/synonym_table_effect.py", "cpu": cpu_kind(),
              "date": utc_now(),
              "tables": {"A": Resources.load().embedding_sha256,
                         "B": Resources.load(root_b).embedding_sha256},
              "candidate_sets": candidate_sets_differ(Resources.load().root, root_b),
              "models": {}}
    for name in models:
        a_dir, b_dir = (args.out / f"{name}-table-{t}" for t in "AB")
        ra, rb = read_records(a_dir / "examples.jsonl"), read_records(b_dir / "examples.jsonl")
        cmp = compare_records(ra, rb, label_a="table A", label_b="table B",
                              deterministic=(name == "base", name == "base"))
        boot = paired_bootstrap(cmp.robust_a, cmp.robust_b)
        by_a = {r["index"]: r for r in ra}
        same_final = sum(by_a[r["index"]]["perturbed_text"] == r["perturbed_text"] for r in rb
                         if r["index"] in by_a and r["result_type"] != "skipped")
        entry = {"n": cmp.n, "aua_a": cmp.aua_a, "aua_b": cmp.aua_b, "diff": boot.diff,
                 "diff_ci": list(boot.diff_ci), "mcnemar_b": cmp.b, "mcnemar_c": cmp.c,
                 "mcnemar_p": cmp.p_value, "clean_a": cmp.clean_acc_a, "clean_b": cmp.clean_acc_b,
                 "attacked_same_final_text": same_final,
                 "attacked": sum(r["result_type"] != "skipped" for r in rb)}
        dep = cmp.deployed
        if dep is not None and name != "base":
            dboot = paired_bootstrap_values(dep.values_a, dep.values_b)
            entry["deployed"] = {"aua_a": dep.aua_a, "aua_b": dep.aua_b, "diff": dboot.diff,
                                 "diff_ci": list(dboot.diff_ci), "majority_a": dep.majority_a,
                                 "majority_b": dep.majority_b, "mcnemar_p": dep.p_value}
        result["models"][name] = entry
        print(f"{name}: AUA {cmp.aua_a:.1f} % (A) vs {cmp.aua_b:.1f} % (B), difference "
              f"{boot.diff:+.1f} [{boot.diff_ci[0]:+.1f}, {boot.diff_ci[1]:+.1f}] points, "
              f"McNemar {cmp.b}/{cmp.c} p = {cmp.p_value:.3g}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "effect.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
