"""Results table, Markdown and plot from crafted summary/evaluation files."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

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


# ---------------------------------------------------------------------------- the results fixture
FIXTURE = Path(__file__).parent / "fixtures" / "results"
ATTACKS = FIXTURE / "mr" / "attacks"


def test_directory_is_searched_without_double_counting_seed_dirs():
    results = reports.ResultSet.load([FIXTURE])
    attack = [r for r in results if r.kind == "attack"]
    clean = [r for r in results if r.kind == "clean"]
    assert sorted(r.model for r in attack) == ["base", "rsmi", "rsmi-m1"]  # not seed-0/1/2 again
    assert len(clean) == 4
    rsmi = next(r for r in attack if r.model == "rsmi")
    assert rsmi.seeds == [0, 1, 2] and sorted(rsmi.records) == [0, 1, 2]
    assert all(len(v) == 8 for v in rsmi.records.values())
    # the same file given twice (directly and through its directory) is one row
    again = reports.ResultSet.load([FIXTURE, ATTACKS / "base-textfooler" / "summary.json"])
    assert len(again) == len(results)
    # groups: clean first, then the attack
    (dataset, attacks), = results.groups()
    assert dataset == "mr" and [a for a, _ in attacks] == ["none (clean)", "textfooler"]


def test_missing_fields_read_as_absent():
    base = reports.load_row(ATTACKS / "base-textfooler")
    assert base.provenance["dtype"] is None and base.provenance["git revision"].startswith("62d6358")
    assert reports.load_row(ATTACKS / "rsmi-textfooler").provenance["dtype"] == "float32"


def test_wilson_interval_and_seed_mean_std():
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = reports.wilson(3, 8)
    ref = proportion_confint(3, 8, method="wilson")
    assert (lo, hi) == pytest.approx((100 * ref[0], 100 * ref[1]))
    rsmi = reports.load_row(ATTACKS / "rsmi-textfooler")
    mean, std = rsmi.value("accuracy_under_attack")
    assert mean == pytest.approx(100 * (4 + 2 + 4) / 24) and std == pytest.approx(14.4337, abs=1e-3)
    # interval of the mean over the N = 8 examples
    assert rsmi.interval("accuracy_under_attack") == pytest.approx(reports.wilson(3, 8))


def test_training_seed_spread():
    groups = reports.ResultSet.load([FIXTURE]).training_seed_groups()
    assert len(groups) == 1
    g = groups[0]
    assert g.method == "rsmi" and g.training_seeds == [0, 1, 2] and g.attack == "none (clean)"
    mean, std = g.value("clean_accuracy")
    assert mean == pytest.approx((73.25 + 74.5 + 72.25) / 3)
    assert std == pytest.approx(1.1273, abs=1e-3)


def test_paired_mcnemar_on_robust_examples():
    base = reports.load_row(ATTACKS / "base-textfooler")
    rsmi = reports.load_row(ATTACKS / "rsmi-textfooler")
    pairs = reports.compare(base, rsmi)  # a single-seed run against each seed of the other
    assert [(p.seed_a, p.seed_b) for p in pairs] == [(0, 0), (0, 1), (0, 2)]
    first = pairs[0]
    # base robust at {2}; rsmi seed 0 robust at {1, 2, 4, 6}: b = 0, c = 3
    assert (first.n, first.b, first.c) == (8, 0, 3)
    assert first.aua_a == 12.5 and first.aua_b == 50.0
    assert first.p_value == pytest.approx(0.25)  # exact: 2 · 0.5³
    assert (first.clean_b, first.clean_c) == (0, 1)  # base also wrong at index 6


def test_paired_comparison_on_a_prefix_of_the_sample(tmp_path):
    # A run on the first 7 of the same 8 examples is paired on those 7 (N says so).
    run = tmp_path / "run"
    shutil.copytree(ATTACKS / "base-textfooler", run)
    lines = (run / "examples.jsonl").read_text().splitlines()
    (run / "examples.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    full = reports.compare(reports.load_row(ATTACKS / "base-textfooler"),
                           reports.load_row(ATTACKS / "rsmi-m1-textfooler"))[0]
    part = reports.compare(reports.load_row(run), reports.load_row(ATTACKS / "rsmi-m1-textfooler"))[0]
    assert (full.n, part.n) == (8, 7)
    last = json.loads(lines[-1])
    other = {int(r["index"]): r for r in reports.load_row(ATTACKS / "rsmi-m1-textfooler").records[0]}
    robust = {"failed": True}
    drop_b = robust.get(last["result_type"], False) and not robust.get(
        other[last["index"]]["result_type"], False)
    drop_c = robust.get(other[last["index"]]["result_type"], False) and not robust.get(
        last["result_type"], False)
    assert (part.b, part.c) == (full.b - drop_b, full.c - drop_c)


def test_a_run_stopped_early_pairs_with_the_finished_runs_of_its_attack(tmp_path):
    # The partial summary of a stopped run (complete: false) labels its row "(incomplete)",
    # yet it is paired with the other runs of its attack on the examples it holds.
    run = tmp_path / "rsmi-stopped"
    shutil.copytree(ATTACKS / "rsmi-m1-textfooler", run)
    lines = (run / "examples.jsonl").read_text().splitlines()
    (run / "examples.jsonl").write_text("\n".join(lines[:5]) + "\n")
    summary = json.loads((run / "summary.json").read_text())
    summary["complete"] = False
    (run / "summary.json").write_text(json.dumps(summary))
    results = reports.ResultSet.load([ATTACKS / "base-textfooler", run])
    assert sorted(r.attack for r in results) == ["textfooler", "textfooler (incomplete)"]
    (pair,) = results.pairs()
    assert pair.n == 5


def test_an_adaptive_run_pairs_with_the_plain_runs_of_its_recipe(tmp_path):
    # Transfer / EOT runs pair with the plain run of the same model (is the plain attack the
    # stronger?) and with deterministic models' plain runs (does the defense still beat them?).
    run = tmp_path / "rsmi-m1-transfer"
    shutil.copytree(ATTACKS / "rsmi-m1-textfooler", run)
    summary = json.loads((run / "summary.json").read_text())
    summary["config"]["transfer"] = summary["transfer"] = True
    (run / "summary.json").write_text(json.dumps(summary))
    records = [json.loads(x) for x in (run / "examples.jsonl").read_text().splitlines()]
    robust = [r["index"] for r in records if r["result_type"] == "failed"]
    assert robust, "the fixture needs a robust example"
    for r in records:  # the transfer examples fool the smoothed model where the plain ones did not
        if r["index"] == robust[0]:
            r["result_type"] = "successful"
    (run / "examples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    results = reports.ResultSet.load([ATTACKS / "base-textfooler", ATTACKS / "rsmi-m1-textfooler", run])
    transfer = [r for r in results if r.attack == "textfooler (transfer)"]
    assert len(transfer) == 1
    compared = results.pairs()
    pairs = [(p.label_a, p.label_b) for p in compared]
    plain = next(r for r in results if r.model == transfer[0].model and r.attack == "textfooler")
    assert (plain.label, transfer[0].label) in pairs
    base = next(r for r in results if r.model != transfer[0].model)
    assert (base.label, transfer[0].label) in pairs
    assert len(pairs) == 3  # base-plain, plain-transfer, base-transfer
    (pair,) = [p for p in compared if (p.label_a, p.label_b) == (plain.label, transfer[0].label)]
    assert (pair.n, pair.b, pair.c) == (len(records), 1, 0)


def test_paired_comparison_needs_the_same_examples(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(ATTACKS / "base-textfooler", run)
    lines = [json.loads(x) for x in (run / "examples.jsonl").read_text().splitlines()]
    lines[-1]["index"] = 99  # an example the other run never attacked, one of its own missing
    (run / "examples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    with pytest.raises(ValueError, match="not attacked on the same examples"):
        reports.compare(reports.load_row(run), reports.load_row(ATTACKS / "rsmi-m1-textfooler"))
    lines[-1]["index"] = 7
    lines[0]["original_text"] = "another sentence altogether"  # same index, another sample
    (run / "examples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    with pytest.raises(ValueError, match="different texts"):
        reports.compare(reports.load_row(run), reports.load_row(ATTACKS / "rsmi-m1-textfooler"))


def test_exact_mcnemar_matches_statsmodels():
    from statsmodels.stats.contingency_tables import mcnemar

    assert reports.mcnemar_exact(3, 11) == pytest.approx(
        mcnemar([[5, 3], [11, 7]], exact=True).pvalue
    )
    assert reports.mcnemar_exact(0, 0) == 1.0


def test_word_diff_marks_substitutions():
    from rsmi.reports.html import word_diff

    left, right, subs = word_diff("a gorgeous , witty movie .", "a resplendent , witty film .")
    assert [s.text for s in left if s.changed] == ["gorgeous", "movie"]
    assert [s.text for s in right if s.changed] == ["resplendent", "film"]
    assert subs == [("gorgeous", "resplendent"), ("movie", "film")]


def _hostile_copy(tmp_path):
    """The fixture with a model name full of markup (the example texts already hold some)."""
    root = tmp_path / "results"
    shutil.copytree(FIXTURE, root, ignore=shutil.ignore_patterns("*.py"))
    summary = root / "mr" / "attacks" / "rsmi-m1-textfooler" / "summary.json"
    data = json.loads(summary.read_text())
    data["config"]["model"] = 'runs/x"><img src=x onerror=alert(1)>$y$'
    summary.write_text(json.dumps(data))
    return root


def test_html_escapes_untrusted_text(tmp_path):
    from rsmi.reports.html import render_html

    page = render_html(reports.ResultSet.load([_hostile_copy(tmp_path)]))
    assert page.count("<script") == 2  # the page's own two scripts, nothing injected
    assert "<img" not in page and 'onerror=alert(1)>' not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert '&#34;&gt;&lt;img src=x onerror=alert(1)&gt;$y$' in page  # shown, as text
    assert page.count("<svg") >= 3
    assert '<del class="old">gorgeous</del>' in page and '<ins class="new">resplendent</ins>' in page


def test_cli_html_markdown_and_compare(tmp_path, capsys):
    html, md = tmp_path / "r.html", tmp_path / "r.md"
    assert main(["report", str(FIXTURE), "--html", str(html), "--markdown", str(md)]) == 0
    out = capsys.readouterr().out
    assert "Across training seeds" in out and "rsmi-m1" in out
    page = html.read_text()
    assert page.count('<li class="ex"') == 8 * 5  # base 8 + rsmi 3 × 8 + rsmi-m1 8
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", page)  # nothing loaded
    assert "<link" not in page and "<iframe" not in page
    text = md.read_text()
    assert "Across training seeds" in text and "Paired comparisons" in text
    assert main(["report", "--compare", str(ATTACKS / "base-textfooler"),
                 str(ATTACKS / "rsmi-textfooler")]) == 0
    assert "0.25" in capsys.readouterr().out


def test_cli_report_needs_something_to_do(capsys):
    assert main(["report"]) == 2
    assert "RUN_OR_DIR" in capsys.readouterr().err


def test_shards_and_unfinished_runs_are_labelled(tmp_path):
    run = tmp_path / "seed-0" / "shard-1-of-2"
    shutil.copytree(ATTACKS / "base-textfooler", run)
    data = json.loads((run / "summary.json").read_text())
    data["config"]["shard"] = [1, 2]
    data["complete"] = False
    (run / "summary.json").write_text(json.dumps(data))
    (row,) = reports.ResultSet.load([tmp_path])
    assert row.attack == "textfooler (shard 1/2) (incomplete)"


def test_same_training_seed_twice_is_no_spread(tmp_path):
    for name in ("a", "b"):
        shutil.copytree(FIXTURE / "mr" / "eval" / "rsmi-s0", tmp_path / name)
    assert reports.ResultSet.load([tmp_path]).training_seed_groups() == []


def test_html_of_evaluations_only(tmp_path):
    from rsmi.reports.html import render_html

    page = render_html(reports.ResultSet.load([FIXTURE / "mr" / "eval"]))
    assert page.count('<tr class="row"') == 4 and 'id="examples"' not in page
    assert 'id="training-seeds"' in page and "<svg" not in page  # nothing to plot


def _sweep_summary(path: Path, noise_std: float, noise_every: int, aua: float, clean: float) -> Path:
    path.mkdir(parents=True)
    (path / "summary.json").write_text(json.dumps({
        "config": {"recipe": "textfooler", "split": "dev", "model": f"/x/sweep-{noise_std}"},
        "model": {"method": "rsmi", "rsmi_config": {
            "noise_std": noise_std, "noise_every": noise_every, "num_masks": 2}},
        "method": "rsmi", "clean_accuracy": clean, "accuracy_under_attack": aua,
        "num_examples": 100, "avg_queries": 100.0, "avg_forward_passes": 1300.0,
    }))
    return path


def test_settings_and_split_columns(tmp_path):
    a = _sweep_summary(tmp_path / "a", 0.4, 1, 20.0, 70.0)
    base = tmp_path / "b"
    base.mkdir()
    (base / "summary.json").write_text(json.dumps({
        "config": {"recipe": "textfooler", "split": "test"},
        "model": {"method": "base", "rsmi_config": {"noise_std": 0.0, "noise_every": 3}},
        "method": "base", "clean_accuracy": 80.0, "accuracy_under_attack": 5.0, "num_examples": 10,
    }))
    rows = [reports.load_row(a / "summary.json"), reports.load_row(base / "summary.json")]
    md = reports.markdown_table(rows, "method,split,noise_std,noise_every,num_masks,aua")
    lines = md.strip().splitlines()
    assert lines[0] == "| method | split | σ | noise every | masks | AUA % |"
    assert lines[2] == "| rsmi | dev | 0.4 | 1 | 2 | 20.0 |"
    assert lines[3] == "| base | test | – | – | – | 5.0 |"  # a plain model has no RSMI settings


@pytest.mark.parametrize("kind", ["aua-vs-clean", "aua-vs-cost", "aua-vs-settings", "distributions"])
def test_cli_plot_kinds(tmp_path, kind):
    from rsmi.cli.report import PLOT_KINDS
    from rsmi.reports.plots import FIGURES

    assert PLOT_KINDS == ("bars", *(f[0] for f in FIGURES))
    runs = [_sweep_summary(tmp_path / f"s{i}", s, 1, aua, 70.0 - 5 * i)
            for i, (s, aua) in enumerate([(0.2, 12.0), (0.6, 30.0)])]
    for r in runs:  # distributions needs per-example records
        (r / "examples.jsonl").write_text(json.dumps(
            {"index": 0, "result_type": "successful", "queries": 40, "perturbed_word_pct": 10.0}) + "\n")
    png = tmp_path / f"{kind}.png"
    assert main(["report", *map(str, runs), "--plot", str(png), "--plot-kind", kind]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_plot_kind_with_nothing_to_plot_is_one_clear_error(runs, tmp_path, capsys):
    png = tmp_path / "s.png"
    # one RSMI run: no two settings to compare
    assert main(["report", str(runs[0]), "--plot", str(png), "--plot-kind", "aua-vs-settings"]) == 2
    err = capsys.readouterr().err
    assert "nothing to plot for 'aua-vs-settings'" in err and not png.exists()


def test_inference_overrides_and_preset_name_the_row(tmp_path):
    # The same weights attacked with other inference settings, or under another protocol, are
    # other rows: their labels say how (they must not pass for the model's main row).
    run = tmp_path / "rs-only"
    shutil.copytree(ATTACKS / "base-textfooler", run)
    for name in ("summary.json", "run.json"):
        data = json.loads((run / name).read_text())
        if "config" in data:
            data["config"]["model_overrides"] = {"num_masks": 0, "step2_resample": True}
            data["config"]["preset"] = "authors"
        (run / name).write_text(json.dumps(data))
    row = reports.load_row(run)
    plain = reports.load_row(ATTACKS / "base-textfooler")
    assert row.model == f"{plain.model} [num_masks 0, step2_resample true]"
    assert "(authors preset)" in row.attack and "preset" not in plain.attack
    assert row.identity != plain.identity


def test_a_glob_selects_runs():
    some = reports.ResultSet.load([str(ATTACKS / "base-*")])
    every = reports.ResultSet.load([ATTACKS])
    assert some.rows and all(r.source.startswith(str(ATTACKS / "base-")) for r in some.rows)
    assert len(some.rows) < len(every.rows)
    with pytest.raises(FileNotFoundError, match="matches nothing"):
        reports.find_results(ATTACKS / "no-such-*")


def test_a_glob_passes_over_a_run_under_way(tmp_path):
    shutil.copytree(ATTACKS / "base-textfooler", tmp_path / "a-done")
    (tmp_path / "b-running").mkdir()  # records being written, no summary.json yet
    (tmp_path / "b-running" / "examples.jsonl").write_text("")
    assert [p.parent.name for p in reports.find_results(str(tmp_path / "*"))] == ["a-done"]
    with pytest.raises(ValueError, match="no match holds"):
        reports.find_results(str(tmp_path / "b-*"))


def test_a_glob_of_runs_not_made_yet_adds_nothing(tmp_path):
    rows = reports.ResultSet.load([ATTACKS / "base-textfooler", str(tmp_path / "later-*")]).rows
    assert len(rows) == 1
    with pytest.raises(ValueError, match="no results"):
        reports.ResultSet.load([str(tmp_path / "later-*")])
    with pytest.raises(FileNotFoundError):  # a plain path that does not exist is a mistake
        reports.ResultSet.load([ATTACKS / "base-textfooler", tmp_path / "typo"])


def test_another_recipe_with_the_same_settings_is_not_a_training_seed(tmp_path):
    # rsmi-paper seeds 0-2 and rsmi-paper-10ep seed 0 share method and settings: the spread over
    # seeds must stay that of rsmi-paper's three seeds, not vanish (seed 0 twice) or mix.
    def evaluation(name: str, seed: int, acc: float) -> None:
        out = tmp_path / name / f"seed-{seed}" / "test"
        out.mkdir(parents=True)
        (out / "evaluation.json").write_text(json.dumps({
            "model": f"runs/{name}/seed-{seed}", "data": "mr", "split": "test", "method": "rsmi",
            "clean_accuracy": acc, "num_examples": 400, "avg_forward_passes": 14.0,
            "config": {"noise_std": 0.2}, "training": {"seed": seed, "lr": 5e-5},
        }))
    for seed, acc in enumerate((0.74, 0.72, 0.71)):
        evaluation("rsmi-paper", seed, acc)
    evaluation("rsmi-paper-10ep", 0, 0.765)
    groups = reports.ResultSet.load([tmp_path]).training_seed_groups()
    assert len(groups) == 1
    assert groups[0].training_seeds == [0, 1, 2]
    assert groups[0].value("clean_accuracy")[0] == pytest.approx(72.333, abs=1e-2)


def test_incomplete_run_keeps_its_attack_colour_hollow_and_says_its_n(tmp_path, monkeypatch):
    # A run stopped at a session's end covers the first N examples of its sample: in the
    # scatter it is the same attack (same colour and marker), drawn hollow, labelled with N.
    from matplotlib.colors import to_rgba

    from rsmi.reports.plots import aua_vs_clean, save_figure

    full = _sweep_summary(tmp_path / "full", 0.2, 1, 12.0, 70.0)
    part = _sweep_summary(tmp_path / "part", 0.6, 1, 30.0, 65.0)
    data = json.loads((part / "summary.json").read_text())
    data.update(complete=False, num_examples=45)
    (part / "summary.json").write_text(json.dumps(data))
    rows = [reports.load_row(full / "summary.json"), reports.load_row(part / "summary.json")]
    assert rows[1].attack == "textfooler (incomplete)"
    fig = aua_vs_clean(rows)
    ax = fig.get_axes()[0]
    handles, names = ax.get_legend_handles_labels()
    assert names == ["textfooler", "textfooler (incomplete)"]
    solid, hollow = (h.lines[0] for h in handles)
    assert solid.get_color() == hollow.get_color() and solid.get_marker() == hollow.get_marker()
    assert to_rgba(solid.get_markerfacecolor()) == to_rgba(solid.get_color())
    assert to_rgba(hollow.get_markerfacecolor()) == to_rgba("white")
    notes = sorted(t.get_text() for t in ax.texts)
    assert notes == ["sweep-0.2 (?)", "sweep-0.6 (?), N = 45"]
    from matplotlib.figure import Figure

    titles, savefig = [], Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda self, *a, **k: (
        titles.append(self.get_axes()[0].get_title()), savefig(self, *a, **k))[1])
    png = save_figure(rows, "aua-vs-clean", tmp_path / "f.png", title="BBC test, 200 documents")
    save_figure(rows, "aua-vs-clean", tmp_path / "g.png")
    assert titles == ["BBC test, 200 documents", "Robustness against accuracy"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_title_names_the_figure(tmp_path, monkeypatch):
    from rsmi.reports import plots

    seen = {}
    real = plots.save_figure

    def spy(rows, kind, path, dpi=120, title=None):
        fig_path = real(rows, kind, path, dpi=dpi, title=title)
        seen["title"] = title
        return fig_path

    monkeypatch.setattr(plots, "save_figure", spy)
    run = _sweep_summary(tmp_path / "a", 0.2, 1, 12.0, 70.0)
    png = tmp_path / "f.png"
    assert main(["report", str(run), "--plot", str(png), "--plot-kind", "aua-vs-clean",
                 "--title", "MR test"]) == 0
    assert seen["title"] == "MR test" and png.exists()
    assert main(["report", str(run), "--plot", str(png), "--plot-kind", "aua-vs-clean"]) == 0
    assert seen["title"] is None  # the figure keeps its own title


def test_runs_of_one_model_on_two_training_seeds_name_their_seed(tmp_path):
    # rsmi-paper trained on seeds 0 and 1, both attacked on the same examples: their labels (pairs
    # table, plots) must tell them apart; a model with one training seed keeps its plain name.
    for seed in (0, 1):
        run = tmp_path / "rsmi-paper" / f"seed-{seed}" / "textfooler"
        shutil.copytree(ATTACKS / "rsmi-m1-textfooler", run)
        summary = json.loads((run / "summary.json").read_text())
        summary.setdefault("config", {})["model"] = f"runs/rsmi-paper/seed-{seed}"
        summary["model"]["metadata"]["training"]["seed"] = seed
        (run / "summary.json").write_text(json.dumps(summary))
    results = reports.ResultSet.load([tmp_path / "rsmi-paper", ATTACKS / "base-textfooler"])
    labels = sorted(r.label for r in results)
    assert labels == ["base · textfooler", "rsmi-paper (seed 0) · textfooler",
                      "rsmi-paper (seed 1) · textfooler"]
    pair_labels = {(p.label_a, p.label_b) for p in results.pairs()}
    assert ("rsmi-paper (seed 0) · textfooler", "rsmi-paper (seed 1) · textfooler") in pair_labels
    assert all(a != b for a, b in pair_labels)
    # the model column keeps the name; the training seed is a column of its own
    table = reports.markdown_table(results.rows, "model,training_seeds")
    assert "| rsmi-paper | 1 |" in table and "(seed" not in table
    # ... and without that column, the model column names the seed instead
    table = reports.markdown_table(results.rows, "model,aua")
    assert "| rsmi-paper (seed 1) |" in table and "| base |" in table


def test_load_row_of_a_multi_seed_run_with_one_finished_seed(tmp_path):
    from rsmi.errors import StoreError

    # rsmi attack --seeds 0 1 2 stopped after seed 0: the run's results sit in seed-0/ only.
    run = tmp_path / "run"
    shutil.copytree(ATTACKS / "base-textfooler", run / "seed-0")
    (run / "seed-1").mkdir()  # an unfinished seed: no summary yet
    row = reports.load_row(run)
    assert row.source == str(run / "seed-0" / "summary.json")
    assert row.metrics == reports.load_row(run / "seed-0").metrics
    two = tmp_path / "two"
    shutil.copytree(ATTACKS / "rsmi-m1-textfooler", two / "a")
    shutil.copytree(ATTACKS / "base-textfooler", two / "b")
    with pytest.raises(StoreError, match="2 runs below it .*name one of them"):
        reports.load_row(two)
    with pytest.raises(StoreError, match="holds neither summary.json nor evaluation.json"):
        reports.load_row(run / "seed-1")


def test_a_recorded_name_names_the_row_on_every_seed(tmp_path):
    # The study's freelb-dev: its seed-0 model is the sweep run runs/sweep-freelb-k10/seed-0,
    # attacked (and evaluated) with --name freelb-dev; seed 1 lives in runs/freelb-dev/seed-1.
    # Both are one row over training seeds; without the name, seed 0 is the sweep run's row.
    for seed, model_dir, name in ((0, "runs/sweep-freelb-k10/seed-0", "freelb-dev"),
                                  (1, "runs/freelb-dev/seed-1", None)):
        run = tmp_path / "attacks" / f"seed-{seed}" / "textfooler"
        shutil.copytree(ATTACKS / "rsmi-m1-textfooler", run)
        summary = json.loads((run / "summary.json").read_text())
        summary.setdefault("config", {})["model"] = model_dir
        if name:
            summary["config"]["name"] = name
        summary["model"]["metadata"]["training"]["seed"] = seed
        (run / "summary.json").write_text(json.dumps(summary))
        evaluation = {"model": model_dir, "method": "freelb", "accuracy": 0.8, "num_examples": 400,
                      "training": {"seed": seed}, **({"name": name} if name else {})}
        (tmp_path / f"eval-{seed}.json").write_text(json.dumps(evaluation))
    results = reports.ResultSet.load([tmp_path / "attacks"])
    assert sorted((r.model, r.training_seed) for r in results.rows) == [("freelb-dev", 0),
                                                                        ("freelb-dev", 1)]
    [group] = results.training_seed_groups()  # one row over training seeds 0 and 1
    assert group.model == "freelb-dev" and group.training_seeds == [0, 1]
    clean = reports.ResultSet.load([tmp_path / "eval-0.json", tmp_path / "eval-1.json"]).rows
    assert {r.model for r in clean} == {"freelb-dev"}
    summary = json.loads((tmp_path / "attacks" / "seed-0" / "textfooler" / "summary.json").read_text())
    del summary["config"]["name"]
    (tmp_path / "attacks" / "seed-0" / "textfooler" / "summary.json").write_text(json.dumps(summary))
    assert {r.model for r in reports.ResultSet.load([tmp_path / "attacks"]).rows} == \
        {"sweep-freelb-k10", "freelb-dev"}


def test_a_tiny_negative_difference_is_printed_without_a_sign():
    from rsmi.reports.tables import fmt

    assert fmt(-0.04) == "0.0" and fmt(-0.0) == "0.0" and fmt(-0.4, kind="int") == "0"
    assert fmt(-0.06) == "-0.1" and fmt(2.25, 0.5) == "2.2 ± 0.5"
