"""Results table, Markdown and plot from crafted summary/evaluation files."""

from __future__ import annotations

import json

import pytest

from rsmi import reports
from rsmi.cli.main import main


@pytest.fixture
def runs(tmp_path):
    attack = tmp_path / "attack"
    attack.mkdir()
    (attack / "summary.json").write_text(
        json.dumps(
            {
                "config": {"recipe": "textfooler", "eot": 8, "model": "/x/rsmi-model"},
                "model_method": "rsmi",
                "aggregate": {
                    "clean_accuracy": {"mean": 80.0, "std": 1.0},
                    "accuracy_under_attack": {"mean": 45.5, "std": 2.25},
                    "attack_success_rate": {"mean": 43.1, "std": 3.0},
                    "num_examples": {"mean": 100, "std": 0},
                },
            }
        )
    )
    evaluation = tmp_path / "eval.json"
    evaluation.write_text(
        json.dumps(
            {"model": "/x/rsmi-model", "method": "rsmi", "accuracy": 0.8125, "num_examples": 400}
        )
    )
    return attack, evaluation


def test_rows_table_markdown_and_plot(runs, tmp_path):
    rows = [reports.load_row(p) for p in runs]
    assert rows[0].attack == "textfooler (EOT m=8)"
    assert rows[0].value("accuracy_under_attack") == (45.5, 2.25)
    assert rows[1].value("clean_accuracy") == (81.25, None)
    md = reports.markdown_table(rows)
    assert "45.5 ± 2.2" in md or "45.5 ± 2.3" in md
    assert "81.2" in md or "81.3" in md
    png = reports.plot(rows, tmp_path / "p.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_report_writes_files(runs, tmp_path, capsys):
    md, png = tmp_path / "r.md", tmp_path / "r.png"
    assert main(["report", *map(str, runs), "--markdown", str(md), "--plot", str(png)]) == 0
    assert "AUA" in capsys.readouterr().out
    assert "textfooler" in md.read_text() and png.exists()


def test_unreadable_results_are_clear_errors(tmp_path, capsys):
    (tmp_path / "summary.json").write_text("{broken")
    assert main(["report", str(tmp_path)]) == 2
    assert "cannot read results file" in capsys.readouterr().err
