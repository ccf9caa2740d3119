"""RSMI's inference: the smoothed, masked classifier g(x) of docs/method.md, apart from any IO.

``predict`` follows docs/method.md's two-step Monte-Carlo inference line by line:

1. saliency with the model's own predicted label (1 noisy forward + 1 backward) → candidates,
   the ``num_masks`` most salient are masked;
2. step 1: ``k0`` noisy passes of that masked input, votes, ``n_a`` = votes of the top class;
3. one-sided binomial test ``p = P(X ≤ n_a)``, ``X ~ Bin(k0, 1/2)``; ``p < alpha`` → uncertain;
4. step 2 (uncertain inputs only): ``k1`` noisy passes, each masking ``num_masks`` candidates
   drawn at random (``step2_resample``: from a fresh saliency pass, with replacement);
5. output the mean logits (``vote="avg"``) or the majority vote (``"max"``) of the last step.

``certify`` is Cohen et al. (2019)'s CERTIFY under the same hidden-state noise.

All samples of all inputs of a batch run in as few forward calls as ``max_rows`` allows, step 2
only for the uncertain inputs, with dynamic padding.

**Seeding** (``SEEDING = "text-v1"``). Every random draw of an input comes from generators seeded
by ``row_seed(seed, key, pass, sample)`` (:func:`rsmi.noise.row_seed`), where the row key
follows the text, not its position: ``key = row_key(text_digest(text), k)`` — a digest of the
exact string (its UTF-8 bytes, no normalisation) and ``k``, the number of times the same string
occurred earlier in the same call. So a text gets the same answer wherever it stands among the
inputs (``predict(["x"])`` equals ``predict(["y", "x"])[1]``), identical texts of one call get
independent draws (EOT's copies), and results do not depend on batch size, batch composition or
padding. A :class:`StreamSeed` carries the occurrence counts from one chunk of a stream to the
next. The previous scheme, ``"index"`` (row key = the input's index in the call), is what
records without a ``seeding`` field were made under.

Like locuslab/smoothing's ``Smooth``, this module holds only the algorithm: loading, saving
and tokenising are :mod:`rsmi.classifier`'s, how masks are chosen :class:`rsmi.masking.MaskPolicy`'s
and the noise :class:`rsmi.noise.HiddenStateNoise`'s.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy.stats import binomtest, norm
from statsmodels.stats.proportion import proportion_confint

from rsmi.errors import ConfigError
from rsmi.integrity import check_finite
from rsmi.masking import Candidates, saliency
from rsmi.noise import forward_sharing_prefix, row_seed
from rsmi.seeding import (  # noqa: F401 - SEEDING, LEGACY_SEEDING, recorded_seeding re-exported
    LEGACY_SEEDING,
    SEEDING,
    StreamSeed,
    recorded_seeding,
    row_keys,
)
from rsmi.seeding import advance as _advance
from rsmi.seeding import split_seed as _stream

ABSTAIN = -1
# What a certified radius measures: said in every certificate (CLI and server alike).
RADIUS_SPACE = (
    "L2 norm in the hidden space of the first noised encoder block (its output hidden states), "
    "not a number of words"
)

# Pass identifiers mixed into the row seeds: each kind of draw has its own stream.
PASS_SALIENCY, PASS_STEP1, PASS_STEP2, PASS_MASKS, PASS_CERTIFY_SELECT, PASS_CERTIFY_ESTIMATE = (
    range(6)
)
PASS_SALIENCY_STEP2 = 6  # step 2's recomputed saliency (``step2_resample``)

# Most samples per input of CERTIFY (n0, n): Cohen et al. (2019) certify with n = 100,000.
MAX_CERTIFY_SAMPLES = 10_000_000


@dataclass
class Prediction:
    """Output of :meth:`RSMIClassifier.predict`, one entry per input text.

    Attributes:
        labels: (N,) predicted class indices.
        probs: (N, C) class probabilities (rows sum to 1): softmax of the mean logits of the last
            step for ``vote="avg"``, vote shares for ``vote="max"``.
        votes: (N, C) per-class argmax counts of the last step's samples.
        second_step: (N,) whether step 2 ran.
        forward_passes: (N,) encoder forward passes spent: 1 saliency pass (when masking is on)
            + k0, + k1 when step 2 ran (+ 1 more saliency pass with ``step2_resample``).
        truncated: (N,) whether the text was longer than ``max_length`` tokens and cut.
    """

    labels: np.ndarray
    probs: np.ndarray
    votes: np.ndarray
    second_step: np.ndarray
    forward_passes: np.ndarray
    truncated: np.ndarray
    label_names: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class Certification:
    """Output of :meth:`RSMIClassifier.certify`.

    Attributes:
        labels: (N,) certified class, or ``ABSTAIN`` (-1).
        radius: (N,) certified L2 radius in the hidden space of the first noised block
            (0 when abstaining); *not* a radius in word space.
        p_lower: (N,) Clopper–Pearson lower confidence bound on the top-class probability.
        counts: (N, C) class counts of the ``n`` estimation samples.
        forward_passes: (N,) encoder forward passes spent.
        truncated: (N,) whether the text was cut to ``max_length`` tokens.
    """

    labels: np.ndarray
    radius: np.ndarray
    p_lower: np.ndarray
    counts: np.ndarray
    forward_passes: np.ndarray
    truncated: np.ndarray
    label_names: list[str] = field(default_factory=list)


@functools.lru_cache(maxsize=4096)
def binomial_p_value(n_a: int, k0: int) -> float:
    """One-sided binomial test of docs/method.md: ``P(X ≤ n_a)`` for ``X ~ Bin(k0, 1/2)``."""
    return float(binomtest(n_a, k0, 0.5, alternative="less").pvalue)


class SmoothedInference:
    """``predict`` and ``certify`` of :class:`rsmi.RSMIClassifier` (mixed into it).

    The class using it provides ``model``, ``config`` (:class:`~rsmi.config.RSMIConfig`),
    ``policy`` (:class:`~rsmi.masking.MaskPolicy`), ``noise``
    (:class:`~rsmi.noise.HiddenStateNoise`), ``label_names``, ``num_labels``, ``device``,
    ``share_prefix``, ``_autocast()``, ``engine_runner()`` (:class:`rsmi.engine.EngineSetting`),
    ``check_texts(texts)`` and ``batches(texts, batch_size)``.
    Every forward pass of a call runs with this classifier's noise setting
    (:meth:`HiddenStateNoise.activated`), whatever other views of the model exist.
    """

    model: Any
    config: Any
    policy: Any
    noise: Any
    label_names: list[str]
    share_prefix: bool
    seeding = SEEDING  # how draws are seeded (module docstring); the server's micro-batching reads it

    # ------------------------------------------------------------------ prediction
    def predict(
        self,
        texts: Sequence[str] | str,
        *,
        seed: int | StreamSeed = 0,
        batch_size: int = 32,
        max_rows: int = 1024,
    ) -> Prediction:
        """Two-step Monte-Carlo prediction of the smoothed, masked classifier (docs/method.md).

        Args:
            texts: input texts (non-empty).
            seed: all noise and mask draws of an input derive from ``(seed, text, k)``, ``k``
                the occurrence number of the same text earlier in ``texts`` (module docstring);
                a :class:`StreamSeed` also counts the occurrences in earlier chunks.
            batch_size: inputs per batch (length-sorted, padded to the batch's longest).
            max_rows: most rows (input × sample) in one forward call.
        """
        seed, stream = _stream(seed)
        check_sampling(seed=seed, batch_size=batch_size, max_rows=max_rows)
        texts = self.check_texts(texts)
        keys, added = row_keys(texts, stream.seen if stream else None)
        n, c = len(texts), self.num_labels
        result = Prediction(
            labels=np.zeros(n, dtype=np.int64),
            probs=np.zeros((n, c), dtype=np.float64),
            votes=np.zeros((n, c), dtype=np.int64),
            second_step=np.zeros(n, dtype=bool),
            forward_passes=np.zeros(n, dtype=np.int64),
            truncated=np.zeros(n, dtype=bool),
            label_names=list(self.label_names),
        )
        self.model.eval()
        batches, result.truncated = self.batches(texts, batch_size)
        with self.noise.activated():
            for idx, inputs in batches:
                self._predict_batch((idx, [keys[i] for i in idx]), inputs, seed, max_rows, result)
        _advance(stream, added)
        return result

    def _predict_batch(
        self,
        rows: tuple[np.ndarray, list[int]],
        inputs: Mapping[str, torch.Tensor],
        seed: int,
        max_rows: int,
        result: Prediction,
    ) -> None:
        """Predict one batch: ``rows`` = (the batch's rows of ``result``, their row keys)."""
        cfg = self.config
        rows_of_result, keys = rows  # the row keys are what the draws derive from
        b = len(keys)
        masked, candidates, spent = self._masked_step1_inputs(inputs, keys, seed)
        # Step 1: k0 noisy passes of the masked input, all inputs of the batch together.
        seeds = [row_seed(seed, key, PASS_STEP1, j) for key in keys for j in range(cfg.k0)]
        logits = self._forward_rows(self._repeat(masked, cfg.k0), seeds, max_rows)
        logits = logits.view(b, cfg.k0, -1)
        votes = torch.stack([self._counts(logits[r]) for r in range(b)])
        n_a = votes.max(dim=-1).values.tolist()
        uncertain = [r for r in range(b) if binomial_p_value(int(n_a[r]), cfg.k0) < cfg.alpha]
        final_logits = [logits[r] for r in range(b)]
        # Step 2: k1 passes with random masks, uncertain inputs only, batched.
        if uncertain:
            step2 = self._step2_logits(inputs, candidates, keys, uncertain, seed, max_rows)
            for u, r in enumerate(uncertain):
                final_logits[r] = step2[u]
                votes[r] = self._counts(step2[u])
        for r, i in enumerate(rows_of_result):
            sample_logits = final_logits[r]
            if cfg.vote == "avg":
                probs = torch.softmax(sample_logits.mean(dim=0), dim=-1)
            else:
                probs = votes[r].double() / votes[r].sum()
            result.probs[i] = probs.double().cpu().numpy()
            result.labels[i] = int(np.argmax(result.probs[i]))
            result.votes[i] = votes[r].cpu().numpy()
            result.second_step[i] = r in uncertain
            result.forward_passes[i] = spent + cfg.k0 + (
                cfg.k1 + spent * cfg.step2_resample if r in uncertain else 0
            )

    def _step2_logits(
        self,
        inputs: Mapping[str, torch.Tensor],
        candidates: Candidates | None,
        keys: Sequence[int],
        uncertain: list[int],
        seed: int,
        max_rows: int,
    ) -> torch.Tensor:
        cfg = self.config
        rows_of = torch.tensor(uncertain, device=inputs["input_ids"].device)
        sub = {k: v.index_select(0, rows_of) for k, v in inputs.items()}
        rows = self._repeat(sub, cfg.k1)
        if candidates is not None:
            pool, row_of = candidates, list(uncertain)
            if self.policy.resample:  # the authors' step 2: fresh saliency, with replacement
                pool = self._saliency_candidates(
                    sub, [keys[r] for r in uncertain], seed, PASS_SALIENCY_STEP2
                )
                row_of = list(range(len(uncertain)))
            positions = []
            for u, r in enumerate(uncertain):
                for j in range(cfg.k1):
                    gen = torch.Generator().manual_seed(row_seed(seed, keys[r], PASS_MASKS, j))
                    positions.append(self.policy.step2_positions(pool, row_of[u], gen))
            rows["input_ids"] = self.policy.apply(rows["input_ids"], positions)
        seeds = [row_seed(seed, keys[r], PASS_STEP2, j) for r in uncertain for j in range(cfg.k1)]
        return self._forward_rows(rows, seeds, max_rows).view(len(uncertain), cfg.k1, -1)

    # ------------------------------------------------------------------ certification
    def certify(
        self,
        texts: Sequence[str] | str,
        *,
        n0: int = 100,
        n: int = 1000,
        alpha: float = 0.001,
        seed: int | StreamSeed = 0,
        batch_size: int = 32,
        max_rows: int = 1024,
    ) -> Certification:
        """Cohen et al. (2019)'s CERTIFY for the noise of the first noised block.

        With probability at least ``1 - alpha`` over the sampling, a returned label ``c_A ≠
        ABSTAIN`` is the smoothed prediction for every perturbation of the first noised block's
        output hidden states (the input is masked as in step 1) of L2 norm below ``radius``:
        ``radius = noise_std · Φ⁻¹(p_A)`` with ``p_A`` the one-sided Clopper–Pearson lower bound
        on ``P(f = c_A)`` from ``n`` samples; ``c_A`` is chosen from ``n0`` separate samples.
        ABSTAIN when ``p_A ≤ 1/2``. The radius is in hidden space, not a number of words.
        ``seed`` is as in :meth:`predict`: draws follow ``(seed, text, k)``; a
        :class:`StreamSeed` counts occurrences over chunks.
        """
        seed, stream = _stream(seed)
        cfg = self.config
        if not cfg.smoothing:
            raise ConfigError("certify needs randomized smoothing: set noise_std > 0")
        for name, value in (("n0", n0), ("n", n)):
            check_int(name, value, minimum=1, maximum=MAX_CERTIFY_SAMPLES, why=_CERTIFY_WHY)
        if (
            isinstance(alpha, bool)
            or not isinstance(alpha, numbers.Real)
            or not (math.isfinite(alpha) and 0.0 < alpha < 1.0)
        ):
            raise ConfigError(
                f"alpha={alpha!r} is invalid: it must be a number in the open interval (0, 1) "
                "(the probability that a certified label is wrong; Cohen et al. use 0.001)"
            )
        check_sampling(seed=seed, batch_size=batch_size, max_rows=max_rows)
        texts = self.check_texts(texts)
        keys, added = row_keys(texts, stream.seen if stream else None)
        size = len(texts)
        out = Certification(
            labels=np.full(size, ABSTAIN, dtype=np.int64),
            radius=np.zeros(size),
            p_lower=np.zeros(size),
            counts=np.zeros((size, self.num_labels), dtype=np.int64),
            forward_passes=np.zeros(size, dtype=np.int64),
            truncated=np.zeros(size, dtype=bool),
            label_names=list(self.label_names),
        )
        self.model.eval()
        batches, out.truncated = self.batches(texts, batch_size)
        with self.noise.activated():
            for idx, inputs in batches:
                masked, _, spent = self._masked_step1_inputs(inputs, [keys[i] for i in idx], seed)
                for r, i in enumerate(idx):
                    one = {k: v[r : r + 1] for k, v in masked.items()}
                    key = keys[i]
                    select = self._sample_counts(one, seed, key, PASS_CERTIFY_SELECT, n0, max_rows)
                    top = int(select.argmax())
                    counts = self._sample_counts(one, seed, key, PASS_CERTIFY_ESTIMATE, n, max_rows)
                    n_a = int(counts[top])
                    p_lower = float(proportion_confint(n_a, n, alpha=2 * alpha, method="beta")[0])
                    out.counts[i] = counts.cpu().numpy()
                    out.p_lower[i] = p_lower
                    out.forward_passes[i] = spent + n0 + n
                    if p_lower > 0.5:
                        out.labels[i] = top
                        out.radius[i] = cfg.noise_std * float(norm.ppf(p_lower))
        _advance(stream, added)
        return out

    def _sample_counts(
        self,
        one: Mapping[str, torch.Tensor],
        seed: int,
        key: int,
        pass_id: int,
        num: int,
        max_rows: int,
    ) -> torch.Tensor:
        counts = torch.zeros(self.num_labels, dtype=torch.long, device=self.device)
        for start in range(0, num, max_rows):
            take = min(max_rows, num - start)
            seeds = [row_seed(seed, key, pass_id, j) for j in range(start, start + take)]
            logits = self._forward_rows(self._repeat(one, take), seeds, max_rows)
            counts += self._counts(logits)
        return counts

    # ------------------------------------------------------------------ sampling
    def _forward_rows(
        self, inputs: Mapping[str, torch.Tensor], seeds: Sequence[int], max_rows: int
    ) -> torch.Tensor:
        """Logits of noisy forward passes, row ``r`` noised from ``seeds[r]``, in chunks.

        With an inference engine (:mod:`rsmi.engine`) the chunks run in its exported graph,
        the noise drawn as here and given as inputs; else in eager PyTorch.
        """
        assert self.noise is not None
        rows = inputs["input_ids"].shape[0]
        out = []
        engine = self.engine_runner()
        with torch.inference_mode(), self._autocast():
            for start in range(0, rows, max_rows):
                chunk = _trim_padding({k: v[start : start + max_rows] for k, v in inputs.items()})
                if engine is not None:
                    out.append(engine(self.noise, chunk, seeds[start : start + max_rows]))
                    continue
                with self.noise.per_row(seeds[start : start + max_rows], chunk["attention_mask"]):
                    if self.share_prefix:
                        output = forward_sharing_prefix(self.model, self.noise, chunk)
                    else:
                        output = self.model(**chunk)
                    out.append(output.logits.float())
        return check_finite(torch.cat(out) if out else torch.empty(0, self.num_labels))

    def _saliency_candidates(
        self,
        inputs: Mapping[str, torch.Tensor],
        keys: Sequence[int],
        seed: int,
        pass_id: int = PASS_SALIENCY,
    ) -> Candidates:
        """Saliency pass with the predicted label on the noisy model → mask candidates."""
        assert self.noise is not None
        seeds = [row_seed(seed, key, pass_id, 0) for key in keys]
        with self.noise.per_row(seeds, inputs["attention_mask"]), self._autocast():
            sal = saliency(self.model, inputs, labels=None, reduction="sum")
        return self.policy.candidates(sal.scores, inputs["input_ids"], inputs["attention_mask"])

    def _masked_step1_inputs(
        self, inputs: Mapping[str, torch.Tensor], keys: Sequence[int], seed: int
    ) -> tuple[dict[str, torch.Tensor], Candidates | None, int]:
        """Inputs with the top ``num_masks`` salient tokens masked (and the passes spent)."""
        if not self.policy.masking:
            return dict(inputs), None, 0
        candidates = self._saliency_candidates(inputs, keys, seed)
        masked = dict(inputs)
        masked["input_ids"] = self.policy.step1(inputs["input_ids"], candidates)
        return masked, candidates, 1

    @staticmethod
    def _repeat(inputs: Mapping[str, torch.Tensor], times: int) -> dict[str, torch.Tensor]:
        return {k: v.repeat_interleave(times, dim=0) for k, v in inputs.items()}

    def _counts(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.bincount(logits.argmax(dim=-1), minlength=self.num_labels)


_CERTIFY_WHY = (
    " samples per input (each one is an encoder forward pass; Cohen et al. certify with "
    "n0 = 100, n = 100,000)"
)


def check_int(
    name: str, value: Any, *, minimum: int, maximum: int | None = None, why: str = ""
) -> None:
    """Refuse a count that is not an integer in ``[minimum, maximum]`` (a :class:`ConfigError`)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ConfigError(f"{name}={value!r} is invalid: it must be an integer ≥ {minimum}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name}={value} is invalid: at most {maximum:,}{why}")


def check_sampling(*, seed: Any, batch_size: Any, max_rows: Any) -> None:
    """Refuse a seed, batch size or row budget ``predict`` / ``certify`` cannot use."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ConfigError(f"seed={seed!r} is invalid: it must be an integer")
    check_int("batch_size", batch_size, minimum=1)
    check_int("max_rows", max_rows, minimum=1)


def _trim_padding(inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the padding columns no row of this chunk needs (right padding)."""
    mask = inputs["attention_mask"]
    length = int(mask.sum(dim=1).max())
    if length == mask.shape[1] or not bool(mask[:, length:].eq(0).all()):
        return inputs
    return {k: v[:, :length] if v.dim() == 2 else v for k, v in inputs.items()}


def radius_ceiling(noise_std: float, n: int, alpha: float) -> float:
    """The largest radius :meth:`SmoothedInference.certify` can give with ``n`` samples.

    It is reached when all ``n`` samples agree (``n_A = n``): the Clopper–Pearson lower bound is
    then ``p_A = alpha^(1/n)`` (computed exactly as ``certify`` does), and the radius
    ``noise_std · Φ⁻¹(p_A)``. A radius at the ceiling means "as certain as n samples can show",
    not that the input is farther from the decision boundary than other inputs at the ceiling;
    a larger ``n`` raises it (docs/method.md, "Reading a certificate").
    """
    p_lower = float(proportion_confint(n, n, alpha=2 * alpha, method="beta")[0])
    return noise_std * float(norm.ppf(p_lower))
