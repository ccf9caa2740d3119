"""`rsmi predict` / `rsmi certify` on a tiny saved model."""

from __future__ import annotations

import io
import json

import pytest

from rsmi.cli.main import main


@pytest.fixture
def saved_model(make_classifier, tmp_path):
    clf = make_classifier(max_length=16, k1=8)
    clf.label_names = ["negative", "positive"]
    return clf.save_pretrained(tmp_path / "model")


def _lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.strip().splitlines()]


def test_predict_arguments_and_file(saved_model, tmp_path, capsys, texts):
    assert main(["predict", "--model", str(saved_model), texts[0], texts[2]]) == 0
    records = _lines(capsys.readouterr().out)
    assert [r["text"] for r in records] == [texts[0], texts[2]]
    for r in records:
        assert r["label_name"] == ["negative", "positive"][r["label"]]
        assert abs(sum(r["probs"].values()) - 1) < 1e-4
        assert r["forward_passes"] == 1 + 5 + (8 if r["second_step"] else 0)
    assert [r["truncated"] for r in records] == [False, True]

    path = tmp_path / "in.txt"
    path.write_text("\n".join(texts[:3]) + "\n", encoding="utf-8")
    assert main(["predict", "--model", str(saved_model), "--input", str(path), "--k0", "3"]) == 0
    records = _lines(capsys.readouterr().out)
    assert len(records) == 3 and all(r["forward_passes"] in (4, 12) for r in records)
    # The authors' masking: their candidate rule, step 2 with a fresh saliency pass.
    assert main(["predict", "--model", str(saved_model), "--input", str(path), "--k0", "3",
                 "--candidate-rule", "authors", "--step2-resample"]) == 0
    records = _lines(capsys.readouterr().out)
    assert all(r["forward_passes"] in (4, 13) for r in records)
    with pytest.raises(SystemExit):  # argparse: not one of the choices
        main(["predict", "--model", str(saved_model), "--candidate-rule", "x", "a"])


def test_predict_reads_stdin(saved_model, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("fine film\nawful film\n"))
    assert main(["predict", "--model", str(saved_model)]) == 0
    assert len(_lines(capsys.readouterr().out)) == 2


def test_blank_text_is_a_clear_error(saved_model, capsys):
    assert main(["predict", "--model", str(saved_model), "good", "  "]) == 2
    err = capsys.readouterr().err
    assert "text 2" in err and "empty" in err


def test_bad_model_path_and_bad_config_flag(tmp_path, saved_model, capsys):
    assert main(["predict", "--model", str(tmp_path / "missing"), "x"]) == 2
    assert "no such directory" in capsys.readouterr().err
    assert main(["predict", "--model", str(saved_model), "--alpha", "3", "x"]) == 2
    assert "alpha" in capsys.readouterr().err


def test_certify_outputs_labels_and_radius(saved_model, capsys):
    code = main(
        ["certify", "--model", str(saved_model), "--n0", "5", "--n", "40", "great", "terrible"]
    )
    assert code == 0
    for r in _lines(capsys.readouterr().out):
        assert r["label"] in (-1, 0, 1) and r["radius"] >= 0
        assert (r["label"] == -1) == (r["label_name"] == "ABSTAIN")
        assert sum(r["counts"].values()) == 40
