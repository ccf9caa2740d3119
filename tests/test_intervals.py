"""Paired bootstrap intervals of AUA difference and ratio, and their wording (issue 27, item 5)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from rsmi import reports
from rsmi.cli.main import main
from rsmi.reports import stats
from rsmi.reports.docs import parse_spec, render_block
from rsmi.reports.tables import markdown_pair_table, markdown_pairs

FIXTURE = Path(__file__).parent / "fixtures" / "results"
ATTACKS = FIXTURE / "mr" / "attacks"


def crafted(both: int, a_only: int, b_only: int, neither: int) -> tuple[list[bool], list[bool]]:
    a = [True] * both + [True] * a_only + [False] * b_only + [False] * neither
    b = [True] * both + [False] * a_only + [True] * b_only + [False] * neither
    return a, b


def test_bootstrap_of_a_known_difference_and_ratio_covers_them():
    a, b = crafted(both=10, a_only=50, b_only=10, neither=130)  # 30 % against 10 %
    iv = stats.paired_bootstrap(a, b)
    assert iv.n == 200 and iv.aua_a == pytest.approx(30.0) and iv.aua_b == pytest.approx(10.0)
    assert iv.diff == pytest.approx(20.0) and iv.ratio == pytest.approx(3.0)
    assert iv.diff_ci[0] < 20.0 < iv.diff_ci[1] and iv.diff_ci[0] > 0
    assert iv.ratio_ci[0] < 3.0 < iv.ratio_ci[1]
    # the four-kinds multinomial is the index bootstrap: compare with resampled indices
    rng = np.random.default_rng(1)
    idx = rng.integers(0, 200, size=(10_000, 200))
    xa, xb = np.asarray(a)[idx].mean(1), np.asarray(b)[idx].mean(1)
    ref = np.quantile(100 * (xa - xb), [0.025, 0.975])
    assert iv.diff_ci == pytest.approx(tuple(ref), abs=1.0)
    ref_ratio = np.quantile(xa / xb, [0.025, 0.975])
    assert iv.ratio_ci == pytest.approx(tuple(ref_ratio), abs=0.25)


def test_pairing_matters_the_interval_of_a_paired_difference_is_narrower():
    # the same AUAs (30 % / 20 %), outcomes strongly paired or not at all
    paired = stats.paired_bootstrap(*crafted(both=40, a_only=20, b_only=0, neither=140))
    unpaired = stats.paired_bootstrap(*crafted(both=0, a_only=60, b_only=40, neither=100))
    width = lambda iv: iv.diff_ci[1] - iv.diff_ci[0]  # noqa: E731
    assert paired.diff == unpaired.diff == pytest.approx(10.0)
    assert width(paired) < width(unpaired) / 2


def test_bootstrap_is_seeded():
    a, b = crafted(both=5, a_only=12, b_only=6, neither=77)
    assert stats.paired_bootstrap(a, b) == stats.paired_bootstrap(a, b)
    assert stats.paired_bootstrap(a, b, seed=7) == stats.paired_bootstrap(a, b, seed=7)
    assert stats.paired_bootstrap(a, b, seed=7).diff_ci != stats.paired_bootstrap(a, b).diff_ci


def test_ratio_is_undefined_when_b_has_no_robust_example():
    a, b = crafted(both=0, a_only=10, b_only=0, neither=90)
    iv = stats.paired_bootstrap(a, b)
    assert iv.ratio is None and iv.ratio_ci is None
    assert iv.diff == pytest.approx(10.0) and iv.diff_ci[0] > 0
    assert stats.ratio_verdict(iv.ratio_ci, 3) == "undefined"
    assert "ratio undefined (B's AUA is 0)" in stats.verdict(iv)
    # B robust once in 50: resamples without it give an unbounded upper end
    thin = stats.paired_bootstrap(*crafted(both=0, a_only=10, b_only=1, neither=39))
    assert thin.ratio == pytest.approx(10.0) and thin.ratio_ci[1] == float("inf")


def test_bootstrap_refuses_unpaired_outcomes():
    with pytest.raises(ValueError, match="equally long"):
        stats.paired_bootstrap([True, False], [True])


@pytest.mark.parametrize(("ci", "answer"), [
    ((3.0, 4.1), "yes"), ((3.2, 9.0), "yes"), ((1.4, 2.99), "no"), ((1.43, 3.42), "undetermined"),
    (None, "undefined"),
])
def test_ratio_verdict(ci, answer):
    assert stats.ratio_verdict(ci, 3) == answer


def test_difference_wording_never_says_refuted():
    assert stats.difference_wording((-2.7, 5.7)) == (
        "not separable; a difference larger than 5.7 points is excluded")
    assert stats.difference_wording((-6.3, 3.0)) == (
        "not separable; a difference larger than 6.3 points is excluded")
    assert stats.difference_wording((3.7, 11.3)) == "A higher by 3.7 to 11.3 points"
    assert stats.difference_wording((-11.3, -3.7)) == "B higher by 3.7 to 11.3 points"
    for ci in ((-1.0, 1.0), (0.0, 4.0), (2.0, 4.0)):
        assert "refuted" not in stats.difference_wording(ci)


def test_verdict_line_with_question_and_training_seed_mark():
    a, b = crafted(both=10, a_only=50, b_only=10, neither=130)
    iv = stats.paired_bootstrap(a, b)
    line = stats.verdict(iv, 3, across_training_seeds=True)
    assert line.startswith("A higher by ")
    assert "A ≥ 3× B: undetermined" in line and line.endswith("pair across training seeds")


def fixture_pair(reference=("base",)) -> stats.PairedComparison:
    (pair,) = [p for p in reports.ResultSet.load([ATTACKS]).pairs(reference=reference)
               if "rsmi ·" in p.label_a and "base" in p.label_b]
    return pair


def test_pairs_oriented_against_a_reference_carry_outcomes():
    pair = fixture_pair()
    # rsmi seed 0 robust at {1, 2, 4, 6}, base at {2}: 50 % against 12.5 %
    assert (pair.aua_a, pair.aua_b, pair.b, pair.c) == (50.0, 12.5, 3, 0)
    assert sum(pair.robust_a) == 4 and sum(pair.robust_b) == 1
    assert pair.interval.diff == pytest.approx(37.5) and pair.interval.ratio == pytest.approx(4.0)
    unoriented = [p for p in reports.ResultSet.load([ATTACKS]).pairs() if "base" in p.label_a]
    assert unoriented and all("base" not in p.label_b for p in unoriented)


def test_pairs_table_interval_columns_on_fixture_results():
    pair = fixture_pair()
    text = markdown_pair_table([pair], "a,b,training_seeds,diff,diff_ci,ratio,ratio_ci,verdict", 3)
    header, rule, row = text.splitlines()
    assert header == ("| A | B | training seeds (A/B) | A − B (points) | A − B 95 % CI | A / B | "
                      "A / B 95 % CI | what the intervals say |")
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[3] == "37.5" and cells[5] == "4.00"
    lo, hi = (float(x) for x in cells[4].strip("[]").split(","))
    assert lo <= 37.5 <= hi
    assert "A ≥ 3× B:" in cells[7]
    across = dataclasses.replace(pair, training_seed_a=1, training_seed_b=0)
    assert "1/0 (across seeds)" in markdown_pair_table([across], "training_seeds,verdict")
    assert "pair across training seeds" in markdown_pair_table([across], "verdict")
    with pytest.raises(Exception, match="unknown pairs column"):
        markdown_pair_table([pair], "diff,nonsense")


def test_docs_block_options_and_the_classic_pairs_table_unchanged():
    spec = parse_spec(" tests/fixtures/results/mr/attacks --table pairs --vs base --at-least 3 "
                      "--columns a,b,diff_ci,ratio_ci,verdict ")
    assert spec.vs == ("base",) and spec.at_least == 3.0
    root = Path(__file__).parent.parent
    text = render_block(spec, root)
    assert "| rsmi · textfooler | base · textfooler |" in text and "A ≥ 3× B:" in text
    classic = render_block(parse_spec("tests/fixtures/results/mr/attacks --table pairs"), root)
    assert classic == markdown_pairs(reports.ResultSet.load([ATTACKS]).pairs())
    assert "95 % CI" not in classic
    with pytest.raises(Exception, match="--at-least needs a number"):
        parse_spec("results --table pairs --at-least three")
    with pytest.raises(Exception, match="go with --table pairs"):
        parse_spec("results --vs base")


def test_cli_compare_prints_the_intervals(capsys):
    assert main(["report", "--compare", str(ATTACKS / "rsmi-m1-textfooler"),
                 str(ATTACKS / "base-textfooler"), "--at-least", "2"]) == 0
    out = capsys.readouterr().out
    assert "paired bootstrap" in out and "A ≥ 2× B" in out


def test_cli_at_least_needs_compare(capsys):
    assert main(["report", str(ATTACKS), "--at-least", "2"]) != 0
    assert "--at-least goes with --compare" in capsys.readouterr().err


def test_html_pairs_section_shows_the_intervals():
    from rsmi.reports.html import render_html

    page = render_html(reports.ResultSet.load([ATTACKS]))
    section = page[page.index('<section id="pairs">'):]
    section = section[:section.index("</section>")]
    assert "A − B 95 % CI" in section and "A / B 95 % CI" in section
    assert "what the intervals say" in section and "points" in section
