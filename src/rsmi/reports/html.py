"""The HTML report: one self-contained static page (no network, no server).

Overview table (grouped by dataset and attack, provenance one click away; each threat model its
own column when runs have fresh draws, with a legend), plots as inline SVG, training-seed
spread, paired comparisons (a deployed block with majority verdicts beside the protocol one),
and every attacked example with its word-level diff,
filterable by result type and model (a few lines of inline JavaScript, no library).

Safety: dataset and attack texts are untrusted. The page is rendered by Jinja2 with
autoescaping on; no JSON is embedded (the filters read ``data-*`` attributes, escaped like any
other attribute); the only markup not written by the template is matplotlib's SVG, made from
numbers and escaped labels; a Content-Security-Policy with a per-page nonce lets only the
page's own script run and forbids any network load.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rsmi.reports import plots
from rsmi.reports import threat_models as tm
from rsmi.reports.grouping import ResultSet
from rsmi.reports.outputs import GENERATOR
from rsmi.reports.rows import ResultRow
from rsmi.reports.tables import (
    COLUMNS,
    DEPLOYED_PAIR_COLUMNS,
    INTERVAL_PAIR_HEADERS,
    SEED_COLUMNS,
    Column,
    columns,
    deployed_pairs,
    fmt,
    interval_cells,
    pair_cells,
    pair_columns,
)
from rsmi.reports.tables import PAIR_HEADERS as PAIR_HEADERS
from rsmi.store.atomic import atomic_write_text, check_output_file

PAGE_SIZE = 25
HTML_COLUMNS = (
    "model", "method", "clean", "aua", "asr", "queries", "fwd", "fwd_per_query", "perturbed", "n",
    "seeds",
)
# A column shown with its 95 % interval below the value (the deployed figures: percentile
# bootstrap over the examples; the rest, the majority included: Wilson).
INTERVALS = {"clean": "clean_ci", "aua": "aua_ci", "aua_deployed": "aua_deployed_ci",
             "aua_deployed_k5": "aua_deployed_k5_ci", "aua_deployed_k25": "aua_deployed_k25_ci",
             "aua_majority": "aua_majority_ci"}


@dataclass
class Segment:
    """A run of words of one side of an aligned pair: ``changed`` when the attack swapped it."""

    text: str
    changed: bool = False


@dataclass
class ExampleView:
    index: int
    seed: int | None
    result_type: str
    original: list[Segment]
    perturbed: list[Segment]
    substitutions: list[tuple[str, str]]
    truth: str
    before: str
    after: str
    queries: str
    forward_passes: str
    words: str


@dataclass
class RunView:
    id: str
    row: ResultRow
    examples: list[ExampleView] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def word_diff(original: str, perturbed: str) -> tuple[list[Segment], list[Segment], list[tuple[str, str]]]:
    """Align two texts on whitespace tokens; the changed runs of each side, and ``old → new``."""
    a, b = original.split(), perturbed.split()
    left: list[Segment] = []
    right: list[Segment] = []
    subs: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        old, new = " ".join(a[i1:i2]), " ".join(b[j1:j2])
        changed = op != "equal"
        if old:
            left.append(Segment(old, changed))
        if new:
            right.append(Segment(new, changed))
        if changed:
            subs.append((old or "∅", new or "∅"))
    return left, right, subs


def _label(names: Sequence[str], value: Any) -> str:
    if value is None:
        return "–"
    try:
        i = int(value)
    except (TypeError, ValueError):
        return str(value)
    return names[i] if 0 <= i < len(names) else str(i)


def _prob(probs: Any, label: Any) -> str:
    try:
        return f"{float(probs[int(label)]):.2f}"
    except (TypeError, ValueError, IndexError, KeyError):
        return "–"


def example_view(rec: Mapping[str, Any], names: Sequence[str], seed: int | None) -> ExampleView:
    """What the page shows of one ``examples.jsonl`` record."""
    original = str(rec.get("original_text") or "")
    perturbed = str(rec.get("perturbed_text") or original)
    left, right, subs = word_diff(original, perturbed)
    before, after = rec.get("original_output"), rec.get("perturbed_output")
    words = rec.get("num_words_perturbed")
    return ExampleView(
        index=int(rec.get("index", -1)),
        seed=rec.get("seed", seed),
        result_type=str(rec.get("result_type", "?")),
        original=left,
        perturbed=right,
        substitutions=subs,
        truth=_label(names, rec.get("ground_truth")),
        before=f"{_label(names, before)} (p = {_prob(rec.get('original_probs'), before)})",
        after=f"{_label(names, after)} (p = {_prob(rec.get('perturbed_probs'), after)})",
        queries=fmt(rec.get("queries"), kind="int"),
        forward_passes=fmt(rec.get("forward_passes"), kind="int"),
        words=(f"{words} ({fmt(rec.get('perturbed_word_pct'))} %)" if words is not None else "–"),
    )


def run_views(rows: Sequence[ResultRow]) -> list[RunView]:
    """A view of every attack run that kept its examples."""
    out = []
    for i, row in enumerate(r for r in rows if r.kind == "attack"):
        view = RunView(id=f"run-{i}", row=row)
        for seed, recs in row.records.items():
            for rec in sorted(recs, key=lambda r: int(r.get("index", -1))):
                view.examples.append(example_view(rec, row.label_names, seed))
        for ex in view.examples:
            view.counts[ex.result_type] = view.counts.get(ex.result_type, 0) + 1
        if view.examples:
            out.append(view)
    return out


@dataclass(frozen=True)
class HeaderView:
    """A results-table column as the page heads it: the quantity, and the threat model its
    number belongs to (``protocol (single draw)``, ``deployed, k = 5`` ...) when the page
    shows more than one."""

    column: Column
    header: str
    threat: str | None = None


def result_headers(rows: Sequence[ResultRow]) -> list[HeaderView]:
    """The page's results columns: the deployed threat models beside the protocol ones when
    any row has fresh draws (:mod:`rsmi.reports.threat_models`), each headed by its name."""
    deployed = tm.has_deployed(rows)
    out = []
    for col in columns(tm.with_deployed(HTML_COLUMNS, rows)):
        threat = tm.of_column(col.name) if deployed else None
        if threat is None:
            out.append(HeaderView(col, col.header))
        else:
            quantity = "clean %" if col.name == threat.clean_column else "AUA %"
            out.append(HeaderView(col, quantity, threat.name))
    return out


def _pair_view(pairs: Sequence[Any]) -> dict[str, Any]:
    """The pairs tables of the page: the protocol block, and the deployed block of the pairs
    whose runs have fresh draws; each says which verdicts its tests use."""
    deployed = deployed_pairs(pairs)
    chosen = pair_columns(DEPLOYED_PAIR_COLUMNS)
    return {
        "pair_headers": (*PAIR_HEADERS, *INTERVAL_PAIR_HEADERS),
        "pairs": [pair_cells(p) + interval_cells(p) for p in pairs],
        "protocol_verdict": tm.PROTOCOL_VERDICT,
        "deployed_verdict": tm.MAJORITY_VERDICT,
        "deployed_pair_headers": [c.header for c in chosen],
        "deployed_pairs": [[c.cell(p, None) for c in chosen] for p in deployed],
    }


def _environment():
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("rsmi.reports", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(results: ResultSet, *, title: str = "Robustness results") -> str:
    """The report page as a string."""
    from markupsafe import Markup

    figures = plots.report_figures(results.rows)
    for fig in figures:
        fig["svg"] = Markup(fig["svg"])  # matplotlib's SVG: numbers and escaped labels only
    runs = run_views(results.rows)
    models = sorted({v.row.model for v in runs})
    headers = result_headers(results.rows)
    seed_groups = results.training_seed_groups()
    shown = [h.column.name for h in headers]
    return _environment().get_template("report.html").render(
        title=title,
        generator=GENERATOR,
        generated=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        nonce=secrets.token_urlsafe(16),
        groups=results.groups(),
        columns=headers,
        intervals={k: COLUMNS[v] for k, v in INTERVALS.items()},
        threat_legend=tm.legend(shown) if tm.has_deployed(results.rows) else [],
        no_fresh_draws=tm.NO_FRESH_DRAWS,
        seed_columns=columns(tm.with_deployed(SEED_COLUMNS, seed_groups)),
        seed_groups=seed_groups,
        **_pair_view(results.pairs()),
        figures=figures,
        runs=runs,
        models=models,
        page_size=PAGE_SIZE,
        result_types=("successful", "failed", "skipped"),
    )


def write_html(results: ResultSet, path: str | Path, *, title: str = "Robustness results") -> Path:
    """Write the report page to ``path`` atomically (a kill never leaves half a page).

    A ``path`` that is not a regular file (a directory, a device, a FIFO) is refused before the
    page is rendered; whether an existing file may be replaced is the caller's rule
    (:func:`rsmi.reports.outputs.check_replaceable` for ``rsmi report --html``).
    """
    check_output_file(path, "HTML report")
    path = Path(path)
    atomic_write_text(path.resolve(), render_html(results, title=title))
    return path
