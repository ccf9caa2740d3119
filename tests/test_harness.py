"""rsmi.attacks.harness: the exact harness caches change no record, only the time.

Attacks run on a tiny BERT built here with the tiny resources of tests/test_attack.py (its
fixtures are imported) and the local MiniLM sentence encoder. Texts of more than 15 words make
the sentence encoder encode (shorter ones skip it by TextDefender's window rule), and the 30 %
cap on modified words makes the cheap-constraint short cut fire.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from rsmi.attacks import AttackConfig, read_records, run_attack
from test_attack import resources, tiny_classifier, tokenizer_module  # noqa: F401 - fixtures

LONG = [
    ("the plot is boring and the acting is bad and dull but the music is good and the story "
     "is weak and the ending is terrible", 0),
    ("a gorgeous witty seductive movie that is good and charming with a smart script and "
     "lovely music and a great cast and a fine story", 1),
    ("an utterly charming and hilarious film with a great cast and a clever plot and good fun "
     "with a smart script and lovely music", 1),
    ("a tired predictable offensive waste of time and money with a weak plot and bad acting "
     "and a dull story and terrible music", 0),
    ("good fun", 1),
    ("the story is weak and the ending is terrible and the acting is poor", 0),
]
TIMING = ("wall_s", "model_s", "seconds", "attack_time_s", "wall_time_s", "created")


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in TIMING}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _sbert(res):
    from rsmi.attacks.recipes import _sentence_encoder

    return _sentence_encoder(res, threshold=0.84, metric="angular",
                             compare_against_original=False, window_size=15,
                             skip_text_shorter_than_window=True)


# ----------------------------------------------------------------------------- the caches


def test_lru_cache_is_bounded_and_evicts_the_least_recently_used():
    from rsmi.attacks.harness import LRUCache

    cache = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recent
    cache.put("c", 3)
    assert "b" not in cache and "a" in cache and "c" in cache and len(cache) == 2
    assert cache.get("b") is None
    assert (cache.hits, cache.misses) == (1, 1)
    with pytest.raises(ValueError, match="at least 1"):
        LRUCache(0)


def test_cached_rows_are_the_floats_the_encoder_computes(resources):  # noqa: F811
    from rsmi.attacks.harness import CachedSentenceEncoder, probe_calls

    base = _sbert(resources)
    cached = CachedSentenceEncoder(base)
    assert cached.enabled
    calls = probe_calls()
    windows = calls[0][:8] + ["a good film", "the film is good", "a good film"] * 3
    for batch in (*calls, windows, calls[0][::-1], windows):
        np.testing.assert_array_equal(cached.encode(batch), base.encode(batch))
    assert cached.cache.hits > 0  # repeats within and across calls came from the cache
    # The same text in other batches: other floats (what the key must tell apart).
    first, second, alone = (base.encode(c)[-1] for c in calls[:3])
    assert not np.array_equal(first, second) and not np.array_equal(first, alone)


def test_a_wrong_key_returns_wrong_floats_and_the_probe_catches_it(resources):  # noqa: F811
    """The comparison the tests and the probe make does see a cache that answers a row with
    another row's floats: a key that ignores padding (the padded length) mixes up the short
    text's two encodings."""
    from rsmi.attacks import harness

    def unpadded_ids(features, i):  # deliberately wrong: drops the padding from the key
        mask = features["attention_mask"][i].bool()
        return features["input_ids"][i][mask].numpy().tobytes()

    model = _sbert(resources).model
    wrong = harness.caching_view(model, harness.LRUCache(100), key=unpadded_ids)
    right = harness.caching_view(model, harness.LRUCache(100))
    first, second = harness.probe_calls()[:2]
    for view in (wrong, right):
        np.testing.assert_array_equal(view.encode(first), model.encode(first))
    # The short text again, at another padded length: the wrong key answers the first floats.
    assert not np.array_equal(wrong.encode(second), model.encode(second))
    np.testing.assert_array_equal(right.encode(second), model.encode(second))
    assert harness.probe_is_exact(model)
    assert not harness.probe_is_exact(model, unpadded_ids)
    assert not harness.CachedSentenceEncoder(_sbert(resources), key=unpadded_ids).enabled


def test_a_call_whose_candidates_are_all_shorter_than_the_window_encodes_nothing(resources):  # noqa: F811
    from textattack.shared import AttackedText

    from rsmi.attacks.harness import CachedSentenceEncoder

    cached = CachedSentenceEncoder(_sbert(resources))
    cached.encode = None  # any encoding would fail
    start = AttackedText("the movie is good")
    candidates = [start.replace_word_at_index(3, w) for w in ("great", "fine")]
    kept = cached._check_constraint_many(candidates, start)
    assert list(kept) == candidates
    assert [c.attack_attrs["similarity_score"] for c in candidates] == [1.0, 1.0]


def test_words_cache_only_inside_a_harness_attack():
    from textattack.shared import AttackedText
    from textattack.shared import attacked_text as module

    from rsmi.attacks import harness

    with harness.words_cache():
        inside = AttackedText("it's a well-made film, really").words
        assert module.words_from_text("it's a well-made film, really") == inside
        before = harness._WORDS.hits
        assert AttackedText("it's a well-made film, really").words == inside
        assert harness._WORDS.hits == before + 1
    before = harness._WORDS.hits
    assert AttackedText("it's a well-made film, really").words == inside
    assert harness._WORDS.hits == before  # outside: TextAttack's own function


# ----------------------------------------------------------------------------- whole attacks


@pytest.mark.parametrize("recipe", ["textfooler", "pwws"])
@pytest.mark.parametrize("model", ["base", "rsmi"])
def test_attacks_give_identical_records_with_and_without_the_caches(
    recipe, model, resources, tokenizer_module, tmp_path, monkeypatch  # noqa: F811
):
    from rsmi.attacks import recipes
    from rsmi.attacks.harness import CachedSentenceEncoder

    built = []
    original = recipes.accelerate
    monkeypatch.setattr(recipes, "accelerate", lambda attack: built.append(original(attack))
                        or built[-1])
    settings = ({"noise_std": 0.0, "num_masks": 0, "k0": 1} if model == "base"
                else {"k0": 1, "num_masks": 1, "saliency_top_k": 2})
    out = {}
    for harness_cache in (False, True):
        clf = tiny_classifier(tokenizer_module, **settings)
        cfg = AttackConfig(recipe=recipe, num_examples=len(LONG), batch_size=8,
                           harness_cache=harness_cache)
        out[harness_cache] = tmp_path / str(harness_cache)
        run_attack(clf, LONG, cfg, out[harness_cache], resources=resources)
    old, new = (read_records(out[h] / "examples.jsonl") for h in (False, True))
    assert _strip(new) == _strip(old)
    summaries = [json.loads((out[h] / "summary.json").read_text()) for h in (False, True)]
    assert _strip(summaries[1]) == _strip(summaries[0])
    assert "harness_cache" not in summaries[1]["config"]  # how fast, not what: not recorded
    run_json = [json.loads((out[h] / "run.json").read_text()) for h in (False, True)]
    assert run_json[0] == run_json[1]  # the same identity: either may resume the other
    assert any(r["result_type"] != "skipped" for r in new)  # something was attacked
    # The caches were used, not just present.
    (attack,) = built
    (encoder,) = [c for c in attack.constraints if isinstance(c, CachedSentenceEncoder)]
    assert encoder.enabled and encoder.cache.misses > 0
    if recipe == "pwws":
        assert encoder.cache.hits > 0  # the search meets windows of the saliency pass


def test_resume_with_the_other_switch_is_allowed(resources, tokenizer_module, tmp_path):  # noqa: F811
    clf = tiny_classifier(tokenizer_module, noise_std=0.0, num_masks=0, k0=1)
    first = AttackConfig(recipe="textfooler", num_examples=2, shard=(0, 1), harness_cache=False)
    run_attack(clf, LONG, first, tmp_path, resources=resources)
    again = first.replace(num_examples=2, harness_cache=True)
    summary = run_attack(clf, LONG, again, tmp_path, resources=resources, resume=True)
    assert summary["complete"] and summary["num_examples"] == 2
    assert AttackConfig(recipe="pwws", harness_cache=False).identity() == \
        AttackConfig(recipe="pwws").identity()


def test_the_hidden_flag_turns_the_caches_off(capsys):
    from rsmi.cli.main import build_parser

    parser = build_parser()
    base = ["attack", "--model", "m", "--data", "mr", "--recipe", "pwws", "--out", "o"]
    assert parser.parse_args(base).harness_cache is True
    assert parser.parse_args([*base, "--no-harness-cache"]).harness_cache is False
    with pytest.raises(SystemExit):
        parser.parse_args(["attack", "--help"])
    assert "harness" not in capsys.readouterr().out
