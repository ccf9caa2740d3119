"""Issue 28, shipping a model: evaluate's summary, help texts, certify's ceiling, the guard
against plain transformers, the pipeline object, the README model card, the pipeline's HTML."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from conftest import make_tiny_bert
from rsmi import RSMIClassifier, RSMIConfig
from rsmi.cli.main import build_parser, main

POS, NEG = ["good", "great", "fine", "nice"], ["bad", "awful", "poor", "dull"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory, tokenizer) -> Path:
    model = make_tiny_bert(tokenizer, layers=2, hidden=32, seed=3)
    clf = RSMIClassifier(model, tokenizer, RSMIConfig(max_length=32, k0=3, k1=4), ["neg", "pos"])
    return clf.save_pretrained(tmp_path_factory.mktemp("ship") / "model")


def _csv(path: Path, n: int = 30) -> Path:
    rows = [f"the film was {(POS if i % 2 else NEG)[i % 4]} {i},{'pos' if i % 2 else 'neg'}"
            for i in range(n)]
    path.write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- 6. evaluate
def test_evaluate_prints_one_line_and_a_confusion_matrix_json_on_request(saved, tmp_path, capsys):
    data = _csv(tmp_path / "d.csv")
    out = tmp_path / "evaluation.json"
    argv = ["evaluate", "--model", str(saved), "--data", str(data), "--split", "test",
            "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    lines = printed.strip().splitlines()
    assert lines[0].startswith("clean accuracy ") and "95 % Wilson" in lines[0]
    assert "macro-F1" in lines[0] and "N = " in lines[0] and "forward passes" in lines[0]
    assert "confusion matrix" in printed and "neg" in printed and "pos" in printed
    assert "{" not in printed  # no JSON dump
    saved_result = json.loads(out.read_text())
    matrix = saved_result["confusion_matrix"]
    assert matrix["labels"] == ["neg", "pos"]
    assert sum(map(sum, matrix["counts"])) == saved_result["num_examples"]
    assert sum(matrix["counts"][c][c] for c in range(2)) == round(
        saved_result["clean_accuracy"] * saved_result["num_examples"])
    assert 0.0 <= saved_result["macro_f1"] <= 1.0
    assert main([*argv[:-2], "--json"]) == 0
    as_json = json.loads(capsys.readouterr().out)
    assert as_json["confusion_matrix"] == matrix and as_json["clean_accuracy"] == saved_result["clean_accuracy"]


def test_confusion_summary_macro_f1():
    from rsmi.store.evaluation import confusion_summary

    records = [{"label": 0, "pred": 0}, {"label": 0, "pred": 1}, {"label": 1, "pred": 1},
               {"label": 1, "pred": 1}, {"label": 2, "pred": 0}]
    got = confusion_summary(records, ["a", "b", "c"])
    assert got["confusion_matrix"]["counts"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    # F1: a = 2·1/(2+2) = .5, b = 2·2/(2+3) = .8, c = 0
    assert got["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)


# ----------------------------------------------------------------------------- 7. help texts
def _rsmi_help(command: str) -> dict[str, str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command" or hasattr(a, "choices")
               and isinstance(a.choices, dict))
    fields = set(RSMIConfig().to_dict())
    return {a.dest: a.help or "" for a in sub.choices[command]._actions if a.dest in fields}


@pytest.mark.parametrize("command", ["train", "predict", "certify", "evaluate"])
def test_rsmi_settings_help_says_what_each_does(command):
    helps = _rsmi_help(command)
    assert {"noise_std", "k0", "k1", "alpha", "num_masks"} <= set(helps)
    for dest, text in helps.items():
        words = re.sub(r"\s*\((default|reference) [^)]*\)$", "", text).strip().lower()
        assert words not in (dest, dest.replace("_", " ")), f"--{dest}: {text!r} repeats its name"
        assert len(words.split()) >= 4, f"--{dest}: {text!r} says nothing"
    assert "docs/method.md" in helps["noise_std"]


def test_cli_help_points_only_to_docs_in_the_repository():
    import rsmi.cli as cli

    for path in Path(cli.__file__).parent.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        for outside in ("METHOD.md", "PROTOCOL.md", "/work/shared"):
            assert outside not in text, f"{path.name} points to {outside}"


# ----------------------------------------------------------------------------- 8. certify
def test_certify_records_its_radius_ceiling(saved, capsys):
    from scipy.stats import norm
    from statsmodels.stats.proportion import proportion_confint

    argv = ["certify", "--model", str(saved), "--n0", "5", "--n", "20", "--certify-alpha", "0.01",
            "--noise-std", "0.5", "the film was good", "bad"]
    assert main(argv) == 0
    records = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    ceiling = 0.5 * norm.ppf(proportion_confint(20, 20, alpha=0.02, method="beta")[0])
    assert ceiling == pytest.approx(0.5 * norm.ppf(0.01 ** (1 / 20)))
    for r in records:
        assert r["radius_ceiling"] == pytest.approx(ceiling)
        assert r["radius"] <= r["radius_ceiling"] + 1e-12
        full = r["label"] != -1 and r["counts"][r["label_name"]] == 20
        assert r["at_ceiling"] is full


# ----------------------------------------------------------------------------- plain transformers
def test_plain_transformers_refuses_an_rsmi_directory_and_rsmi_loads_it(saved, texts):
    from transformers import AutoModelForSequenceClassification, pipeline

    with pytest.raises(ValueError, match="rsmi-bert"):
        AutoModelForSequenceClassification.from_pretrained(saved)
    with pytest.raises(ValueError, match="rsmi"):
        pipeline("text-classification", model=str(saved))
    saved_config = json.loads((saved / "config.json").read_text())
    assert "RSMIClassifier.from_pretrained" in saved_config["rsmi_note"]
    clf = RSMIClassifier.from_pretrained(saved)
    assert clf.model.config.model_type == "bert" and clf.label_names == ["neg", "pos"]
    assert not hasattr(clf.model.config, "rsmi_model_type")


def test_a_directory_saved_before_the_guard_still_loads(saved, tmp_path, texts):
    import shutil

    from rsmi.store.model_card import files_digests, read_card, write_card

    old = tmp_path / "old"
    shutil.copytree(saved, old)
    config = json.loads((old / "config.json").read_text())
    config["model_type"] = config.pop("rsmi_model_type")
    config.pop("rsmi_note")
    (old / "config.json").write_text(json.dumps(config))
    card = read_card(old)
    write_card(old, method=card["method"], architecture=card["architecture"],
               config=card["config"], label_names=card["label_names"], metadata=card["metadata"])
    assert "config.json" in files_digests(old)
    a = RSMIClassifier.from_pretrained(old).predict(texts, seed=1)
    b = RSMIClassifier.from_pretrained(saved).predict(texts, seed=1)
    assert np.array_equal(a.labels, b.labels) and np.allclose(a.probs, b.probs)


def test_the_pipeline_object_answers_as_predict(saved, texts):
    from rsmi import text_classification_pipeline

    clf = RSMIClassifier.from_pretrained(saved)
    classify = text_classification_pipeline(saved, seed=4)
    pred = clf.predict(texts, seed=4)
    answers = classify(texts)
    assert [a["label"] for a in answers] == [clf.label_names[i] for i in pred.labels]
    assert [a["score"] for a in answers] == pytest.approx(
        [float(pred.probs[i][c]) for i, c in enumerate(pred.labels)])
    one = clf.as_pipeline(seed=4)(texts[0])
    first = clf.predict(texts[:1], seed=4)
    assert one == [{"label": clf.label_names[int(first.labels[0])],
                    "score": pytest.approx(float(first.probs[0][first.labels[0]]))}]
    ranked = classify(texts[0], top_k=None)
    assert [r["label"] for r in ranked] == sorted(clf.label_names, key=lambda n: -dict(
        (x["label"], x["score"]) for x in ranked)[n])
    assert sum(r["score"] for r in ranked) == pytest.approx(1.0)


# ----------------------------------------------------------------------------- model card
def test_training_writes_a_model_card_and_report_refreshes_it(tokenizer, tmp_path, capsys):
    import yaml

    from rsmi.store.model_card import files_digests, load_card

    encoder = tmp_path / "encoder"
    make_tiny_bert(tokenizer, layers=2, hidden=32).save_pretrained(encoder)
    tokenizer.save_pretrained(encoder)
    data = _csv(tmp_path / "toy.csv", 80)
    out = tmp_path / "run"
    assert main(["train", "--method", "base", "--model", str(encoder), "--data", str(data),
                 "--out", str(out), "--epochs", "1", "--max-length", "16"]) == 0
    readme = (out / "README.md").read_text()
    assert readme.startswith("---\n")
    meta = yaml.safe_load(readme.split("---\n")[1])
    assert meta["library_name"] == "rsmi"
    assert meta["tags"] == ["rsmi", "randomized-smoothing", "text-classification",
                            "adversarial-robustness"]
    assert meta["datasets"] == [str(data)] and "accuracy" in meta["metrics"]
    sha = json.loads((out / "training_config.json").read_text())["resolved"]["data_sha256"]
    assert sha in readme and "Dev accuracy of the saved epoch" in readme and "Wilson" in readme
    assert "noise_std" in readme and "Not attacked yet" in readme
    assert "README.md" not in files_digests(out)
    load_card(out)  # the README is not part of the verified files
    capsys.readouterr()
    assert main(["evaluate", "--model", str(out), "--data", str(data),
                 "--out", str(tmp_path / "eval" / "evaluation.json")]) == 0
    capsys.readouterr()
    assert main(["report", "--model-card", str(out), str(tmp_path / "eval")]) == 0
    assert "1 result" in capsys.readouterr().out
    refreshed = (out / "README.md").read_text()
    assert "Clean accuracy (two-step smoothed prediction)" in refreshed
    load_card(out)


def test_report_model_card_refuses_a_directory_without_a_model(tmp_path, capsys):
    assert main(["report", "--model-card", str(tmp_path)]) == 2
    assert "not a saved rsmi model" in capsys.readouterr().err


# ----------------------------------------------------------------------------- pipeline HTML
def test_pipeline_writes_the_html_report_and_model_cards(tokenizer, tmp_path):
    from rsmi.pipeline import PipelineConfig, run_pipeline

    encoder = tmp_path / "encoder"
    make_tiny_bert(tokenizer, layers=2, hidden=32).save_pretrained(encoder)
    tokenizer.save_pretrained(encoder)
    cfg = PipelineConfig(out=str(tmp_path / "run"), data=str(_csv(tmp_path / "toy.csv", 48)),
                         model=str(encoder), methods=("base",), epochs=1, max_length=16,
                         recipes=(), train_overrides={"batch_size": 8})
    run_pipeline(cfg, say=lambda _: None)
    html = (tmp_path / "run" / "report.html").read_text()
    assert html.lstrip().lower().startswith("<!doctype html") and "base" in html
    card = (tmp_path / "run" / "models" / "base" / "README.md").read_text()
    assert "Clean accuracy (two-step smoothed prediction)" in card
    evaluation = json.loads((tmp_path / "run" / "eval" / "base" / "evaluation.json").read_text())
    assert "confusion_matrix" in evaluation and "macro_f1" in evaluation
