"""The deployed threat models in the reports (issue 27, item 1).

The HTML page and plots show each threat model as its own column / series when runs have fresh
draws (and not otherwise); pairs use majority verdicts for the deployed threat models (exact
McNemar against a hand-built statsmodels table, the paired bootstrap of per-example values on
constructed data); ``rsmi pipeline`` attacks with fresh draws, re-scores a finished attack that
lacks them, and prints protocol and deployed columns.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from rsmi.reports import ResultSet, compare_records
from rsmi.reports import threat_models as tm
from rsmi.reports.stats import paired_bootstrap, paired_bootstrap_values
from test_attack import resources, tokenizer_module  # noqa: F401

FIXTURE = Path(__file__).parent / "fixtures" / "results" / "mr" / "attacks"
# constructed fresh-draw verdicts of the fixture's rsmi-m1 run, by example index
# (result types: 0 s, 1 f, 2 f, 3 s, 4 s, 5 skipped, 6 f, 7 s)
P_RSMI = {0: (1.0, 0.55), 1: (0.95, 0.9), 2: (0.6, 0.4), 3: (1.0, 0.1), 4: (0.5, 0.8),
          5: (0.2, 0.2), 6: (0.9, 1.0), 7: (0.85, 0.7)}


def _runs(tmp_path: Path, fresh: bool) -> Path:
    """The fixture's base and rsmi-m1 runs under ``tmp_path``; with ``fresh``, rsmi-m1's records
    get the constructed fresh-draw verdicts and its summary the block they give."""
    from rsmi.attacks.fresh import fresh_block

    root = tmp_path / ("fresh" if fresh else "plain")
    for name in ("base-textfooler", "rsmi-m1-textfooler"):
        shutil.copytree(FIXTURE / name, root / name)
    if fresh:
        run = root / "rsmi-m1-textfooler"
        records = [json.loads(line) for line in (run / "examples.jsonl").read_text().splitlines()]
        for r in records:
            p0, p1 = P_RSMI[r["index"]]
            r.update(p_correct_original=p0, p_correct_perturbed=p1, fresh_draws=20,
                     fresh_forward_passes=40)
        (run / "examples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        summary = json.loads((run / "summary.json").read_text())
        summary["fresh_draws"] = fresh_block(records, deterministic=False)
        (run / "summary.json").write_text(json.dumps(summary))
    return root


# ---------------------------------------------------------------------------- HTML and plots


def test_html_shows_the_deployed_columns_and_legend_only_with_fresh_draws(tmp_path):
    from rsmi.reports.html import render_html

    plain = render_html(ResultSet.load([_runs(tmp_path, fresh=False)]))
    for tmodel in tm.DEPLOYED_MODELS:
        assert tmodel.name not in plain
    assert 'id="threat-models"' not in plain and "fig-threat-models" not in plain
    assert 'id="pairs-deployed"' not in plain
    assert "AUA deployed" not in plain

    page = render_html(ResultSet.load([_runs(tmp_path, fresh=True)]))
    head = page[page.index('<table class="results"'):page.index("</thead>")]
    for tmodel in tm.THREAT_MODELS:  # each threat model heads its own column
        assert f'<span class="tm">{tmodel.name}</span>' in head
    legend = page[page.index('<dl class="legend" id="threat-models">'):]
    legend = legend[:legend.index("</dl>")]
    for tmodel in tm.THREAT_MODELS:
        assert f"<dt>{tmodel.name}</dt>" in legend
    # the rsmi-m1 row: deployed k = 1 = mean of [p0 > 0.5] × p1 over the 8 examples
    k1 = 100 * sum(p1 for p0, p1 in P_RSMI.values() if p0 > 0.5) / 8
    assert f">{k1:.1f}<" in page
    assert "fig-threat-models" in page
    # the deployed pairs block, saying which verdicts it uses
    assert 'id="pairs-deployed"' in page and "majority verdicts" in page
    assert "protocol verdicts (single draws)" in page


def test_plots_draw_the_deployed_series_only_with_fresh_draws(tmp_path):
    from rsmi.errors import ConfigError
    from rsmi.reports import plot
    from rsmi.reports.plots import aua_vs_clean, save_figure, threat_models

    plain = ResultSet.load([_runs(tmp_path, fresh=False)]).rows
    fresh = ResultSet.load([_runs(tmp_path, fresh=True)]).rows
    assert threat_models(plain) is None
    with pytest.raises(ConfigError, match="fresh draws"):
        save_figure(plain, "threat-models", tmp_path / "none.png")
    fig = threat_models(fresh)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == [t.name for t in tm.THREAT_MODELS]

    def legend_of(fig):
        return [t.get_text() for t in fig.axes[0].get_legend().get_texts()]

    assert tm.DEPLOYED.name not in legend_of(aua_vs_clean(plain))
    assert tm.DEPLOYED.name in legend_of(aua_vs_clean(fresh))
    save_figure(fresh, "threat-models", tmp_path / "tm.png")
    plot(fresh, tmp_path / "bars.png")
    assert (tmp_path / "tm.png").stat().st_size > 0 and (tmp_path / "bars.png").stat().st_size > 0


def test_markdown_report_and_default_columns_add_the_deployed_ones(tmp_path):
    from rsmi.reports import DEFAULT_COLUMNS, markdown_report

    plain = ResultSet.load([_runs(tmp_path, fresh=False)])
    fresh = ResultSet.load([_runs(tmp_path, fresh=True)])
    assert tm.with_deployed(DEFAULT_COLUMNS, plain.rows) == list(DEFAULT_COLUMNS)
    cols = tm.with_deployed(DEFAULT_COLUMNS, fresh.rows)
    assert cols[cols.index("aua_ci") + 1:cols.index("asr")] == list(tm.DEPLOYED_COLUMNS)
    text = markdown_report(fresh.rows, pairs=fresh.pairs(), cols=cols)
    assert "AUA deployed %" in text and tm.DEPLOYED.name in text
    assert "## Paired comparisons, deployed threat models" in text
    assert "majority verdicts" in text
    assert "deployed threat models" not in markdown_report(plain.rows, pairs=plain.pairs())


def test_training_seed_spread_per_threat_model_needs_every_seed():
    from rsmi.reports import ResultRow, aggregate_training_seeds, markdown_report

    def row(seed, aua, deployed):
        metrics = {"accuracy_under_attack": aua, "num_examples": 8}
        if deployed is not None:
            metrics["aua_deployed"] = deployed
        return ResultRow(model="rsmi", method="rsmi", attack="textfooler", metrics=metrics,
                         training_seed=seed)

    both = aggregate_training_seeds([row(0, 50.0, 80.0), row(1, 60.0, 90.0)])
    assert both.value("aua_deployed") == pytest.approx((85.0, math.sqrt(50.0)))
    one = aggregate_training_seeds([row(0, 50.0, 80.0), row(1, 60.0, None)])
    assert one.value("aua_deployed") == (None, None)  # one seed's figure is no spread
    assert one.value("accuracy_under_attack") == pytest.approx((55.0, math.sqrt(50.0)))
    text = markdown_report([], seed_groups=[both])
    seeds = text[text.index("Across training seeds"):]
    assert "AUA deployed %" in seeds and "85.0 ± 7.1" in seeds
    assert "AUA deployed %" not in markdown_report([], seed_groups=[one])


# ---------------------------------------------------------------------------- pairs


def test_majority_verdict_mcnemar_equals_a_hand_built_statsmodels_table():
    from statsmodels.stats.contingency_tables import mcnemar

    rng = np.random.default_rng(3)
    n = 60
    texts = [f"text {i}" for i in range(n)]

    def run(p0, p1):
        return [{"index": i, "original_text": texts[i], "result_type": "failed",
                 "p_correct_original": float(p0[i]), "p_correct_perturbed": float(p1[i]),
                 "fresh_draws": 20} for i in range(n)]

    # p in steps of 1/20, as 20 draws give, with ties at 0.5 (a tie is no majority)
    a0, a1 = rng.integers(0, 21, n) / 20, rng.integers(0, 21, n) / 20
    b0, b1 = rng.integers(0, 21, n) / 20, rng.integers(0, 21, n) / 20
    pair = compare_records(run(a0, a1), run(b0, b1), label_a="A", label_b="B")
    d = pair.deployed
    assert d is not None and d.n == n
    # by hand: robust under the deployed threat model = majority correct on both texts
    robust_a = [a0[i] > 0.5 and a1[i] > 0.5 for i in range(n)]
    robust_b = [b0[i] > 0.5 and b1[i] > 0.5 for i in range(n)]
    table = [[sum(x and y for x, y in zip(robust_a, robust_b, strict=True)),
              sum(x and not y for x, y in zip(robust_a, robust_b, strict=True))],
             [sum(y and not x for x, y in zip(robust_a, robust_b, strict=True)),
              sum(not x and not y for x, y in zip(robust_a, robust_b, strict=True))]]
    assert (d.b, d.c) == (table[0][1], table[1][0]) and d.b + d.c > 0
    assert d.p_value == pytest.approx(mcnemar(table, exact=True).pvalue, rel=1e-12)
    assert d.majority_a == pytest.approx(100 * sum(robust_a) / n)
    assert d.aua_a == pytest.approx(100 * sum((a0 > 0.5) * a1) / n)
    assert d.aua_b == pytest.approx(100 * sum((b0 > 0.5) * b1) / n)
    # the protocol verdicts (all "failed") are another test: every example robust under both
    assert (pair.b, pair.c) == (0, 0)


def test_deployed_pairs_need_fresh_draws_and_read_a_deterministic_side(tmp_path):
    plain = ResultSet.load([_runs(tmp_path, fresh=False)]).pairs()
    assert plain and all(p.deployed is None for p in plain)
    (pair,) = ResultSet.load([_runs(tmp_path, fresh=True)]).pairs()
    d = pair.deployed
    assert d is not None
    # the base run is deterministic (noise 0, no masks) and has no fresh draws: its protocol
    # verdicts stand for its deployed ones (AUA 12.5 % of 8 = example 2)
    base_is_a = pair.label_a.startswith("base")
    assert (d.derived_a, d.derived_b) == (base_is_a, not base_is_a)
    assert (d.aua_a if base_is_a else d.aua_b) == pytest.approx(12.5)
    from rsmi.reports.tables import PAIR_COLUMNS

    assert "deterministic" in PAIR_COLUMNS["verdict_deployed"].cell(pair, None)
    assert "majority" in PAIR_COLUMNS["p_majority"].header
    # two runs without fresh draws have no deployed block, even if one is deterministic
    assert compare_records([{"index": 0, "result_type": "failed"}],
                           [{"index": 0, "result_type": "skipped"}],
                           deterministic=(True, True)).deployed is None


def test_docs_pairs_blocks_add_the_deployed_table_when_runs_have_fresh_draws(tmp_path):
    from rsmi.reports.docs import parse_spec, render_block

    _runs(tmp_path, fresh=False)
    _runs(tmp_path, fresh=True)
    plain = render_block(parse_spec("plain --table pairs"), tmp_path)
    assert "majority" not in plain and "Above:" not in plain
    fresh = render_block(parse_spec("fresh --table pairs"), tmp_path)
    protocol, deployed = fresh.split("\nAbove: ")
    assert protocol == render_block(parse_spec("plain --table pairs"), tmp_path)  # unchanged
    assert tm.PROTOCOL_VERDICT in deployed and tm.MAJORITY_VERDICT in deployed
    assert "p (exact McNemar, majority verdicts)" in deployed
    # a marker that names deployed columns gets exactly those
    chosen = render_block(parse_spec("fresh --table pairs --columns a,b,p_majority,ratio_deployed_ci"),
                          tmp_path)
    assert "Above:" not in chosen and chosen.splitlines()[0].count("|") == 5
    # a marker that shows training seeds gets them in the deployed table too, not attack seeds
    seeds = render_block(parse_spec("fresh --table pairs --columns a,b,training_seeds,n,p"), tmp_path)
    protocol, deployed = seeds.split("\nAbove: ")
    assert "training seeds (A/B)" in protocol and "training seeds (A/B)" in deployed
    assert "| seeds (A/B)" not in deployed
    assert "| seeds (A/B)" in fresh.split("\nAbove: ")[1]  # the default keeps the attack seeds


def test_cli_compare_prints_the_deployed_block_when_runs_have_fresh_draws(tmp_path, capsys):
    from rsmi.cli.main import main

    for fresh in (False, True):
        root = _runs(tmp_path, fresh=fresh)
        capsys.readouterr()
        assert main(["report", "--compare", str(root / "rsmi-m1-textfooler"),
                     str(root / "base-textfooler"), "--at-least", "2"]) == 0
        out = capsys.readouterr().out
        assert "protocol verdicts (single draws)" in out
        assert ("Paired comparison, deployed threat models" in out) is fresh
        assert ("majority verdicts (R fresh draws)" in out) is fresh
        assert ("not compared (a run without fresh draws" in out) is not fresh


# ---------------------------------------------------------------------------- bootstrap


def test_value_bootstrap_on_constructed_data():
    rng = np.random.default_rng(0)
    b = rng.uniform(0.0, 0.8, 300)
    # a constant shift of 0.1 is 10 points in every resample; a doubling is a ratio of 2
    shifted = paired_bootstrap_values(b + 0.1, b)
    assert shifted.diff == pytest.approx(10.0)
    assert shifted.diff_ci == pytest.approx((10.0, 10.0))
    doubled = paired_bootstrap_values(b, b / 2)
    assert doubled.ratio == pytest.approx(2.0) and doubled.ratio_ci == pytest.approx((2.0, 2.0))
    # independent noise: the interval's half-width is about 1.96 standard errors of the mean
    # paired difference, and the same seed gives the same interval
    a = np.clip(b + rng.normal(0.0, 0.2, 300), 0.0, 1.0)
    interval = paired_bootstrap_values(a, b)
    se = 100 * np.std(a - b, ddof=1) / math.sqrt(300)
    half = (interval.diff_ci[1] - interval.diff_ci[0]) / 2
    assert half == pytest.approx(1.96 * se, rel=0.1)
    assert interval.diff_ci[0] < interval.diff < interval.diff_ci[1]
    assert paired_bootstrap_values(a, b) == interval
    # on 0/1 outcomes it agrees with the protocol bootstrap (another resampling, same law)
    ra, rb = rng.random(400) < 0.6, rng.random(400) < 0.3
    by_values = paired_bootstrap_values(ra.astype(float), rb.astype(float))
    by_counts = paired_bootstrap(ra, rb)
    assert by_values.diff == pytest.approx(by_counts.diff)
    assert by_values.diff_ci == pytest.approx(by_counts.diff_ci, abs=1.0)
    with pytest.raises(ValueError, match="equally long"):
        paired_bootstrap_values([0.5], [0.5, 0.2])


# ---------------------------------------------------------------------------- pipeline


def _toy_csv(path, n=48):
    from test_pipeline import _toy_csv as toy

    return toy(path, n)


def test_pipeline_table_has_the_deployed_columns_and_rescores_a_finished_attack(
    tokenizer_module, resources, tmp_path, monkeypatch, capsys  # noqa: F811
):
    import dataclasses

    from conftest import make_tiny_bert
    from rsmi.attacks import read_records
    from rsmi.pipeline import PipelineConfig, run_pipeline, table_columns
    from rsmi.resources import Resources

    monkeypatch.setattr("rsmi.resources.prepare.prepare", lambda progress=None: None)
    monkeypatch.setattr(Resources, "load", classmethod(lambda cls, root=None: resources))
    encoder = tmp_path / "encoder"
    make_tiny_bert(tokenizer_module, layers=2, hidden=32).save_pretrained(encoder)
    tokenizer_module.save_pretrained(encoder)
    cfg = PipelineConfig(
        out=str(tmp_path / "run"), data=str(_toy_csv(tmp_path / "toy.csv")), model=str(encoder),
        methods=("base", "rsmi"), epochs=1, max_length=32, recipes=("deepwordbug",),
        preset="recipe", num_examples=2, attack_seeds=(0,), fresh_draws=0,
        train_overrides={"batch_size": 8, "k1": 5},
    )
    assert PipelineConfig().fresh_draws == 20
    messages: list[str] = []
    rows = run_pipeline(cfg, say=messages.append)
    attack = tmp_path / "run" / "attacks" / "rsmi-deepwordbug"
    assert "fresh_draws" not in json.loads((attack / "summary.json").read_text())
    assert table_columns(rows) == list(__import__("rsmi.reports").reports.DEFAULT_COLUMNS)
    before = read_records(attack / "examples.jsonl")

    # R = 3 on the finished run: re-scored (its attack records kept), not attacked again
    messages.clear()
    rows = run_pipeline(dataclasses.replace(cfg, fresh_draws=3), say=messages.append)
    assert any("rsmi × deepwordbug: finished, re-scoring" in m for m in messages)
    assert any("base × deepwordbug: finished, reused" in m for m in messages)
    after = read_records(attack / "examples.jsonl")
    keep = ("index", "perturbed_text", "result_type", "queries", "forward_passes")
    assert [{k: r[k] for k in keep} for r in after] == [{k: r[k] for k in keep} for r in before]
    assert all(r["fresh_draws"] == 3 for r in after)
    block = json.loads((attack / "summary.json").read_text())["fresh_draws"]
    assert block["draws"] == 3 and block["complete"]
    rsmi_row = next(r for r in rows if r.method == "rsmi" and r.kind == "attack")
    assert rsmi_row.value("aua_deployed")[0] == pytest.approx(block["accuracy_under_attack"])
    assert set(tm.DEPLOYED_COLUMNS) <= set(table_columns(rows))
    report = (tmp_path / "run" / "report.md").read_text()
    assert "AUA deployed %" in report and tm.DEPLOYED.name in report and "3 fresh draws" in report
    html = (tmp_path / "run" / "report.html").read_text()
    assert f'<span class="tm">{tm.DEPLOYED.name}</span>' in html
    card = (tmp_path / "run" / "models" / "rsmi" / "README.md").read_text()
    assert "AUA deployed %" in card and tm.DEPLOYED.name in card
    assert "AUA deployed %" not in (tmp_path / "run" / "models" / "base" / "README.md").read_text()

    # the printed table of the main job (rsmi pipeline), protocol and deployed columns
    messages.clear()
    from rsmi.cli import pipeline as cli_pipeline
    from rsmi.cli.main import main

    monkeypatch.setattr(cli_pipeline, "pipeline_config",
                        lambda args: dataclasses.replace(cfg, fresh_draws=3))
    capsys.readouterr()
    assert main(["pipeline"]) == 0
    printed = capsys.readouterr().out
    assert "finished, reused" in printed and "re-scoring" not in printed  # nothing left to do
    assert "deployed" in printed and "majority" in printed
    assert f"{block['accuracy_under_attack']:.1f}" in printed

    # a fresh run attacks with the fresh draws from the start
    fresh = dataclasses.replace(cfg, out=str(tmp_path / "fresh"), methods=("rsmi",),
                                fresh_draws=2)
    messages.clear()
    run_pipeline(fresh, say=messages.append)
    assert not any("re-scoring" in m for m in messages)
    records = read_records(tmp_path / "fresh" / "attacks" / "rsmi-deepwordbug" / "examples.jsonl")
    assert records and all(r["fresh_draws"] == 2 for r in records)
    with pytest.raises(ValueError, match="fresh_draws=-1"):
        run_pipeline(dataclasses.replace(fresh, fresh_draws=-1), say=messages.append)


def test_deterministic_rows_show_their_protocol_figures_in_the_deployed_columns(tmp_path):
    from rsmi.reports import markdown_table

    rows = ResultSet.load([_runs(tmp_path, fresh=False)]).rows
    base = next(r for r in rows if r.method == "base")
    rsmi = next(r for r in rows if r.method == "rsmi")
    assert base.deterministic and not rsmi.deterministic
    aua = base.value("accuracy_under_attack")[0]
    for key in ("aua_deployed", "aua_deployed_k5", "aua_deployed_k25", "aua_majority"):
        assert base.deployed_value(key) == (aua, None)
        assert base.value(key) == (None, None)  # not a figure of its own (no fresh draws)
        assert rsmi.deployed_value(key) == (None, None)  # randomized: needs fresh draws
    assert base.deployed_value("clean_deployed")[0] == base.value("clean_accuracy")[0]
    table = markdown_table([base, rsmi], cols="model,aua,aua_deployed,aua_majority")
    lines = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| ")}
    assert lines[base.shown_model].count(f"{aua:.1f}") == 3
    assert lines[rsmi.shown_model].count("–") == 2


def test_html_pairs_verdicts_wrap(tmp_path):
    import re

    from rsmi.reports.html import render_html

    page = render_html(ResultSet.load([_runs(tmp_path, fresh=True)]))
    assert re.search(r"td\.verdict \{ white-space: normal;", page)  # a sentence, not one line
    for table_id in ('<table class="pairs">', '<table class="pairs deployed">'):
        table = page[page.index(table_id):]
        table = table[:table.index("</table>")]
        rows = re.findall(r"<tr>(.*?)</tr>", table[table.index("<tbody>"):], flags=re.S)
        assert rows
        for row in rows:  # the verdict is the last cell of each row, and only that one
            cells = re.findall(r"<td( class=\"[a-z]+\")?>", row)
            assert cells[-1] == ' class="verdict"' and ' class="verdict"' not in cells[:-1]


def test_deployed_intervals_bootstrap_the_per_example_values(tmp_path):
    from rsmi.reports import markdown_table
    from rsmi.reports.stats import bootstrap_mean_interval

    results = ResultSet.load([_runs(tmp_path, fresh=True)])
    rows = results.rows
    rsmi = next(r for r in rows if r.method == "rsmi")
    base = next(r for r in rows if r.method == "base")
    for k in (1, 5, 25):  # the values' mean is the summary's figure
        values = rsmi.deployed_values(k)
        want = {1: "aua_deployed", 5: "aua_deployed_k5", 25: "aua_deployed_k25"}[k]
        assert 100 * sum(values) / len(values) == pytest.approx(rsmi.value(want)[0])
        lo, hi = rsmi.deployed_interval(k)
        assert lo <= rsmi.value(want)[0] <= hi
    expected = sorted(p1 if p0 > 0.5 else 0.0 for p0, p1 in P_RSMI.values())
    assert sorted(rsmi.deployed_values(1)) == pytest.approx(expected)
    # a deterministic model: its protocol verdicts, 0 or 1 per example
    assert set(base.deployed_values(1)) <= {0.0, 1.0}
    assert 100 * sum(base.deployed_values(1)) / 8 == pytest.approx(base.value("accuracy_under_attack")[0])
    assert bootstrap_mean_interval([]) is None
    assert bootstrap_mean_interval([0.5] * 10) == (50.0, 50.0)
    table = markdown_table([rsmi], cols="model,aua_deployed,aua_deployed_ci,aua_majority_ci")
    lo, hi = rsmi.deployed_interval(1)
    assert f"[{lo:.1f}, {hi:.1f}]" in table
    # the HTML report shows each deployed figure with its interval below it
    from rsmi.reports.html import render_html

    page = render_html(results)
    head = page[page.index('<table class="results"'):page.index("</thead>")]
    assert head.count('<span class="ci">95 % CI</span>') == 6  # clean, AUA, k = 1, 5, 25, majority
    for k in (1, 5, 25):
        lo, hi = rsmi.deployed_interval(k)
        assert f'<span class="ci">[{lo:.1f}, {hi:.1f}]</span>' in page
