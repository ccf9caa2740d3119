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

:class:`MaskPolicy` is the one owner of *how masks are chosen*, in training and at inference
alike: the candidates of each row, step 1's masks (the ``num_masks`` most salient) and step 2's
random positions. Change the choice there and both use it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rsmi.config import CANDIDATE_RULES
from rsmi.errors import ConfigError


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
    raise ConfigError(f"candidate_rule={rule!r} is invalid: choose one of {', '.join(CANDIDATE_RULES)}")


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


def require_mask_token(num_masks: int, mask_token_id: int | None, tokenizer: str = "") -> None:
    """Refuse masking (``num_masks > 0``) with a tokenizer that has no mask token."""
    if num_masks > 0 and mask_token_id is None:
        name = f"tokenizer {tokenizer}" if tokenizer else "the tokenizer"
        raise ConfigError(
            f"{name} has no mask token, so masked inference and RSMI training (num_masks > 0) "
            "are impossible: use num_masks=0 or a tokenizer with a mask token"
        )


@dataclass(frozen=True)
class MaskPolicy:
    """How masks are chosen (docs/method.md, MI), for the training step and both inference steps.

    Attributes:
        num_masks: tokens masked per input (0: masking off).
        top_k: candidates per input (``saliency_top_k``).
        rule: which tokens compete for the candidates (:data:`CANDIDATE_RULES`).
        resample: step 2 draws *with* replacement from fresh candidates (``step2_resample``,
            the authors' step 2); otherwise without replacement from step 1's candidates.
        special_ids: token ids never masked (CLS, SEP, PAD, ...).
        mask_token_id: the tokenizer's mask token (required when ``num_masks > 0``).
    """

    num_masks: int
    top_k: int
    rule: str = "content"
    resample: bool = False
    special_ids: tuple[int, ...] = ()
    mask_token_id: int | None = None

    def __post_init__(self) -> None:
        if self.rule not in CANDIDATE_RULES:
            raise ConfigError(
                f"candidate_rule={self.rule!r} is invalid: choose one of {', '.join(CANDIDATE_RULES)}"
            )
        require_mask_token(self.num_masks, self.mask_token_id)

    @classmethod
    def from_config(
        cls, config: Any, special_ids: Sequence[int], mask_token_id: int | None
    ) -> MaskPolicy:
        """The policy of an :class:`~rsmi.config.RSMIConfig` (or a training config's fields)."""
        return cls(
            num_masks=int(config.num_masks),
            top_k=int(config.saliency_top_k),
            rule=str(config.candidate_rule),
            resample=bool(getattr(config, "step2_resample", False)),
            special_ids=tuple(int(t) for t in special_ids),
            mask_token_id=mask_token_id,
        )

    @classmethod
    def for_tokenizer(cls, config: Any, tokenizer: Any) -> MaskPolicy:
        """The policy of ``config`` with ``tokenizer``'s special and mask tokens."""
        require_mask_token(config.num_masks, tokenizer.mask_token_id, type(tokenizer).__name__)
        special = sorted(set(tokenizer.all_special_ids))
        return cls.from_config(config, special, tokenizer.mask_token_id)

    @property
    def masking(self) -> bool:
        return self.num_masks > 0

    def candidates(
        self, scores: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> Candidates:
        """The ``top_k`` candidates of each row from its saliency ``scores`` (B, T)."""
        return select_candidates(
            scores, input_ids, attention_mask, self.special_ids, self.top_k, self.rule
        )

    def step1(self, input_ids: torch.Tensor, candidates: Candidates) -> torch.Tensor:
        """``input_ids`` with the ``num_masks`` most salient candidates of each row masked.

        With masking off, ``input_ids`` itself (nothing to mask).
        """
        if not self.masking:
            return input_ids
        assert self.mask_token_id is not None  # checked in __post_init__
        return mask_top(input_ids, candidates, self.num_masks, self.mask_token_id)

    def step2_positions(
        self, candidates: Candidates, row: int, generator: torch.Generator
    ) -> torch.Tensor:
        """One step-2 sample's positions for row ``row`` of ``candidates``, drawn from ``generator``."""
        if self.resample:
            return candidates.random_with_replacement(row, self.num_masks, generator)
        return candidates.random(row, self.num_masks, generator)

    def apply(self, input_ids: torch.Tensor, positions: list[torch.Tensor]) -> torch.Tensor:
        """A copy of ``input_ids`` with row ``b`` masked at ``positions[b]``."""
        assert self.mask_token_id is not None
        return apply_masks(input_ids, positions, self.mask_token_id)
