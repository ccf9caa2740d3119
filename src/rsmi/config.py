"""`RSMIConfig`: every hyperparameter of RSMI in one validated, serialisable object.

Names follow the paper and docs/method.md and are the same in code, CLI flags, config files and
JSON keys. The object is saved beside the weights (``rsmi.json``) by
:meth:`rsmi.RSMIClassifier.save_pretrained`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from typing import Any, Literal

from rsmi.errors import ConfigError

VOTES = ("avg", "max")
# Which tokens compete for the mask candidates (the one definition; rsmi.masking applies them).
CANDIDATE_RULES = ("content", "authors")
# Most Monte-Carlo samples per input in one step (k0, k1): each is an encoder forward pass, so
# more is hours per input, not a setting (the paper uses k0 = 5, k1 = 50).
MAX_SAMPLES = 100_000


@dataclass(frozen=True)
class RSMIConfig:
    """Hyperparameters of the RSMI smoothed, masked classifier.

    Args:
        noise_std: σ of the Gaussian noise added to the output hidden states of the noised
            encoder blocks (reference 0.2). 0 switches randomized smoothing off.
        noise_every: block ``i`` is noised when ``i % noise_every == 0`` (reference 3).
        num_masks: tokens replaced by the mask token at inference and in training
            (reference 2). 0 switches masked inference off.
        saliency_top_k: the mask candidates are the ``saliency_top_k`` most salient tokens
            (reference 5); must be ≥ ``num_masks``.
        candidate_rule: which tokens compete for the ``saliency_top_k`` places (training and
            inference). ``"content"`` (default): only non-special, non-padding tokens, so
            ``saliency_top_k`` candidates. ``"authors"`` (the RSMI authors' code): all
            non-padding tokens, special ones included, which are then dropped, so 3–5 of 5
            remain when [CLS]/[SEP] are among the most salient.
        step2_resample: the RSMI authors' step 2: saliency recomputed on the noisy model for
            each uncertain input (one more forward + backward pass) and each sample's
            ``num_masks`` positions drawn from those candidates *with* replacement. Default
            (False): masks drawn without replacement from step 1's candidates.
        grad_noise_weight: weight ``w`` of the raw loss gradient added to the masked input
            embeddings during training (reference 1.0).
        k0: Monte-Carlo samples of step 1 (reference 5).
        k1: Monte-Carlo samples of step 2, run only for uncertain inputs (reference 50).
        alpha: an input is uncertain when the one-sided binomial p-value
            ``P(X ≤ n_a)``, ``X ~ Bin(k0, 1/2)``, is below ``alpha`` (reference 0.98).
        vote: ``"avg"`` (mean of logits over the samples of the last step) or ``"max"``
            (majority vote).
        max_length: tokens per input, special tokens included; longer inputs are truncated.
    """

    noise_std: float = 0.2
    noise_every: int = 3
    num_masks: int = 2
    saliency_top_k: int = 5
    candidate_rule: Literal["content", "authors"] = "content"
    step2_resample: bool = False
    grad_noise_weight: float = 1.0
    k0: int = 5
    k1: int = 50
    alpha: float = 0.98
    vote: Literal["avg", "max"] = "avg"
    max_length: int = 128

    def __post_init__(self) -> None:
        _check_number("noise_std", self.noise_std, minimum=0.0, allowed="a finite float ≥ 0")
        _check_int("noise_every", self.noise_every, minimum=1)
        _check_int("num_masks", self.num_masks, minimum=0)
        _check_int("saliency_top_k", self.saliency_top_k, minimum=0)
        if self.num_masks > self.saliency_top_k:
            raise ConfigError(
                f"num_masks={self.num_masks} is larger than saliency_top_k="
                f"{self.saliency_top_k}: the masks are drawn from the top-k candidates, so "
                "num_masks must be in [0, saliency_top_k]"
            )
        if self.candidate_rule not in CANDIDATE_RULES:
            raise ConfigError(
                f"candidate_rule={self.candidate_rule!r} is invalid: it must be one of "
                f"{', '.join(CANDIDATE_RULES)}"
            )
        if not isinstance(self.step2_resample, bool):
            raise ConfigError(f"step2_resample={self.step2_resample!r} is invalid: it must be true or false")
        _check_number(
            "grad_noise_weight", self.grad_noise_weight, minimum=0.0, allowed="a finite float ≥ 0"
        )
        _check_int("k0", self.k0, minimum=1, maximum=MAX_SAMPLES)
        _check_int("k1", self.k1, minimum=1, maximum=MAX_SAMPLES)
        if not isinstance(self.alpha, (int, float)) or not 0.0 < float(self.alpha) < 1.0:
            raise ConfigError(
                f"alpha={self.alpha!r} is invalid: it must lie in the open interval (0, 1)"
            )
        if self.vote not in VOTES:
            raise ConfigError(f"vote={self.vote!r} is invalid: it must be one of {', '.join(VOTES)}")
        _check_int("max_length", self.max_length, minimum=3)

    @property
    def smoothing(self) -> bool:
        """Whether randomized smoothing (hidden-state noise) is on."""
        return self.noise_std > 0

    @property
    def masking(self) -> bool:
        """Whether masked inference is on."""
        return self.num_masks > 0

    def noised_blocks(self, num_blocks: int) -> list[int]:
        """Indices of the encoder blocks whose output receives noise."""
        if not self.smoothing:
            return []
        return [i for i in range(num_blocks) if i % self.noise_every == 0]

    def replace(self, **changes: Any) -> RSMIConfig:
        """A copy with some fields changed (validated again)."""
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise ConfigError(
                f"unknown RSMIConfig field(s): {', '.join(sorted(unknown))}; "
                f"known fields: {', '.join(f.name for f in fields(self))}"
            )
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RSMIConfig:
        """Build from a mapping; unknown keys are an error, missing keys take the defaults."""
        return cls().replace(**data)

    @classmethod
    def plain(cls, max_length: int = 128) -> RSMIConfig:
        """A deterministic classifier: no noise, no masking, one sample (``base``/``freelb``)."""
        return cls(noise_std=0.0, num_masks=0, k0=1, k1=1, max_length=max_length)


def _check_int(name: str, value: Any, *, minimum: int, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name}={value!r} is invalid: it must be an integer ≥ {minimum}")
    if maximum is not None and value > maximum:
        raise ConfigError(
            f"{name}={value} is invalid: at most {maximum:,} Monte-Carlo samples per input "
            f"(each one is an encoder forward pass, so {value:,} would run for hours or days "
            "per input; the paper uses k0 = 5, k1 = 50)"
        )


def _check_number(name: str, value: Any, *, minimum: float, allowed: str) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < minimum
    ):
        raise ConfigError(f"{name}={value!r} is invalid: it must be {allowed}")
