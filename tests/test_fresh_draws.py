"""Fresh-draw verdicts (rsmi.attacks.fresh): the deployed threat models of a randomized model.

The block's arithmetic on crafted records, seeds disjoint from the attack's, a deterministic
model (one draw), ``rsmi attack --fresh-draws``, ``rsmi attack rescore`` (digest check,
idempotence) and the report columns. Tiny models and resources from tests/test_attack.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from rsmi.attacks import read_records
from rsmi.attacks.fresh import (
    fresh_block,
    fresh_seed,
    rescore_run,
    score_record,
)
from test_attack import DATA, _rsmi_run, resources, tiny_classifier, tokenizer_module  # noqa: F401


def _rec(index, p0, p1, draws=20, kind="failed"):
    return {"index": index, "seed": 0, "result_type": kind, "p_correct_original": p0,
            "p_correct_perturbed": p1, "fresh_draws": draws, "fresh_forward_passes": 2 * draws}


def test_block_arithmetic_on_crafted_records():
    records = [
        _rec(0, 1.0, 0.8),   # attacked, deployed correct 80 %
        _rec(1, 0.9, 0.3),   # attacked, majority wrong
        _rec(2, 0.5, 0.5, kind="skipped"),  # a tie is no majority: not attacked
        _rec(3, 0.2, 0.9),   # clean majority wrong: not attacked, counts 0
    ]
    block = fresh_block(records, deterministic=False)
    assert block["draws"] == 20 and block["num_examples"] == 4 and block["complete"]
    assert block["num_attacked"] == 2
    assert block["clean_accuracy"] == pytest.approx(100 * (1.0 + 0.9 + 0.5 + 0.2) / 4)
    assert block["accuracy_under_attack"] == pytest.approx(100 * (0.8 + 0.3) / 4)
    assert block["accuracy_under_attack_k"]["1"] == block["accuracy_under_attack"]
    assert block["accuracy_under_attack_k"]["5"] == pytest.approx(100 * (0.8**5 + 0.3**5) / 4)
    assert block["accuracy_under_attack_k"]["25"] == pytest.approx(100 * (0.8**25 + 0.3**25) / 4)
    assert block["majority_accuracy_under_attack"] == pytest.approx(100 * 1 / 4)
    assert block["forward_passes"] == 4 * 40
    # Partly scored: the figures are over the scored records, and the block says so.
    partial = fresh_block([*records, {"index": 4, "seed": 0, "result_type": "failed"}])
    assert not partial["complete"] and partial["num_examples"] == 4
    assert fresh_block([{"index": 0, "result_type": "failed"}]) is None


def test_fresh_draws_are_disjoint_from_the_attacks(tokenizer_module):  # noqa: F811
    """The fresh draws of a text are not the draws the attack's queries saw."""
    from rsmi.noise import row_seed

    clf = tiny_classifier(tokenizer_module, k0=1, num_masks=1, saliency_top_k=2)
    text = DATA[0][0]
    seed, index = 0, 0
    attack_seed = row_seed(row_seed(seed, index), 0)  # the wrapper's first call of the example
    assert fresh_seed(seed, index) != attack_seed
    attack_probs = clf.predict([text] * 4, seed=attack_seed).probs
    fresh_probs = clf.predict([text] * 4, seed=fresh_seed(seed, index)).probs
    assert not np.allclose(attack_probs, fresh_probs)
    # Copies in one call are independent draws (text-keyed seeding with occurrence numbers).
    assert len({tuple(np.round(p, 6)) for p in fresh_probs}) > 1
    rec = {"index": index, "seed": seed, "original_text": text, "perturbed_text": DATA[2][0],
           "ground_truth": 1, "result_type": "successful"}
    scored = score_record(clf, rec, 6)
    assert scored["fresh_draws"] == 6 and scored["fresh_forward_passes"] > 0
    assert scored["p_correct_original"] in {i / 6 for i in range(7)}
    skipped = score_record(clf, {**rec, "result_type": "skipped"}, 6)
    assert skipped["p_correct_perturbed"] == skipped["p_correct_original"]  # its final text


def test_a_deterministic_model_needs_one_draw_and_deployed_equals_protocol(
    resources, tokenizer_module, tmp_path  # noqa: F811
):
    summary = _rsmi_run(resources, tokenizer_module, tmp_path / "plain", num_examples=4,
                        fresh_draws=20,
                        model_overrides={"noise_std": 0.0, "num_masks": 0, "k0": 1, "k1": 1})
    block = summary["fresh_draws"]
    assert block["draws"] == 1 and block["deterministic"] is True and block["complete"]
    records = read_records(tmp_path / "plain" / "examples.jsonl")
    assert all(r["p_correct_original"] in (0.0, 1.0) for r in records)
    assert all(r["p_correct_perturbed"] in (0.0, 1.0) for r in records)
    assert block["accuracy_under_attack"] == pytest.approx(summary["accuracy_under_attack"])
    assert block["clean_accuracy"] == pytest.approx(summary["clean_accuracy"])
    assert block["accuracy_under_attack_k"]["25"] == block["accuracy_under_attack"]


def test_fresh_draws_flag_writes_the_fields_and_keeps_the_run_identity(
    resources, tokenizer_module, tmp_path  # noqa: F811
):
    summary = _rsmi_run(resources, tokenizer_module, tmp_path / "run", fresh_draws=5)
    records = read_records(tmp_path / "run" / "examples.jsonl")
    assert all(r["fresh_draws"] == 5 and 0 <= r["p_correct_perturbed"] <= 1 for r in records)
    block = summary["fresh_draws"]
    assert block["draws"] == 5 and block["deterministic"] is False
    assert set(block["accuracy_under_attack_k"]) == {"1", "5", "25"}
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["fresh_draws"] == block
    # The attack's own records are those of a run without fresh draws.
    _rsmi_run(resources, tokenizer_module, tmp_path / "off")
    off = read_records(tmp_path / "off" / "examples.jsonl")
    keep = ("index", "perturbed_text", "result_type", "queries", "forward_passes")
    assert [{k: r[k] for k in keep} for r in off] == [{k: r[k] for k in keep} for r in records]
    run_json = json.loads((tmp_path / "off" / "run.json").read_text())
    assert "fresh_draws" not in run_json["config"]  # a run without it is recorded as before
    assert "fresh_draws" not in json.loads((tmp_path / "off" / "summary.json").read_text())
    # Resuming the run without fresh draws with them fills the records it already holds.
    resumed = _rsmi_run(resources, tokenizer_module, tmp_path / "off", resume=True, fresh_draws=5)
    assert resumed["fresh_draws"]["complete"] and resumed["fresh_draws"]["num_examples"] == 3


def test_rescore_is_idempotent_and_refuses_other_weights(resources, tokenizer_module, tmp_path):  # noqa: F811
    out = tmp_path / "run"
    _rsmi_run(resources, tokenizer_module, out)
    clf = tiny_classifier(tokenizer_module, k0=1, num_masks=1, saliency_top_k=2)
    summary = rescore_run(out, clf, draws=4)
    block = summary["fresh_draws"]
    assert block["draws"] == 4 and block["complete"] and block["seeding"] == "text-v1"
    assert summary["accuracy_under_attack"] is not None  # the attack-time figures stay
    first = (out / "examples.jsonl").read_text()
    again = rescore_run(out, clf, draws=4)
    assert (out / "examples.jsonl").read_text() == first  # nothing re-drawn
    assert again["fresh_draws"] == block
    # Another number of draws re-scores; the weights of another model are refused.
    assert rescore_run(out, clf, draws=3)["fresh_draws"]["draws"] == 3
    from conftest import make_tiny_bert
    from rsmi import RSMIClassifier

    other = RSMIClassifier(make_tiny_bert(tokenizer_module, layers=2, seed=7), tokenizer_module,
                           clf.config)
    with pytest.raises(ValueError, match="cannot be regenerated"):
        rescore_run(out, other, draws=4)


def test_rescore_of_an_old_index_seeded_run(resources, tokenizer_module, tmp_path):  # noqa: F811
    """A run made under seeding "index" is re-scored; the block names the fresh draws' scheme."""
    out = tmp_path / "old"
    _rsmi_run(resources, tokenizer_module, out, num_examples=2)
    meta = json.loads((out / "run.json").read_text())
    meta.pop("seeding")
    (out / "run.json").write_text(json.dumps(meta))
    clf = tiny_classifier(tokenizer_module, k0=1, num_masks=1, saliency_top_k=2)
    assert rescore_run(out, clf, draws=2)["fresh_draws"]["seeding"] == "text-v1"


def test_cli_rescore_and_report_columns(resources, tokenizer_module, tmp_path, monkeypatch):  # noqa: F811
    from rsmi.cli.main import main
    from rsmi.reports.adapters import load_row
    from rsmi.reports.tables import markdown_table
    from rsmi.resources import Resources

    model_dir = tiny_classifier(tokenizer_module).save_pretrained(tmp_path / "model")
    data = tmp_path / "data.csv"
    data.write_text("text,label\n" + "".join(f'"{t}",{y}\n' for t, y in DATA * 2))
    monkeypatch.setattr(Resources, "load", classmethod(lambda cls, root=None: resources))
    common = ["attack", "--model", str(model_dir), "--data", str(data), "--split", "train",
              "--recipe", "deepwordbug", "--preset", "recipe", "--num-examples", "2",
              "--no-progress"]
    assert main([*common, "--out", str(tmp_path / "run")]) == 0
    # An old run without the block still reports, its deployed columns empty.
    row = load_row(tmp_path / "run")
    old_table = markdown_table([row])
    assert "–" in markdown_table([row], "model,aua,aua_deployed,aua_deployed_k5,aua_majority")
    assert main(["attack", "rescore", "--run", str(tmp_path / "run"), "--model", str(model_dir),
                 "--draws", "3"]) == 0
    row = load_row(tmp_path / "run")
    block = json.loads((tmp_path / "run" / "summary.json").read_text())["fresh_draws"]
    assert row.value("aua_deployed")[0] == pytest.approx(block["accuracy_under_attack"])
    assert row.value("aua_deployed_k5")[0] == pytest.approx(block["accuracy_under_attack_k"]["5"])
    assert row.value("aua_majority")[0] == pytest.approx(block["majority_accuracy_under_attack"])
    assert markdown_table([row]) == old_table  # the default table is unchanged
    table = markdown_table([row], "model,aua,aua_deployed,aua_deployed_k5,aua_majority")
    assert "AUA deployed" in table and f"{block['accuracy_under_attack']:.1f}" in table
    # --fresh-draws on the attack itself; several seeds combine the blocks.
    assert main([*common, "--seeds", "0,1", "--fresh-draws", "2", "--out",
                 str(tmp_path / "two")]) == 0
    combined = json.loads((tmp_path / "two" / "summary.json").read_text())["fresh_draws"]
    assert combined["draws"] == 2 and "std" in combined
    row = load_row(tmp_path / "two")
    assert row.value("aua_deployed")[0] == pytest.approx(combined["accuracy_under_attack"])
