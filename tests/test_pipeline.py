"""`rsmi pipeline` end to end on a tiny encoder and a tiny CSV (training, evaluation, report)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from conftest import make_tiny_bert
from rsmi.pipeline import PipelineConfig, run_pipeline


def _toy_csv(path, n=48):
    good = ["good", "great", "fine", "nice"]
    bad = ["bad", "awful", "poor", "dull"]
    lines = ["text,label"]
    for i in range(n):
        words = (good if i % 2 else bad)[i % 4]
        lines.append(f"the film was {words} and the cast {i % 5} too,{'pos' if i % 2 else 'neg'}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_pipeline_trains_evaluates_reports_and_resumes(tokenizer, tmp_path):
    encoder = tmp_path / "encoder"
    make_tiny_bert(tokenizer, layers=2, hidden=32).save_pretrained(encoder)
    tokenizer.save_pretrained(encoder)
    data = _toy_csv(tmp_path / "toy.csv")
    cfg = PipelineConfig(
        out=str(tmp_path / "run"),
        data=str(data),
        model=str(encoder),
        methods=("base", "rsmi"),
        epochs=1,
        max_length=32,
        recipes=(),
        train_overrides={"batch_size": 8, "k1": 5},
    )
    messages: list[str] = []
    rows = run_pipeline(cfg, say=messages.append)
    assert [(r.method, r.attack) for r in rows] == [
        ("base", "none (clean)"),
        ("rsmi", "none (clean)"),
    ]
    evaluation = json.loads((tmp_path / "run" / "eval" / "rsmi" / "evaluation.json").read_text())
    assert evaluation["method"] == "rsmi" and evaluation["avg_forward_passes"] >= 6
    assert (tmp_path / "run" / "results.png").exists()
    report = (tmp_path / "run" / "report.md").read_text()
    assert "none (clean)" in report and "rsmi" in report

    messages.clear()
    again = run_pipeline(cfg, say=messages.append)
    assert sum("reused" in m for m in messages) == 4  # 2 trainings + 2 evaluations
    assert [r.metrics for r in again] == [r.metrics for r in rows]

    with pytest.raises(ValueError, match="other settings"):
        run_pipeline(dataclasses.replace(cfg, epochs=2), say=messages.append)

    # RSMI settings apply to the rsmi method only: the base model is still reused, the rsmi
    # model was trained with other settings and is not silently reused.
    messages.clear()
    with pytest.raises(ValueError, match="num_masks: saved 2 vs asked 1"):
        run_pipeline(dataclasses.replace(cfg, rsmi_overrides={"num_masks": 1}), say=messages.append)
    assert any("base: finished model" in m and "reused" in m for m in messages)


def test_pipeline_cli_flags_become_rsmi_and_training_overrides():
    from rsmi.cli.main import build_parser
    from rsmi.cli.pipeline import pipeline_config

    args = build_parser().parse_args(
        ["pipeline", "--num-masks", "1", "--noise-std", "0.1", "--lr", "3e-5", "--epochs", "3"]
    )
    cfg = pipeline_config(args)
    assert cfg.rsmi_overrides == {"noise_std": 0.1, "num_masks": 1}
    assert cfg.train_overrides == {"lr": 3e-5}
    assert cfg.epochs == 3 and cfg.methods == ("base", "rsmi")
    default = pipeline_config(build_parser().parse_args(["pipeline"]))
    assert default.rsmi_overrides == {} and default.train_overrides == {}
