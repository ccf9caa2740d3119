"""The adaptive attacker's goal: the EOT mean wrong by a margin (margin-EOT).

An EOT query (:mod:`rsmi.attacks.wrapper`, ``eot = m``) answers with the mean ``p̄`` of ``m``
independent stochastic evaluations. TextAttack's :class:`UntargetedClassification` stops the
search as soon as ``argmax p̄ ≠ y``, which for a randomized model can still be a lucky draw of
the ``m``-mean: the deployed classifier, asked again with fresh randomness, is often right on
that final text (issue 27). The deployed decision is what an attacker of the deployed model
wants to flip, so :class:`MarginUntargetedClassification` succeeds only when the mean is wrong
with a margin ``δ``::

    max_{c ≠ y} p̄_c − p̄_y > δ        (two classes: p̄_y < (1 − δ) / 2)

``δ = 0`` is TextAttack's test exactly (ties included: ``argmax`` picks the first maximum).

What stays TextAttack's:

* the search score ``1 − p̄_y``, so the order in which words are tried and candidates kept is
  that of the plain EOT attack (and ``δ = 0`` reproduces it query for query). For two classes
  the score is a monotone function of the margin (margin = 1 − 2 p̄_y); for more classes it
  favours moving mass off the true class, which the margin also needs.
* the skip test of the original text: ``argmax p̄ ≠ y`` (the plain test), so the attacked
  examples and the attack's clean accuracy do not depend on ``δ``. An original text whose mean
  is wrong by less than ``δ`` is a clean error, skipped as under plain EOT, not attacked.

A search that never reaches the margin ends as a *failed* attack whose final text is the best
one found (highest ``1 − p̄_y``), so the protocol verdict of such an example is "robust" even
when its mean is wrong; the deployed verdicts (``--fresh-draws``) score that final text.
"""

from __future__ import annotations

from typing import Any

from rsmi.attacks._textattack import require_textattack
from rsmi.errors import ConfigError

require_textattack()
from textattack.goal_functions import UntargetedClassification  # noqa: E402
from textattack.shared import validators  # noqa: E402


class MarginUntargetedClassification(UntargetedClassification):
    """Untargeted classification whose goal is the model output wrong by more than ``margin``.

    Args:
        model_wrapper: the queried model (an EOT wrapper for the adaptive attacker).
        margin: ``δ`` ∈ [0, 1): success iff ``max_{c≠y} p_c − p_y > δ`` (0 = TextAttack's
            goal, ``argmax p ≠ y``).
        **kwargs: TextAttack's goal-function arguments (``use_cache``, ``model_batch_size``,
            ``query_budget`` ...).

    Example:
        >>> goal = MarginUntargetedClassification(wrapper, margin=0.2, use_cache=False)
    """

    def __init__(self, model_wrapper: Any, *, margin: float = 0.0, **kwargs: Any) -> None:
        if not 0.0 <= float(margin) < 1.0:
            raise ConfigError(f"margin={margin!r} is invalid: δ must lie in [0, 1)")
        self.margin = float(margin)
        super().__init__(model_wrapper, **kwargs)

    def _is_goal_complete(self, model_output: Any, attacked_text: Any) -> bool:
        if self.margin == 0.0:
            return super()._is_goal_complete(model_output, attacked_text)
        return wrong_margin(model_output, self.ground_truth_output) > self.margin

    def _should_skip(self, model_output: Any, attacked_text: Any) -> bool:
        # The plain test: which examples are attacked does not depend on δ (module docstring).
        return super()._is_goal_complete(model_output, attacked_text)

    def extra_repr_keys(self) -> list[str]:
        return [*super().extra_repr_keys(), "margin"]


# The margin goal needs what untargeted classification needs (class probabilities): say so in
# TextAttack's table of goal functions, which otherwise warns "No entry found" at every build.
validators.MODELS_BY_GOAL_FUNCTION.setdefault(
    MarginUntargetedClassification, validators.MODELS_BY_GOAL_FUNCTION[UntargetedClassification]
)


def wrong_margin(probs: Any, label: int) -> float:
    """``max_{c≠y} p_c − p_y`` of one probability vector (> 0: wrong; < 0: right)."""
    values = [float(p) for p in probs]
    if len(values) < 2:
        raise ConfigError("a margin needs at least two classes")
    others = values[:label] + values[label + 1:]
    return max(others) - values[label]


__all__ = ["MarginUntargetedClassification", "wrong_margin"]
