"""Counter-fitting GloVe 6B-50d with WordNet: does it separate antonyms and keep synonyms close?

For WordNet antonym pairs, WordNet synonym pairs and a list of everyday antonyms (good/bad,
love/hate, ...), reports the share of pairs that are within each other's 50 nearest
neighbours with cosine >= 0.5, and their mean cosine, before and after counter-fitting. With
``--heldout F`` a seeded fraction F of the WordNet pairs is left out of the constraints and
reported separately, which measures generalisation rather than fit.

Usage (after ``rsmi resources prepare``, which provides WordNet for NLTK):

    .venv/bin/python benchmarks/bench_counterfit.py --heldout 0.1 --out counterfit.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from rsmi.resources import Resources
from rsmi.resources import counterfit as cf
from rsmi.resources.prepare import _glove_dir
from rsmi.resources.wordnet import wordnet_reader


def split_pairs(pairs: np.ndarray, fraction: float, rng: np.random.Generator):
    """(kept, held out) rows of ``pairs``."""
    order = rng.permutation(len(pairs))
    n_held = int(round(fraction * len(pairs)))
    return pairs[np.sort(order[n_held:])], pairs[np.sort(order[:n_held])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=None, help="prepared resource directory")
    parser.add_argument("--vocab-size", type=int, default=65000)
    parser.add_argument("--heldout", type=float, default=0.1,
                        help="fraction of WordNet pairs held out of the constraints")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args()

    res = Resources.load(args.root)
    timings = {}
    t = time.perf_counter()
    glove = _glove_dir()
    words, matrix = cf.load_glove(glove / "glove_6B_50d_emb.npy",
                                  glove / "glove_6B_index.parquet", args.vocab_size)
    synonyms, antonyms = cf.wordnet_pairs(wordnet_reader(res.nltk_data), words)
    timings["load_and_pairs_s"] = time.perf_counter() - t
    rng = np.random.default_rng(args.seed)
    syn_fit, syn_held = split_pairs(synonyms, args.heldout, rng)
    ant_fit, ant_held = split_pairs(antonyms, args.heldout, rng)

    t = time.perf_counter()
    idx0, sims0 = cf.nearest_neighbours(matrix, 50)
    timings["nn_before_s"] = time.perf_counter() - t
    t = time.perf_counter()
    fitted = cf.counter_fit(matrix, syn_fit, ant_fit, cf.vsp_pairs(idx0, sims0, 0.2))
    timings["counter_fit_s"] = time.perf_counter() - t
    t = time.perf_counter()
    idx1, sims1 = cf.nearest_neighbours(fitted, 50)
    timings["nn_after_s"] = time.perf_counter() - t

    groups = {
        "antonyms (constraints)": ant_fit, "antonyms (held out)": ant_held,
        "synonyms (constraints)": syn_fit, "synonyms (held out)": syn_held,
        "named antonyms": cf.named_pairs(words),
    }
    rows = {}
    for name, pairs in groups.items():
        rows[name] = {"before": cf.pair_stats(idx0, sims0, matrix, pairs),
                      "after": cf.pair_stats(idx1, sims1, fitted, pairs)}
    index = {w: i for i, w in enumerate(words)}
    examples = {w: {"before": [words[j] for j in idx0[index[w], :8]],
                    "after": [words[j] for j in idx1[index[w], :8]]}
                for w in ("good", "bad", "love", "happy", "terrible", "movie") if w in index}
    result = {"vocab_size": len(words), "heldout": args.heldout, "seed": args.seed,
              "synonym_pairs": len(synonyms), "antonym_pairs": len(antonyms),
              "groups": rows, "examples": examples,
              "timings_s": {k: round(v, 1) for k, v in timings.items()}}

    print(f"vocab {len(words)}, WordNet pairs: {len(synonyms)} synonym, {len(antonyms)} antonym;"
          f" held out {args.heldout:.0%} (seed {args.seed})")
    print("| pairs | n | in top-50 NN, cos>=0.5: before | after | mean cos: before | after |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, row in rows.items():
        b, a = row["before"], row["after"]
        print(f"| {name} | {a['pairs']} | {b['share_in_nn']:.1%} | {a['share_in_nn']:.1%} | "
              f"{b['mean_cos']:.3f} | {a['mean_cos']:.3f} |")
    for w, ex in examples.items():
        print(f"{w}: before {', '.join(ex['before'])}\n{' ' * len(w)}  after  "
              f"{', '.join(ex['after'])}")
    print("timings:", result["timings_s"])
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
