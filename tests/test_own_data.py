"""A user's own data end to end: a 3-class CSV (``feedback,stars``) → train → evaluate a
separate test file whole → attack, with the same data options everywhere, the columns and
label names remembered by the model, the model's own max length, and a training result line.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import pytest

from conftest import make_tiny_bert
from rsmi.cli.main import main

WORDS = {"1": ["awful", "broken", "terrible"], "2": ["okay", "average", "fine"],
         "3": ["great", "lovely", "excellent"]}
FILLER = ["the", "service", "was", "really", "today", "and", "product"]


def feedback_rows(n: int, stars: tuple[str, ...] = ("1", "2", "3"), seed: int = 0):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        star = stars[i % len(stars)]
        words = list(rng.choice(FILLER, size=4)) + list(rng.choice(WORDS[star], size=2))
        rng.shuffle(words)
        rows.append((" ".join(words), star))
    return rows


def write_feedback(path: Path, rows) -> Path:
    path.write_text("feedback,stars\n" + "".join(f"{t},{s}\n" for t, s in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def encoder(tmp_path_factory, tokenizer) -> Path:
    path = tmp_path_factory.mktemp("encoder")
    make_tiny_bert(tokenizer, layers=2, hidden=32).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory, encoder):
    """Trained once for the module: (model dir, train csv, test csv, stdout of rsmi train)."""

    root = tmp_path_factory.mktemp("own")
    train_csv = write_feedback(root / "train.csv", feedback_rows(90))
    # A separate test file: no split column, and no 2-star row at all.
    test_csv = write_feedback(root / "test.csv", feedback_rows(12, stars=("1", "3"), seed=1))
    out = root / "model"
    import contextlib
    import io

    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["train", "--method", "base", "--model", str(encoder), "--data", str(train_csv),
                     "--text-column", "feedback", "--label-column", "stars", "--out", str(out),
                     "--epochs", "1", "--max-length", "32", "--batch-size", "16"])
    assert code == 0, stderr.getvalue()
    assert stdout.getvalue() == f"{out}\n"  # the directory alone on stdout, for scripts
    return out, train_csv, test_csv, stderr.getvalue()


def test_training_prints_one_result_line_and_records_the_data_options(trained):
    out, _, _, stderr = trained
    lines = [x for x in stderr.splitlines() if x.startswith("rsmi train: best dev accuracy ")]
    assert len(lines) == 1, stderr
    assert "at epoch 1 of 1" in lines[0] and "optimiser steps" in lines[0]
    assert "learning check: " in lines[0]
    card = json.loads((out / "rsmi.json").read_text())
    assert card["label_names"] == ["1", "2", "3"]
    assert card["metadata"]["training"]["data_options"] == {
        "text_column": "feedback", "label_column": "stars", "split_column": None,
        "label_names": ["1", "2", "3"],
    }
    assert card["config"]["max_length"] == 32


def test_a_model_that_did_not_learn_is_told_what_to_try(tmp_path):
    from rsmi.store.model_card import training_summary

    (tmp_path / "log.jsonl").write_text(json.dumps(
        {"event": "finished", "best_epoch": 1, "best_dev_accuracy": 0.34, "global_step": 8,
         "learned": False, "learning_p_value": 0.6}) + "\n")
    (tmp_path / "training_config.json").write_text(json.dumps({"epochs": 3}))
    line = training_summary(tmp_path)
    assert "34.0 % at epoch 1 of 3 (8 optimiser steps)" in line
    assert "did NOT learn" in line and "--epochs" in line and "--lr" in line and "more data" in line


def test_too_few_optimiser_steps_are_warned_before_training(caplog):
    from rsmi.training import TrainConfig
    from rsmi.training.run import small_run_warning

    config = TrainConfig(epochs=3, batch_size=32)
    text = small_run_warning(192, config, 18)
    for part in ("192 training examples", "batches of 32", "3 epoch(s)", "only 18 optimiser steps",
                 "--epochs to 9", "--batch-size 8 gives 24"):
        assert part in text, text
    assert small_run_warning(5000, config, 470) is None


def test_small_run_warning_comes_before_the_first_step(tmp_path, encoder, caplog):
    from rsmi.training import TrainConfig, train

    data = write_feedback(tmp_path / "d.csv", feedback_rows(30))
    seen = []

    def on_step(info):
        seen.append(any("optimiser steps" in r.getMessage() for r in caplog.records))

    config = TrainConfig(method="base", model=str(encoder), data=str(data), out=str(tmp_path / "m"),
                         epochs=1, max_length=16, text_column="feedback", label_column="stars")
    with caplog.at_level(logging.WARNING, logger="rsmi.training.run"):
        train(config, on_step=on_step)
    assert seen and seen[0] is True  # already warned at the first optimiser step


def test_evaluate_a_whole_test_file_without_repeating_the_columns(trained, tmp_path, capsys):
    out, _, test_csv, _ = trained
    result = tmp_path / "evaluation.json"
    assert main(["evaluate", "--model", str(out), "--data", str(test_csv), "--split", "all",
                 "--out", str(result), "--name", "my-model"]) == 0, capsys.readouterr().err
    evaluation = json.loads(result.read_text())
    assert evaluation["num_examples"] == 12  # the whole file, not 10 % of it
    assert evaluation["name"] == "my-model"  # the model's name in reports
    assert evaluation["split"] == "all"
    per_class = evaluation["per_class_accuracy"]
    assert per_class["2"] == {"accuracy": None, "num_examples": 0}
    assert per_class["1"]["num_examples"] == 6 and per_class["3"]["num_examples"] == 6
    records = [json.loads(x) for x in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert [r["index"] for r in records] == list(range(12))  # the file's row order
    assert {r["label"] for r in records} == {0, 2}  # "1" → id 0, "3" → id 2: by name


def test_a_label_the_model_does_not_know_is_a_clear_error(trained, tmp_path, capsys):
    out, _, _, _ = trained
    bad = write_feedback(tmp_path / "bad.csv", [("the service was great today", "3"),
                                                ("the product was awful today", "0")])
    assert main(["evaluate", "--model", str(out), "--data", str(bad), "--split", "all"]) == 2
    err = capsys.readouterr().err
    assert "label 0" in err and "not in the label set ['1', '2', '3']" in err
    # Named labels the model does not know, from a source read by its own names.
    from rsmi.data import DataError, Example, TextDataset

    data = TextDataset("x", ["1", "5"], {"test": [Example("a", 0), Example("b", 1)]})
    with pytest.raises(DataError, match=r"label\(s\) \['5'\], which the model does not know"):
        data.with_label_names(["1", "2", "3"])
    assert data.with_label_names(["0", "1", "5"]).split("test")[1].label == 2


def test_data_show_reads_as_the_model_does(trained, capsys):
    out, _, test_csv, _ = trained
    assert main(["data", "show", str(test_csv), "--model", str(out), "--split", "all",
                 "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert list(shown["splits"]) == ["all"]
    assert shown["splits"]["all"]["labels"] == {"1": 6, "2": 0, "3": 6}


def test_attack_takes_the_data_options_and_runs_at_the_models_max_length(
    trained, tmp_path, monkeypatch, caplog
):
    from rsmi.attacks._textattack import load_textattack
    from rsmi.resources import Resources
    from test_attack import TinyResources

    resources = TinyResources(tmp_path / "res")
    load_textattack(resources)
    monkeypatch.setattr(Resources, "load", classmethod(lambda cls, root=None: resources))
    out, _, test_csv, _ = trained
    common = ["attack", "--model", str(out), "--data", str(test_csv), "--split", "all",
              "--text-column", "feedback", "--label-column", "stars", "--recipe", "deepwordbug",
              "--preset", "recipe", "--num-examples", "1", "--no-progress"]
    assert main([*common, "--out", str(tmp_path / "a")]) == 0
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["config"]["max_length"] == 32 and summary["config"]["model_max_length"] == 32
    assert summary["config"]["split"] == "all"
    run = json.loads((tmp_path / "a" / "run.json").read_text())
    assert run["config"]["model_max_length"] == 32
    # Another max length only when asked, said out loud and recorded.
    with caplog.at_level(logging.WARNING, logger="rsmi.attacks.runner"):
        assert main([*common, "--max-length", "16", "--out", str(tmp_path / "b")]) == 0
    assert any("max length 16, not its own 32" in r.getMessage() for r in caplog.records)
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["config"]["max_length"] == 16 and summary["config"]["model_max_length"] == 32


def test_the_preset_no_longer_overrides_the_models_max_length(make_classifier):
    from rsmi.attacks.config import AttackConfig
    from rsmi.attacks.runner import _configure_classifier
    from rsmi.attacks.sampling import sample_examples

    clf = make_classifier(max_length=32)
    selected = sample_examples([("one two three four five six", 0)] * 3, 3, 0, 4)
    attacked, cfg = _configure_classifier(clf, AttackConfig(recipe="pwws"), selected)
    assert attacked.config.max_length == 32 and (cfg.max_length, cfg.model_max_length) == (32, 32)
    attacked, cfg = _configure_classifier(clf, AttackConfig(recipe="pwws", max_length=128),
                                          selected)
    assert (cfg.max_length, cfg.model_max_length) == (128, 32)  # the study's explicit path
    assert "model_max_length" not in cfg.identity()


def test_an_old_run_resumes_at_the_max_length_it_recorded(tmp_path):
    from rsmi.attacks.config import AttackConfig
    from rsmi.attacks.runner import _recorded_max_length

    config = AttackConfig(recipe="pwws")
    old = {**config.to_dict(), "max_length": 128}
    old.pop("model_max_length")
    (tmp_path / "run.json").write_text(json.dumps({"config": old, "num_selected": 1}))
    assert _recorded_max_length(tmp_path, config, resume=True).max_length == 128
    assert _recorded_max_length(tmp_path, config, resume=False).max_length is None
    assert _recorded_max_length(tmp_path, config.replace(max_length=64), True).max_length == 64
    new = {**config.to_dict(), "max_length": 32, "model_max_length": 32}
    (tmp_path / "run.json").write_text(json.dumps({"config": new, "num_selected": 1}))
    assert _recorded_max_length(tmp_path, config, resume=True).max_length is None


def test_a_stray_value_after_an_unknown_attack_option_is_named(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["attack", "--model", "m", "--data", "d.csv", "--txt-column", "feedback"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "unexpected argument 'feedback'" in err and "invalid choice" not in err
    assert "--text-column" in err


@pytest.mark.parametrize("command", ["train", "evaluate", "attack", "pipeline"])
def test_every_data_command_takes_the_same_data_options(command):
    from rsmi.cli.main import build_parser

    argv = [command, "--data", "d.csv", "--text-column", "feedback", "--label-column", "stars",
            "--label-names", "1,2,3", "--split-column", "part", "--split-seed", "3"]
    if command in ("evaluate", "attack"):
        argv += ["--model", "m"]
    args = build_parser().parse_args(argv)
    assert (args.text_column, args.label_column, args.label_names, args.split_column,
            args.split_seed) == ("feedback", "stars", ("1", "2", "3"), "part", 3)
    if command == "pipeline":
        from rsmi.cli.pipeline import pipeline_config

        cfg = pipeline_config(args)
        assert cfg.data_options == {"text_column": "feedback", "label_column": "stars",
                                    "label_names": ["1", "2", "3"], "split_column": "part",
                                    "split_seed": 3}
        from rsmi.pipeline import _train_data_settings

        assert _train_data_settings(cfg)["label_names"] == ["1", "2", "3"]
    if command == "train":
        from rsmi.cli.train import build_config

        config = build_config(args)
        assert config.label_names == ["1", "2", "3"] and config.split_column == "part"


def test_a_named_split_column_and_whole_reading(tmp_path):
    from rsmi.data import DataError, DataOptions

    path = tmp_path / "d.csv"
    rows = feedback_rows(9)
    parts = ["train"] * 6 + ["test"] * 3
    path.write_text("feedback,stars,part\n" + "".join(
        f"{t},{s},{p}\n" for (t, s), p in zip(rows, parts, strict=True)))
    cols = {"text_column": "feedback", "label_column": "stars"}
    data = DataOptions(split_column="part", **cols).load(str(path))
    assert len(data.split("train")) == 6 and len(data.split("test")) == 3
    assert data.info["split"] == {"method": "given", "column": "part"}
    whole = DataOptions(**cols).load(str(path), whole=True)
    assert list(whole.splits) == ["all"] and [e.text for e in whole.split("all")] == [
        t for t, _ in rows]
    assert len(data.split("all")) == 9  # the splits joined
    with pytest.raises(DataError, match="no split column 'nope'"):
        DataOptions(split_column="nope", **cols).load(str(path))


def test_unused_namespace_fields_default():
    from rsmi.cli._common import data_options

    assert data_options(argparse.Namespace()).split_seed == 0
