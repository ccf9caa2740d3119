"""Seeding "text-v1": a text's noise and mask draws follow (seed, text, occurrence), not its row.

The scheme is part of every result's identity: an attack run, a merge or a cached pipeline
evaluation made under the old scheme ("index": the row of the input in the call) is never
continued or reused under the new one.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from rsmi import RSMIClassifier, StreamSeed
from rsmi.errors import ResumeError, StoreError
from rsmi.inference import LEGACY_SEEDING, SEEDING, recorded_seeding, row_keys
from test_reliability import run_cli, toy_rows, write_csv

ATOL = 1e-6  # differently padded batches round floats differently (~1e-7); the draws are equal


@pytest.fixture
def clf(make_classifier):
    return make_classifier(noise_std=0.3, k1=20, max_length=32)


def assert_same(pred, i, other, j) -> None:
    """Row ``i`` of ``pred`` and row ``j`` of ``other`` are the same answer."""
    assert pred.labels[i] == other.labels[j]
    np.testing.assert_array_equal(pred.votes[i], other.votes[j])
    np.testing.assert_allclose(pred.probs[i], other.probs[j], rtol=0, atol=ATOL)
    assert pred.second_step[i] == other.second_step[j]
    assert pred.forward_passes[i] == other.forward_passes[j]


def test_the_classifier_names_its_scheme():
    assert SEEDING == "text-v1" and LEGACY_SEEDING == "index"
    assert RSMIClassifier.seeding == SEEDING
    assert recorded_seeding({}) == "index" and recorded_seeding({"seeding": SEEDING}) == SEEDING


# ----------------------------------------------------------------------------- predict / certify
def test_a_text_gets_the_same_answer_wherever_it_stands(clf, texts):
    whole = clf.predict(texts, seed=7, batch_size=3)
    assert set(whole.second_step.tolist()) == {True, False}, "both steps must be exercised"
    for i, text in enumerate(texts):
        assert_same(clf.predict([text], seed=7), 0, whole, i)
    x, y = texts[0], texts[5]
    assert_same(clf.predict([x], seed=7), 0, clf.predict([y, x], seed=7), 1)
    assert_same(clf.predict([x, y], seed=7, batch_size=1), 0, clf.predict([y, x], seed=7), 1)
    # The seed still matters.
    assert not np.allclose(clf.predict([x], seed=8).probs, clf.predict([x], seed=7).probs)


def test_certify_follows_the_text_too(clf, texts):
    x, y = texts[0], texts[3]
    alone = clf.certify([x], n0=10, n=60, alpha=0.01, seed=4)
    after = clf.certify([y, x], n0=10, n=60, alpha=0.01, seed=4)
    np.testing.assert_array_equal(alone.counts[0], after.counts[1])
    assert alone.labels[0] == after.labels[1] and alone.p_lower[0] == after.p_lower[1]
    assert alone.forward_passes[0] == after.forward_passes[1]


def test_identical_texts_of_one_call_get_distinct_draws(clf, texts):
    x, y = texts[0], texts[1]
    twice = clf.predict([x, x], seed=3)
    assert not np.allclose(twice.probs[0], twice.probs[1])  # independent draws
    again = clf.predict([x, x], seed=3)
    np.testing.assert_array_equal(twice.probs, again.probs)  # and reproducible
    assert_same(twice, 0, clf.predict([x], seed=3), 0)  # the first copy is the text alone
    assert_same(twice, 1, clf.predict([x, y, x], seed=3), 2)  # the second, the second copy
    thrice = clf.certify([x, x, x], n0=10, n=100, alpha=0.01, seed=3)
    assert len({tuple(row) for row in thrice.counts.tolist()}) > 1
    keys, added = row_keys([x, y, x])
    assert len(set(keys)) == 3 and sorted(added.values()) == [1, 2]


def test_the_key_is_the_exact_string():
    (a, b, c), _ = row_keys(["good film", "good film ", "Good film"])
    assert len({a, b, c}) == 3  # no normalisation: the exact string, as documented
    assert row_keys(["good film"])[0] == [a]  # stable across calls


@pytest.fixture(scope="module")
def textattack_offline(tmp_path_factory):
    """TextAttack imported with test_attack's tiny offline resources (no download)."""
    from rsmi.attacks._textattack import load_textattack
    from test_attack import TinyResources

    return load_textattack(TinyResources(tmp_path_factory.mktemp("resources")))


def test_eot_copies_of_a_text_get_their_own_draws(clf, texts, textattack_offline):
    from rsmi.attacks.wrapper import RSMIModelWrapper

    seen = []
    predict = clf.predict

    def spy(batch, **kwargs):
        seen.append(predict(batch, **kwargs))
        return seen[-1]

    clf.predict = spy
    wrapper = RSMIModelWrapper(clf, eot=3, seed=1)
    wrapper.start_example(11)
    probs = wrapper.predict_probs([texts[0], texts[4]])
    rows = seen[0].probs.reshape(3, 2, -1)  # (evaluation, text, class)
    for t in range(2):
        assert len({tuple(np.round(rows[j, t], 9)) for j in range(3)}) == 3
    np.testing.assert_allclose(probs, rows.mean(axis=0))
    wrapper.start_example(11)
    np.testing.assert_array_equal(wrapper.predict_probs([texts[0], texts[4]]), probs)


def test_stream_seed_start_is_deprecated_and_ignored(clf, texts):
    with pytest.warns(DeprecationWarning, match="start is ignored"):
        old = StreamSeed(5, 3)
    np.testing.assert_array_equal(clf.predict(texts[:2], seed=old).probs,
                                  clf.predict(texts[:2], seed=5).probs)


# ----------------------------------------------------------------------------- the CLI streams
@pytest.fixture(scope="module")
def saved_model(tmp_path_factory, tokenizer):
    from conftest import make_tiny_bert
    from rsmi import RSMIConfig

    model = make_tiny_bert(tokenizer, layers=2, hidden=32, seed=3)
    clf = RSMIClassifier(model, tokenizer, RSMIConfig(max_length=32, k0=3, k1=4), ["neg", "pos"])
    return clf.save_pretrained(tmp_path_factory.mktemp("seeding") / "model")


def test_the_chunked_cli_answers_as_the_whole_list(saved_model, tmp_path, monkeypatch):
    from rsmi.cli._input import CHUNK_LINES

    # Every text several times, within a chunk and across chunks.
    lines = [f"the {'good' if i % 3 else 'awful'} film {i % 40}" for i in range(2 * CHUNK_LINES + 9)]
    path = tmp_path / "in.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    clf = RSMIClassifier.from_pretrained(saved_model, device="cpu")

    code, out, err = run_cli(["predict", "--model", str(saved_model), "--input", str(path),
                              "--seed", "11"], monkeypatch)
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    whole = clf.predict(lines, seed=11)
    assert [r["label"] for r in records] == whole.labels.tolist()
    assert [r["forward_passes"] for r in records] == whole.forward_passes.tolist()
    np.testing.assert_allclose([r["probs"]["pos"] for r in records], whole.probs[:, 1], atol=2e-6)

    code, out, err = run_cli(["certify", "--model", str(saved_model), "--input", str(path),
                              "--seed", "2", "--n0", "3", "--n", "8"], monkeypatch)
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    cert = clf.certify(lines, n0=3, n=8, seed=2)
    assert [list(r["counts"].values()) for r in records] == cert.counts.tolist()


# ----------------------------------------------------------------------------- identity on disk
def _attack_run(tmp_path, seeding):
    from rsmi.attacks import AttackConfig
    from rsmi.attacks.resume import RunIdentity

    run = tmp_path / "attack"
    run.mkdir(exist_ok=True)
    cfg = AttackConfig(recipe="deepwordbug", preset="recipe", num_examples=3, model="m")
    wanted = RunIdentity(cfg, num_selected=3, weights_sha256="a" * 64, examples_sha256="e" * 64,
                         rsmi_config={"noise_std": 0.2})
    meta = wanted.to_dict()
    assert meta["seeding"] == SEEDING
    if seeding is None:
        del meta["seeding"]  # written by an rsmi before the field existed
    else:
        meta["seeding"] = seeding
    (run / "run.json").write_text(json.dumps(meta))
    (run / "examples.jsonl").write_text(json.dumps({"index": 0, "result_type": "failed"}) + "\n")
    return run, wanted


@pytest.mark.parametrize("old", [None, "index"])
def test_an_attack_run_of_the_old_scheme_is_never_resumed(tmp_path, old):
    from rsmi.attacks.resume import check_resume

    run, wanted = _attack_run(tmp_path, old)
    with pytest.raises(ResumeError) as err:
        check_resume(run, wanted, resume=True)
    message = str(err.value)
    assert "seeding: was 'index', now 'text-v1'" in message
    assert "another seeding scheme" in message and "new run in another --out" in message


def test_an_attack_run_of_this_scheme_resumes(tmp_path):
    from rsmi.attacks.resume import check_resume

    run, wanted = _attack_run(tmp_path, SEEDING)
    check_resume(run, wanted, resume=True)


def test_summaries_record_the_scheme_and_merges_do_not_mix_schemes(tmp_path):
    from rsmi.attacks import AttackConfig
    from rsmi.attacks.merge import merge_runs
    from rsmi.attacks.summary import build_summary, combine_seeds

    cfg = AttackConfig(recipe="deepwordbug", preset="recipe", num_examples=2, model="m")
    summary = build_summary([], cfg, num_selected=2)
    assert summary["seeding"] == SEEDING
    assert combine_seeds([summary, summary], cfg, None)["seeding"] == SEEDING
    old = build_summary([], cfg, num_selected=2, seeding=LEGACY_SEEDING)
    assert combine_seeds([old], cfg, None)["seeding"] == "index"

    shards = []
    for k, seeding in enumerate((SEEDING, None)):
        shard = tmp_path / f"shard-{k}-of-2"
        shard.mkdir()
        meta = {"config": cfg.replace(shard=(k, 2)).to_dict(), "num_selected": 2}
        if seeding:
            meta["seeding"] = seeding
        (shard / "run.json").write_text(json.dumps(meta))
        (shard / "examples.jsonl").write_text(json.dumps({"index": k, "result_type": "failed"}) + "\n")
        shards.append(shard)
    with pytest.raises(StoreError, match="seeding scheme 'index'.*cannot merge"):
        merge_runs(shards, tmp_path / "merged")


def test_the_pipeline_does_not_reuse_an_evaluation_of_the_old_scheme(saved_model, tmp_path):
    from rsmi.data import load_dataset
    from rsmi.pipeline import PipelineConfig, evaluate_stage
    from rsmi.store import evaluation as store_eval

    rows = [(t, ["neg", "pos"][y]) for t, y in toy_rows(40)]
    data = write_csv(tmp_path / "data.csv", rows)
    cfg = PipelineConfig(out=str(tmp_path / "run"), data=str(data))
    dataset = load_dataset(str(data))
    said: list[str] = []
    path = evaluate_stage(cfg, "rsmi", saved_model, dataset, said.append)
    first = store_eval.read_evaluation(path)
    assert first["seeding"] == SEEDING

    def mark(seeding):
        record = dict(first, clean_accuracy=-1.0)  # a marker: was the file reused?
        if seeding is None:
            record.pop("seeding")
        path.write_text(json.dumps(record))

    mark(SEEDING)  # the same scheme: reused
    evaluate_stage(cfg, "rsmi", saved_model, dataset, said.append)
    assert store_eval.read_evaluation(path)["clean_accuracy"] == -1.0 and "reused" in said[-1]
    mark(None)  # an evaluation written before the field: the old scheme, evaluated again
    evaluate_stage(cfg, "rsmi", saved_model, dataset, said.append)
    again = store_eval.read_evaluation(path)
    assert again["clean_accuracy"] == first["clean_accuracy"] and again["seeding"] == SEEDING
    assert any("seeding scheme 'index'" in line and "evaluating again" in line for line in said)


def test_an_attack_run_resumes_only_with_the_synonym_table_its_records_drew_from(tmp_path):
    """The counter-fitted table is built on each machine and its bits follow the CPU's BLAS: a
    resume with another table (another kind of CPU's resources) is refused, the same one
    resumes, and a run.json of an older rsmi (no digest) resumes as before."""
    import dataclasses

    from rsmi.attacks.resume import check_resume

    run, wanted = _attack_run(tmp_path, SEEDING)
    meta = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**meta, "embedding_sha256": "a" * 64}))
    with pytest.raises(ResumeError, match=r"another synonym table .*aaaaaaaaaaaa.*bbbbbbbbbbbb"):
        check_resume(run, dataclasses.replace(wanted, embedding_sha256="b" * 64), resume=True)
    check_resume(run, dataclasses.replace(wanted, embedding_sha256="a" * 64), resume=True)
    (run / "run.json").write_text(json.dumps({**meta, "embedding_sha256": None}))
    check_resume(run, dataclasses.replace(wanted, embedding_sha256="b" * 64), resume=True)
