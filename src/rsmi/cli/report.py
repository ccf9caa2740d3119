"""`rsmi report RUN_OR_DIR ...`: results as a table, Markdown, a plot and an HTML page; paired
comparisons (`--compare A B`); tables in the docs regenerated (`--update-docs FILE ...`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rsmi.cli._common import console
from rsmi.cli.main import CLIError

# "bars" and the ids of rsmi.reports.plots.FIGURES (kept literal: no matplotlib at CLI start-up)
PLOT_KINDS = ("bars", "aua-vs-clean", "aua-vs-cost", "aua-vs-settings", "distributions",
              "threat-models")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="results as a table, Markdown, HTML page (with every adversarial example); "
        "paired tests; docs tables",
        description="Each RUN_OR_DIR is an attack run directory (summary.json of rsmi attack), "
        "an evaluation (evaluation.json of rsmi evaluate), such a file, or a directory searched "
        "recursively for them (the seed-<s>/ directories of a multi-seed run belong to that run "
        "and are not counted again), or a quoted glob of them ('results/study/mr/attacks/*/"
        "seed-0/textfooler'). Accuracies carry 95 % Wilson intervals; several attack "
        "seeds give mean ± std.",
    )
    p.add_argument("runs", nargs="*", metavar="RUN_OR_DIR")
    p.add_argument("--html", metavar="FILE",
                   help="write one self-contained HTML page: results, plots, every example")
    p.add_argument("--markdown", metavar="FILE", help="write a Markdown report")
    p.add_argument("--plot", metavar="FILE", help="write a PNG figure (--plot-kind)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing --markdown/--html/--plot FILE that rsmi report did "
                   "not write (without it such a file is left alone: rsmi replaces only files "
                   "carrying its generator mark, and empty files)")
    p.add_argument("--plot-kind", default="bars", choices=PLOT_KINDS,
                   help="with --plot: bars (clean accuracy and AUA per run, the default), "
                   "aua-vs-clean, aua-vs-cost, aua-vs-settings or distributions (the HTML "
                   "report's figures)")
    p.add_argument("--title", help="title of the tables, the HTML and Markdown reports and "
                   "the --plot figure (default: 'Robustness results'; each --plot-kind figure "
                   "has its own)")
    from rsmi.reports.tables import COLUMNS, DEFAULT_COLUMNS

    others = ", ".join(name for name in COLUMNS if name not in DEFAULT_COLUMNS)
    p.add_argument("--columns", metavar="LIST",
                   help="columns of the terminal and Markdown tables, comma-separated (default: "
                   f"{','.join(DEFAULT_COLUMNS)}; also {others}; the aua_deployed*, "
                   "aua_majority and clean_deployed columns read the fresh-draw verdicts of the "
                   "deployed threat models)")
    p.add_argument("--compare", nargs=2, metavar=("RUN_A", "RUN_B"),
                   help="exact McNemar test of two attack runs on the same examples "
                   "(robust = the attack failed)")
    p.add_argument("--at-least", type=float, metavar="C",
                   help="with --compare: the verdict also answers 'is A's AUA at least C times "
                   "B's?' from the ratio's paired bootstrap 95 %% interval (yes: lower bound ≥ C; "
                   "no: upper bound < C; undetermined otherwise)")
    p.add_argument("--update-docs", nargs="+", metavar="FILE",
                   help="regenerate every '<!-- rsmi-report: PATH ... -->' block of these "
                   "Markdown files from the results it names")
    p.add_argument("--model-card", metavar="MODEL_DIR",
                   help="refresh the README.md model card of a saved model with the results of "
                   "it found in RUN_OR_DIR ... (default: the model directory, and the pipeline "
                   "run it belongs to); other results are left out")
    p.add_argument("--check", action="store_true",
                   help="with --update-docs: change nothing, exit 1 when a block is out of date")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:

    if not (args.runs or args.compare or args.update_docs or args.model_card):
        raise CLIError("give RUN_OR_DIR, --compare RUN_A RUN_B, --update-docs FILE or "
                       "--model-card MODEL_DIR (see --help)")
    if args.model_card:
        return _model_card(args)
    if args.at_least is not None and not args.compare:
        raise CLIError("--at-least goes with --compare RUN_A RUN_B")
    if args.check and not args.update_docs:
        raise CLIError("--check goes with --update-docs FILE ...")
    _check_outputs(args)  # before any result is read
    status = 0
    if args.update_docs:
        status = _update_docs(args.update_docs, check=args.check)
    if args.compare:
        _compare(args.compare, args.at_least)
    if args.runs:
        _report(args)
    return status


def _compare(paths: list[str], factor: float | None) -> None:
    """``--compare A B``: exact McNemar, then the AUAs' difference and ratio with their paired
    bootstrap 95 % intervals and what they say, per attack-seed pair; the same under the
    deployed threat models (majority verdicts) when both runs have fresh draws."""
    from rsmi import reports
    from rsmi.reports import threat_models as tm
    from rsmi.reports.tables import (
        DEPLOYED_INTERVAL_COLUMNS,
        DEPLOYED_MCNEMAR_COLUMNS,
        INTERVAL_PAIR_HEADERS,
        deployed_pairs,
        interval_cells,
        rich_pair_table,
    )

    a, b = (reports.load_row(p) for p in paths)
    pairs = reports.compare(a, b)
    out = console()
    out.print(reports.rich_pairs(pairs, title="Paired comparison, protocol threat model "
                                 "(b: robust under A only, c: under B only)"))
    from rich.table import Table

    table = Table(title="AUA of A against B: paired bootstrap (10,000 resamples, seed 0), 95 % "
                  "percentile intervals")
    for header in ("seeds (A/B)", *INTERVAL_PAIR_HEADERS):
        table.add_column(header, justify="left" if header == "seeds (A/B)" else "right")
    for p in pairs:
        table.add_row(f"{p.seed_a}/{p.seed_b}", *interval_cells(p, factor))
    out.print(table)
    out.print(f"Verdicts above: {tm.PROTOCOL_VERDICT}.", markup=False, highlight=False)
    deployed = deployed_pairs(pairs)
    if deployed:
        out.print(rich_pair_table(deployed, ("seeds", *DEPLOYED_MCNEMAR_COLUMNS), factor,
                                  title="Paired comparison, deployed threat models (b: robust "
                                  "under A only, c: under B only, majority verdicts)"))
        out.print(rich_pair_table(deployed, ("seeds", *DEPLOYED_INTERVAL_COLUMNS), factor,
                                  title="Deployed AUA (1 submission) of A against B: paired "
                                  "bootstrap (10,000 resamples, seed 0), 95 % percentile "
                                  "intervals"))
        out.print(f"Verdicts above: {tm.MAJORITY_VERDICT}.", markup=False, highlight=False)
    else:
        out.print("Deployed threat models: not compared (a run without fresh draws; "
                  "rsmi attack rescore adds them).", markup=False, highlight=False)


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse output paths rsmi may not write (rsmi.reports.outputs), before any work."""
    from rsmi.reports.outputs import check_outputs
    from rsmi.store.atomic import check_output_file

    outputs = {"--markdown": args.markdown, "--html": args.html, "--plot": args.plot}
    check_outputs(outputs if args.runs else {}, overwrite=args.overwrite)
    for doc in args.update_docs or ():
        check_output_file(doc, "--update-docs file")


def _update_docs(files: list[str], *, check: bool) -> int:
    from rsmi.reports.docs import update_docs

    stale = update_docs(files, check=check)
    for block in stale:
        print(block if check else f"{block.file}:{block.line}: block rewritten")
    if not stale:
        print("docs tables are up to date")
    return 1 if check and stale else 0


def _report(args: argparse.Namespace) -> None:
    from rsmi import reports
    from rsmi.reports import threat_models as tm

    results = reports.ResultSet.load(args.runs)
    title = args.title or "Robustness results"
    out = console()
    # without --columns: the deployed threat models beside the protocol AUA when runs have them
    cols = args.columns or tm.with_deployed(reports.DEFAULT_COLUMNS, results.rows)
    out.print(reports.rich_table(results.rows, title=title, cols=cols))
    seed_groups = results.training_seed_groups()
    if seed_groups:
        from rsmi.reports.tables import SEED_COLUMNS

        out.print(reports.rich_table(seed_groups, title="Across training seeds (mean ± std)",
                                     cols=tm.with_deployed(SEED_COLUMNS, seed_groups)))
    plot_name = None
    if args.plot:
        if args.plot_kind == "bars":
            reports.plot(results.rows, args.plot, title=title)
        else:
            from rsmi.reports.plots import save_figure

            save_figure(results.rows, args.plot_kind, args.plot, title=args.title)
        plot_name = str(Path(args.plot).resolve())
    if args.markdown:
        text = reports.markdown_report(
            results.rows, title=title, plot_file=plot_name, seed_groups=seed_groups,
            pairs=results.pairs(), cols=cols,
        )
        from rsmi.reports.outputs import write_markdown

        write_markdown(args.markdown, text)
    if args.html:
        from rsmi.reports.html import write_html

        path = write_html(results, args.html, title=title)
        out.print(f"HTML report: {path}")


def _model_card(args: argparse.Namespace) -> int:
    """``--model-card DIR``: README.md rewritten with the results measured on that model."""
    from rsmi.errors import StoreError
    from rsmi.reports.model_card import results_for_model, write_model_card
    from rsmi.store.model_card import has_card
    from rsmi.store.names import MODEL_CARD_FILE

    model_dir = Path(args.model_card)
    if not has_card(model_dir):
        raise CLIError(f"--model-card {model_dir}: not a saved rsmi model directory (no "
                       f"{MODEL_CARD_FILE}); give the directory rsmi train wrote")
    searched = args.runs or _default_search(model_dir)
    try:
        rows = results_for_model(model_dir, searched)
    except (FileNotFoundError, StoreError):
        if args.runs:  # the user's paths must hold results
            raise
        rows = []  # nothing measured yet: the card from the model's own records
    path = write_model_card(model_dir, rows)
    print(f"model card: {path} ({len(rows)} result(s) of this model from {', '.join(map(str, searched))})")
    return 0


def _default_search(model_dir: Path) -> list[str]:
    """The model directory; in a pipeline run (``OUT/models/<method>``) the run's OUT too."""
    if model_dir.resolve().parent.name == "models":
        return [str(model_dir.resolve().parent.parent)]
    return [str(model_dir)]
