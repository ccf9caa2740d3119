"""Throughput of RSMIClassifier.predict vs the per-example reference (issue: RSMI core).

Measures, on the same model, inputs and seeds:
  * predictions per second of the batched two-step predictor (batch 32) and of
    rsmi.testing.reference.reference_predict (one example, one sample per forward call);
  * the share of predict's wall time spent outside the model's forward/backward passes.
Also checks that both give the same labels.

    python benchmarks/bench_core.py --model minilm --num-texts 256 --out runs/bench_core.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

import rsmi.inference as classifier_module  # where predict calls saliency
from rsmi import RSMIClassifier
from rsmi.testing.reference import reference_predict


def mr_texts(num: int, seed: int) -> list[str]:
    """MR sentences (≈21 words) from the built-in dataset's test+dev splits."""
    from rsmi.data import load_dataset

    ds = load_dataset("mr")
    pool = [e.text for e in ds.split("test")] + [e.text for e in ds.split("dev")]
    rng = np.random.default_rng(seed)
    return [pool[i] for i in rng.choice(len(pool), size=num, replace=False)]


class ModelTimer:
    """Wall time inside the model's forward calls and inside saliency (forward + backward)."""

    def __init__(self, clf: RSMIClassifier) -> None:
        self.forward = 0.0
        self.saliency = 0.0
        self._start = 0.0
        self._in_saliency = False
        clf.model.register_forward_pre_hook(self._pre)
        clf.model.register_forward_hook(self._post)
        original = classifier_module.saliency

        def timed(*args, **kwargs):
            start = time.perf_counter()
            self._in_saliency = True
            try:
                return original(*args, **kwargs)
            finally:
                self._in_saliency = False
                self.saliency += time.perf_counter() - start

        classifier_module.saliency = timed

    def _pre(self, *_):
        self._start = time.perf_counter()

    def _post(self, *_):
        if not self._in_saliency:
            self.forward += time.perf_counter() - self._start

    @property
    def total(self) -> float:
        return self.forward + self.saliency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="minilm", help="saved RSMI model dir, or 'minilm'")
    parser.add_argument("--num-texts", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--out", default="runs/bench_core.json")
    args = parser.parse_args()

    torch.manual_seed(args.seed)  # the fresh head of 'minilm' (no effect on a saved model)
    clf = RSMIClassifier.from_pretrained(args.model, num_labels=2, max_length=args.max_length)
    texts = mr_texts(args.num_texts, args.seed)
    words = np.mean([len(t.split()) for t in texts])

    clf.predict(texts[:8], seed=args.seed)  # warm-up
    timer = ModelTimer(clf)
    start = time.perf_counter()
    pred = clf.predict(texts, seed=args.seed, batch_size=args.batch_size)
    batched = time.perf_counter() - start
    inside = timer.total

    start = time.perf_counter()
    ref = [reference_predict(clf, t, args.seed, texts[:i].count(t)) for i, t in enumerate(texts)]
    reference = time.perf_counter() - start

    agree = float(np.mean([r.label == pred.labels[i] for i, r in enumerate(ref)]))
    result = {
        "model": args.model,
        "num_texts": len(texts),
        "mean_words": float(words),
        "batch_size": args.batch_size,
        "config": clf.config.to_dict(),
        "second_step_share": float(pred.second_step.mean()),
        "mean_forward_passes": float(pred.forward_passes.mean()),
        "batched_seconds": batched,
        "reference_seconds": reference,
        "batched_predictions_per_second": len(texts) / batched,
        "reference_predictions_per_second": len(texts) / reference,
        "speedup": reference / batched,
        "share_outside_forward_backward": 1 - inside / batched,
        "label_agreement_with_reference": agree,
        "torch_threads": torch.get_num_threads(),
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, CPU",
        "date": time.strftime("%Y-%m-%d"),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
