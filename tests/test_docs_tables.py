"""Tables in README.md and docs/*.md are generated from committed results (rsmi report).

Every ``<!-- rsmi-report: PATH ... -->`` block must equal what ``rsmi report --update-docs``
writes from the results it names; refresh with
``rsmi report --update-docs README.md docs/*.md``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rsmi.cli.main import main
from rsmi.reports import docs

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).parent / "fixtures" / "results"
DOC_FILES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])


@pytest.mark.parametrize("doc", DOC_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_committed_doc_tables_match_committed_results(doc):
    text = doc.read_text(encoding="utf-8")
    stale = docs.update_docs([doc], check=True)  # reads every block; a bad block raises
    assert not stale, (
        "\n".join(map(str, stale)) + "\nrefresh with: rsmi report --update-docs README.md docs/*.md"
    )
    assert doc.read_text(encoding="utf-8") == text  # checking never writes


STALE_DOC = """# Results

Some prose that must survive.

<!-- rsmi-report: results/mr --columns model,attack,clean,aua,aua_ci,n -->
| model | attack | AUA % |
|---|---|---:|
| rsmi | textfooler | 99.9 |
<!-- /rsmi-report -->

Between the blocks.

<!-- rsmi-report: results/mr --table training-seeds -->
<!-- /rsmi-report -->
"""


@pytest.fixture
def repo(tmp_path):
    """A throw-away repository: pyproject.toml at its root, results, and a doc with blocks."""
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    shutil.copytree(FIXTURE / "mr", tmp_path / "results" / "mr")
    doc = tmp_path / "docs" / "results.md"
    doc.parent.mkdir()
    doc.write_text(STALE_DOC)
    return tmp_path, doc


def test_stale_block_is_detected_then_refreshed(repo):
    root, doc = repo
    stale = docs.update_docs([doc], check=True)
    assert [b.line for b in stale] == [5, 13]
    assert doc.read_text() == STALE_DOC  # --check changes nothing
    assert len(docs.update_docs([doc])) == 2
    text = doc.read_text()
    assert "99.9" not in text and "Some prose that must survive." in text
    assert "| rsmi | textfooler | 87.5 ± 0.0 | 41.7 ± 14.4 | [13.7, 69.4] | 8 |" in text
    assert "| mr | rsmi | none (clean) | 0, 1, 2 | 73.3 ± 1.1 |" in text
    assert docs.update_docs([doc], check=True) == []  # fresh now
    # a changed result makes the block stale again
    evaluation = root / "results" / "mr" / "eval" / "base" / "evaluation.json"
    evaluation.write_text(evaluation.read_text().replace('"clean_accuracy": 0.7875', '"clean_accuracy": 0.8'))
    assert [b.line for b in docs.update_docs([doc], check=True)] == [5]


def test_cli_update_docs_and_check(repo, capsys):
    _, doc = repo
    assert main(["report", "--update-docs", str(doc), "--check"]) == 1
    assert "out of date" in capsys.readouterr().out
    assert main(["report", "--update-docs", str(doc)]) == 0
    assert main(["report", "--update-docs", str(doc), "--check"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_broken_blocks_are_errors(repo, capsys):
    _, doc = repo
    doc.write_text("<!-- rsmi-report: results/mr -->\nno end\n")
    assert main(["report", "--update-docs", str(doc)]) == 2
    assert "closing" in capsys.readouterr().err
    doc.write_text("<!-- rsmi-report: results/none -->\n<!-- /rsmi-report -->\n")
    with pytest.raises(FileNotFoundError):
        docs.update_docs([doc], check=True)
    doc.write_text("<!-- rsmi-report: results/mr --colour red -->\n<!-- /rsmi-report -->\n")
    with pytest.raises(ValueError, match="unknown option"):
        docs.update_docs([doc], check=True)


def test_markers_in_fenced_code_are_examples(repo):
    _, doc = repo
    text = "```markdown\n<!-- rsmi-report: results/none -->\nexample\n<!-- /rsmi-report -->\n```\n"
    doc.write_text(text + STALE_DOC)
    assert [b.line for b in docs.update_docs([doc], check=True)] == [10, 18]
    docs.update_docs([doc])
    assert doc.read_text().startswith(text)


def test_a_block_of_runs_not_made_yet_says_so(repo):
    root, doc = repo
    doc.write_text("<!-- rsmi-report: results/bbc/attacks/*/seed-0/textfooler -->\n"
                   "<!-- /rsmi-report -->\n")
    docs.update_docs([doc])
    assert "_No results yet under `results/bbc/attacks/*/seed-0/textfooler`._" in doc.read_text()
    # a plain path that does not exist stays an error (a typo must not pass for "not yet")
    doc.write_text("<!-- rsmi-report: results/bbc -->\n<!-- /rsmi-report -->\n")
    with pytest.raises(FileNotFoundError):
        docs.update_docs([doc])


def test_a_pairs_block_with_one_run_per_attack_says_so(repo):
    root, doc = repo
    doc.write_text("<!-- rsmi-report: results/mr/attacks/base-textfooler --table pairs -->\n"
                   "<!-- /rsmi-report -->\n")
    docs.update_docs([doc])
    assert "_No two runs of one attack on the same examples yet._" in doc.read_text()
