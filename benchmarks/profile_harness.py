"""Where an attack's time goes, harness caches off vs on (issue 26 item 2; cProfile).

Attacks the first ``--num-examples`` of the study's seeded sample (textdefender, cut to max
length, float32, 1 torch thread) with the caches off ("old") and on ("new") in ONE process,
interleaved example by example (shard ``i/N``), each path under its own ``cProfile``; reports
the cumulative seconds of the parts: the model (the wrapper's queries, and the classifier's
tokenisation inside them), the sentence encoder (and its tokenisation), the POS, word-embedding
and max-words constraints, the transformation and the word-importance ranking. Example:

    python benchmarks/profile_harness.py --model /work/main/runs/bench/mr-base --data mr \\
        --max-length 64 --num-examples 8 --json results/benchmarks/harness/profile_mr_textfooler.json
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import json
import pstats
import shutil
from pathlib import Path

import torch

PARTS = {  # name: (file fragment, function)
    "attack": ("textattack/attack.py", "attack"),
    "model (wrapper queries)": ("rsmi/attacks/wrapper.py", "predict_probs"),
    "  classifier tokenisation": ("rsmi/classifier.py", "tokenize"),
    "sentence encoder": ("sentence_encoder.py", "_score_list"),
    "  sentence-encoder tokenisation": ("sentence_transformers/base/model.py", "preprocess"),
    "POS constraint": ("part_of_speech.py", "_check_constraint"),
    "word-embedding distance": ("word_embedding_distance.py", "_check_constraint"),
    "max words perturbed": ("max_words_perturbed.py", "_check_constraint"),
    "transformation": ("textattack/transformations/transformation.py", "__call__"),
    "word importance ranking": ("greedy_word_swap_wir.py", "_get_index_order"),
}


def split(profile: cProfile.Profile) -> dict[str, float]:
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    return {part: round(sum(v[3] for (f, _, name), v in stats.items()
                            if frag in f and name == func), 3)
            for part, (frag, func) in PARTS.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--data", default="mr")
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--recipe", default="textfooler")
    p.add_argument("--num-examples", type=int, default=8)
    p.add_argument("--out", default="runs/profile_harness")
    p.add_argument("--json", required=True)
    args = p.parse_args()
    torch.set_num_threads(1)

    from rsmi import RSMIClassifier
    from rsmi.attacks import AttackConfig, run_attack
    from rsmi.data import load_dataset
    from rsmi.resources import Resources

    resources = Resources.load()
    examples = load_dataset(args.data).split("test")
    clf = RSMIClassifier.from_pretrained(args.model, dtype="float32")
    profiles = {"old": cProfile.Profile(), "new": cProfile.Profile()}
    root = Path(args.out)
    shutil.rmtree(root, ignore_errors=True)
    n = args.num_examples
    for i in range(n):
        for which in (("old", "new") if i % 2 == 0 else ("new", "old")):
            cfg = AttackConfig(recipe=args.recipe, num_examples=n, model=args.model, data=args.data,
                               dtype="float32", max_length=args.max_length,
                               cut_to_max_length=True, shard=(i, n), harness_cache=which == "new")
            profiles[which].enable()
            run_attack(clf, examples, cfg, root / which, resources=resources)
            profiles[which].disable()
    result = {
        "command": f"python benchmarks/profile_harness.py --model {args.model} --data {args.data} "
                   f"--max-length {args.max_length} --recipe {args.recipe} "
                   f"--num-examples {n} --json {args.json}",
        "date": datetime.date.today().isoformat(),
        "seconds": {which: split(prof) for which, prof in profiles.items()},
    }
    print(json.dumps(result, indent=1))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
