"""A TextAttack model wrapper for :class:`rsmi.RSMIClassifier` (smoothed or plain).

Every query goes through ``RSMIClassifier.predict`` (length-sorted batches, padded to the
longest text of the batch, never to ``max_length``). For a randomized model each call uses
fresh randomness: the wrapper draws the seed of call ``t`` of example ``e`` as
``row_seed(example_seed, t)``, so a run is reproducible from its seed while no two queries
share a noise draw. The wrapper counts the queries (texts) and encoder forward passes it spent.

Adaptive attack (EOT, expectation over transformation): with ``eot = m`` each query returns
the mean probability vector of ``m`` independent stochastic evaluations, at ``m`` times the
forward passes. The ``m`` evaluations are ``m`` copies of each text in one ``predict`` call;
under seeding ``"text-v1"`` (:mod:`rsmi.inference`) copy ``j`` of a text is its occurrence ``j``
in the call and so gets its own draws, whatever the other texts of the query are.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence

import numpy as np

from rsmi.attacks._textattack import require_textattack
from rsmi.classifier import RSMIClassifier
from rsmi.errors import ConfigError
from rsmi.noise import row_seed

require_textattack()
from textattack.models.wrappers import ModelWrapper  # noqa: E402


class RSMIModelWrapper(ModelWrapper):
    """Query an RSMI (or plain) classifier for TextAttack.

    Args:
        classifier: the model; its current config is the one attacked.
        batch_size: inputs per ``predict`` batch.
        eot: stochastic evaluations averaged per query (1 = the deployed model's answer).
        seed: run seed; :meth:`start_example` derives each example's seed stream from it.
        max_rows: most (input × sample) rows per forward call.
    """

    def __init__(
        self,
        classifier: RSMIClassifier,
        *,
        batch_size: int = 32,
        eot: int = 1,
        seed: int = 0,
        max_rows: int = 1024,
    ) -> None:
        if eot < 1:
            raise ConfigError(f"eot={eot} is invalid: it must be ≥ 1")
        self.model = classifier  # TextAttack reads `.model` (e.g. to move it between devices)
        self.classifier = classifier
        self.batch_size = batch_size
        self.eot = eot
        self.max_rows = max_rows
        self.seed = seed
        self.example_seed = row_seed(seed)
        self.calls = 0
        self.queries = 0
        self.forward_passes = 0
        self.model_seconds = 0.0  # wall time inside the classifier (the defended model's passes)
        self.empty_text = classifier.tokenizer.unk_token or "."

    def start_example(self, example_seed: int) -> None:
        """Reset the counters and the seed stream for a new example."""
        self.example_seed = int(example_seed)
        self.calls = 0
        self.queries = 0
        self.forward_passes = 0
        self.model_seconds = 0.0

    def next_seed(self) -> int:
        """The seed of the next model call (advances the stream)."""
        seed = row_seed(self.example_seed, self.calls)
        self.calls += 1
        return seed

    def predict_probs(self, texts: Sequence[str]) -> np.ndarray:
        """(N, C) class probabilities: the mean over ``eot`` independent evaluations."""
        # A perturbation may leave no content (all words deleted, only zero-width characters
        # left): the model sees the unknown token instead, as for an empty text.
        texts = [t if t.strip() else self.empty_text for t in texts]
        for i in self.classifier.content_free(texts):
            texts[i] = self.empty_text
        if not texts:
            return np.zeros((0, self.classifier.num_labels))
        # Row r + j·N: evaluation j of text r; its own draws, as occurrence j (or later, when
        # the query holds the text twice) of that text in the call.
        repeated = list(texts) * self.eot
        started = time.perf_counter()
        pred = self.classifier.predict(
            repeated, seed=self.next_seed(), batch_size=self.batch_size, max_rows=self.max_rows
        )
        self.model_seconds += time.perf_counter() - started
        self.queries += len(texts)
        self.forward_passes += int(pred.forward_passes.sum())
        probs = pred.probs.reshape(self.eot, len(texts), -1).mean(axis=0)
        return probs

    def __call__(self, text_input_list: list[str], **kwargs: object) -> np.ndarray:
        return self.predict_probs(text_input_list)

    def _tokenize(self, inputs: list[str]) -> list[list[str]]:
        return [
            self.classifier.tokenizer.convert_ids_to_tokens(
                self.classifier.tokenizer(x, truncation=True, max_length=self.classifier.config.max_length)[
                    "input_ids"
                ]
            )
            for x in inputs
        ]

    @contextlib.contextmanager
    def deterministic(self) -> Iterator[RSMIClassifier]:
        """Within the block, queries go to the classifier's plain view (no noise, no masks).

        The transfer attack's surrogate: :meth:`RSMIClassifier.plain`, a view of the same
        weights; the classifier itself is not changed. The counters keep counting.
        """
        attacked = self.classifier
        surrogate = attacked.plain()
        self.model = self.classifier = surrogate
        try:
            yield surrogate
        finally:
            self.model = self.classifier = attacked
