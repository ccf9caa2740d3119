"""The robust model as a transformers-style ``text-classification`` pipeline (no remote code).

``transformers.pipeline("text-classification", model=RSMI_DIR)`` refuses an RSMI directory
(:mod:`rsmi.store.hf_config`): it would run the bare encoder, without RSMI's noise and masks.
This is the drop-in for code written against that pipeline, answering with the *smoothed*
classifier (:meth:`rsmi.RSMIClassifier.predict`, docs/method.md)::

    from rsmi import text_classification_pipeline

    classify = text_classification_pipeline("runs/main/model")
    classify("a gorgeous, witty movie")           # [{"label": "positive", "score": 0.93}]
    classify(["great", "awful"])                  # one {"label", "score"} per text
    classify("great", top_k=None)                 # every label, best first

The scores are the smoothed classifier's probabilities (``Prediction.probs``), and the label is
its prediction; a call with the same ``seed`` gives the same answer.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

Scored = dict[str, Any]


class TextClassificationPipeline:
    """A callable over an :class:`~rsmi.RSMIClassifier`, shaped like transformers' pipeline.

    Args:
        classifier: the robust model (its own RSMI settings are used).
        seed: seed of the noise and mask draws (``predict``'s ``seed``), per call overridable.
        top_k: labels returned per text: 1 (the prediction, the default) or None (all, best
            first), as transformers' ``top_k``.
        batch_size: texts per batch of ``predict``.
    """

    task = "text-classification"

    def __init__(self, classifier: Any, *, seed: int = 0, top_k: int | None = 1,
                 batch_size: int = 32) -> None:
        self.model = classifier
        self.seed, self.top_k, self.batch_size = seed, top_k, batch_size

    def __call__(self, inputs: str | Sequence[str], *, seed: int | None = None,
                 top_k: int | None | str = "default") -> list[Scored] | list[list[Scored]]:
        """``[{"label", "score"}]`` for one text; one entry per text for a list of texts.

        With ``top_k=None`` (or > 1) each text's entry is the list of its labels, best first
        (for one text: that list).
        """
        single = isinstance(inputs, str)
        texts = [inputs] if single else list(inputs)
        k = self.top_k if top_k == "default" else top_k
        pred = self.model.predict(texts, seed=self.seed if seed is None else seed,
                                  batch_size=self.batch_size)
        names = self.model.label_names
        answers: list[Any] = []
        for i, label in enumerate(pred.labels):
            if k == 1:
                answers.append({"label": names[int(label)], "score": float(pred.probs[i][label])})
                continue
            ranked = sorted(range(len(names)), key=lambda c, row=pred.probs[i]: (-row[c], c))
            answers.append([{"label": names[c], "score": float(pred.probs[i][c])}
                            for c in ranked[: len(names) if k is None else int(k)]])
        if single and k != 1:
            return answers[0]
        return answers


def text_classification_pipeline(
    model: str | os.PathLike[str] | Any,
    *,
    seed: int = 0,
    top_k: int | None = 1,
    device: str | None = None,
    dtype: str = "float32",
    **config_overrides: Any,
) -> TextClassificationPipeline:
    """The robust model of a saved RSMI directory (or a loaded classifier) as a pipeline.

    ``config_overrides`` are :class:`rsmi.RSMIConfig` fields for inference (e.g. ``k1=100``).
    """
    from rsmi.classifier import RSMIClassifier

    if isinstance(model, RSMIClassifier):
        clf = model.configured(model.config.replace(**config_overrides)) if config_overrides else model
    else:
        clf = RSMIClassifier.from_pretrained(model, device=device, dtype=dtype, **config_overrides)
    return TextClassificationPipeline(clf, seed=seed, top_k=top_k)


__all__ = ["TextClassificationPipeline", "text_classification_pipeline"]
