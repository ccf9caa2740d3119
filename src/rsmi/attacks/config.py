"""Attack-run settings: :class:`AttackConfig`, the recipes and the evaluation presets.

Pure Python: nothing here imports TextAttack, so the CLI can validate a command line (and
``rsmi.attacks`` can be imported) without paying for, or needing, the ``rsmi[attack]`` extra.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from rsmi.errors import ConfigError

RECIPES: dict[str, str] = {
    "textfooler": "TextFooler (Jin et al. 2020): counter-fitted embedding swap, delete-importance "
    "greedy search, POS + embedding-cosine ≥ 0.5 + sentence-similarity constraints",
    "pwws": "PWWS (Ren et al. 2019): WordNet synonyms, probability-weighted word saliency",
    "deepwordbug": "DeepWordBug (Gao et al. 2018): character edits, Levenshtein ≤ 30",
    "textbugger": "TextBugger (Li et al. 2019): character bugs + embedding swap, sentence similarity",
    "bert-attack": "BERT-Attack (Li et al. 2020): masked-LM candidates (needs --mlm PATH)",
    "bae": "BAE-R (Garg & Ramakrishnan 2020): masked-LM replacement (needs --mlm PATH)",
}
MLM_RECIPES = ("bert-attack", "bae")

PRESETS: dict[str, str] = {
    "textdefender": "TextDefender (Li et al. 2021): ≤ 30 % words modified, K = 50 candidates per "
    "word, query budget K × #words, sentence similarity ≥ 0.840845 (angular, 15-word window), "
    "examples with > 4 words",
    "recipe": "each recipe's own published constraints",
    "authors": "what the RSMI authors' released attack script does (for comparison only): each "
    "recipe's own constraints, no cap on modified words, no query budget, TextAttack's output "
    "cache on, examples from the whole split (no > 4-word filter), texts cut to their first 256 "
    "space-separated tokens",
}


@dataclass(frozen=True)
class Preset:
    """Constraints an evaluation protocol puts on every recipe.

    Attributes:
        max_modify_ratio: most words changed, as a share of the words (None: recipe's own).
        candidates: K, most replacement candidates per word (None: recipe's own).
        budget_per_word: query budget = ``budget_per_word × #words`` (None: unlimited).
        sim_threshold / sim_metric / sim_window: the sentence-similarity constraint that
            replaces the recipe's own (None: recipe's own).
        min_words: examples must have more than this many words.
        max_length / long_max_length: the max length the protocol used for short texts /
            long documents (``--max-length 128`` reproduces it; by default an attack runs the
            model at its own max length).
        cache: TextAttack's output cache when ``--cache``/``--no-cache`` is not given.
        cut_to_max_length: cut each text to the words the model reads (``max_length``
            tokens) before attacking, when ``--[no-]cut-to-max-length`` is not given.
        cut_words: cut each text to its first ``cut_words`` tokens separated by a single
            space, as the RSMI authors' script does (None: no cut).
    """

    name: str
    max_modify_ratio: float | None = None
    candidates: int | None = None
    budget_per_word: int | None = None
    sim_threshold: float | None = None
    sim_metric: str = "angular"
    sim_window: int | None = None
    min_words: int = 0
    max_length: int | None = None
    long_max_length: int | None = None
    cache: bool = False
    cut_to_max_length: bool = False
    cut_words: int | None = None


PRESET_SETTINGS: dict[str, Preset] = {
    "textdefender": Preset(
        name="textdefender",
        max_modify_ratio=0.3,
        candidates=50,
        budget_per_word=50,
        sim_threshold=0.840845057,
        sim_metric="angular",
        sim_window=15,
        min_words=4,
        max_length=128,
        long_max_length=256,
    ),
    "recipe": Preset(name="recipe"),
    # Han8931/rsmi_nlp textattack_main.py: TextFoolerJin2019/PWWSRen2019.build (stock recipe,
    # use_cache default True), q_limit 0 (no budget), max_rate unused, HF train_test_split of
    # the whole test split, `" ".join(orig.split(" ")[:max_seq_length])` with 256.
    "authors": Preset(name="authors", min_words=0, cache=True, cut_words=256),
}

# A split whose mean length exceeds this many words is "long documents" (max length 256).
LONG_DOCUMENT_WORDS = 100
DEFAULT_NUM_EXAMPLES = 1000


@dataclass(frozen=True)
class AttackConfig:
    """Everything that determines the results of an attack run (recorded in ``summary.json``).

    Args:
        recipe: one of :data:`RECIPES`.
        preset: one of :data:`PRESETS`.
        num_examples: examples to sample from the split (fewer when the split has fewer).
        seeds: attack seeds; a run per seed (mean ± std over them for randomized models).
        sample_seed: seed of the example sample (the same examples for every attack seed).
        eot: ``m`` of the adaptive attack: each query is the mean probability of ``m``
            independent stochastic evaluations (1 = plain query).
        eot_margin: ``δ`` of the adaptive margin-EOT attacker (:mod:`rsmi.attacks.goals`): the
            search succeeds only when the query's mean probabilities are wrong by more than
            ``δ`` (``max_{c≠y} p̄_c − p̄_y > δ``); 0 = TextAttack's untargeted goal exactly. A
            config without it (0) is recorded exactly as before the field existed; the
            identity always holds it, so a run recorded without it resumes as ``δ = 0``.
        transfer: attack the noise-off, mask-off model and re-score with the smoothed model.
        cache: TextAttack's output cache (None: the preset's, off except for ``authors``: a
            randomized model must be resampled at every query).
        cut_to_max_length: cut each text to the longest word prefix whose tokenization fits
            the model's ``max_length`` before attacking, so that no query is spent on (and no
            cap or budget counts) words the model never reads (None: the preset's, off for
            every preset: TextDefender attacks the full text and lets the model truncate).
        mlm: path of a masked language model (bert-attack, bae).
        batch_size: texts per model call.
        max_length: tokens the model reads per text (None: the model's own, its
            ``RSMIConfig.max_length``; the preset's ``max_length`` is what the published
            protocol used, applied only when asked for). The recorded config holds the
            effective value.
        model_max_length: the model's own max length, recorded beside ``max_length`` by the
            run (a run at another max length is warned about); not part of the identity.
        shard: ``(i, n)``: attack examples ``i, i + n, i + 2n, ...`` of the sample.
        model_overrides: :class:`rsmi.RSMIConfig` fields set on the model before the attack
            (e.g. ``{"num_masks": 0}``: attack the same weights with randomized smoothing
            only); recorded, and a resumed or merged run must use the same.
        dtype: the effective compute precision of the attacked model (``float32``,
            ``bfloat16``, ``float16``; :mod:`rsmi.precision`); part of the run identity.
        engine: where the attacked model's passes without gradient run (``torch``,
            ``openvino``, ``onnx``, ...; :mod:`rsmi.engine`); part of the run identity (a run
            recorded without it ran in ``torch``).
        fresh_draws: ``R``: classify each record's original and final text again with ``R``
            fresh draws right after it is attacked (:mod:`rsmi.attacks.fresh`, the deployed
            threat models; 0 = off). It adds fields to the records and changes none of the
            attack's, so it is not part of the run identity, and a config without it (0) is
            recorded exactly as before the field existed.
        harness_cache: run the attack with the exact harness caches of
            :mod:`rsmi.attacks.harness` (sentence-encoder rows cached by content, the cheap
            constraints asked first). The records are the same either way, so it is neither
            recorded nor part of the run identity (a run may resume with either); ``False``
            (hidden flag ``--no-harness-cache``) runs TextAttack's own path, for comparison.
        name: the attacked model's name in reports (None: its directory's name, e.g.
            ``base`` for ``runs/mr/base/seed-0``); e.g. the study's ``freelb-dev``, whose
            seed-0 model is a sweep run's directory. Recorded when given; not part of the
            run identity (a label, not a setting).
    """

    recipe: str
    preset: str = "textdefender"
    num_examples: int = DEFAULT_NUM_EXAMPLES
    seeds: tuple[int, ...] = (0,)
    sample_seed: int = 0
    eot: int = 1
    transfer: bool = False
    cache: bool | None = None
    cut_to_max_length: bool | None = None
    mlm: str | None = None
    batch_size: int = 32
    max_length: int | None = None
    model_max_length: int | None = None
    shard: tuple[int, int] = (0, 1)
    model: str | None = None
    data: str | None = None
    split: str = "test"
    model_overrides: dict[str, Any] = field(default_factory=dict)
    dtype: str = "float32"
    engine: str = "torch"
    extra: dict[str, Any] = field(default_factory=dict)
    fresh_draws: int = 0
    harness_cache: bool = True
    eot_margin: float = 0.0
    name: str | None = None

    def __post_init__(self) -> None:
        if self.recipe not in RECIPES:
            raise ConfigError(
                f"unknown recipe {self.recipe!r}: choose one of {', '.join(RECIPES)}"
            )
        if self.preset not in PRESETS:
            raise ConfigError(f"unknown preset {self.preset!r}: choose one of {', '.join(PRESETS)}")
        # Unset switches take the preset's value: the recorded config says what ran.
        for name in ("cache", "cut_to_max_length"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, getattr(PRESET_SETTINGS[self.preset], name))
        if self.recipe in MLM_RECIPES and not self.mlm:
            raise ConfigError(
                f"recipe {self.recipe} draws its candidates from a masked language model and no "
                "masked LM is packaged offline: pass --mlm PATH, a local directory holding a "
                "BERT-style masked LM (e.g. bert-base-uncased saved with save_pretrained)"
            )
        if self.num_examples < 1:
            raise ConfigError(f"num_examples={self.num_examples} is invalid: it must be ≥ 1")
        if not self.seeds:
            raise ConfigError("seeds is empty: give at least one attack seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds {list(self.seeds)} repeat a seed: give distinct seeds")
        if self.eot < 1:
            raise ConfigError(f"eot={self.eot} is invalid: it must be ≥ 1 (1 = plain queries)")
        if self.transfer and self.eot > 1:
            raise ConfigError(
                "--eot has no effect with --transfer (the surrogate is deterministic): drop one"
            )
        self._check_margin()
        if self.batch_size < 1:
            raise ConfigError(f"batch_size={self.batch_size} is invalid: it must be ≥ 1")
        if self.name is not None and (not isinstance(self.name, str) or not self.name.strip()):
            raise ConfigError(f"name={self.name!r} is invalid: give a non-empty model name "
                              "for reports, or leave it out (the model directory's name)")
        if not isinstance(self.fresh_draws, int) or self.fresh_draws < 0:
            raise ConfigError(
                f"fresh_draws={self.fresh_draws!r} is invalid: give R ≥ 1 fresh draws per text "
                "(20 is the usual), or 0 for none"
            )
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise ConfigError(
                f"dtype={self.dtype!r} is invalid: an attack config records the effective "
                "compute dtype (float32, bfloat16 or float16; resolve 'auto' first)"
            )
        from rsmi.config import RSMIConfig
        from rsmi.engine import normalize_engine

        object.__setattr__(self, "engine", normalize_engine(self.engine))

        known = {f.name for f in dataclasses.fields(RSMIConfig)}
        unknown = sorted(set(self.model_overrides) - known)
        if unknown:
            raise ConfigError(
                f"model_overrides {unknown} are not RSMIConfig fields: use some of "
                f"{', '.join(sorted(known))}"
            )
        i, n = self.shard
        if n < 1 or not 0 <= i < n:
            raise ConfigError(f"shard {i}/{n} is invalid: use i/n with 0 ≤ i < n")

    def _check_margin(self) -> None:
        margin = self.eot_margin
        if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not (
            math.isfinite(margin) and 0.0 <= margin < 1.0
        ):
            raise ConfigError(
                f"eot_margin={margin!r} is invalid: the margin δ of the adaptive attacker must "
                "lie in [0, 1) (0 = plain EOT goal; e.g. --eot-margin 0.2)"
            )
        object.__setattr__(self, "eot_margin", float(margin))
        if self.transfer and margin > 0:
            raise ConfigError(
                "--eot-margin has no effect with --transfer (the search runs on the deterministic "
                "surrogate and the smoothed model re-scores its final text once): drop one"
            )

    @property
    def attacker(self) -> str:
        """Who attacked, for reports: ``direct``, ``eot m=4``,
        ``adaptive margin-EOT m=8 δ=0.2`` or ``transfer``."""
        return attacker_label(self.eot, self.eot_margin, self.transfer)

    @property
    def preset_settings(self) -> Preset:
        return PRESET_SETTINGS[self.preset]

    def replace(self, **changes: Any) -> AttackConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["seeds"] = list(self.seeds)
        out["shard"] = list(self.shard)
        if not self.fresh_draws:  # runs without it are recorded as before the field existed
            out.pop("fresh_draws")
        out.pop("harness_cache")  # how fast, not what: the records are the same either way
        if not self.eot_margin:  # likewise: δ = 0 is the attack as it ran before the field
            out.pop("eot_margin")
        if self.name is None:  # likewise: the directory's name, as before the field
            out.pop("name")
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AttackConfig:
        data = dict(data)
        data["seeds"] = tuple(data.get("seeds", (0,)))
        data["shard"] = tuple(data.get("shard", (0, 1)))
        # Runs recorded before these switches existed ran without them.
        data.setdefault("cache", False)
        data.setdefault("cut_to_max_length", False)
        return cls(**data)

    def identity(self) -> dict[str, Any]:
        """The fields a resumed or merged run must share (batch size does not change results)."""
        out = self.to_dict()
        # model_max_length is what the model says, recorded; max_length is what ran.
        # fresh_draws adds fields to the records and changes none of the attack's.
        for key in ("batch_size", "seeds", "shard", "model_max_length"):
            out.pop(key)
        out.pop("fresh_draws", None)
        out.pop("name", None)  # a label for reports: a run may be renamed when resumed
        out["eot_margin"] = self.eot_margin  # always compared: a run without it ran at δ = 0
        return out


def attacker_label(eot: int, eot_margin: float = 0.0, transfer: bool = False) -> str:
    """The attacker of a run in words (``summary.json``'s ``attacker``)."""
    if transfer:
        return "transfer"
    if eot_margin:
        return f"adaptive margin-EOT m={int(eot)} δ={float(eot_margin):g}"
    if int(eot) > 1:
        return f"eot m={int(eot)}"
    return "direct"


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` → ``(i, n)``."""
    try:
        i_text, n_text = text.split("/")
        i, n = int(i_text), int(n_text)
    except ValueError:
        raise ConfigError(f"--shard {text!r} is invalid: write i/n, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise ConfigError(f"--shard {text!r} is invalid: use i/n with 0 ≤ i < n")
    return i, n


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"0,1,2"`` → ``(0, 1, 2)``."""
    try:
        seeds = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise ConfigError(f"--seeds {text!r} is invalid: write integers separated by commas") from None
    if not seeds:
        raise ConfigError("--seeds is empty: write e.g. 0,1,2")
    return seeds


def default_max_length(preset: Preset, mean_words: float) -> int | None:
    """The preset's max length for a split of ``mean_words`` words per text."""
    if preset.max_length is None:
        return None
    if mean_words > LONG_DOCUMENT_WORDS and preset.long_max_length is not None:
        return preset.long_max_length
    return preset.max_length


def is_finite(x: float) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)
