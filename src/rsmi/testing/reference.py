"""A plain, per-example reference implementation of docs/method.md's two-step inference.

Slow and obvious on purpose: one example at a time, one Monte-Carlo sample per forward call,
no padding, the binomial test in closed form. It uses the same seeding convention as
:class:`rsmi.RSMIClassifier` (seeding ``"text-v1"``: every draw of occurrence ``k`` of a text
from ``row_seed(seed, row_key(text_digest(text), k), pass, sample)``), so the batched predictor
must reproduce it exactly. Used by the tests and
by ``benchmarks/bench_core.py`` as the baseline.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb

import numpy as np
import torch
import torch.nn.functional as F

from rsmi.classifier import (
    PASS_MASKS,
    PASS_SALIENCY,
    PASS_SALIENCY_STEP2,
    PASS_STEP1,
    PASS_STEP2,
    RSMIClassifier,
)
from rsmi.noise import row_key, row_seed, text_digest


@dataclass
class ReferenceResult:
    label: int
    probs: np.ndarray
    votes: np.ndarray
    step1_votes: np.ndarray
    second_step: bool
    forward_passes: int


def binomial_p_value_closed_form(n_a: int, k0: int) -> float:
    """``P(X ≤ n_a)`` for ``X ~ Bin(k0, 1/2)``."""
    return sum(comb(k0, i) for i in range(n_a + 1)) / 2**k0


def reference_predict(
    clf: RSMIClassifier, text: str, seed: int, occurrence: int = 0
) -> ReferenceResult:
    """Predict one text exactly as docs/method.md describes, one forward pass at a time.

    ``occurrence``: how many copies of the same text precede it in the call being reproduced.
    """
    index = row_key(text_digest(text), occurrence)  # the row key: the text, not its position
    cfg, model, noise = clf.config, clf.model, clf.noise
    assert noise is not None
    model.eval()
    encodings, _ = clf.tokenize([text])
    inputs = clf.collate(encodings)  # one example: no padding at all
    ids = inputs["input_ids"][0]
    length = ids.shape[0]
    passes = 0

    def forward(input_ids: torch.Tensor, seed_: int) -> torch.Tensor:
        nonlocal passes
        passes += 1
        batch = dict(inputs, input_ids=input_ids.unsqueeze(0))
        with torch.no_grad(), noise.per_row([seed_], batch["attention_mask"]):
            return model(**batch).logits[0].float()

    def salient_candidates(pass_id: int) -> list[int]:
        """Saliency with the predicted label, on the noisy model → candidates, most salient first."""
        nonlocal passes
        passes += 1
        with noise.per_row([row_seed(seed, index, pass_id, 0)], inputs["attention_mask"]):
            embeds = model.get_input_embeddings()(inputs["input_ids"]).detach().requires_grad_(True)
            extra = {k: v for k, v in inputs.items() if k != "input_ids"}
            logits = model(inputs_embeds=embeds, **extra).logits
            loss = F.cross_entropy(logits, logits.argmax(dim=-1))
            (grad,) = torch.autograd.grad(loss, embeds)
        norms = grad[0].norm(dim=-1).tolist()
        special = set(clf.special_ids)
        ranked = sorted(range(length), key=lambda t: -norms[t])
        if cfg.candidate_rule == "authors":  # top-k of all tokens, then specials dropped
            return [t for t in ranked[: cfg.saliency_top_k] if int(ids[t]) not in special]
        return [t for t in ranked if int(ids[t]) not in special][: cfg.saliency_top_k]

    candidates: list[int] = []
    masked = ids.clone()
    if cfg.masking:
        # 1. Saliency with the predicted label, on the noisy model.
        candidates = salient_candidates(PASS_SALIENCY)
        for t in candidates[: cfg.num_masks]:
            masked[t] = clf.tokenizer.mask_token_id

    # 2. Step 1: k0 noisy passes of the masked input.
    step1 = [forward(masked, row_seed(seed, index, PASS_STEP1, j)) for j in range(cfg.k0)]
    step1_votes = np.bincount([int(x.argmax()) for x in step1], minlength=clf.num_labels)
    # 3. One-sided binomial test.
    uncertain = binomial_p_value_closed_form(int(step1_votes.max()), cfg.k0) < cfg.alpha
    samples = step1
    if uncertain:
        # 4. Step 2: k1 passes, each with num_masks candidates drawn at random.
        #    (step2_resample: fresh candidates, drawn with replacement, as the authors' code.)
        samples = []
        if cfg.masking and cfg.step2_resample:
            candidates = salient_candidates(PASS_SALIENCY_STEP2)
        for j in range(cfg.k1):
            row = ids.clone()
            if cfg.masking:
                gen = torch.Generator().manual_seed(row_seed(seed, index, PASS_MASKS, j))
                if cfg.step2_resample:
                    order = torch.randint(len(candidates), (cfg.num_masks,), generator=gen)
                else:
                    order = torch.randperm(len(candidates), generator=gen)[: cfg.num_masks]
                for o in order.tolist():
                    row[candidates[o]] = clf.tokenizer.mask_token_id
            samples.append(forward(row, row_seed(seed, index, PASS_STEP2, j)))
    votes = np.bincount([int(x.argmax()) for x in samples], minlength=clf.num_labels)
    # 5. Output: mean logits ("avg") or majority vote ("max").
    if cfg.vote == "avg":
        probs = torch.softmax(torch.stack(samples).mean(dim=0), dim=-1).double().numpy()
    else:
        probs = votes / votes.sum()
    return ReferenceResult(
        label=int(np.argmax(probs)),
        probs=probs,
        votes=votes,
        step1_votes=step1_votes,
        second_step=uncertain,
        forward_passes=passes,
    )
