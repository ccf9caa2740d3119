"""Queries per second: rsmi's attack wrapper vs TextAttack's stock HuggingFaceModelWrapper.

Same plain MiniLM classifier (``RSMIClassifier.from_pretrained("minilm", num_labels=2,
noise_std=0, num_masks=0, k0=1)``: one forward pass per query), same MR test sentences, the
same batches of ``--batch-size`` texts as TextAttack's goal function sends. The stock wrapper
pads every batch to the tokenizer's ``model_max_length`` (512 for MiniLM; also measured with
128, the max length of the research scripts); rsmi's wrapper pads to the batch's longest text.
Also reports the largest difference of the two wrappers' probabilities (should be ~1e-6).

    python benchmarks/bench_wrapper.py --num-texts 256 --repeats 3 --out runs/bench_wrapper.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

FALLBACK = [
    "a gorgeous , witty , seductive movie that never loses its nerve .",
    "the plot is nothing but boilerplate clichés from start to finish .",
    "an utterly charming and hilarious film that reminded me why i love movies .",
    "it's a tired , predictable , bordering on offensive waste of time , money and celluloid .",
]


def mr_texts(num: int, seed: int) -> tuple[list[str], str]:
    """MR test sentences (≈21 words), or a fixed fallback list when MR cannot be prepared."""
    try:
        from rsmi.data import load_dataset

        pool = [e.text for e in load_dataset("mr").split("test")]
        source = "mr test split"
    except Exception as exc:  # noqa: BLE001 - a benchmark runs on whatever text it can get
        print(f"MR unavailable ({exc}); using the fallback sentences")
        pool, source = FALLBACK * 64, "fallback sentences"
    rng = np.random.default_rng(seed)
    return [pool[i] for i in rng.choice(len(pool), size=min(num, len(pool)), replace=False)], source


class _Activation:
    """Enough to import TextAttack offline when `rsmi resources prepare` has not run."""

    def __init__(self) -> None:
        import rsmi.resources

        self.root = Path(tempfile.mkdtemp(prefix="bench_wrapper_"))
        stop = self.root / "nltk_data" / "corpora" / "stopwords" / "english"
        stop.parent.mkdir(parents=True)
        stop.write_text((Path(rsmi.resources.__file__).parent / "stopwords_english.txt").read_text())
        self.nltk_data = self.root / "nltk_data"

    def activate(self) -> None:
        import os

        from rsmi.resources.core import add_nltk_path

        add_nltk_path(self.nltk_data)
        (self.root / "ta").mkdir(exist_ok=True)
        (self.root / "ta" / "post_install_check_3").touch()
        os.environ["TA_CACHE_DIR"] = str(self.root / "ta")


def load_ta() -> None:
    from rsmi.attacks._textattack import load_textattack
    from rsmi.resources import ResourceError, Resources

    try:
        load_textattack(Resources.load())
    except ResourceError:
        load_textattack(_Activation())


def time_wrapper(wrapper, texts: list[str], batch_size: int, repeats: int) -> tuple[float, np.ndarray]:
    """Best-of-``repeats`` queries per second, and the probabilities of the last pass."""
    best, probs = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = [np.asarray(wrapper(texts[i : i + batch_size])) for i in range(0, len(texts), batch_size)]
        best = min(best, time.perf_counter() - start)
        probs = np.concatenate(out)
    return len(texts) / best, probs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--num-texts", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load_ta()
    from textattack.models.wrappers import HuggingFaceModelWrapper

    from rsmi import RSMIClassifier
    from rsmi.attacks.wrapper import RSMIModelWrapper

    clf = RSMIClassifier.from_pretrained("minilm", num_labels=2, noise_std=0, num_masks=0, k0=1)
    texts, source = mr_texts(args.num_texts, args.seed)
    ours = RSMIModelWrapper(clf, batch_size=args.batch_size)
    qps_ours, p_ours = time_wrapper(ours, texts, args.batch_size, args.repeats)
    results = {"rsmi_wrapper_qps": qps_ours}
    for max_len in (clf.tokenizer.model_max_length, 128):
        tok = clf.tokenizer.__class__.from_pretrained(clf.tokenizer.name_or_path)
        tok.model_max_length = max_len
        stock = HuggingFaceModelWrapper(clf.model, tok)
        qps, p_stock = time_wrapper(stock, texts, args.batch_size, args.repeats)
        p_stock = torch.softmax(torch.as_tensor(p_stock), dim=-1).numpy()
        results[f"stock_pad{max_len}_qps"] = qps
        results[f"speedup_vs_pad{max_len}"] = qps_ours / qps
        results[f"max_prob_diff_pad{max_len}"] = float(np.abs(p_stock - p_ours).max())
    mean_tokens = float(np.mean([len(clf.tokenizer(t)["input_ids"]) for t in texts]))
    report = {
        "command": "python benchmarks/bench_wrapper.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None),
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads",
        "date": datetime.date.today().isoformat(),
        "texts": source,
        "num_texts": len(texts),
        "mean_tokens": mean_tokens,
        "batch_size": args.batch_size,
        **results,
    }
    print(json.dumps(report, indent=2))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
