"""The HTML report in a real browser: headless Chromium renders it and we read the DOM back.

Skipped only when no Chromium is installed and ``RSMI_REQUIRE_BROWSER`` is unset;
``scripts/test.sh`` installs Chromium (scripts/install-system-deps.sh) and sets it, so CI
cannot skip this silently.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from rsmi.reports import ResultSet
from rsmi.reports.html import write_html

FIXTURE = Path(__file__).parent / "fixtures" / "results"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--enable-logging=stderr", "--v=0",
)


def chromium() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("RSMI_REQUIRE_BROWSER"):
        pytest.fail("RSMI_REQUIRE_BROWSER is set but no Chromium was found: run "
                    "scripts/install-system-deps.sh (as root)")
    pytest.skip("no Chromium (install: scripts/install-system-deps.sh; CI sets RSMI_REQUIRE_BROWSER)")


def browse(page: Path, tmp_path: Path, *extra: str, fragment: str = "") -> tuple[str, str]:
    """``(DOM after load, browser log)`` of ``page``; the log's console lines are the page's."""
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    profile.mkdir()
    proc = subprocess.run(
        [chromium(), *FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri() + fragment],
        capture_output=True, text=True, timeout=180, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, proc.stderr


def console_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    return write_html(ResultSet.load([FIXTURE]), tmp_path_factory.mktemp("report") / "report.html",
                      title="Fixture study")


def test_report_renders_in_chromium(report, tmp_path):
    dom, log = browse(report, tmp_path, "--dump-dom")
    assert console_lines(log) == [], console_lines(log)  # no error, no CSP violation
    html_tag = re.search(r"<html[^>]*>", dom).group(0)
    assert 'data-report-ready="1"' in html_tag and "data-js-errors" not in html_tag
    # results table: 4 clean rows + 3 attack rows, grouped under their attack
    assert len(re.findall(r'<tr class="row"', dom)) == 7
    assert re.search(r'<tr class="group"><th colspan="\d+">textfooler</th></tr>', dom)
    assert "41.7 ± 14.4" in dom and "[13.7, 69.4]" in dom
    # plots: inline SVG
    assert len(re.findall(r"<svg[ >]", dom)) >= 4
    # examples: substitutions highlighted, the markup in a text shown as text
    assert '<del class="old">gorgeous</del>' in dom and '<ins class="new">resplendent</ins>' in dom
    assert "&lt;script&gt;alert(\"x\")&lt;/script&gt;" in dom
    assert "<script>alert" not in dom
    assert len(re.findall(r'<li class="ex"', dom)) == 40
    # pagination ran: every run's pager is filled, all 40 match
    assert 'data-shown="40"' in dom and dom.count('class="page-info"') == 3


def test_filters_by_result_and_model(report, tmp_path):
    dom, log = browse(report, tmp_path, "--dump-dom", fragment="#result=successful&model=rsmi")
    assert console_lines(log) == []
    # rsmi (3 attack seeds): 3 + 5 + 3 successful examples; the other runs are hidden
    assert 'data-shown="11"' in dom
    runs = {}
    for chunk in dom.split('<details class="run"')[1:]:
        head = chunk[:chunk.index(">")]
        model = re.search(r'data-model="([^"]*)"', head).group(1)
        shown = re.findall(r'<li class="ex" data-result="(\w+)" data-seed="\d*">', chunk)
        runs[model] = ("hidden" in head, shown)
    assert runs["rsmi"] == (False, ["successful"] * 11)  # first page (25 per page) holds all 11
    assert runs["base"][0] and runs["rsmi-m1"][0]  # other models' runs are hidden
    html_tag = re.search(r"<html[^>]*>", dom).group(0)
    assert "data-js-errors" not in html_tag


def test_screenshot(report, tmp_path):
    shot = tmp_path / "report.png"
    _, log = browse(report, tmp_path, f"--screenshot={shot}", "--window-size=1280,900")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
