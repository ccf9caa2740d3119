"""MI: gradient-guided masked inference.

Saliency of token ``t`` is the L2 norm of the gradient of the cross-entropy loss with respect
to the word embedding of ``t``. It is computed through ``inputs_embeds`` and autograd: no
hooks on the embedding matrix and no ``requires_grad`` flag changed on any parameter.
The mask candidates are the ``top_k`` most salient tokens that are neither special tokens
nor padding (``candidate_rule="content"``); every example gets its own candidate count, so a
short input in a batch never changes what happens to the others (or to later batches).
``candidate_rule="authors"`` is the RSMI authors' rule: the ``top_k`` most salient non-padding
tokens, special tokens included, from which the special tokens are then dropped (so 3–5 of 5
remain when [CLS]/[SEP] are among the most salient).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class Saliency:
    """Result of one saliency pass.

    Attributes:
        logits: (B, C) logits of the pass, detached.
        labels: (B,) labels the loss was taken against (gold in training, predicted at inference).
        grads: (B, T, d) gradient of the loss w.r.t. the word embeddings (raw, not normalised).
        scores: (B, T) L2 norm of ``grads`` per token.
    """

    logits: torch.Tensor
    labels: torch.Tensor
    grads: torch.Tensor
    scores: torch.Tensor


def saliency(
    model: nn.Module,
    inputs: Mapping[str, torch.Tensor],
    labels: torch.Tensor | None = None,
    *,
    reduction: str = "mean",
) -> Saliency:
    """Gradient of the cross-entropy loss w.r.t. the word embeddings of ``inputs["input_ids"]``.

    Args:
        model: a Hugging Face sequence classifier (any mode; the caller chooses train/eval).
        inputs: tokenizer output with ``input_ids`` (B, T) and ``attention_mask``.
        labels: (B,) gold labels; ``None`` uses the model's own prediction of this pass.
        reduction: ``"mean"`` (the reference training code's batch loss) or ``"sum"``
            (per-example gradients independent of the batch size, used at inference).
    """
    input_ids = inputs["input_ids"]
    extra = {k: v for k, v in inputs.items() if k != "input_ids"}
    with torch.enable_grad():
        embeds = model.get_input_embeddings()(input_ids).detach().requires_grad_(True)
        logits = model(inputs_embeds=embeds, **extra).logits
        target = logits.argmax(dim=-1).detach() if labels is None else labels
        loss = F.cross_entropy(logits.float(), target, reduction=reduction)
        (grads,) = torch.autograd.grad(loss, embeds)
    return Saliency(logits.detach(), target, grads, grads.norm(dim=-1))


def special_token_mask(
    input_ids: torch.Tensor, attention_mask: torch.Tensor, special_ids: list[int]
) -> torch.Tensor:
    """(B, T) bool: positions that may never be masked (special tokens and padding)."""
    special = torch.isin(input_ids, torch.tensor(special_ids, device=input_ids.device))
    return special | ~attention_mask.bool()


@dataclass
class Candidates:
    """Mask candidates per example, most salient first.

    Attributes:
        positions: (B, top_k) token positions; entries past ``counts[b]`` are -1.
        counts: (B,) number of valid candidates of each example (≤ top_k).
    """

    positions: torch.Tensor
    counts: torch.Tensor

    def top(self, b: int, num_masks: int) -> torch.Tensor:
        """The ``num_masks`` most salient candidates of example ``b`` (fewer if it has fewer)."""
        return self.positions[b, : min(num_masks, int(self.counts[b]))]

    def random(self, b: int, num_masks: int, generator: torch.Generator) -> torch.Tensor:
        """``num_masks`` candidates of example ``b`` drawn uniformly without replacement."""
        count = int(self.counts[b])
        order = torch.randperm(count, generator=generator)[: min(num_masks, count)]
        return self.positions[b, order.to(self.positions.device)]

    def random_with_replacement(
        self, b: int, num_masks: int, generator: torch.Generator
    ) -> torch.Tensor:
        """``num_masks`` candidates of example ``b`` drawn uniformly *with* replacement.

        The RSMI authors' step 2 (``np.random.choice(candidates, num_masks)``): a position
        drawn twice is masked once, so a sample may mask fewer than ``num_masks`` tokens.
        """
        count = int(self.counts[b])
        if count == 0:
            return self.positions.new_empty(0)
        picks = torch.randint(count, (num_masks,), generator=generator)
        return self.positions[b, picks.to(self.positions.device)]


def mask_candidates(
    scores: torch.Tensor,
    forbidden: torch.Tensor,
    top_k: int,
    *,
    dropped: torch.Tensor | None = None,
) -> Candidates:
    """The ``top_k`` highest-scoring positions of each row that are not ``forbidden``.

    With ``dropped`` (B, T) bool, the positions it marks compete for the ``top_k`` places but
    are then removed (the authors' rule: top-k first, special tokens out afterwards), so a row
    may keep fewer than ``top_k`` candidates; the order of the rest is kept.
    """
    batch, length = scores.shape
    k = min(top_k, length)
    masked_scores = scores.detach().float().masked_fill(forbidden, float("-inf"))
    values, positions = masked_scores.topk(k, dim=-1)
    valid = torch.isfinite(values)
    if dropped is not None:
        valid = valid & ~dropped.gather(1, positions)
        # Move the valid entries to the front, most salient first (a stable sort of 0/1 keys).
        order = (~valid).to(torch.int8).sort(dim=-1, stable=True).indices
        positions, valid = positions.gather(1, order), valid.gather(1, order)
    positions = positions.masked_fill(~valid, -1)
    if k < top_k:
        pad = positions.new_full((batch, top_k - k), -1)
        positions = torch.cat([positions, pad], dim=-1)
    return Candidates(positions=positions, counts=valid.sum(dim=-1))


CANDIDATE_RULES = ("content", "authors")


def select_candidates(
    scores: torch.Tensor,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    special_ids: Sequence[int],
    top_k: int,
    rule: str = "content",
) -> Candidates:
    """Mask candidates of each row under ``rule`` (:data:`CANDIDATE_RULES`).

    ``"content"``: the ``top_k`` most salient tokens that are neither special nor padding.
    ``"authors"``: the ``top_k`` most salient non-padding tokens, then special tokens dropped
    (Han8931/rsmi_nlp ``grad_mask``: ``topk(norm[:len], 5)`` then ``x != 0 and x != len - 1``).
    """
    special = special_token_mask(input_ids, attention_mask, list(special_ids))
    if rule == "content":
        return mask_candidates(scores, special, top_k)
    if rule == "authors":
        return mask_candidates(scores, ~attention_mask.bool(), top_k, dropped=special)
    raise ValueError(f"candidate_rule={rule!r} is invalid: choose one of {', '.join(CANDIDATE_RULES)}")


def apply_masks(
    input_ids: torch.Tensor, positions: list[torch.Tensor], mask_token_id: int
) -> torch.Tensor:
    """A copy of ``input_ids`` with row ``b`` masked at ``positions[b]``."""
    masked = input_ids.clone()
    for b, pos in enumerate(positions):
        if pos.numel():
            masked[b, pos] = mask_token_id
    return masked


def mask_top(
    input_ids: torch.Tensor, candidates: Candidates, num_masks: int, mask_token_id: int
) -> torch.Tensor:
    """Mask the ``num_masks`` most salient candidates of every row (vectorised)."""
    if num_masks <= 0:
        return input_ids.clone()
    top = candidates.positions[:, :num_masks]
    rank = torch.arange(top.shape[1], device=top.device).unsqueeze(0)
    keep = rank < candidates.counts.unsqueeze(1)
    masked = input_ids.clone()
    rows = torch.arange(input_ids.shape[0], device=input_ids.device).unsqueeze(1).expand_as(top)
    masked[rows[keep], top[keep]] = mask_token_id
    return masked
