"""`rsmi attack`: word-substitution attacks on a saved model, and `rsmi attack merge`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rsmi.attacks.config import (
    DEFAULT_NUM_EXAMPLES,
    PRESETS,
    RECIPES,
    AttackConfig,
    parse_seeds,
    parse_shard,
)
from rsmi.cli._common import (
    add_data_flags,
    add_dtype_flag,
    add_engine_flag,
    add_inference_flags,
    clear_subcommand_errors,
    data_options,
    inference_overrides,
)
from rsmi.cli.main import CLIError
from rsmi.store.names import SUMMARY_FILE


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "attack",
        help="attack a model with TextAttack recipes (TextFooler, PWWS, ...) offline",
        description="Attack a saved model on a dataset sample; writes examples.jsonl (one line "
        "per example, as it finishes) and summary.json. `rsmi attack merge DIR... --out DIR` "
        "combines shards. Recipes: "
        + "; ".join(f"{k}: {v}" for k, v in RECIPES.items())
        + ". Presets: "
        + "; ".join(f"{k}: {v}" for k, v in PRESETS.items()),
    )
    p.add_argument("--model", help="a saved RSMI model directory (or 'minilm')")
    p.add_argument("--data", help="dataset: mr, mr-docs, bbc, tweets, imdb, hf:NAME, or a file")
    add_data_flags(p, split="test")
    p.add_argument("--recipe", choices=list(RECIPES), help="attack recipe")
    p.add_argument("--preset", choices=list(PRESETS), default="textdefender",
                   help="evaluation protocol (textdefender)")
    p.add_argument("--num-examples", type=int, default=DEFAULT_NUM_EXAMPLES,
                   help=f"examples sampled from the split ({DEFAULT_NUM_EXAMPLES})")
    p.add_argument("--sample-seed", type=int, default=0,
                   help="seed of the example sample, the same for every attack seed (0)")
    p.add_argument("--seed", type=int, default=0, help="attack seed (0)")
    p.add_argument("--seeds", help="several attack seeds, e.g. 0,1,2: mean ± std over them")
    p.add_argument("--mlm", help="local masked-LM directory (bert-attack, bae)")
    p.add_argument("--eot", type=int, default=1,
                   help="adaptive attack: each query = mean probability of M stochastic "
                   "evaluations (1)")
    p.add_argument("--eot-margin", type=float, default=0.0, metavar="DELTA",
                   help="adaptive margin-EOT attacker: the search succeeds only when the mean "
                   "of the M evaluations is wrong by more than DELTA (max other class − true "
                   "class probability > DELTA), in [0, 1); 0 = the plain EOT goal (0). Needs a "
                   "randomized model; no effect with --transfer")
    p.add_argument("--transfer", action="store_true",
                   help="attack the noise-off model, re-score its adversarial examples with the "
                   "smoothed model")
    p.add_argument("--cache", action=argparse.BooleanOptionalAction, default=None,
                   help="TextAttack's output cache (default: the preset's: off, so a randomized "
                   "model is resampled per query; on for --preset authors)")
    p.add_argument("--cut-to-max-length", action=argparse.BooleanOptionalAction, default=None,
                   help="cut each text to the longest word prefix whose tokenization fits the "
                   "model's max length before attacking: no query is spent on words the model "
                   "never reads (default: off)")
    p.add_argument("--fresh-draws", type=int, default=0, metavar="R",
                   help="after each example, classify its original and final text again with R "
                   "fresh draws (seeds disjoint from the attack's): the deployed threat models' "
                   "verdicts, summary.json fresh_draws (0: off; 20 is the usual; one draw for a "
                   "deterministic model)")
    p.add_argument("--resume", action="store_true", help="continue a killed run in --out")
    p.add_argument("--overwrite", action="store_true",
                   help="write into an --out that holds files rsmi attack did not write")
    p.add_argument("--shard", help="i/n: attack every n-th example starting at i "
                   "(default: from accelerate launch, else 0/1)")
    p.add_argument("--batch-size", type=int, default=32, help="texts per model call (32)")
    p.add_argument("--max-length", type=int, default=None,
                   help="tokens the model reads per text (default: the model's own, the max "
                   "length it was trained with; a different one is warned about and recorded). "
                   "The TextDefender protocol's 128 (256 for long documents) reproduces "
                   "results made with it")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    add_dtype_flag(p)
    add_engine_flag(p)
    p.add_argument("--resources", default=None,
                   help="prepared resource directory (default RSMI_HOME/resources)")
    p.add_argument("--out", help="output directory")
    p.add_argument("--name", default=None, metavar="NAME",
                   help="the model's name in reports (default: its directory's name)")
    add_inference_flags(p, exclude=("max_length",))  # --max-length is the attack's own
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    # The exact harness caches (rsmi.attacks.harness) off: TextAttack's own path, same records.
    p.add_argument("--no-harness-cache", dest="harness_cache", action="store_false",
                   help=argparse.SUPPRESS)
    p.set_defaults(func=run)
    msub = p.add_subparsers(dest="attack_command", metavar="merge|split|rescore")
    m = msub.add_parser("merge", help="combine shard runs and recompute the summary")
    m.add_argument("dirs", nargs="+", metavar="DIR", help="run or shard directories")
    m.add_argument("--out", required=True, dest="merge_out", help="output directory")
    m.set_defaults(func=run_merge)
    sp = msub.add_parser(
        "split", help="split a run in progress into shard runs, to continue them side by side",
        description="Move the records of an unfinished single-seed run into DIR/shard-<i>-of-<n>/ "
        "(example index % n == i), each with the run's run.json and a partial summary. Continue "
        "each shard with the run's own command plus `--shard i/n --resume` (one process per "
        "core), then `rsmi attack merge DIR --out DIR`. Each example's draws depend on its text, "
        "not the order of the run, so the records are those the unsplit run would write.")
    sp.add_argument("split_dir", metavar="DIR", help="the run directory (rsmi attack --out)")
    sp.add_argument("--shards", type=int, required=True, metavar="N", help="number of shards")
    sp.set_defaults(func=run_split)
    _register_rescore(msub)
    clear_subcommand_errors(p, "attack", "merge", "split", "rescore")


def _register_rescore(msub: argparse._SubParsersAction) -> None:
    r = msub.add_parser(
        "rescore", help="add fresh-draw verdicts (deployed threat models) to a finished run",
        description="Classify each record's original and final text of a finished run again "
        "with R fresh draws (seeds disjoint from the attack's) and add p_correct_original, "
        "p_correct_perturbed to examples.jsonl and the fresh_draws block to summary.json, in "
        "place. The model must be the weights the run attacked (by digest); records that hold "
        "the fields at the same R are kept, so a second or interrupted call continues.",
    )
    r.add_argument("--run", required=True, metavar="DIR", help="the run directory (rsmi attack --out)")
    r.add_argument("--model", required=True, dest="rescore_model", metavar="MODEL",
                   help="the model the run attacked (its weights digest is checked)")
    r.add_argument("--draws", type=int, default=20, metavar="R", help="fresh draws per text, R (20)")
    r.add_argument("--batch-size", type=int, default=32, dest="rescore_batch_size", metavar="N",
                   help="texts per model call (32)")
    r.add_argument("--device", default=None, dest="rescore_device", metavar="DEVICE",
                   help="torch device (default: cuda if available)")
    r.set_defaults(func=run_rescore)


def _device(args: argparse.Namespace) -> str:
    from rsmi.cli._common import resolve_device

    return resolve_device(args.device)


def _config(args: argparse.Namespace, shard: tuple[int, int]) -> AttackConfig:
    from rsmi.precision import resolve_dtype

    missing = [f"--{n}" for n in ("model", "data", "recipe", "out") if not getattr(args, n)]
    if missing:
        raise CLIError(f"missing {', '.join(missing)} (see rsmi attack --help)")
    seeds = parse_seeds(args.seeds) if args.seeds else (args.seed,)
    return AttackConfig(
        recipe=args.recipe, preset=args.preset, num_examples=args.num_examples, seeds=seeds,
        sample_seed=args.sample_seed, eot=args.eot, transfer=args.transfer, cache=args.cache,
        cut_to_max_length=args.cut_to_max_length,
        mlm=args.mlm, batch_size=args.batch_size, max_length=args.max_length, shard=shard,
        model=str(args.model), data=str(args.data), split=args.split,
        model_overrides=inference_overrides(args, exclude=("max_length",)),
        dtype=resolve_dtype(args.dtype, _device(args)), fresh_draws=args.fresh_draws,
        engine=args.engine, harness_cache=args.harness_cache,
        eot_margin=args.eot_margin, name=args.name,
    )


def run(args: argparse.Namespace) -> int:
    from rsmi.attacks.runner import shard_from_accelerate

    shard = parse_shard(args.shard) if args.shard else (shard_from_accelerate() or (0, 1))
    config = _config(args, shard)  # validate before loading anything heavy
    from rsmi.attacks.records import ATTACK_RUN_EVIDENCE, ATTACK_RUN_FILES
    from rsmi.rundir import check_run_dir

    check_run_dir(Path(args.out), "attack", overwrite=args.overwrite, legacy=ATTACK_RUN_FILES,
                  evidence=ATTACK_RUN_EVIDENCE)
    from rsmi import RSMIClassifier
    from rsmi.data import load_for_model
    from rsmi.store.model_card import recorded_data_options

    clf = RSMIClassifier.from_pretrained(
        args.model, label_names=None, device=_device(args), dtype=config.dtype
    )
    # The model's recorded columns for a local file, its classes mapped by name.
    dataset = load_for_model(args.data, data_options(args), clf.label_names,
                             recorded=recorded_data_options(clf.metadata), split=args.split)
    examples = dataset.split(args.split)
    resources = _resources(args.resources)
    summary = _attack_with_progress(clf, examples, config, args, resources)
    _print_summary(summary)
    print(f"results: {Path(args.out) / SUMMARY_FILE}", file=sys.stderr)
    return 0


def _resources(root: str | None) -> Any:
    from rsmi.resources import Resources

    return Resources.load(Path(root) if root else None)


def _attack_with_progress(clf: Any, examples: Any, config: AttackConfig,
                          args: argparse.Namespace, resources: Any) -> dict[str, Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from rsmi.attacks import run_attack

    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[counts]}"), TimeElapsedColumn(),
        disable=args.no_progress, transient=False,
    )
    tasks: dict[int, Any] = {}
    current = {"seed": config.seeds[0]}

    def on_start(seed: int, total: int, done: int) -> None:
        current["seed"] = seed
        tasks[seed] = progress.add_task(
            f"{config.recipe} seed {seed}", total=total, completed=done,
            counts="succeeded 0 · failed 0 · skipped 0",
        )

    def on_result(record: dict[str, Any], counts: dict[str, int]) -> None:
        progress.update(
            tasks[current["seed"]], completed=counts["done"],
            counts=f"succeeded {counts['successful']} · failed {counts['failed']} · "
            f"skipped {counts['skipped']}",
        )

    with progress:
        return run_attack(clf, examples, config, args.out, resources=resources,
                          resume=args.resume, overwrite=args.overwrite, on_start=on_start,
                          on_result=on_result)


def _print_summary(summary: dict[str, Any]) -> None:
    from rich.console import Console

    from rsmi.attacks import render_summary

    Console(stderr=False).print(render_summary(summary))


def run_merge(args: argparse.Namespace) -> int:
    from rsmi.attacks import merge_runs

    summary = merge_runs(args.dirs, args.merge_out)
    _print_summary(summary)
    if not summary.get("complete"):
        print(f"warning: the merged run has {summary.get('num_examples')} of "
              f"{summary.get('num_selected')} examples (a shard is missing or unfinished)",
              file=sys.stderr)
    return 0


def run_split(args: argparse.Namespace) -> int:
    from rsmi.attacks import read_records, split_run
    from rsmi.attacks.records import EXAMPLES_FILE

    dirs = split_run(args.split_dir, args.shards)
    for i, shard in enumerate(dirs):
        done = len(read_records(shard / EXAMPLES_FILE))
        print(f"{shard}: {done} example(s) so far — continue with `rsmi attack ... --out "
              f"{args.split_dir} --shard {i}/{len(dirs)} --resume`")
    print(f"then: rsmi attack merge {args.split_dir} --out {args.split_dir}")
    return 0


def run_rescore(args: argparse.Namespace) -> int:
    from rsmi import RSMIClassifier
    from rsmi.attacks.fresh import rescore_run
    from rsmi.cli._common import resolve_device

    if args.draws < 1:
        raise CLIError(f"--draws {args.draws} is invalid: give R ≥ 1 fresh draws per text (20)")
    clf = RSMIClassifier.from_pretrained(args.rescore_model, label_names=None,
                                         device=resolve_device(args.rescore_device))
    summary = rescore_run(args.run, clf, args.draws, batch_size=args.rescore_batch_size)
    block = summary.get("fresh_draws") or {}
    k = block.get("accuracy_under_attack_k") or {}
    print(f"fresh draws: {block.get('draws')} per text · deployed clean "
          f"{block.get('clean_accuracy', float('nan')):.1f} % · AUA (k = 1) "
          f"{block.get('accuracy_under_attack', float('nan')):.1f} % · k = 5 "
          f"{k.get('5', float('nan')):.1f} % · k = 25 {k.get('25', float('nan')):.1f} % · "
          f"majority {block.get('majority_accuracy_under_attack', float('nan')):.1f} %")
    print(f"results: {Path(args.run) / SUMMARY_FILE}", file=sys.stderr)
    return 0
