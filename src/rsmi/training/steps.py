"""One optimisation micro-step of each training method: forward, loss and backward.

Every step function takes a :class:`StepContext` and a padded batch (``input_ids``,
``attention_mask``, maybe ``token_type_ids``, and gold ``labels``), calls
``accelerator.backward`` (which also divides by the gradient-accumulation steps) and returns
the loss value. The optimizer step, clipping and scheduling are the trainer's.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rsmi.masking import MaskPolicy, Saliency, saliency
from rsmi.training.config import TrainConfig


@dataclass
class StepContext:
    """What a training step needs besides the batch.

    Attributes:
        model: the model as prepared by accelerate (maybe DDP-wrapped): the parameter update
            forward passes go through it.
        unwrapped: the plain model (its blocks carry the noise hooks): used for the saliency
            pass and the embedding lookups, which need no gradient synchronisation.
        accelerator: the ``accelerate.Accelerator`` of the run.
        config: the run's settings.
        special_ids: token ids never masked (CLS, SEP, PAD, ...).
        mask_token_id: the tokenizer's mask token.
        generator: draws FreeLB's random initial perturbation.
    """

    model: nn.Module
    unwrapped: nn.Module
    accelerator: Any
    config: TrainConfig
    special_ids: list[int]
    mask_token_id: int | None
    generator: torch.Generator

    @property
    def mask_policy(self) -> MaskPolicy:
        """How this run chooses its masks (the same :class:`MaskPolicy` as inference)."""
        return MaskPolicy.from_config(self.config, self.special_ids, self.mask_token_id)


def _model_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The batch without ``input_ids`` and ``labels`` (attention mask, token type ids)."""
    return {k: v for k, v in batch.items() if k not in ("input_ids", "labels")}


def base_step(ctx: StepContext, batch: dict[str, torch.Tensor]) -> float:
    """Ordinary fine-tuning: cross-entropy of a train-mode forward pass on the gold labels."""
    ctx.model.train()
    logits = ctx.model(input_ids=batch["input_ids"], **_model_inputs(batch)).logits
    loss = F.cross_entropy(logits.float(), batch["labels"])
    ctx.accelerator.backward(loss)
    return float(loss.detach())


@dataclass
class RSMIInputs:
    """The input of RSMI's parameter-update pass (steps 1–3 of docs/method.md's training step).

    Attributes:
        saliency: the eval-mode, noisy, unmasked saliency pass with the gold labels (``grads``
            is g = d loss / d word embeddings, B×T×d, batch-mean loss).
        masked_ids: ``input_ids`` with the ``num_masks`` most salient candidates of each row
            replaced by the mask token.
        inputs_embeds: ``E(masked_ids) + w · g``.
    """

    saliency: Saliency
    masked_ids: torch.Tensor
    inputs_embeds: torch.Tensor


def rsmi_inputs(ctx: StepContext, batch: dict[str, torch.Tensor]) -> RSMIInputs:
    """Steps 1–3 (input side) of RSMI's training step; see :func:`rsmi_training_step`."""
    cfg = ctx.config
    policy = ctx.mask_policy  # refuses num_masks > 0 without a mask token
    inputs = {"input_ids": batch["input_ids"], **_model_inputs(batch)}
    # (1) Eval mode (no dropout), noise on: g = d CE(f(x), y_gold) / d E(x), batch-mean loss.
    ctx.model.eval()
    with ctx.accelerator.autocast():
        sal = saliency(ctx.unwrapped, inputs, batch["labels"], reduction="mean")
    # (2) Saliency ‖g_t‖₂ → the saliency_top_k candidates (no special tokens, no padding;
    #     candidate_rule "authors": top-k first, special tokens dropped after), mask the
    #     num_masks most salient of each example (fewer in very short inputs).
    candidates = policy.candidates(sal.scores, batch["input_ids"], batch["attention_mask"])
    masked_ids = policy.step1(batch["input_ids"], candidates)
    # (3) inputs_embeds = E(masked_ids) + w · g, with g the raw (not normalised) gradient.
    embeds = ctx.unwrapped.get_input_embeddings()(masked_ids)
    embeds = embeds + cfg.grad_noise_weight * sal.grads.to(embeds.dtype)
    return RSMIInputs(saliency=sal, masked_ids=masked_ids, inputs_embeds=embeds)


def rsmi_training_step(ctx: StepContext, batch: dict[str, torch.Tensor]) -> float:
    """RSMI's training step (docs/method.md, "Training step (per batch)"), steps 1–3.

    1. Eval mode (no dropout), noise on: forward the unmasked batch with the gold labels and
       take g = d loss / d word embeddings (B×T×d).
    2. Saliency = ‖g_t‖₂ per token; mask the ``num_masks`` most salient candidates of each
       example (candidates: the ``saliency_top_k`` most salient non-special, non-pad tokens).
    3. Train mode: forward with ``inputs_embeds = E(masked_ids) + w · g`` (w =
       ``grad_noise_weight``), noise on, cross-entropy on the gold labels; backward.

    Step 4 (AdamW, linear warm-up/decay, clipping, best dev epoch) is the trainer's. The noise
    is the classifier's ``HiddenStateNoise`` in batch mode (its seeded ``generator``).
    """
    rsmi = rsmi_inputs(ctx, batch)
    ctx.model.train()
    logits = ctx.model(inputs_embeds=rsmi.inputs_embeds, **_model_inputs(batch)).logits
    loss = F.cross_entropy(logits.float(), batch["labels"])
    ctx.accelerator.backward(loss)
    return float(loss.detach())


def freelb_step(ctx: StepContext, batch: dict[str, torch.Tensor]) -> float:
    """FreeLB (Zhu et al., ICLR 2020) / FreeLB++ (Li et al., EMNLP 2021) adversarial step.

    A perturbation δ of the word embeddings starts uniform in a ball of radius
    ``adv_init_mag`` (scaled by 1/√(tokens·d), padding excluded) and climbs the loss for
    ``adv_steps`` (K) steps: δ ← δ + adv_lr · ∇δ / ‖∇δ‖₂, projected back into the L2 ball
    ``adv_max_norm`` per example (0 = unbounded). The parameter gradients of all K
    forward/backward passes (loss / K each) are accumulated: "free" adversarial training.
    The word embeddings are looked up again after every ascent step, as in FreeLB's code.
    """
    cfg, model = ctx.config, ctx.model
    model.train()
    embed = ctx.unwrapped.get_input_embeddings()
    rest = _model_inputs(batch)
    mask = batch["attention_mask"].unsqueeze(-1)
    embeds = embed(batch["input_ids"])
    delta = _freelb_init(embeds, mask, cfg.adv_init_mag, ctx.generator)
    total = 0.0
    steps = cfg.adv_steps
    for k in range(steps):
        delta.requires_grad_(True)
        last = k == steps - 1
        # Synchronise gradients (DDP) only on the last ascent step.
        sync: Callable[[], Any] = (lambda: nullcontext()) if last else (lambda: ctx.accelerator.no_sync(model))
        with sync():
            logits = model(inputs_embeds=embeds + delta, **rest).logits
            loss = F.cross_entropy(logits.float(), batch["labels"]) / steps
            ctx.accelerator.backward(loss)
        total += float(loss.detach())
        if last:
            break
        grad = delta.grad.detach().float()
        norm = grad.flatten(1).norm(dim=1).clamp_min(1e-8).view(-1, 1, 1)
        delta = (delta.detach() + cfg.adv_lr * grad / norm).to(embeds.dtype)
        if cfg.adv_max_norm > 0:
            delta_norm = delta.flatten(1).float().norm(dim=1).view(-1, 1, 1)
            scale = torch.where(delta_norm > cfg.adv_max_norm, cfg.adv_max_norm / delta_norm, 1.0)
            delta = (delta * scale.to(delta.dtype)).detach()
        embeds = embed(batch["input_ids"])
    return total


def _freelb_init(
    embeds: torch.Tensor, mask: torch.Tensor, init_mag: float, generator: torch.Generator
) -> torch.Tensor:
    """FreeLB's random start: U(-1, 1) on real tokens, scaled to init_mag / √(tokens · d)."""
    if init_mag <= 0:
        return torch.zeros_like(embeds).detach()
    uniform = torch.rand(embeds.shape, generator=generator, device=embeds.device) * 2 - 1
    mask = mask.to(uniform.dtype)
    dims = mask.sum(dim=(1, 2)) * embeds.shape[-1]
    scale = (init_mag / dims.clamp_min(1).sqrt()).view(-1, 1, 1)
    return (uniform * mask * scale).to(embeds.dtype).detach()


STEPS: dict[str, Callable[[StepContext, dict[str, torch.Tensor]], float]] = {
    "base": base_step,
    "rsmi": rsmi_training_step,
    "freelb": freelb_step,
}

__all__ = ["STEPS", "RSMIInputs", "StepContext", "base_step", "freelb_step", "rsmi_inputs", "rsmi_training_step"]
