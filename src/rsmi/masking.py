"""MI: gradient-guided masked inference.

Saliency of token ``t`` is the L2 norm of the gradient of the cross-entropy loss with respect
to the word embedding of ``t``. It is computed through ``inputs_embeds`` and autograd: no
hooks on the embedding matrix and no ``requires_grad`` flag changed on any parameter.
The mask candidates are the ``top_k`` most salient tokens that are neither special tokens
nor padding; every example gets its own candidate count, so a short input in a batch never
changes what happens to the others (or to later batches).
"""

from __future__ import annotations

from collections.abc import Mapping
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


def mask_candidates(scores: torch.Tensor, forbidden: torch.Tensor, top_k: int) -> Candidates:
    """The ``top_k`` highest-scoring positions of each row that are not ``forbidden``."""
    batch, length = scores.shape
    k = min(top_k, length)
    masked_scores = scores.detach().float().masked_fill(forbidden, float("-inf"))
    values, positions = masked_scores.topk(k, dim=-1)
    valid = torch.isfinite(values)
    positions = positions.masked_fill(~valid, -1)
    if k < top_k:
        pad = positions.new_full((batch, top_k - k), -1)
        positions = torch.cat([positions, pad], dim=-1)
    return Candidates(positions=positions, counts=valid.sum(dim=-1))


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
