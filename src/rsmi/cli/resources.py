"""`rsmi resources prepare|status`: build and inspect the offline attack resources."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rsmi.cli.main import CLIError


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "resources",
        help="build / check offline attack resources (WordNet, tagger, counter-fitted vectors)",
        description="Offline attack resources: WordNet 3.0, stopwords, POS tagger, "
        "counter-fitted GloVe and the sentence encoder, under RSMI_HOME/resources.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    prep = actions.add_parser("prepare", help="build every missing part (idempotent)")
    prep.add_argument("--root", type=Path, default=None,
                      help="resource directory (default: RSMI_HOME/resources)")
    prep.add_argument("--vocab-size", type=int, default=65000,
                      help="number of most frequent GloVe words to keep (default 65000)")
    prep.add_argument("--embedding", choices=("counterfit", "stock"), default="counterfit",
                      help="counterfit: build from GloVe + WordNet offline (default); stock: "
                      "download TextAttack's counter-fitted vectors (needs internet)")
    prep.add_argument("--wordnet-dir", type=Path, default=None,
                      help="WordNet 3.0 dict files (default /usr/share/wordnet)")
    prep.add_argument("--force", action="store_true", help="rebuild every part")
    prep.add_argument("--json", action="store_true", help="print the report as JSON")
    prep.set_defaults(func=run)
    stat = actions.add_parser("status", help="show what is prepared, verified by sha256")
    stat.add_argument("--root", type=Path, default=None,
                      help="resource directory (default: RSMI_HOME/resources)")
    stat.add_argument("--json", action="store_true", help="print the status as JSON")
    stat.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.action == "prepare":
        return _prepare(args)
    return _status(args)


def _prepare(args: argparse.Namespace) -> int:
    from rsmi.resources import ResourceError, WordNetMissingError
    from rsmi.resources.prepare import PrepareOptions, Sources, prepare

    if args.vocab_size < 100:
        raise CLIError(f"--vocab-size must be at least 100, got {args.vocab_size}")
    sources = Sources()
    if args.wordnet_dir is not None:
        sources.wordnet_dir = args.wordnet_dir
    options = PrepareOptions(vocab_size=args.vocab_size, embedding=args.embedding)
    quiet = args.json
    try:
        report = prepare(args.root, options=options, sources=sources, force=args.force,
                         progress=None if quiet else (lambda msg: print(msg, flush=True)))
    except (WordNetMissingError, ResourceError) as exc:
        raise CLIError(str(exc)) from exc
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return 0
    root = args.root or _default_root()
    print(f"resources ready in {root}")
    for name, part in report.items():
        print(f"  {name:17s} {part['status']:8s} {part['seconds']:7.1f} s")
    return 0


def _default_root() -> Path:
    from rsmi.resources import default_root

    return default_root()


def _status(args: argparse.Namespace) -> int:
    from rsmi.resources import PARTS
    from rsmi.resources.manifest import Manifest

    root = args.root or _default_root()
    manifest = Manifest.read(root)
    rows = {}
    for part in PARTS:
        problems = manifest.problems(part)
        info = manifest.parts.get(part, {})
        size = sum(rec["size"] for rec in info.get("files", {}).values())
        rows[part] = {"ok": not problems, "problems": problems, "files": len(info.get("files", {})),
                      "bytes": size, "built": info.get("built"), "stats": info.get("stats", {})}
    if args.json:
        print(json.dumps({"root": str(root), "parts": rows}, indent=2, default=str))
    else:
        print(f"resources in {root}")
        for part, row in rows.items():
            state = "ok" if row["ok"] else "MISSING" if row["files"] == 0 else "CORRUPT"
            print(f"  {part:17s} {state:8s} {row['files']:4d} files {row['bytes'] / 1e6:9.1f} MB")
            for problem in row["problems"][:5]:
                print(f"      {problem}")
        _print_stats(rows)
    if all(row["ok"] for row in rows.values()):
        return 0
    root_flag = f" --root {args.root}" if args.root else ""
    print(f"run `rsmi resources prepare{root_flag}` to build what is missing")
    return 1


def _print_stats(rows: dict) -> None:
    tagger = rows["tagger"]["stats"]
    if "heldout_accuracy" in tagger:
        print(f"  tagger held-out accuracy: {tagger['heldout_accuracy']:.4f} "
              f"({tagger['heldout_tokens']} tokens)")
    emb = rows["embedding"]["stats"]
    for label in ("antonyms", "synonyms", "named_antonyms"):
        if label in emb:
            b, a = emb[label]["before"], emb[label]["after"]
            print(f"  {label}: in top-{emb['nn_k']} NN with cos>=0.5: {b['share_in_nn']:.1%}"
                  f" -> {a['share_in_nn']:.1%} ({a['pairs']} pairs)")
