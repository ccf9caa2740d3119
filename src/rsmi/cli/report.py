"""`rsmi report RUN ...`: results of attack runs and evaluations as a table, Markdown, plot."""

from __future__ import annotations

import argparse
from pathlib import Path

from rsmi.cli._common import console


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="show attack/evaluation results as a table (and write Markdown and a plot)",
        description="Each RUN is a directory with summary.json (rsmi attack) or evaluation.json "
        "(rsmi evaluate), or such a file.",
    )
    p.add_argument("runs", nargs="+", metavar="RUN")
    p.add_argument("--markdown", metavar="FILE", help="write a Markdown report")
    p.add_argument("--plot", metavar="FILE", help="write a PNG bar chart")
    p.add_argument("--title", default="Robustness results")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rsmi import reports

    rows = [reports.load_row(path) for path in args.runs]
    console().print(reports.rich_table(rows, title=args.title))
    plot_name = None
    if args.plot:
        reports.plot(rows, args.plot, title=args.title)
        plot_name = str(Path(args.plot).resolve())
    if args.markdown:
        text = reports.markdown_report(rows, title=args.title, plot_file=plot_name)
        Path(args.markdown).write_text(text, encoding="utf-8")
    return 0
