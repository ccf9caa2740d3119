"""benchmarks/study.py: the study's plan (order, skips, blocking, dev selection) and a tiny run."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _load_study_module():
    spec = importlib.util.spec_from_file_location("study", ROOT / "benchmarks" / "study.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["study"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


study_mod = _load_study_module()

WORDS_POS = ["good", "great", "fine", "lovely", "charming"]
WORDS_NEG = ["bad", "awful", "boring", "dull", "terrible"]


def _toy_data(path: Path, n: int = 60) -> Path:
    with path.open("w") as fh:
        for i in range(n):
            pool = WORDS_POS if i % 2 else WORDS_NEG
            words = ["the", "movie", "was", pool[i % 5], "and", pool[(i + 2) % 5], "overall"]
            fh.write(json.dumps({"text": " ".join(words), "label": ["neg", "pos"][i % 2]}) + "\n")
    return path


def _config(tmp_path: Path, backbone: str, data: Path, **changes) -> Path:
    cfg = {
        "runs_dir": str(tmp_path / "runs"),
        "results_dir": str(tmp_path / "results"),
        "backbone": backbone,
        "datasets": {"toy": {"data": str(data), "max_length": 16, "num_examples": 2}},
        "train": {"seeds": [0, 1], "epochs": 1, "batch_size": 8, "lr": 0.01, "k1": 4},
        "models": {"base": {"method": "base"},
                   "rsmi": {"method": "rsmi", "noise_std": 0.3, "num_masks": 1, "seeds": [0]}},
        "sweep": {"name": "rsmi-dev", "seed": 0, "base": {"method": "rsmi", "num_masks": 1},
                  "grid": {"noise_std": [0.3, 0.6]},
                  "select_by": {"recipe": "deepwordbug", "split": "dev", "num_examples": 2}},
        "attacks": {"preset": "recipe", "attack_seeds": [0, 1], "train_seeds": [0],
                    "main": [{"recipe": "deepwordbug", "models": "all"}],
                    "extra": [{"name": "rs-only", "recipe": "deepwordbug", "models": ["rsmi"],
                               "overrides": {"num_masks": 0, "saliency_top_k": 0}}]},
        **changes,
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _finish_training(model_dir: Path) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "log.jsonl").write_text(json.dumps({"event": "finished"}) + "\n")
    (model_dir / "training_config.json").write_text("{}\n")


def _complete_summary(out: Path, aua: float, clean: float) -> None:
    out.mkdir(parents=True, exist_ok=True)
    summary = {"complete": True, "accuracy_under_attack": aua, "clean_accuracy": clean,
               "avg_forward_passes": 10.0}
    (out / "summary.json").write_text(json.dumps(summary))


def test_plan_order_blocking_skips_and_dev_selection(tmp_path):
    path = _config(tmp_path, "minilm", tmp_path / "toy.jsonl")
    study = study_mod.Study.load(path)
    jobs = study_mod.plan(study)
    ids = [j.id for j in jobs]
    # Priority: first-seed training, evaluation, attacks; then the sweep; then other seeds.
    assert ids[:2] == ["toy/train/base/seed-0", "toy/train/rsmi/seed-0"]
    assert ids.index("toy/evaluate/base/seed-0/test") < ids.index("toy/attack/base/seed-0/deepwordbug")
    assert ids.index("toy/attack/rsmi/seed-0/deepwordbug") < ids.index("toy/sweep-train/sweep-s0.3")
    assert ids.index("toy/sweep-attack/sweep-s0.6") < ids.index("toy/train/base/seed-1")
    assert "toy/train/rsmi/seed-1" not in ids  # the row is restricted to seed 0
    assert "toy/attack/base/seed-1/deepwordbug" not in ids  # attacks.train_seeds: [0]
    by_id = {j.id: j for j in jobs}
    assert by_id["toy/train/base/seed-0"].status == "todo"
    assert by_id["toy/attack/base/seed-0/deepwordbug"].blocked == "model not trained"
    assert "selection waits for 2" in by_id["toy/evaluate/rsmi-dev/seed-0/test"].blocked
    # Deterministic models get one attack seed, randomized ones all; overrides become flags.
    base_attack = by_id["toy/attack/base/seed-0/deepwordbug"].argv
    assert base_attack[base_attack.index("--seeds") + 1] == "0"
    rs_only = by_id["toy/attack/rsmi/seed-0/rs-only"].argv
    assert rs_only[rs_only.index("--seeds") + 1] == "0,1"
    assert rs_only[-4:] == ["--num-masks", "0", "--saliency-top-k", "0"]
    rs_eval = by_id["toy/evaluate/rsmi/seed-0/test-rs-only"].argv  # its clean accuracy too
    assert rs_eval[-4:] == ["--num-masks", "0", "--saliency-top-k", "0"]
    assert rs_eval[rs_eval.index("--out") + 1].endswith("test-rs-only/evaluation.json")
    train = by_id["toy/train/rsmi/seed-0"].argv
    assert "--resume" in train and train[train.index("--noise-std") + 1] == "0.3"
    assert "--seeds" not in train
    assert [j.id for j in study_mod.select_jobs(jobs, "*/sweep-*")] == [
        "toy/sweep-train/sweep-s0.3", "toy/sweep-train/sweep-s0.6",
        "toy/sweep-attack/sweep-s0.3", "toy/sweep-attack/sweep-s0.6"]

    # A finished training is skipped and unblocks its evaluation and attacks.
    runs, results = tmp_path / "runs" / "toy", tmp_path / "results" / "toy"
    _finish_training(runs / "base" / "seed-0")
    by_id = {j.id: j for j in study_mod.plan(study)}
    assert by_id["toy/train/base/seed-0"].done
    assert by_id["toy/attack/base/seed-0/deepwordbug"].status == "todo"
    # Finished dev attacks of the sweep → the selection (AUA, then clean accuracy).
    for name in ("sweep-s0.3", "sweep-s0.6"):
        _finish_training(runs / name / "seed-0")
    _complete_summary(results / "sweep" / "sweep-s0.3" / "dev-deepwordbug", 0.5, 0.8)
    _complete_summary(results / "sweep" / "sweep-s0.6" / "dev-deepwordbug", 0.5, 0.9)
    selection, why = study_mod.selection(study, "toy")
    assert why is None and selection["selected"] == "sweep-s0.6"
    by_id = {j.id: j for j in study_mod.plan(study)}
    dev_eval = by_id["toy/evaluate/rsmi-dev/seed-0/test"]
    assert dev_eval.status == "todo"  # its seed-0 model is the sweep's run: not trained again
    assert dev_eval.argv[dev_eval.argv.index("--model") + 1] == str(runs / "sweep-s0.6" / "seed-0")
    assert "toy/train/rsmi-dev/seed-0" not in by_id
    seed1 = by_id["toy/train/rsmi-dev/seed-1"].argv
    assert seed1[seed1.index("--noise-std") + 1] == "0.6"
    assert seed1[seed1.index("--out") + 1] == str(runs / "rsmi-dev" / "seed-1")
    # A complete attack summary is skipped.
    _complete_summary(results / "attacks" / "base" / "seed-0" / "deepwordbug", 0.1, 0.9)
    assert {j.id: j for j in study_mod.plan(study)}["toy/attack/base/seed-0/deepwordbug"].done


def test_dry_run_prints_the_plan(tmp_path, capsys):
    path = _config(tmp_path, "minilm", tmp_path / "toy.jsonl")
    assert study_mod.main([str(path), "--dry-run", "--only", "toy/train/*"]) == 0
    out = capsys.readouterr().out
    assert "[todo] toy/train/base/seed-0" in out and "rsmi train --data" in out
    assert "attack" not in out.split("jobs:")[0].replace("train", "")
    assert not (tmp_path / "runs").exists()  # a dry run writes nothing


def test_tiny_study_runs_end_to_end_and_resumes(tmp_path, tokenizer, monkeypatch):
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from rsmi.cli.main import main as rsmi_main
    from rsmi.resources import Resources
    from test_attack import TinyResources

    torch.manual_seed(0)
    backbone = tmp_path / "tiny"
    BertForSequenceClassification(BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=64, max_position_embeddings=64, num_labels=2,
    )).save_pretrained(backbone)
    tokenizer.save_pretrained(backbone)
    resources = TinyResources(tmp_path / "resources")
    from rsmi.attacks._textattack import load_textattack

    load_textattack(resources)
    monkeypatch.setattr(Resources, "load", classmethod(lambda cls, root=None: resources))
    path = _config(tmp_path, str(backbone), _toy_data(tmp_path / "toy.jsonl"), sweep=None)
    cfg = yaml.safe_load(path.read_text())
    cfg["train"]["seeds"] = [0]
    cfg["models"] = {"base": {"method": "base"}}
    cfg["attacks"]["extra"] = []
    path.write_text(yaml.safe_dump(cfg))
    study = study_mod.Study.load(path)
    calls = []

    def execute(argv):
        calls.append(argv[0])
        return rsmi_main(argv)

    assert study_mod.run(study, execute=execute, say=lambda _: None) == 0
    assert calls == ["train", "evaluate", "attack"]
    results = tmp_path / "results" / "toy"
    saved = json.loads((results / "models" / "base" / "seed-0" / "training_config.json").read_text())
    assert saved["method"] == "base" and "provenance" in saved
    assert not list(results.rglob("*.safetensors"))  # never weights under results
    evaluation = json.loads((results / "eval" / "base" / "seed-0" / "test" / "evaluation.json").read_text())
    assert (results / "eval" / "base" / "seed-0" / "test" / "predictions.jsonl").exists()
    assert evaluation["method"] == "base"
    summary = json.loads((results / "attacks" / "base" / "seed-0" / "deepwordbug" / "summary.json").read_text())
    assert summary["complete"] and summary["num_examples"] == 2 and summary["cut_to_max_length"] is False
    calls.clear()
    assert study_mod.run(study, execute=execute, say=lambda _: None) == 0
    assert calls == []  # everything finished: nothing runs again



def test_a_sweep_setting_that_did_not_learn_is_not_attacked_nor_selected(tmp_path):
    path = _config(tmp_path, "minilm", tmp_path / "toy.jsonl")
    study = study_mod.Study.load(path)
    runs, results = tmp_path / "runs" / "toy", tmp_path / "results" / "toy"
    _finish_training(runs / "sweep-s0.3" / "seed-0")
    noisy = runs / "sweep-s0.6" / "seed-0"
    _finish_training(noisy)
    (noisy / "log.jsonl").write_text(json.dumps({
        "event": "finished", "best_dev_accuracy": 0.51, "learned": False,
        "learning_p_value": 0.36}) + "\n")
    by_id = {j.id: j for j in study_mod.plan(study)}
    job = by_id["toy/sweep-attack/sweep-s0.6"]
    assert job.status == ("blocked: not eligible: the model did not learn "
                          "(dev accuracy 51.0 %, p = 0.36 against the majority rate)")
    assert by_id["toy/sweep-attack/sweep-s0.3"].status == "todo"
    # The selection waits only for the eligible setting and records the excluded one.
    assert study_mod.selection(study, "toy")[1] == "selection waits for 1 sweep dev attack(s)"
    _complete_summary(results / "sweep" / "sweep-s0.3" / "dev-deepwordbug", 0.2, 0.8)
    selection, why = study_mod.selection(study, "toy")
    assert why is None and selection["selected"] == "sweep-s0.3"
    assert [e["model"] for e in selection["excluded"]] == ["sweep-s0.6"]
    # Even a finished (higher-AUA) dev attack of a model that did not learn is never chosen.
    _complete_summary(results / "sweep" / "sweep-s0.6" / "dev-deepwordbug", 0.9, 0.5)
    assert study_mod.selection(study, "toy")[0]["selected"] == "sweep-s0.3"
    # No eligible setting at all: the selection says so.
    (runs / "sweep-s0.3" / "seed-0" / "log.jsonl").write_text(json.dumps(
        {"event": "finished", "learned": False}) + "\n")
    assert study_mod.selection(study, "toy") == (None, "no sweep setting gave a model that learned")


def test_a_fresh_clone_reads_from_committed_records_that_a_setting_did_not_learn(tmp_path):
    """No run folders (a fresh clone): the committed training records alone say a sweep setting
    did not learn, so the selection does not wait for it and it is not trained again."""
    path = _config(tmp_path, "minilm", tmp_path / "toy.jsonl")
    study = study_mod.Study.load(path)
    results = tmp_path / "results" / "toy"
    records = results / "models" / "sweep-s0.6" / "seed-0"
    records.mkdir(parents=True)
    (records / "log.jsonl").write_text(json.dumps({
        "event": "finished", "best_dev_accuracy": 0.5, "learned": False,
        "learning_p_value": 0.52}) + "\n")
    _complete_summary(results / "sweep" / "sweep-s0.3" / "dev-deepwordbug", 0.2, 0.8)
    assert not (tmp_path / "runs").exists()
    selection, why = study_mod.selection(study, "toy")
    assert why is None and selection["selected"] == "sweep-s0.3"
    assert [e["model"] for e in selection["excluded"]] == ["sweep-s0.6"]
    by_id = _by_id(study)
    assert by_id["toy/sweep-train/sweep-s0.6"].blocked.startswith(
        f"not needed: its committed records ({records}) say the model did not learn "
        "(dev accuracy 50.0 %, p = 0.52")
    assert by_id["toy/sweep-attack/sweep-s0.6"].blocked.startswith("not eligible: the model did not")
    assert by_id["toy/sweep-train/sweep-s0.3"].status == "todo"  # no records: trained as before
    # A training finished in its run folder is read there, before the committed records.
    run = tmp_path / "runs" / "toy" / "sweep-s0.6" / "seed-0"
    _finish_training(run)
    assert study_mod.training_record(study, "toy", "sweep-s0.6", 0) == run
    assert study_mod.selection(study, "toy")[1] == "selection waits for 1 sweep dev attack(s)"


def test_an_extra_row_can_name_its_training_seeds_and_datasets(tmp_path):
    """An EOT row on a second training seed of one dataset (as BBC's, where seed 0's weights
    cannot be regenerated on every kind of CPU): the row's seeds and datasets, nothing else."""
    path = _config(tmp_path, "minilm", tmp_path / "toy.jsonl")
    cfg = yaml.safe_load(path.read_text())
    cfg["datasets"]["other"] = {"data": "other.jsonl", "max_length": 16, "num_examples": 2}
    cfg["attacks"]["extra"] = [
        {"name": "eot2", "recipe": "deepwordbug", "eot": 2, "attack_seeds": [0],
         "models": ["base", "rsmi"], "train_seeds": [1], "datasets": ["toy"]}]
    path.write_text(yaml.safe_dump(cfg))
    jobs = {j.id: j for j in study_mod.plan(study_mod.Study.load(path))}
    eot = [i for i in jobs if i.endswith("/eot2")]
    assert eot == ["toy/attack/base/seed-1/eot2"]  # rsmi is a seed-0 row; `other` is left out
    argv = jobs["toy/attack/base/seed-1/eot2"].argv
    assert argv[argv.index("--model") + 1].endswith("toy/base/seed-1")
    assert argv[argv.index("--out") + 1].endswith("toy/attacks/base/seed-1/eot2")
    assert argv[argv.index("--eot") + 1] == "2"
    assert jobs["toy/attack/base/seed-1/eot2"].blocked == "model not trained"
    _finish_training(tmp_path / "runs" / "toy" / "base" / "seed-1")
    jobs = {j.id: j for j in study_mod.plan(study_mod.Study.load(path))}
    assert jobs["toy/attack/base/seed-1/eot2"].status == "todo"

    for bad, says in (({"train_seeds": [7]}, "training seed(s) [7]"),
                      ({"datasets": ["nope"]}, "unknown dataset(s) ['nope']")):
        cfg["attacks"]["extra"] = [{"name": "eot2", "recipe": "deepwordbug",
                                    "models": ["base"], **bad}]
        path.write_text(yaml.safe_dump(cfg))
        with pytest.raises(ValueError, match=re.escape(says)):
            study_mod.plan(study_mod.Study.load(path))


# ---------------------------------------------------------------------- several sweeps (issue 27)
FREELB_SWEEP = {"name": "freelb-dev", "seed": 0,
                "base": {"method": "freelb", "adv_lr": 0.03, "adv_init_mag": 0.05,
                         "adv_max_norm": 0.0},
                "grid": {"adv_steps": [5, 10]},
                "select_by": {"recipe": "deepwordbug", "split": "dev", "num_examples": 2}}


def _by_id(study) -> dict:
    return {j.id: j for j in study_mod.plan(study)}


def _arg(job, flag: str) -> str:
    return job.argv[job.argv.index(flag) + 1]


def test_two_sweeps_plan_independent_jobs_and_selections(tmp_path):
    path = _config(tmp_path, "minilm", tmp_path / "toy.jsonl", sweeps={"freelb": FREELB_SWEEP})
    cfg = yaml.safe_load(path.read_text())
    cfg["attacks"]["main"] = [{"recipe": "deepwordbug",
                               "models": ["base", "rsmi-dev", "freelb-dev"]}]
    path.write_text(yaml.safe_dump(cfg))
    study = study_mod.Study.load(path)
    runs, results = tmp_path / "runs" / "toy", tmp_path / "results" / "toy"
    jobs = study_mod.plan(study)
    ids = [j.id for j in jobs]
    # The old sweep's jobs first (as before), then the named sweep's, each with its own names.
    assert [i for i in ids if "/sweep-" in i] == [
        "toy/sweep-train/sweep-s0.3", "toy/sweep-train/sweep-s0.6",
        "toy/sweep-attack/sweep-s0.3", "toy/sweep-attack/sweep-s0.6",
        "toy/sweep-train/sweep-freelb-k5", "toy/sweep-train/sweep-freelb-k10",
        "toy/sweep-attack/sweep-freelb-k5", "toy/sweep-attack/sweep-freelb-k10"]
    by_id = {j.id: j for j in jobs}
    train = by_id["toy/sweep-train/sweep-freelb-k5"]
    assert _arg(train, "--method") == "freelb" and _arg(train, "--adv-steps") == "5"
    assert _arg(train, "--adv-max-norm") == "0.0" and "--freelb-preset" not in train.argv
    dev = by_id["toy/sweep-attack/sweep-freelb-k10"]
    assert _arg(dev, "--out") == str(results / "sweep-freelb" / "sweep-freelb-k10" / "dev-deepwordbug")
    assert _arg(dev, "--split") == "dev" and _arg(dev, "--seeds") == "0"  # FreeLB: deterministic
    assert by_id["toy/evaluate/freelb-dev/seed-0/test"].blocked == \
        "selection waits for 2 sweep dev attack(s)"

    # The RSMI sweep finishes: rsmi-dev is selected and runs; freelb-dev still waits.
    for name, aua in (("sweep-s0.3", 0.2), ("sweep-s0.6", 0.4)):
        _finish_training(runs / name / "seed-0")
        _complete_summary(results / "sweep" / name / "dev-deepwordbug", aua, 0.8)
    by_id = _by_id(study)
    assert by_id["toy/evaluate/rsmi-dev/seed-0/test"].status == "todo"
    assert "toy/attack/rsmi-dev/seed-0/deepwordbug" in by_id
    assert by_id["toy/evaluate/freelb-dev/seed-0/test"].blocked.startswith("selection waits")
    assert not any(i.startswith("toy/attack/freelb-dev") or i.startswith("toy/train/freelb-dev")
                   for i in by_id)
    assert study_mod.selection(study, "toy")[0]["selected"] == "sweep-s0.6"  # the first sweep
    assert study_mod.selection(study, "toy", study.sweeps[1])[0] is None

    # The FreeLB sweep finishes: its own winner, its own selection.json, its own model.
    for name, aua in (("sweep-freelb-k5", 0.3), ("sweep-freelb-k10", 0.1)):
        _finish_training(runs / name / "seed-0")
        _complete_summary(results / "sweep-freelb" / name / "dev-deepwordbug", aua, 0.8)
    study_mod.write_selections(study)
    rsmi_sel = json.loads((results / "sweep" / "selection.json").read_text())
    freelb_sel = json.loads((results / "sweep-freelb" / "selection.json").read_text())
    assert rsmi_sel["selected"] == "sweep-s0.6" and freelb_sel["selected"] == "sweep-freelb-k5"
    assert [r["model"] for r in freelb_sel["rows"]] == ["sweep-freelb-k5", "sweep-freelb-k10"]
    by_id = _by_id(study)
    evaluate = by_id["toy/evaluate/freelb-dev/seed-0/test"]
    assert _arg(evaluate, "--model") == str(runs / "sweep-freelb-k5" / "seed-0")
    attack = by_id["toy/attack/freelb-dev/seed-0/deepwordbug"]
    assert _arg(attack, "--seeds") == "0" and _arg(attack, "--model").endswith("sweep-freelb-k5/seed-0")
    seed1 = by_id["toy/train/freelb-dev/seed-1"]
    assert _arg(seed1, "--adv-steps") == "5" and _arg(seed1, "--out") == str(runs / "freelb-dev" / "seed-1")
    assert _arg(by_id["toy/train/rsmi-dev/seed-1"], "--noise-std") == "0.6"


def test_sweeps_must_not_share_a_name_or_a_folder(tmp_path):
    for changes, says in (
        ({"sweeps": {"freelb": {**FREELB_SWEEP, "name": "rsmi-dev"}}}, "model name ['rsmi-dev']"),
        ({"sweeps": {"Free LB": FREELB_SWEEP}}, "sweep name 'Free LB'"),
        ({"sweeps": [FREELB_SWEEP]}, "sweeps must map a name to a sweep block"),
        ({"sweeps": {"freelb": {**FREELB_SWEEP, "name": "base"}}}, "['base'] is both a fixed"),
    ):
        path = _config(tmp_path, "minilm", tmp_path / "toy.jsonl", **changes)
        with pytest.raises(ValueError, match=re.escape(says)):
            study_mod.Study.load(path)


def test_the_long_step_waits_for_the_winner_then_its_dev_attack_and_the_better_is_the_model(tmp_path):
    path = _config(tmp_path, "minilm", tmp_path / "toy.jsonl", sweep=None,
                   sweeps={"freelb": {**FREELB_SWEEP, "long_epochs": 3}})
    study = study_mod.Study.load(path)
    runs, results = tmp_path / "runs" / "toy", tmp_path / "results" / "toy"
    folder = results / "sweep-freelb"
    by_id = _by_id(study)
    placeholder = by_id["toy/sweep-train/sweep-freelb-winner-3ep"]
    assert placeholder.blocked == "waits for the grid's winner: selection waits for 2 sweep dev attack(s)"
    # The grid's winner is known (k5): its 3-epoch retraining, then its dev attack.
    for name, aua in (("sweep-freelb-k5", 0.3), ("sweep-freelb-k10", 0.1)):
        _finish_training(runs / name / "seed-0")
        _complete_summary(folder / name / "dev-deepwordbug", aua, 0.8)
    jobs = study_mod.plan(study)
    ids = [j.id for j in jobs]
    by_id = {j.id: j for j in jobs}
    assert "toy/sweep-train/sweep-freelb-winner-3ep" not in by_id
    long_train = by_id["toy/sweep-train/sweep-freelb-k5-3ep"]
    assert long_train.status == "todo"
    assert _arg(long_train, "--epochs") == "3" and _arg(long_train, "--adv-steps") == "5"
    assert _arg(long_train, "--seed") == "0"
    assert _arg(long_train, "--out") == str(runs / "sweep-freelb-k5-3ep" / "seed-0")
    long_attack = by_id["toy/sweep-attack/sweep-freelb-k5-3ep"]
    assert long_attack.blocked == "model not trained"
    assert ids.index("toy/sweep-attack/sweep-freelb-k10") < ids.index(long_train.id) \
        < ids.index(long_attack.id) < ids.index("toy/evaluate/freelb-dev/seed-0/test")
    grid_attack = by_id["toy/sweep-attack/sweep-freelb-k5"]
    for flag in ("--split", "--num-examples", "--sample-seed", "--seeds", "--recipe"):
        assert _arg(long_attack, flag) == _arg(grid_attack, flag)  # the same dev examples
    assert _arg(long_attack, "--out") == str(folder / "sweep-freelb-k5-3ep" / "dev-deepwordbug")
    assert by_id["toy/evaluate/freelb-dev/seed-0/test"].blocked == \
        "selection waits for sweep-freelb-k5-3ep (3 epochs) to train"
    _finish_training(runs / "sweep-freelb-k5-3ep" / "seed-0")
    by_id = _by_id(study)
    assert by_id["toy/sweep-attack/sweep-freelb-k5-3ep"].status == "todo"
    assert by_id["toy/evaluate/freelb-dev/seed-0/test"].blocked == \
        "selection waits for the dev attack of sweep-freelb-k5-3ep"

    # The longer training is better on dev: it becomes freelb-dev, seed 0 and the other seeds.
    _complete_summary(folder / "sweep-freelb-k5-3ep" / "dev-deepwordbug", 0.4, 0.7)
    study_mod.write_selections(study)
    chosen = json.loads((folder / "selection.json").read_text())
    assert chosen["selected"] == "sweep-freelb-k5-3ep" and chosen["grid_selected"] == "sweep-freelb-k5"
    assert [r["model"] for r in chosen["long"]["rows"]] == ["sweep-freelb-k5-3ep", "sweep-freelb-k5"]
    assert chosen["long"]["rows"][0]["settings"]["epochs"] == 3
    assert chosen["why"] == ("sweep-freelb-k5-3ep over sweep-freelb-k5: higher dev "
                             "accuracy_under_attack (0.4 vs 0.3)")
    by_id = _by_id(study)
    evaluate = by_id["toy/evaluate/freelb-dev/seed-0/test"]
    assert _arg(evaluate, "--model") == str(runs / "sweep-freelb-k5-3ep" / "seed-0")
    # Its seed-0 model is a sweep run's directory: the reports name the row, as on other seeds.
    assert _arg(evaluate, "--name") == "freelb-dev"
    assert _arg(by_id["toy/attack/freelb-dev/seed-0/deepwordbug"], "--name") == "freelb-dev"
    assert "--name" not in by_id["toy/evaluate/freelb-dev/seed-1/test"].argv
    seed1 = by_id["toy/train/freelb-dev/seed-1"]
    assert _arg(seed1, "--epochs") == "3" and _arg(seed1, "--adv-steps") == "5"

    # Worse on dev: the 2-epoch winner stays; on a full tie too (the shorter training).
    _complete_summary(folder / "sweep-freelb-k5-3ep" / "dev-deepwordbug", 0.3, 0.7)
    chosen = study_mod.selection(study, "toy")[0]
    assert chosen["selected"] == "sweep-freelb-k5"
    assert "equal dev accuracy_under_attack (0.3); higher dev clean accuracy (0.8 vs 0.7)" \
        in chosen["why"]
    assert _arg(_by_id(study)["toy/train/freelb-dev/seed-1"], "--epochs") == "1"  # train.epochs
    _complete_summary(folder / "sweep-freelb-k5-3ep" / "dev-deepwordbug", 0.3, 0.8)
    chosen = study_mod.selection(study, "toy")[0]
    assert chosen["selected"] == "sweep-freelb-k5" and chosen["why"].endswith(
        "a full tie on the rule: the shorter training is kept")
    # A longer training that did not learn is never chosen.
    (runs / "sweep-freelb-k5-3ep" / "seed-0" / "log.jsonl").write_text(json.dumps(
        {"event": "finished", "learned": False, "best_dev_accuracy": 0.5}) + "\n")
    _complete_summary(folder / "sweep-freelb-k5-3ep" / "dev-deepwordbug", 0.9, 0.9)
    chosen = study_mod.selection(study, "toy")[0]
    assert chosen["selected"] == "sweep-freelb-k5"
    assert chosen["long"]["excluded"].startswith("did not learn (dev accuracy 50.0 %")


def _single_sweep_plan_text(module, tmp_path: Path) -> str:
    """The toy plan with the single ``sweep:`` key, fresh and after the selection, with the
    selection.json written (paths relative to tmp_path)."""
    path = _config(tmp_path, "minilm", tmp_path / "toy.jsonl")
    study = module.Study.load(path)

    def listing() -> list[str]:
        return [f"[{j.status}] {j.id}: {' '.join(j.argv)}" for j in module.plan(study)]

    lines = listing()
    runs, results = tmp_path / "runs" / "toy", tmp_path / "results" / "toy"
    for name, aua, clean in (("sweep-s0.3", 0.5, 0.8), ("sweep-s0.6", 0.5, 0.9)):
        _finish_training(runs / name / "seed-0")
        _complete_summary(results / "sweep" / name / "dev-deepwordbug", aua, clean)
    module.write_selections(study)
    lines += ["--- after the selection"] + listing()
    lines += ["--- selection.json", (results / "sweep" / "selection.json").read_text()]
    return "\n".join(lines).replace(str(tmp_path), "<tmp>") + "\n"


def test_the_single_sweep_key_plans_exactly_as_before(tmp_path):
    """tests/fixtures/study/single_sweep_plan.txt was written by study.py before several sweeps
    existed (commit 45d27f9): the old ``sweep:`` key gives the same jobs, commands, statuses
    and selection.json, byte for byte."""
    golden = ROOT / "tests" / "fixtures" / "study" / "single_sweep_plan.txt"
    assert _single_sweep_plan_text(study_mod, tmp_path) == golden.read_text()


def test_attack_rows_take_fresh_draws_and_an_engine(tmp_path):
    path = _config(tmp_path, "minilm", tmp_path / "toy.jsonl", attacks={
        "preset": "recipe", "attack_seeds": [0], "train_seeds": [0], "fresh_draws": 20,
        "main": [{"recipe": "deepwordbug", "models": "all"}],
        "extra": [{"name": "adaptive", "recipe": "deepwordbug", "models": ["rsmi"], "eot": 8,
                   "eot_margin": 0.3, "engine": "openvino-bf16"},
                  {"name": "plain", "recipe": "deepwordbug", "models": ["rsmi"], "fresh_draws": 0}]})
    jobs = {j.id: j.argv for j in study_mod.plan(study_mod.Study.load(path))}

    def flag(argv, name):
        return argv[argv.index(name) + 1] if name in argv else None

    main = jobs["toy/attack/rsmi/seed-0/deepwordbug"]
    assert flag(main, "--fresh-draws") == "20" and flag(main, "--engine") is None
    assert flag(jobs["toy/attack/base/seed-0/deepwordbug"], "--fresh-draws") == "20"
    adaptive = jobs["toy/attack/rsmi/seed-0/adaptive"]
    assert (flag(adaptive, "--eot"), flag(adaptive, "--eot-margin")) == ("8", "0.3")
    assert flag(adaptive, "--engine") == "openvino-bf16" and flag(adaptive, "--fresh-draws") == "20"
    assert "--fresh-draws" not in jobs["toy/attack/rsmi/seed-0/plain"]  # the row's own 0


def test_finished_randomized_runs_without_fresh_draws_get_a_rescore_job(tmp_path):
    path = _config(tmp_path, "minilm", tmp_path / "toy.jsonl", attacks={
        "preset": "recipe", "attack_seeds": [0], "train_seeds": [0], "fresh_draws": 20,
        "main": [{"recipe": "deepwordbug", "models": "all"}]})
    study = study_mod.Study.load(path)
    results = tmp_path / "results" / "toy" / "attacks"

    def finish(model, config, fresh=None):
        out = results / model / "seed-0" / "deepwordbug"
        _complete_summary(out, 0.5, 0.8)
        summary = json.loads((out / "summary.json").read_text())
        summary["model"] = {"rsmi_config": config}
        if fresh:
            summary["fresh_draws"] = fresh
        (out / "summary.json").write_text(json.dumps(summary))
        _finish_training(tmp_path / "runs" / "toy" / model / "seed-0")

    finish("base", {"noise_std": 0.0, "num_masks": 0})
    finish("rsmi", {"noise_std": 0.3, "num_masks": 1})
    jobs = study_mod.plan(study)
    ids = [j.id for j in jobs]
    assert "toy/rescore/base/seed-0/deepwordbug" not in ids  # deterministic: nothing to add
    at = ids.index("toy/attack/rsmi/seed-0/deepwordbug")
    rescore = jobs[at + 1]
    assert rescore.id == "toy/rescore/rsmi/seed-0/deepwordbug" and rescore.status == "todo"
    assert rescore.argv == ["attack", "rescore", "--run",
                            str(results / "rsmi" / "seed-0" / "deepwordbug"), "--model",
                            str(tmp_path / "runs" / "toy" / "rsmi" / "seed-0"), "--draws", "20"]
    finish("rsmi", {"noise_std": 0.3, "num_masks": 1}, fresh={"draws": 20, "complete": True})
    assert "toy/rescore/rsmi/seed-0/deepwordbug" not in [j.id for j in study_mod.plan(study)]
    finish("rsmi", {"noise_std": 0.3, "num_masks": 1}, fresh={"draws": 5, "complete": True})
    assert "toy/rescore/rsmi/seed-0/deepwordbug" in [j.id for j in study_mod.plan(study)]


def test_a_model_committed_from_another_kind_of_cpu_is_not_retrained_here(tmp_path, capsys):
    """The committed training records name the CPU that trained the model; on another CPU model
    the same seed trains other bfloat16 weights, which the committed attack runs refuse and the
    record copy would overwrite: the runner blocks that training and says where to run it."""
    path = _config(tmp_path, "minilm", tmp_path / "toy.jsonl")
    records = tmp_path / "results" / "toy" / "models" / "base" / "seed-0"
    records.mkdir(parents=True)
    (records / "training_config.json").write_text(json.dumps(
        {"provenance": {"machine": {"cpu": "AMD EPYC"}}}))

    study = study_mod.Study.load(path)
    study.cpu = "Intel(R) Xeon(R) Processor"
    jobs = _by_id(study)
    job = jobs["toy/train/base/seed-0"]
    assert job.blocked and "'AMD EPYC'" in job.blocked and "Intel(R) Xeon(R)" in job.blocked
    assert "--allow-other-cpu" in job.blocked
    assert jobs["toy/train/base/seed-1"].status == "todo"  # no committed records: trained here
    assert jobs["toy/attack/base/seed-0/deepwordbug"].blocked == "model not trained"

    study.cpu = "AMD EPYC"  # the same kind: the training is resumed or redone there
    assert _by_id(study)["toy/train/base/seed-0"].status == "todo"
    study.cpu = "Intel(R) Xeon(R) Processor"
    study.allow_other_cpu = True
    assert _by_id(study)["toy/train/base/seed-0"].status == "todo"
    _finish_training(tmp_path / "runs" / "toy" / "base" / "seed-0")  # a model here: done, whatever
    study.allow_other_cpu = False
    assert _by_id(study)["toy/train/base/seed-0"].status == "done"

    assert study_mod.main([str(path), "--dry-run", "--only", "toy/train/base/seed-1"]) == 0
    assert "[todo] toy/train/base/seed-1" in capsys.readouterr().out


def test_a_committed_model_is_regenerated_with_the_thread_count_its_records_name(tmp_path, capsys):
    """The same seed on the same CPU trains other bfloat16 weights with another torch thread
    count (MR rsmi-paper seed 0: 1 thread against the 2 it was trained with): the runner runs a
    training whose committed records name a thread count with that count, and says so."""
    path = _config(tmp_path, "minilm", tmp_path / "toy.jsonl")
    records = tmp_path / "results" / "toy" / "models" / "base" / "seed-0"
    records.mkdir(parents=True)
    (records / "training_config.json").write_text(json.dumps(
        {"provenance": {"machine": {"cpu": "AMD EPYC", "torch_threads": 2}}}))
    study = study_mod.Study.load(path)
    study.cpu = "AMD EPYC"
    jobs = _by_id(study)
    job = jobs["toy/train/base/seed-0"]
    assert job.env == {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
    assert job.command.startswith("OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 rsmi train ")
    assert jobs["toy/train/base/seed-1"].env is None  # nothing committed: this process's setting

    seen = []

    def execute(argv, env=None):
        seen.append((argv[0], argv[argv.index("--seed") + 1] if "--seed" in argv else None, env))
        return 1  # nothing trained: the runner goes on with the others and reports the failure

    assert study_mod.run(study, "toy/train/base/*", execute=execute, say=lambda _: None) == 1
    assert ("train", "0", {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}) in seen
    assert ("train", "1", None) in seen

    assert study_mod.main([str(path), "--dry-run", "--only", "toy/train/base/seed-0"]) == 0
    assert "OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 rsmi train" in capsys.readouterr().out


def test_a_row_started_under_the_old_seeding_is_not_extended_but_its_seeds_are_rescored(tmp_path):
    """A run made under 'index' seeding (before issue 28) is never resumed: the row that asks
    for more attack seeds is blocked with the reason, and each finished seed is re-scored."""
    path = _config(tmp_path, "minilm", tmp_path / "toy.jsonl", attacks={
        "preset": "recipe", "attack_seeds": [0, 1, 2], "train_seeds": [0], "fresh_draws": 20,
        "main": [{"recipe": "deepwordbug", "models": ["rsmi"]}]})
    study = study_mod.Study.load(path)
    run = tmp_path / "results" / "toy" / "attacks" / "rsmi" / "seed-0" / "deepwordbug"
    seed0 = run / "seed-0"
    _complete_summary(seed0, 0.5, 0.8)
    summary = json.loads((seed0 / "summary.json").read_text())
    (seed0 / "summary.json").write_text(json.dumps(
        {**summary, "model": {"rsmi_config": {"noise_std": 0.3, "num_masks": 1}}}))
    (seed0 / "run.json").write_text(json.dumps({"config": {}, "num_selected": 2}))  # no seeding
    _finish_training(tmp_path / "runs" / "toy" / "rsmi" / "seed-0")
    jobs = _by_id(study)
    attack = jobs["toy/attack/rsmi/seed-0/deepwordbug"]
    assert attack.blocked and "'index'" in attack.blocked and "seed-0" in attack.blocked
    rescore = jobs["toy/rescore/rsmi/seed-0/deepwordbug/seed-0"]
    assert rescore.status == "todo" and rescore.argv[:4] == ["attack", "rescore", "--run", str(seed0)]
    # under this code's seeding the row is resumed as usual (no block, no per-seed rescore)
    (seed0 / "run.json").write_text(json.dumps({"config": {}, "num_selected": 2,
                                                "seeding": "text-v1"}))
    jobs = _by_id(study)
    assert jobs["toy/attack/rsmi/seed-0/deepwordbug"].status == "todo"
    assert "toy/rescore/rsmi/seed-0/deepwordbug/seed-0" not in jobs


def test_a_run_split_into_shards_is_planned_as_shard_jobs_and_a_merge(tmp_path):
    """After `rsmi attack split`, the row's records live in shard runs: the runner plans one job
    per shard (the row's command plus --shard i/n: a runner per core) and the merge after them,
    never the whole run again."""
    path = _config(tmp_path, "minilm", tmp_path / "toy.jsonl", attacks={
        "preset": "recipe", "attack_seeds": [0], "train_seeds": [0],
        "main": [{"recipe": "deepwordbug", "models": ["rsmi"]}]})
    study = study_mod.Study.load(path)
    _finish_training(tmp_path / "runs" / "toy" / "rsmi" / "seed-0")
    row = tmp_path / "results" / "toy" / "attacks" / "rsmi" / "seed-0" / "deepwordbug"
    for i in range(2):
        (row / f"shard-{i}-of-2").mkdir(parents=True)
        (row / f"shard-{i}-of-2" / "run.json").write_text(json.dumps({"seeding": "text-v1"}))
    jobs = _by_id(study)
    base = "toy/attack/rsmi/seed-0/deepwordbug"
    assert base not in jobs
    for i in range(2):
        shard = jobs[f"{base}/shard-{i}"]
        assert shard.status == "todo" and shard.argv[-2:] == ["--shard", f"{i}/2"]
        assert "--resume" in shard.argv
    merge = jobs[f"{base}/merge"]
    assert merge.blocked == "shards not complete: shard-0, shard-1"
    assert merge.argv == ["attack", "merge", str(row), "--out", str(row)]
    _complete_summary(row / "shard-0-of-2", 0.5, 0.8)
    _complete_summary(row / "shard-1-of-2", 0.5, 0.8)
    jobs = _by_id(study)
    assert jobs[f"{base}/shard-1"].done and jobs[f"{base}/merge"].status == "todo"
    _complete_summary(row, 0.5, 0.8)  # merged: the row is done, as one job
    (row / "run.json").write_text(json.dumps({"seeding": "text-v1"}))
    jobs = _by_id(study)
    assert jobs[base].done and f"{base}/merge" not in jobs


def test_a_model_regenerated_bit_for_bit_keeps_its_committed_records(tmp_path):
    """The records of the training the committed runs attacked stay; the regeneration's log is
    kept beside them as evidence. Other weights replace the records (a new model)."""
    src, dst = tmp_path / "runs" / "m", tmp_path / "results" / "m"
    for d, digest, loss in ((src, "a" * 64, 0.25), (dst, "a" * 64, 0.5)):
        d.mkdir(parents=True)
        (d / "rsmi.json").write_text(json.dumps({"format": "rsmi", "format_version": 1,
                                                 "weights_sha256": {"model.safetensors": digest}}))
        (d / "log.jsonl").write_text(json.dumps({"event": "start", "provenance": {
            "created": "2026-12-07T17:49:08+00:00"}, "loss": loss}) + "\n")
        (d / "training_config.json").write_text(json.dumps({"loss": loss}))
    before = {f.name: f.read_text() for f in dst.iterdir()}
    study_mod.copy_records(src, dst)
    assert {f.name: f.read_text() for f in dst.iterdir() if f.is_file()} == before
    assert (dst / "regenerated" / "log-20261207T174908.jsonl").read_text() == (
        src / "log.jsonl").read_text()
    # Other weights (another kind of CPU, another thread count): the committed records stay,
    # the log is kept as evidence, and the runner is told; --allow-other-cpu replaces them.
    (src / "rsmi.json").write_text(json.dumps({"format": "rsmi", "format_version": 1,
                                               "weights_sha256": {"model.safetensors": "b" * 64}}))
    with pytest.raises(study_mod.RecordsKept, match="committed records are kept"):
        study_mod.copy_records(src, dst)
    assert {f.name: f.read_text() for f in dst.iterdir() if f.is_file()} == before
    assert (dst / "regenerated" / "log-20261207T174908-other-weights.jsonl").exists()
    study_mod.copy_records(src, dst, replace=True)
    assert json.loads((dst / "training_config.json").read_text()) == {"loss": 0.25}


def test_a_regeneration_with_other_weights_fails_its_job_and_keeps_the_records(tmp_path):
    """The runner reports a training whose weights differ from the committed records' as a
    failed job (the records stay), and does not retry it in the same run."""
    path = _config(tmp_path, "minilm", tmp_path / "toy.jsonl")
    study = study_mod.Study.load(path)
    study.cpu = "AMD EPYC [avx2 avx512_bf16 avx512f]"
    records = tmp_path / "results" / "toy" / "models" / "base" / "seed-0"
    records.mkdir(parents=True)
    card = {"format": "rsmi", "format_version": 1, "weights_sha256": {"model.safetensors": "a" * 64}}
    (records / "rsmi.json").write_text(json.dumps(card))
    (records / "training_config.json").write_text(json.dumps({"committed": True}))
    calls, said = [], []

    def execute(argv, env=None):
        calls.append(argv)
        out = Path(argv[argv.index("--out") + 1])
        _finish_training(out)
        (out / "rsmi.json").write_text(json.dumps(
            {**card, "weights_sha256": {"model.safetensors": "b" * 64}}))
        return 0

    assert study_mod.run(study, "toy/train/base/seed-0", execute=execute, say=said.append) == 1
    assert len(calls) == 1
    assert any("failed" in line and "committed records are kept" in line for line in said)
    assert json.loads((records / "training_config.json").read_text()) == {"committed": True}


def test_a_bfloat16_model_from_a_cpu_with_native_bfloat16_is_not_regenerated_without_it(tmp_path):
    """"AMD EPYC" names Zen 4 (AVX-512 BF16) and Zen 3 (AVX2 only) alike. Records that name the
    instruction sets are compared by them; older ones, which name the model alone, are taken to
    come from a CPU with native bfloat16 when the model is bfloat16 (every such record in this
    project did): a CPU that emulates bfloat16 does not regenerate them."""
    path = _config(tmp_path, "minilm", tmp_path / "toy.jsonl")
    records = tmp_path / "results" / "toy" / "models" / "base" / "seed-0"
    records.mkdir(parents=True)

    def record(machine, dtype):
        (records / "training_config.json").write_text(json.dumps(
            {"provenance": {"machine": machine, "dtype": dtype}}))

    study = study_mod.Study.load(path)
    zen4, zen3 = "AMD EPYC [avx2 avx512_bf16 avx512f]", "AMD EPYC [avx2]"
    record({"cpu": "AMD EPYC"}, "bfloat16")  # an old record: the model name alone
    for here, blocked in ((zen3, True), (zen4, False), ("AMD EPYC", False)):
        study.cpu = here
        job = _by_id(study)["toy/train/base/seed-0"]
        assert bool(job.blocked) is blocked, here
    study.cpu = zen3
    assert "'AMD EPYC'; this machine is 'AMD EPYC [avx2]'" in _by_id(study)[
        "toy/train/base/seed-0"].blocked
    record({"cpu": "AMD EPYC"}, "float32")  # float32 needs no bfloat16 instructions
    study.cpu = zen3
    assert not _by_id(study)["toy/train/base/seed-0"].blocked
    record({"cpu": "AMD EPYC", "cpu_features": ["avx2", "avx512_bf16", "avx512f"]}, "float32")
    assert "'AMD EPYC [avx2 avx512_bf16 avx512f]'" in _by_id(study)["toy/train/base/seed-0"].blocked
    study.cpu = zen4
    assert not _by_id(study)["toy/train/base/seed-0"].blocked
    study.cpu, study.allow_other_cpu = zen3, True
    assert not _by_id(study)["toy/train/base/seed-0"].blocked
