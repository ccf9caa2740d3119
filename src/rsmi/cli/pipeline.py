"""`rsmi pipeline`: the main job — train, evaluate clean, attack, print the table."""

from __future__ import annotations

import argparse

from rsmi.cli._common import (
    add_config_flags,
    add_data_flags,
    add_dtype_flag,
    add_engine_flag,
    config_overrides,
    console,
    data_options,
)
from rsmi.pipeline import PipelineConfig

_DEFAULTS = PipelineConfig()


def _csv(kind):
    return lambda text: tuple(kind(x) for x in text.split(",") if x.strip())


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pipeline",
        help="the main job: train base and RSMI, evaluate clean and under attack, print the table",
        description="Train each method on DATA with MODEL, evaluate clean test accuracy, attack "
        "every model with every recipe, and print/write the results (OUT/report.md, "
        "OUT/report.html, OUT/results.png; each model's README.md card). Run it again to resume: finished stages are reused.",
    )
    p.add_argument("--out", default=_DEFAULTS.out)
    p.add_argument("--overwrite", action="store_true",
                   help="write into an --out that holds files rsmi pipeline did not write")
    p.add_argument("--data", default=_DEFAULTS.data,
                   help="dataset name or path (rsmi data list); trained on its train split, "
                   "evaluated and attacked on its test split")
    add_data_flags(p)
    p.add_argument("--model", default=_DEFAULTS.model)
    p.add_argument(
        "--methods", type=_csv(str), default=_DEFAULTS.methods, help="e.g. base,rsmi,freelb"
    )
    p.add_argument("--epochs", type=int, default=_DEFAULTS.epochs)
    p.add_argument("--max-length", type=int, default=_DEFAULTS.max_length)
    p.add_argument("--max-train-examples", type=int, default=None)
    p.add_argument(
        "--recipes", type=_csv(str), default=_DEFAULTS.recipes, help="e.g. textfooler,pwws"
    )
    p.add_argument("--preset", default=_DEFAULTS.preset, choices=["textdefender", "recipe"])
    p.add_argument("--num-examples", type=int, default=_DEFAULTS.num_examples)
    p.add_argument("--attack-seeds", type=_csv(int), default=_DEFAULTS.attack_seeds)
    p.add_argument("--eot", type=int, default=_DEFAULTS.eot)
    p.add_argument("--fresh-draws", type=int, default=_DEFAULTS.fresh_draws, metavar="R",
                   help="fresh draws per attacked text of a randomized model: the deployed "
                   "threat models' columns beside the protocol AUA (default "
                   f"{_DEFAULTS.fresh_draws}; 0: off). A finished attack without them is "
                   "re-scored, not attacked again")
    p.add_argument("--seed", type=int, default=_DEFAULTS.seed)
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate of every method (default: 5e-5 for hidden size ≤ 512, "
                   "else 1e-5)")
    add_dtype_flag(p)
    add_engine_flag(p)
    add_config_flags(
        p, exclude=("max_length",),
        title="RSMI hyperparameters of the rsmi method (default: the reference values)",
    )
    p.set_defaults(func=run)


def pipeline_config(args: argparse.Namespace) -> PipelineConfig:
    """The :class:`PipelineConfig` of parsed ``rsmi pipeline`` arguments."""
    return PipelineConfig(
        out=args.out,
        data=args.data,
        model=args.model,
        methods=args.methods,
        epochs=args.epochs,
        max_length=args.max_length,
        max_train_examples=args.max_train_examples,
        recipes=args.recipes,
        preset=args.preset,
        num_examples=args.num_examples,
        attack_seeds=args.attack_seeds,
        eot=args.eot,
        fresh_draws=args.fresh_draws,
        seed=args.seed,
        rsmi_overrides=config_overrides(args, exclude=("max_length",)),
        train_overrides={} if args.lr is None else {"lr": args.lr},
        dtype=args.dtype,
        engine=args.engine,
        data_options=_given(data_options(args)),
    )


def _given(options) -> dict:
    """The data options given (not their defaults): what pipeline.json records."""
    from dataclasses import asdict

    defaults = type(options)()
    given = {k: v for k, v in asdict(options).items() if v != getattr(defaults, k)}
    if "label_names" in given:
        given["label_names"] = list(given["label_names"])
    return given


def run(args: argparse.Namespace) -> int:
    from rsmi import reports
    from rsmi.pipeline import run_pipeline, table_columns

    out = console()
    cfg = pipeline_config(args)
    # Progress lines hold "[stage]" tags: print them as text, not as rich markup.
    rows = run_pipeline(cfg, say=lambda msg: out.print(msg, markup=False, highlight=False),
                        overwrite=args.overwrite)
    out.print(reports.rich_table(rows, title=f"{cfg.data}: clean and under attack",
                                 cols=table_columns(rows)))
    out.print(f"report: {cfg.out}/report.md, {cfg.out}/report.html (open in a browser), plot: "
              f"{cfg.out}/results.png; each model's card: README.md in {cfg.out}/models/<method>")
    return 0
