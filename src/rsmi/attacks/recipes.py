"""Attack recipes composed from TextAttack 0.3.11 parts, with local resources only.

Each builder returns a ``textattack.Attack`` = goal function + constraints + transformation +
search method, exactly as the published recipe composes it (TextAttack's
``attack_recipes``), except for the resources that TextAttack would download:

* counter-fitted word vectors → ``resources.word_embedding()``;
* the Universal Sentence Encoder → SBERT on the local MiniLM sentence encoder
  (``resources.sentence_encoder_path``), same metric, threshold and window;
* WordNet, stopwords, POS tagger → NLTK data under ``resources.nltk_data``;
* ``bert-base-uncased`` (BERT-Attack, BAE) → the masked LM at ``mlm`` (none is packaged).

A preset (:data:`rsmi.attacks.config.PRESET_SETTINGS`) then imposes its protocol on every
recipe: TextDefender's cap of 30 % modified words, K = 50 candidates per word, query budget
K × #words, and one sentence-similarity constraint in place of the recipe's own.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from rsmi.attacks._textattack import require_textattack
from rsmi.attacks.config import AttackConfig, Preset
from rsmi.attacks.harness import accelerate
from rsmi.errors import ConfigError, ModelLoadError

require_textattack()
from textattack import Attack  # noqa: E402
from textattack.constraints.grammaticality import PartOfSpeech  # noqa: E402
from textattack.constraints.overlap import LevenshteinEditDistance, MaxWordsPerturbed  # noqa: E402
from textattack.constraints.pre_transformation import (  # noqa: E402
    RepeatModification,
    StopwordModification,
)
from textattack.constraints.semantics import WordEmbeddingDistance  # noqa: E402
from textattack.constraints.semantics.sentence_encoders import SBERT, SentenceEncoder  # noqa: E402
from textattack.goal_functions import UntargetedClassification  # noqa: E402
from textattack.search_methods import GreedyWordSwapWIR  # noqa: E402
from textattack.shared.utils import logger as textattack_logger  # noqa: E402
from textattack.transformations import (  # noqa: E402
    CompositeTransformation,
    WordSwap,
    WordSwapEmbedding,
    WordSwapHomoglyphSwap,
    WordSwapMaskedLM,
    WordSwapNeighboringCharacterSwap,
    WordSwapRandomCharacterDeletion,
    WordSwapRandomCharacterInsertion,
    WordSwapRandomCharacterSubstitution,
    WordSwapWordNet,
)

logger = logging.getLogger(__name__)


class _RSMIModelIsCompatible(logging.Filter):
    """Drops TextAttack's "Unknown if model of class <class 'rsmi....'> compatible with goal
    function" warning: TextAttack only knows its own wrappers' classes, and rsmi's wrapper returns
    the class probabilities that untargeted classification needs (tested in tests/test_attack.py).
    Every other TextAttack message passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("Unknown if model of class <class 'rsmi.")
                    and "compatible with goal function" in message)


# TextAttack logs through its own logger (textattack.shared.utils.install, propagate=False): a
# filter on the "textattack" parent would never see its records.
_TEXTATTACK_LOGGER = textattack_logger
if not any(isinstance(f, _RSMIModelIsCompatible) for f in _TEXTATTACK_LOGGER.filters):
    _TEXTATTACK_LOGGER.addFilter(_RSMIModelIsCompatible())

# TextFooler's published stopword list is TextAttack's recipe list; other recipes use NLTK's.
TEXTFOOLER_ANGULAR = 0.840845057  # 1 - 0.5/π: TextFooler's USE threshold, corrected (TextAttack)


class OfflineWordSwapWordNet(WordSwapWordNet):
    """``WordSwapWordNet`` without its constructor's ``nltk.download("omw-1.4")`` call.

    English WordNet needs no Open Multilingual Wordnet; the data come from ``NLTK_DATA``.
    """

    def __init__(self, language: str = "eng") -> None:  # noqa: D107 - see class docstring
        from nltk.corpus import wordnet

        if language not in wordnet.langs():
            raise ConfigError(f"WordNet language {language!r} is not among {wordnet.langs()}")
        self.language = language


class OfflineWordSwapHomoglyphSwap(WordSwapHomoglyphSwap):
    """``WordSwapHomoglyphSwap`` that works with TextAttack 0.3.11's wheel.

    The wheel lacks ``shared/intentional_homoglyphs.txt``, which the constructor reads *after*
    setting ``self.homos`` and ``self.random_one`` (all that TextBugger's Sub-C word swap uses);
    the intentional-homoglyph map only serves the "bad characters" perturbation search.
    """

    def __init__(self, random_one: bool = False, **kwargs: Any) -> None:  # noqa: D107
        try:
            super().__init__(random_one=random_one, **kwargs)
        except FileNotFoundError:
            if not getattr(self, "homos", None):
                raise
            self.homos_intentional = {}


def _sentence_encoder(resources: Any, **kwargs: Any) -> SBERT:
    """SBERT on the local sentence encoder: the offline stand-in for the USE."""
    return _load_sbert(str(resources.sentence_encoder_path), tuple(sorted(kwargs.items())))


@functools.lru_cache(maxsize=8)
def _load_sbert(path: str, kwargs: tuple[tuple[str, Any], ...]) -> SBERT:
    return SBERT(model_name=path, **dict(kwargs))


def _load_mlm(path: str) -> tuple[Any, Any]:
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    try:
        model = AutoModelForMaskedLM.from_pretrained(path, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, use_fast=True)
    except OSError as exc:
        raise ModelLoadError(
            f"cannot load a masked language model from {path!r} ({exc}): give --mlm a local "
            "directory with a masked-LM checkpoint (config.json, weights, tokenizer files)"
        ) from exc
    model.eval()
    return model, tokenizer


def _mlm_max_length(model: Any) -> int:
    return int(min(512, getattr(model.config, "max_position_embeddings", 512)))


def _textfooler(goal: UntargetedClassification, resources: Any, cfg: AttackConfig) -> Attack:
    embedding = resources.word_embedding()
    constraints = [
        RepeatModification(),
        StopwordModification(stopwords=resources.stopwords()),  # TextFooler's list
        WordEmbeddingDistance(embedding=embedding, min_cos_sim=0.5),
        PartOfSpeech(allow_verb_noun_swap=True),
        _sentence_encoder(
            resources,
            threshold=TEXTFOOLER_ANGULAR,
            metric="angular",
            compare_against_original=False,
            window_size=15,
            skip_text_shorter_than_window=True,
        ),
    ]
    transformation = WordSwapEmbedding(max_candidates=50, embedding=embedding)
    return Attack(goal, constraints, transformation, GreedyWordSwapWIR(wir_method="delete"))


def _pwws(goal: UntargetedClassification, resources: Any, cfg: AttackConfig) -> Attack:
    constraints = [RepeatModification(), StopwordModification(stopwords=resources.stopwords())]
    return Attack(
        goal, constraints, OfflineWordSwapWordNet(), GreedyWordSwapWIR("weighted-saliency")
    )


def _deepwordbug(goal: UntargetedClassification, resources: Any, cfg: AttackConfig) -> Attack:
    transformation = CompositeTransformation(
        [
            WordSwapNeighboringCharacterSwap(),
            WordSwapRandomCharacterSubstitution(),
            WordSwapRandomCharacterDeletion(),
            WordSwapRandomCharacterInsertion(),
        ]
    )
    constraints = [
        RepeatModification(),
        StopwordModification(stopwords=resources.stopwords()),
        LevenshteinEditDistance(30),
    ]
    return Attack(goal, constraints, transformation, GreedyWordSwapWIR())


def _textbugger(goal: UntargetedClassification, resources: Any, cfg: AttackConfig) -> Attack:
    transformation = CompositeTransformation(
        [
            WordSwapRandomCharacterInsertion(
                random_one=True, letters_to_insert=" ", skip_first_char=True, skip_last_char=True
            ),
            WordSwapRandomCharacterDeletion(
                random_one=True, skip_first_char=True, skip_last_char=True
            ),
            WordSwapNeighboringCharacterSwap(
                random_one=True, skip_first_char=True, skip_last_char=True
            ),
            OfflineWordSwapHomoglyphSwap(),
            WordSwapEmbedding(max_candidates=5, embedding=resources.word_embedding()),
        ]
    )
    constraints = [
        RepeatModification(),
        StopwordModification(stopwords=resources.stopwords()),
        _sentence_encoder(resources, threshold=0.8, metric="angular"),
    ]
    return Attack(goal, constraints, transformation, GreedyWordSwapWIR(wir_method="delete"))


def _bert_attack(goal: UntargetedClassification, resources: Any, cfg: AttackConfig) -> Attack:
    model, tokenizer = _load_mlm(str(cfg.mlm))
    transformation = WordSwapMaskedLM(
        method="bert-attack",
        masked_language_model=model,
        tokenizer=tokenizer,
        max_length=_mlm_max_length(model),
        max_candidates=8,
    )
    constraints = [
        RepeatModification(),
        StopwordModification(stopwords=resources.stopwords()),
        MaxWordsPerturbed(max_percent=0.4),
        _sentence_encoder(
            resources, threshold=0.2, metric="cosine", compare_against_original=True, window_size=None
        ),
    ]
    return Attack(goal, constraints, transformation, GreedyWordSwapWIR(wir_method="unk"))


def _bae(goal: UntargetedClassification, resources: Any, cfg: AttackConfig) -> Attack:
    model, tokenizer = _load_mlm(str(cfg.mlm))
    transformation = WordSwapMaskedLM(
        method="bae",
        masked_language_model=model,
        tokenizer=tokenizer,
        max_length=_mlm_max_length(model),
        max_candidates=50,
        min_confidence=0.0,
    )
    constraints = [
        RepeatModification(),
        StopwordModification(stopwords=resources.stopwords()),
        PartOfSpeech(allow_verb_noun_swap=True),
        _sentence_encoder(
            resources,
            threshold=0.936338023,
            metric="cosine",
            compare_against_original=True,
            window_size=15,
            skip_text_shorter_than_window=True,
        ),
    ]
    return Attack(goal, constraints, transformation, GreedyWordSwapWIR(wir_method="delete"))


BUILDERS: dict[str, Callable[[UntargetedClassification, Any, AttackConfig], Attack]] = {
    "textfooler": _textfooler,
    "pwws": _pwws,
    "deepwordbug": _deepwordbug,
    "textbugger": _textbugger,
    "bert-attack": _bert_attack,
    "bae": _bae,
}


def build_attack(model_wrapper: Any, cfg: AttackConfig, resources: Any) -> Attack:
    """The attack ``cfg.recipe`` against ``model_wrapper`` under ``cfg.preset``.

    The goal function is untargeted classification with TextAttack's output cache only when
    ``cfg.cache`` (a randomized model must be resampled at every query). A per-example query
    budget (TextDefender) is set by :func:`set_query_budget` before each example. With
    ``cfg.harness_cache`` (the default) the attack runs with the exact harness caches of
    :mod:`rsmi.attacks.harness`; the results are the same without them.
    """
    goal = UntargetedClassification(
        model_wrapper, use_cache=cfg.cache, model_batch_size=cfg.batch_size
    )
    attack = BUILDERS[cfg.recipe](goal, resources, cfg)
    _apply_preset(attack, cfg.preset_settings, resources)
    return accelerate(attack) if cfg.harness_cache else attack


def _apply_preset(attack: Attack, preset: Preset, resources: Any) -> None:
    if preset.candidates is not None:
        cap_candidates(attack.transformation, preset.candidates)
    if preset.sim_threshold is not None:
        attack.constraints = [c for c in attack.constraints if not isinstance(c, SentenceEncoder)]
        attack.constraints.append(
            _sentence_encoder(
                resources,
                threshold=preset.sim_threshold,
                metric=preset.sim_metric,
                compare_against_original=False,
                window_size=preset.sim_window,
                skip_text_shorter_than_window=True,
            )
        )
    if preset.max_modify_ratio is not None:
        attack.constraints = [c for c in attack.constraints if not isinstance(c, MaxWordsPerturbed)]
        attack.constraints.append(MaxWordsPerturbed(max_percent=preset.max_modify_ratio))


def cap_candidates(transformation: Any, k: int) -> None:
    """At most ``k`` replacement candidates per word, for every word swap in ``transformation``."""
    parts = (
        transformation.transformations
        if isinstance(transformation, CompositeTransformation)
        else [transformation]
    )
    for part in parts:
        if hasattr(part, "max_candidates"):
            part.max_candidates = min(int(part.max_candidates), k)
        elif isinstance(part, WordSwap):
            original = part._get_replacement_words

            def capped(word: str, *args: Any, _original: Callable = original, **kw: Any) -> list:
                return list(_original(word, *args, **kw))[:k]

            part._get_replacement_words = capped


def set_query_budget(attack: Attack, preset: Preset, num_words: int) -> float:
    """Set TextDefender's budget ``K × #words`` (unlimited without a preset budget)."""
    budget = float("inf") if preset.budget_per_word is None else preset.budget_per_word * num_words
    attack.goal_function.query_budget = budget
    return budget


__all__ = ["BUILDERS", "OfflineWordSwapWordNet", "build_attack", "cap_candidates", "set_query_budget"]
