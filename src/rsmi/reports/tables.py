"""Result rows as text: the columns of a table, a rich table, Markdown tables and report.

Every table of the project (terminal, Markdown report, HTML overview, generated docs blocks)
takes its cells from :data:`COLUMNS`, so a number reads the same everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rsmi.errors import ConfigError
from rsmi.reports import threat_models as tm
from rsmi.reports.rows import ResultRow
from rsmi.reports.stats import DeployedComparison, PairedComparison, verdict, wilson

DASH = "–"


def fmt(value: float | None, std: float | None = None, kind: str = "pct") -> str:
    """``81.2``, ``45.5 ± 2.2``, ``100`` (int), ``–`` when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    text = f"{value:.0f}" if kind == "int" else f"{value:.1f}"
    if text in ("-0", "-0.0"):  # a tiny negative difference reads as no difference
        text = text[1:]
    if std is not None and kind != "int":
        text += f" ± {std:.1f}"
    return text


def fmt_interval(interval: tuple[float, float] | None) -> str:
    return DASH if interval is None else f"[{interval[0]:.1f}, {interval[1]:.1f}]"


def fmt_p(p: float) -> str:
    return f"{p:.2g}" if p >= 0.001 else f"{p:.1e}"


def _metric(key: str, kind: str = "pct") -> Callable[[ResultRow], str]:
    return lambda row: fmt(*row.value(key), kind)


def _deployed(key: str) -> Callable[[ResultRow], str]:
    return lambda row: fmt(*row.deployed_value(key), "pct")


def _majority_interval(row: ResultRow) -> str:
    mean, n = row.deployed_value("aua_majority")[0], row.num_examples
    if mean is None or not n:
        return fmt_interval(None)
    return fmt_interval(wilson(round(mean * n / 100.0), n))


def _fwd_per_query(row: ResultRow) -> str:
    fwd, queries = row.value("avg_forward_passes")[0], row.value("avg_queries")[0]
    if row.kind == "clean":
        return fmt(fwd)
    return DASH if fwd is None or not queries else fmt(fwd / queries)


def _setting(key: str) -> Callable[[ResultRow], str]:
    """An RSMI inference setting of the row's model (as attacked or evaluated), ``–`` if none."""

    def cell(row: ResultRow) -> str:
        value = row.settings.get(key)
        if value is None or row.method in ("base", "freelb"):
            return DASH
        return f"{value:g}" if isinstance(value, float) else str(value)

    return cell


@dataclass(frozen=True)
class Column:
    """A table column: its name (for ``--columns``), header and how a row's cell reads."""

    name: str
    header: str
    cell: Callable[[ResultRow], str]
    numeric: bool = True


COLUMNS: dict[str, Column] = {
    c.name: c
    for c in (
        Column("dataset", "dataset", lambda r: r.dataset, numeric=False),
        Column("model", "model", lambda r: r.model, numeric=False),
        Column("method", "method", lambda r: r.method, numeric=False),
        Column("attack", "attack", lambda r: r.attack, numeric=False),
        Column("dtype", "dtype", lambda r: r.dtype or DASH, numeric=False),
        Column("split", "split", lambda r: str(r.provenance.get("split") or DASH), False),
        Column("noise_std", "σ", _setting("noise_std")),
        Column("noise_every", "noise every", _setting("noise_every")),
        Column("num_masks", "masks", _setting("num_masks")),
        Column("seeds", "attack seeds", lambda r: ", ".join(map(str, r.seeds)) or DASH, False),
        Column("training_seeds", "training seeds",
               lambda r: ", ".join(map(str, r.training_seeds)) or
               (DASH if r.training_seed is None else str(r.training_seed)), False),
        Column("clean", "clean %", _metric("clean_accuracy")),
        Column("clean_ci", "clean 95 % CI", lambda r: fmt_interval(r.interval("clean_accuracy"))),
        Column("aua", "AUA %", _metric("accuracy_under_attack")),
        Column("aua_ci", "AUA 95 % CI",
               lambda r: fmt_interval(r.interval("accuracy_under_attack"))),
        # Deployed threat models (fresh draws, rsmi.attacks.fresh): "–" for runs without them.
        # (a deterministic model's are its protocol figures: every draw answers alike)
        Column("clean_deployed", "clean deployed %", _deployed("clean_deployed")),
        Column("aua_deployed", "AUA deployed %", _deployed("aua_deployed")),
        Column("aua_deployed_k5", "AUA deployed k=5 %", _deployed("aua_deployed_k5")),
        Column("aua_deployed_k25", "AUA deployed k=25 %", _deployed("aua_deployed_k25")),
        Column("aua_majority", "AUA majority %", _deployed("aua_majority")),
        # their intervals: percentile bootstrap over the examples (the majority: Wilson)
        Column("aua_deployed_ci", "AUA deployed 95 % CI",
               lambda r: fmt_interval(r.deployed_interval(1))),
        Column("aua_deployed_k5_ci", "AUA deployed k=5 95 % CI",
               lambda r: fmt_interval(r.deployed_interval(5))),
        Column("aua_deployed_k25_ci", "AUA deployed k=25 95 % CI",
               lambda r: fmt_interval(r.deployed_interval(25))),
        Column("aua_majority_ci", "AUA majority 95 % CI", _majority_interval),
        Column("asr", "ASR %", _metric("attack_success_rate")),
        Column("queries", "queries", _metric("avg_queries")),
        Column("fwd", "fwd passes", _metric("avg_forward_passes")),
        Column("fwd_per_query", "fwd / query", _fwd_per_query),
        Column("perturbed", "perturbed %", _metric("avg_perturbed_word_pct")),
        Column("n", "N", _metric("num_examples", "int")),
    )
}
DEFAULT_COLUMNS = (
    "model", "method", "attack", "clean", "aua", "aua_ci", "asr", "queries", "fwd", "perturbed", "n",
)
SEED_COLUMNS = ("dataset", "method", "attack", "training_seeds", "clean", "aua", "n")


def _pick(names: Sequence[str] | str | None, default: Sequence[str], table: Mapping[str, Any],
          what: str, hint: str = "") -> list[Any]:
    """Entries of ``table`` by name (a comma-separated string or a list); ``default`` for None."""
    if names is None:
        names = default
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in names if n not in table]
    if unknown:
        raise ConfigError(f"unknown {what}(s) {', '.join(unknown)}: {hint}choose from {', '.join(table)}")
    return [table[n] for n in names]


def columns(names: Sequence[str] | str | None = None) -> list[Column]:
    """Columns by name (a comma-separated string or a list); the defaults for None."""
    return _pick(names, DEFAULT_COLUMNS, COLUMNS, "column")


def _table_columns(cols: Sequence[str] | str | None) -> list[Column]:
    """The columns of a table; without a training-seeds column, the model column names the
    training seed of a model whose runs on several seeds are in the table (``rsmi-paper (seed 1)``),
    so that no two rows read alike."""
    chosen = columns(cols)
    if any(c.name == "training_seeds" for c in chosen):
        return chosen
    return [Column("model", "model", lambda r: r.shown_model, numeric=False) if c.name == "model"
            else c for c in chosen]


def rich_table(rows: Sequence[ResultRow], title: str = "Robustness results",
               cols: Sequence[str] | str | None = None):
    """A ``rich.table.Table`` of the rows."""
    from rich.table import Table

    table = Table(title=title)
    chosen = _table_columns(cols)
    for col in chosen:
        table.add_column(col.header, justify="right" if col.numeric else "left")
    for row in rows:
        table.add_row(*(col.cell(row) for col in chosen))
    return table


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: Sequence[ResultRow], cols: Sequence[str] | str | None = None) -> str:
    """The rows as a GitHub Markdown table."""
    chosen = _table_columns(cols)
    lines = [
        "| " + " | ".join(c.header for c in chosen) + " |",
        "|" + "".join("---:|" if c.numeric else "---|" for c in chosen),
    ]
    for row in rows:
        lines.append("| " + " | ".join(_md_cell(c.cell(row)) for c in chosen) + " |")
    return "\n".join(lines) + "\n"


PAIR_HEADERS = ("A", "B", "seeds (A/B)", "N", "AUA A %", "AUA B %", "b (A only)", "c (B only)",
                "p (exact McNemar)", "clean b/c", "clean p")


def pair_cells(p: PairedComparison) -> list[str]:
    """The cells of one paired comparison (see :data:`PAIR_HEADERS`)."""
    seeds = f"{DASH if p.seed_a is None else p.seed_a}/{DASH if p.seed_b is None else p.seed_b}"
    return [p.label_a, p.label_b, seeds, str(p.n), fmt(p.aua_a), fmt(p.aua_b), str(p.b), str(p.c),
            fmt_p(p.p_value), f"{p.clean_b}/{p.clean_c}", fmt_p(p.clean_p_value)]


def markdown_pairs(pairs: Sequence[PairedComparison]) -> str:
    """Paired comparisons as a Markdown table."""
    lines = ["| " + " | ".join(PAIR_HEADERS) + " |", "|---|---|---|" + "---:|" * 8]
    for p in pairs:
        lines.append("| " + " | ".join(_md_cell(c) for c in pair_cells(p)) + " |")
    return "\n".join(lines) + "\n"


def rich_pairs(pairs: Sequence[PairedComparison], title: str = "Paired comparison"):
    """Paired comparisons as a ``rich.table.Table``."""
    from rich.table import Table

    table = Table(title=title)
    for i, header in enumerate(PAIR_HEADERS):
        table.add_column(header, justify="left" if i < 3 else "right")
    for p in pairs:
        table.add_row(*pair_cells(p))
    return table


def markdown_report(
    rows: Sequence[ResultRow],
    *,
    title: str = "rsmi results",
    notes: str = "",
    plot_file: str | None = None,
    seed_groups: Sequence[ResultRow] = (),
    pairs: Sequence[PairedComparison] = (),
    cols: Sequence[str] | str | None = None,
) -> str:
    """A small Markdown report: the table, the plot, where each number came from."""
    parts = [f"# {title}\n", markdown_table(rows, cols)]
    shown = [c.name for c in columns(cols)]
    if any(n in tm.DEPLOYED_COLUMNS for n in shown):
        parts.append("\n" + tm.legend_line(shown) + " " + tm.NO_FRESH_DRAWS + ".\n")
    if seed_groups:
        parts.append("\n## Across training seeds (mean ± std)\n\n" +
                     markdown_table(seed_groups, tm.with_deployed(SEED_COLUMNS, seed_groups)))
    if pairs:
        parts.append("\n## Paired comparisons (same examples, exact McNemar on robust or not)\n\n"
                     + f"Verdicts: {tm.PROTOCOL_VERDICT}.\n\n" + markdown_pairs(pairs))
    deployed = deployed_pairs(pairs)
    if deployed:
        parts.append("\n## Paired comparisons, deployed threat models\n\n"
                     + f"Verdicts: {tm.MAJORITY_VERDICT}.\n\n"
                     + markdown_pair_table(deployed, DEPLOYED_PAIR_COLUMNS))
    if plot_file:
        parts.append(f"\n![results]({plot_file})\n")
    if notes:
        parts.append("\n" + notes.strip() + "\n")
    parts.append("\nSources:\n" + "".join(f"- `{r.source}`\n" for r in rows))
    return "\n".join(parts)


# ---- pairs with bootstrap intervals (docs/report.md, "Intervals"): a column set of its own ----


def fmt_ratio(value: float | None) -> str:
    if value is None:
        return DASH
    return "∞" if math.isinf(value) else f"{value:.2f}"


def fmt_ratio_interval(interval: tuple[float, float] | None) -> str:
    return "undefined (B's AUA is 0)" if interval is None else \
        f"[{fmt_ratio(interval[0])}, {fmt_ratio(interval[1])}]"


def _seed_pair(a: int | None, b: int | None) -> str:
    return f"{DASH if a is None else a}/{DASH if b is None else b}"


def _deployed(cell: Callable[[DeployedComparison, float | None], str]
              ) -> Callable[[PairedComparison, float | None], str]:
    """A pairs cell read from the pair's deployed comparison; "–" for a pair without one."""
    return lambda p, f: DASH if p.deployed is None else cell(p.deployed, f)


def _deployed_verdict(p: PairedComparison, factor: float | None) -> str:
    """What the deployed intervals say, and which side's verdicts are its protocol ones."""
    if p.deployed is None:
        return DASH
    parts = [verdict(p.deployed.interval, factor, p.across_training_seeds)]
    parts += [tm.DERIVED_NOTE.format(side=side) for side, derived in
              (("A", p.deployed.derived_a), ("B", p.deployed.derived_b)) if derived]
    return "; ".join(parts)


@dataclass(frozen=True)
class PairColumn:
    """A column of the pairs table: its name (``--columns`` of ``--table pairs``), header and
    how a pair's cell reads (``factor``: the "A ≥ factor × B?" question of the verdict)."""

    name: str
    header: str
    cell: Callable[[PairedComparison, float | None], str]
    numeric: bool = True


PAIR_COLUMNS: dict[str, PairColumn] = {
    c.name: c
    for c in (
        PairColumn("a", "A", lambda p, f: p.label_a, numeric=False),
        PairColumn("b", "B", lambda p, f: p.label_b, numeric=False),
        PairColumn("seeds", "seeds (A/B)", lambda p, f: _seed_pair(p.seed_a, p.seed_b), False),
        PairColumn("training_seeds", "training seeds (A/B)",
                   lambda p, f: _seed_pair(p.training_seed_a, p.training_seed_b)
                   + (" (across seeds)" if p.across_training_seeds else ""), False),
        PairColumn("n", "N", lambda p, f: str(p.n)),
        PairColumn("aua_a", "AUA A %", lambda p, f: fmt(p.aua_a)),
        PairColumn("aua_b", "AUA B %", lambda p, f: fmt(p.aua_b)),
        PairColumn("b_only", "b (A only)", lambda p, f: str(p.b)),
        PairColumn("c_only", "c (B only)", lambda p, f: str(p.c)),
        PairColumn("p", "p (exact McNemar)", lambda p, f: fmt_p(p.p_value)),
        PairColumn("clean_bc", "clean b/c", lambda p, f: f"{p.clean_b}/{p.clean_c}"),
        PairColumn("clean_p", "clean p", lambda p, f: fmt_p(p.clean_p_value)),
        PairColumn("diff", "A − B (points)", lambda p, f: fmt(p.interval.diff)),
        PairColumn("diff_ci", "A − B 95 % CI", lambda p, f: fmt_interval(p.interval.diff_ci)),
        PairColumn("ratio", "A / B", lambda p, f: fmt_ratio(p.interval.ratio)),
        PairColumn("ratio_ci", "A / B 95 % CI", lambda p, f: fmt_ratio_interval(p.interval.ratio_ci)),
        PairColumn("verdict", "what the intervals say",
                   lambda p, f: verdict(p.interval, f, p.across_training_seeds), numeric=False),
        # the deployed threat models (majority verdicts of fresh draws): "–" without them
        PairColumn("aua_deployed_a", f"AUA A % ({tm.DEPLOYED.name})",
                   _deployed(lambda d, f: fmt(d.aua_a))),
        PairColumn("aua_deployed_b", f"AUA B % ({tm.DEPLOYED.name})",
                   _deployed(lambda d, f: fmt(d.aua_b))),
        PairColumn("aua_majority_a", f"AUA A % ({tm.MAJORITY.name})",
                   _deployed(lambda d, f: fmt(d.majority_a))),
        PairColumn("aua_majority_b", f"AUA B % ({tm.MAJORITY.name})",
                   _deployed(lambda d, f: fmt(d.majority_b))),
        PairColumn("b_majority", "b (A only, majority)", _deployed(lambda d, f: str(d.b))),
        PairColumn("c_majority", "c (B only, majority)", _deployed(lambda d, f: str(d.c))),
        PairColumn("p_majority", "p (exact McNemar, majority verdicts)",
                   _deployed(lambda d, f: fmt_p(d.p_value))),
        PairColumn("diff_deployed", f"A − B (points, {tm.DEPLOYED.name})",
                   _deployed(lambda d, f: fmt(d.interval.diff))),
        PairColumn("diff_deployed_ci", "A − B 95 % CI (deployed)",
                   _deployed(lambda d, f: fmt_interval(d.interval.diff_ci))),
        PairColumn("ratio_deployed", f"A / B ({tm.DEPLOYED.name})",
                   _deployed(lambda d, f: fmt_ratio(d.interval.ratio))),
        PairColumn("ratio_deployed_ci", "A / B 95 % CI (deployed)",
                   _deployed(lambda d, f: fmt_ratio_interval(d.interval.ratio_ci))),
        PairColumn("verdict_deployed", "what the intervals say (deployed)",
                   lambda p, f: _deployed_verdict(p, f), numeric=False),
    )
}
# the pairs table as it always read (``--table pairs`` without ``--columns``)
DEFAULT_PAIR_COLUMNS = ("a", "b", "seeds", "n", "aua_a", "aua_b", "b_only", "c_only", "p",
                        "clean_bc", "clean_p")
INTERVAL_PAIR_COLUMNS = ("diff", "diff_ci", "ratio", "ratio_ci", "verdict")
# the deployed block of a pair (tm.MAJORITY_VERDICT): beside the protocol block wherever both
# runs have fresh draws (Markdown and HTML reports, --compare)
DEPLOYED_MCNEMAR_COLUMNS = ("n", "aua_deployed_a", "aua_deployed_b", "aua_majority_a",
                            "aua_majority_b", "b_majority", "c_majority", "p_majority")
DEPLOYED_INTERVAL_COLUMNS = ("diff_deployed", "diff_deployed_ci", "ratio_deployed",
                             "ratio_deployed_ci", "verdict_deployed")
DEPLOYED_PAIR_COLUMNS = ("a", "b", "seeds", *DEPLOYED_MCNEMAR_COLUMNS, *DEPLOYED_INTERVAL_COLUMNS)


def pair_columns(names: Sequence[str] | str | None = None) -> list[PairColumn]:
    """Pairs-table columns by name (comma-separated or a list); the classic table for None."""
    return _pick(names, DEFAULT_PAIR_COLUMNS, PAIR_COLUMNS, "pairs column", "with --table pairs ")


def markdown_pair_table(pairs: Sequence[PairedComparison], cols: Sequence[str] | str | None = None,
                        factor: float | None = None) -> str:
    """Paired comparisons as a Markdown table of the chosen :data:`PAIR_COLUMNS`."""
    chosen = pair_columns(cols)
    lines = ["| " + " | ".join(c.header for c in chosen) + " |",
             "|" + "".join("---:|" if c.numeric else "---|" for c in chosen)]
    for p in pairs:
        lines.append("| " + " | ".join(_md_cell(c.cell(p, factor)) for c in chosen) + " |")
    return "\n".join(lines) + "\n"


def rich_pair_table(pairs: Sequence[PairedComparison], cols: Sequence[str] | str | None = None,
                    factor: float | None = None, title: str = "Paired comparison"):
    """Paired comparisons as a ``rich.table.Table`` of the chosen :data:`PAIR_COLUMNS`."""
    from rich.table import Table

    table = Table(title=title)
    chosen = pair_columns(cols)
    for c in chosen:
        table.add_column(c.header, justify="right" if c.numeric else "left")
    for p in pairs:
        table.add_row(*(c.cell(p, factor) for c in chosen))
    return table


def deployed_pairs(pairs: Sequence[PairedComparison]) -> list[PairedComparison]:
    """The pairs that have a deployed block (both runs with fresh draws, or one deterministic)."""
    return [p for p in pairs if p.deployed is not None]


def interval_cells(p: PairedComparison, factor: float | None = None) -> list[str]:
    """The bootstrap cells of a pair (:data:`INTERVAL_PAIR_COLUMNS`), for the HTML and terminal."""
    return [PAIR_COLUMNS[n].cell(p, factor) for n in INTERVAL_PAIR_COLUMNS]


INTERVAL_PAIR_HEADERS = tuple(PAIR_COLUMNS[n].header for n in INTERVAL_PAIR_COLUMNS)
