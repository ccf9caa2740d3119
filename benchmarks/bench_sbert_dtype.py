"""Sentence-encoder dtype for the attack constraint: float32 vs bfloat16 decisions (issue 26).

TextFooler's candidate windows on MR test sentences of ≥ 15 words (every 4th word, the first
15 counter-fitted neighbours of it, 15-word windows around it, as the constraint sees them) are
encoded by the local MiniLM sentence encoder in float32 and under bfloat16 autocast; reports
both encoding times (one process, float32 first), the largest difference of the angular
similarity, and how many accept/reject decisions at TextDefender's threshold 0.840845057
differ. A faster dtype is adopted only if none does. Example:

    python benchmarks/bench_sbert_dtype.py --num-texts 20 --json results/benchmarks/harness/sbert_dtype.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from pathlib import Path

import numpy as np
import torch

THRESHOLD = 0.840845057


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--num-texts", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", required=True)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    from rsmi.attacks._textattack import load_textattack
    from rsmi.data import load_dataset
    from rsmi.resources import Resources

    resources = Resources.load()
    load_textattack(resources)
    from sentence_transformers import SentenceTransformer
    from textattack.constraints.semantics.sentence_encoders.sentence_encoder import get_angular_sim
    from textattack.shared import AttackedText
    from textattack.transformations import WordSwapEmbedding

    model = SentenceTransformer(str(resources.sentence_encoder_path))
    swap = WordSwapEmbedding(max_candidates=50, embedding=resources.word_embedding())
    texts = [e.text for e in load_dataset("mr").split("test")
             if len(e.text.split()) >= 15][: args.num_texts]
    starts, changed = [], []
    for text in texts:
        original = AttackedText(text)
        for i in range(0, original.num_words, 4):
            for candidate in swap(original, indices_to_modify=[i])[:15]:
                starts.append(original.text_window_around_index(i, 15))
                changed.append(candidate.text_window_around_index(i, 15))

    def scores(bf16: bool) -> tuple[np.ndarray, float]:
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            emb = torch.tensor(model.encode(starts + changed))
        seconds = time.perf_counter() - started
        n = len(starts)
        return get_angular_sim(emb[:n].float(), emb[n:].float()).numpy(), seconds

    s32, t32 = scores(False)
    s16, t16 = scores(True)
    result = {
        "command": f"python benchmarks/bench_sbert_dtype.py --num-texts {args.num_texts} "
                   f"--threads {args.threads} --json {args.json}",
        "date": datetime.date.today().isoformat(),
        "texts": len(texts), "pairs": len(starts),
        "float32_s": round(t32, 2), "bfloat16_s": round(t16, 2),
        "max_abs_similarity_difference": float(np.abs(s32 - s16).max()),
        "decisions_differing": int(((s32 >= THRESHOLD) != (s16 >= THRESHOLD)).sum()),
        "accepted_float32": int((s32 >= THRESHOLD).sum()),
    }
    print(json.dumps(result))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
