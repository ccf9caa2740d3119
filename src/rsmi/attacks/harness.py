"""The attack harness, exactly: TextAttack's repeated work outside the model, done once.

An attack on a deterministic model spends most of its time outside the model (issue 26): for
every candidate batch TextAttack's sentence-encoder constraint encodes the *same* window of the
current text once per candidate, encodes windows whose score it then overwrites with 1 (texts
shorter than the window), and the constraints that come before the query cap
(``MaxWordsPerturbed``, last in every preset recipe) run on candidates the cap rejects anyway.
This module removes that work and nothing else: every decision, every float the attack reads,
is the one TextAttack computes.

* :class:`CachedSentenceEncoder`: the sentence encoder's rows are cached by their *content*,
  the exact token ids, attention mask and token types (padding included) that
  ``SentenceTransformer.encode`` would feed the model for that row, and whether that row's
  batch was padded. The encoder's output for a row depends on those and not on the other rows
  of its batch (checked once per process on a probe, :func:`probe_is_exact`; where it does not
  hold the cache turns itself off and says so), so a cached row is the float TextAttack would
  have computed. A call whose every candidate is shorter than the window (each score is
  overwritten with 1) encodes nothing.
* :class:`HarnessAttack`: ``Attack`` whose constraint filter first asks the cheap, per-text
  constraints (``MaxWordsPerturbed``) whether they reject *every* candidate; then the result is
  empty whatever the expensive ones (POS tagger, sentence encoder) say, so they are not asked.
  Within its ``attack``, ``AttackedText``'s word splitter answers repeats from a cache
  (:func:`words_cache`).

The sentence-encoder cache belongs to its attack object (one per run), the word cache to the
process; both are bounded (LRU) and keyed by content, so they are kept across examples: a value
is a pure function of its key for the life of the process.
``AttackConfig.harness_cache = False`` (hidden flag ``--no-harness-cache``) builds the attack
exactly as before, for comparison; results are identical either way, so the switch is not part
of a run's identity.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import functools
import logging
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Any

import torch

from rsmi.attacks._textattack import require_textattack

require_textattack()
import textattack.shared.attacked_text as _attacked_text  # noqa: E402
from textattack import Attack  # noqa: E402
from textattack.constraints.overlap import MaxWordsPerturbed  # noqa: E402
from textattack.constraints.semantics.sentence_encoders import SBERT  # noqa: E402

logger = logging.getLogger(__name__)

SENTENCE_CACHE_ROWS = 2**14  # ≈ 25 MB of 384-float embeddings
WORDS_CACHE_ENTRIES = 2**16  # strings → their words (mostly single words)
CHEAP_PER_TEXT = (MaxWordsPerturbed,)  # pure per-text constraints, worth asking first


class LRUCache:
    """A bounded mapping, least recently used out first; counts its hits and misses."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize={maxsize} is invalid: a cache holds at least 1 entry")
        self.maxsize = maxsize
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._data

    def get(self, key: Hashable) -> Any | None:
        if key in self._data:
            self._data.move_to_end(key)
            self.hits += 1
            return self._data[key]
        self.misses += 1
        return None

    def put(self, key: Hashable, value: Any) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.maxsize:
            self._data.popitem(last=False)

    def clear(self) -> None:
        self._data.clear()


def row_key(features: dict[str, Any], i: int) -> Hashable:
    """What the encoder's output for row ``i`` of a batch is a function of: every batched
    tensor's row (ids, attention mask, token types, padding included: the padded length is
    part of the key) and every unbatched entry, exactly."""
    batch = features["input_ids"].shape[0]
    key: list[Hashable] = []
    for name in sorted(features):
        value = features[name]
        if isinstance(value, torch.Tensor) and value.dim() and value.shape[0] == batch:
            row = value[i]
            key.append((name, str(row.dtype), tuple(row.shape), row.cpu().numpy().tobytes()))
        elif isinstance(value, torch.Tensor):
            key.append((name, str(value.dtype), tuple(value.shape), value.cpu().numpy().tobytes()))
        else:
            key.append((name, repr(value)))
    return tuple(key)


class _CachedRows:
    """The ``forward`` of a sentence-transformer view: the sentence embedding of each row from
    the cache, the missing rows (each distinct one once) through the real model.

    Besides the row itself, one property of the whole batch decides the floats: whether any row
    of it is padded. Without padding the transformer runs attention without a mask (another
    kernel), so that is part of the key, and a recomputed subset of a padded batch that happens
    to hold no padded row gets one padded dummy row (its output is dropped).
    """

    def __init__(self, forward: Callable[..., dict[str, Any]], cache: LRUCache,
                 key: Callable[[dict[str, Any], int], Hashable]) -> None:
        self.forward, self.cache, self.key = forward, cache, key

    def __call__(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        batch = features["input_ids"].shape[0]
        masked = _has_padding(features)
        keys = [(masked, self.key(features, i)) for i in range(batch)]
        found = {k: self.cache.get(k) for k in dict.fromkeys(keys)}
        missing = [keys.index(k) for k, v in found.items() if v is None]
        if missing:
            rows = missing + ([missing[0]] if masked else [])  # the last: a dummy, if needed
            index = torch.tensor(rows, dtype=torch.long)
            sub = {
                name: (value.index_select(0, index.to(value.device))
                       if isinstance(value, torch.Tensor) and value.dim() and value.shape[0] == batch
                       else value)
                for name, value in features.items()
            }
            if masked and _has_padding(_take(sub, len(missing))):
                sub = _take(sub, len(missing))  # padding among the rows: no dummy needed
            elif masked:
                sub["attention_mask"] = sub["attention_mask"].clone()
                sub["attention_mask"][-1, -1] = 0
            computed = self.forward(sub, **kwargs)["sentence_embedding"]
            for j, i in enumerate(missing):
                found[keys[i]] = computed[j].clone()
                self.cache.put(keys[i], found[keys[i]])
        out = dict(features)
        out["sentence_embedding"] = torch.stack([found[k] for k in keys])
        return out


def _has_padding(features: dict[str, Any]) -> bool:
    mask = features.get("attention_mask")
    return mask is not None and bool((mask == 0).any())


def _take(features: dict[str, Any], n: int) -> dict[str, Any]:
    """The first ``n`` rows of every batched tensor."""
    batch = features["input_ids"].shape[0]
    return {name: (value[:n] if isinstance(value, torch.Tensor) and value.dim()
                   and value.shape[0] == batch else value)
            for name, value in features.items()}


def caching_view(model: Any, cache: LRUCache,
                 key: Callable[[dict[str, Any], int], Hashable] = row_key) -> Any:
    """A shallow copy of a ``SentenceTransformer`` (same weights, same modules) whose forward
    answers from ``cache``; the model itself is not changed (other attacks share it)."""
    view = copy.copy(model)
    object.__setattr__(view, "forward", _CachedRows(model.forward, cache, key))
    return view


def probe_calls() -> list[list[str]]:
    """Encode calls that meet one short text in four settings: in a padded batch of 32 long
    texts, in a padded batch of two short texts (another padded length), alone (no padding, no
    attention mask), and again after the cache holds all three: floats differ between the
    first three, so a key that mixes them up returns wrong floats."""
    long = [f"the film {i} is a slow and strangely moving portrait of grief with fine acting but "
            "the plot never quite earns its long and tedious final act" for i in range(31)]
    short = "a good film"
    return [long + [short], [short + " and fun", short], [short], [short, *long[::-1], short]]


def _probe(model: Any, key: Callable[[dict[str, Any], int], Hashable],
           calls: list[list[str]]) -> bool:
    view = caching_view(model, LRUCache(4 * sum(len(c) for c in calls)), key)
    return all(bool((view.encode(c) == model.encode(c)).all()) for c in calls)


@functools.lru_cache(maxsize=8)
def _default_probe(model: Any) -> bool:
    return _probe(model, row_key, probe_calls())


def probe_is_exact(model: Any, key: Callable[[dict[str, Any], int], Hashable] = row_key) -> bool:
    """Whether, in this process, a caching view with ``key`` gives ``model.encode``'s floats
    bit for bit on the :func:`probe_calls` (one cache across the calls). It holds when a
    row's output depends on that row and on whether its batch is padded only, as
    :class:`_CachedRows` assumes; checked once per model for the default key."""
    return _default_probe(model) if key is row_key else _probe(model, key, probe_calls())


class CachedSentenceEncoder(SBERT):
    """TextAttack's SBERT constraint with the same settings and model, whose encoder rows are
    cached by content (:func:`row_key`) and which encodes nothing for a call in which every
    candidate's score would be overwritten with 1 (shorter than the window).

    Args:
        base: the constraint to speed up (its model is shared, not changed).
        maxsize: most cached rows.
        key: the row key (tests replace it to show that a wrong key is caught).
    """

    def __init__(self, base: SBERT, maxsize: int = SENTENCE_CACHE_ROWS,
                 key: Callable[[dict[str, Any], int], Hashable] = row_key) -> None:  # noqa: D107
        self.__dict__.update(base.__dict__)  # threshold, metric, window, model: the base's
        self.cache = LRUCache(maxsize)
        self.enabled = probe_is_exact(base.model, key)
        if not self.enabled:
            logger.warning(
                "the sentence encoder's rows depend on the other rows of their batch on this "
                "machine: its harness cache is off (results are unchanged, the attack is slower)"
            )
        self._view = caching_view(base.model, self.cache, key) if self.enabled else base.model

    def encode(self, sentences: Sequence[str]) -> Any:
        return self._view.encode(list(sentences))

    def _score_list(self, starting_text: Any, transformed_texts: Sequence[Any]) -> torch.Tensor:
        if (self.window_size and self.skip_text_shorter_than_window and transformed_texts
                and all(len(t.words) < self.window_size for t in transformed_texts)):
            # _check_constraint_many sets every one of these scores to 1 after this call.
            return torch.ones(len(transformed_texts))
        return super()._score_list(starting_text, transformed_texts)

    def clear_cache(self) -> None:
        self.cache.clear()


class HarnessAttack(Attack):
    """``Attack`` that skips the expensive constraints when a cheap per-text one rejects every
    candidate (the filter's result is then empty whatever the others say)."""

    @classmethod
    def from_attack(cls, attack: Attack) -> HarnessAttack:
        """The same goal function, constraints (in order), transformation and search."""
        return cls(attack.goal_function,
                   list(attack.pre_transformation_constraints) + list(attack.constraints),
                   attack.transformation, attack.search_method,
                   transformation_cache_size=attack.transformation_cache_size,
                   constraint_cache_size=attack.constraint_cache_size)

    def attack(self, example: Any, ground_truth_output: Any) -> Any:
        """TextAttack's ``attack``, with the word splitter's cache on (:func:`words_cache`)."""
        with words_cache():
            return super().attack(example, ground_truth_output)

    def _filter_transformations_uncached(
        self, transformed_texts: list[Any], current_text: Any, original_text: Any = None
    ) -> list[Any]:
        if transformed_texts and self._cheap_reject_all(transformed_texts, current_text,
                                                        original_text):
            for text in transformed_texts:
                self.constraints_cache[(current_text, text)] = False
            return []
        return super()._filter_transformations_uncached(transformed_texts, current_text,
                                                         original_text)

    def _cheap_reject_all(self, texts: list[Any], current_text: Any, original_text: Any) -> bool:
        for constraint in self.constraints[1:]:  # the first one runs on all candidates anyway
            if not isinstance(constraint, CHEAP_PER_TEXT):
                continue
            reference = original_text if constraint.compare_against_original else current_text
            if reference is None:
                return False  # let TextAttack raise its own error
            if not constraint.call_many(texts, reference):
                return True
        return False


_WORDS_ACTIVE: contextvars.ContextVar[bool] = contextvars.ContextVar("rsmi_harness_words",
                                                                   default=False)
_WORDS = LRUCache(WORDS_CACHE_ENTRIES)


def _cached_words_from_text(text: str, words_to_ignore: list[str] | None = None) -> list[str]:
    original = _cached_words_from_text.original  # type: ignore[attr-defined]
    if words_to_ignore or not _WORDS_ACTIVE.get():
        return original(text, words_to_ignore or [])
    words = _WORDS.get(text)
    if words is None:
        words = tuple(original(text))
        _WORDS.put(text, words)
    return list(words)  # a new list each time, as the original returns


@contextlib.contextmanager
def words_cache() -> Iterator[None]:
    """Within the block, ``AttackedText`` splits a string into words once per process: its
    ``words_from_text`` (a pure function of the string; TextAttack calls it once per word of
    every candidate text it builds) answers repeats from a bounded cache. Outside the block,
    and for attacks built without the harness, TextAttack's own function runs."""
    if _attacked_text.words_from_text is not _cached_words_from_text:
        _cached_words_from_text.original = _attacked_text.words_from_text  # type: ignore[attr-defined]
        _attacked_text.words_from_text = _cached_words_from_text
    token = _WORDS_ACTIVE.set(True)
    try:
        yield
    finally:
        _WORDS_ACTIVE.reset(token)


def accelerate(attack: Attack, *, sentence_cache_rows: int = SENTENCE_CACHE_ROWS) -> HarnessAttack:
    """The same attack with the harness caches: sentence encoders replaced by
    :class:`CachedSentenceEncoder`, the filter by :class:`HarnessAttack`'s."""
    attack.constraints = [
        CachedSentenceEncoder(c, sentence_cache_rows) if type(c) is SBERT else c
        for c in attack.constraints
    ]
    return HarnessAttack.from_attack(attack)


__all__ = ["CachedSentenceEncoder", "HarnessAttack", "LRUCache", "accelerate",
           "caching_view", "probe_calls", "probe_is_exact", "row_key", "words_cache"]
