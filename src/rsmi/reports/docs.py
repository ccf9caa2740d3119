"""Tables in the docs, generated from committed results: marker blocks in Markdown files.

A block names its results and options in its opening marker; everything up to the closing
marker is generated and rewritten by ``rsmi report --update-docs FILE ...``::

    <!-- rsmi-report: results/study/mr --columns model,attack,clean,aua,aua_ci,n -->
    | model | attack | ... |
    <!-- /rsmi-report -->

Markers start a line (elsewhere, and in fenced code, they are just text). Paths are relative to
the repository root of the Markdown file (the nearest directory above it
holding ``.git`` or ``pyproject.toml``). Options: ``--columns`` (names of
:data:`rsmi.reports.tables.COLUMNS`), ``--table results|training-seeds|pairs`` (default
results); with ``--table pairs``, ``--columns`` names :data:`rsmi.reports.tables.PAIR_COLUMNS`
(bootstrap intervals of the difference and ratio of AUAs among them), ``--vs MODEL,...`` puts
those models on the B side, ``--at-least C`` makes the verdict answer "A ≥ C × B?"; pairs whose
runs have fresh draws add the deployed threat models' table (majority verdicts) after it.
``tests/test_docs_tables.py`` fails when a committed block differs from what the
committed results give.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rsmi.errors import ConfigError, OutputError
from rsmi.reports import threat_models as tm
from rsmi.reports.discovery import NoResultsYet
from rsmi.reports.grouping import ResultSet
from rsmi.reports.tables import (
    DEPLOYED_INTERVAL_COLUMNS,
    DEPLOYED_MCNEMAR_COLUMNS,
    DEPLOYED_PAIR_COLUMNS,
    SEED_COLUMNS,
    deployed_pairs,
    markdown_pair_table,
    markdown_pairs,
    markdown_table,
)
from rsmi.store.atomic import atomic_write_text, check_output_file

OPEN = "<!-- rsmi-report:"
CLOSE = "<!-- /rsmi-report -->"
# Markers start a line; one mentioned inside a sentence (or a fenced code block) is not a block.
BLOCK = re.compile(
    r"^(?P<open><!-- rsmi-report:(?P<args>.*?)-->)(?P<body>.*?)^(?P<close><!-- /rsmi-report -->)",
    re.DOTALL | re.MULTILINE,
)
OPEN_AT_LINE = re.compile(r"^<!-- rsmi-report:", re.MULTILINE)
CLOSE_AT_LINE = re.compile(r"^<!-- /rsmi-report -->", re.MULTILINE)
TABLES = ("results", "training-seeds", "pairs")


@dataclass(frozen=True)
class BlockSpec:
    """What the opening marker of a block asks for."""

    paths: tuple[str, ...]
    columns: str | None = None
    table: str = "results"
    vs: tuple[str, ...] = ()  # --table pairs: models on the B side (ratio's denominator)
    at_least: float | None = None  # --table pairs: the verdict answers "A ≥ this × B?"


@dataclass(frozen=True)
class StaleBlock:
    """A block whose table differs from what its results give."""

    file: Path
    line: int
    spec: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: block '{self.spec.strip()}' is out of date"


def parse_spec(text: str) -> BlockSpec:
    """The paths and options of a marker's argument text (shell-like words)."""
    words = shlex.split(text)
    paths: list[str] = []
    options: dict[str, str] = {}
    i = 0
    while i < len(words):
        word = words[i]
        if word.startswith("--"):
            name, _, value = word[2:].partition("=")
            if not value:
                if i + 1 >= len(words):
                    raise ConfigError(f"rsmi-report block '{text.strip()}': {word} needs a value")
                i += 1
                value = words[i]
            if name not in ("columns", "table", "vs", "at-least"):
                raise ConfigError(
                    f"rsmi-report block '{text.strip()}': unknown option --{name} "
                    "(use --columns, --table, --vs, --at-least)"
                )
            options[name] = value
        else:
            paths.append(word)
        i += 1
    if not paths:
        raise ConfigError(f"rsmi-report block '{text.strip()}' names no results path")
    table = options.get("table", "results")
    if table not in TABLES:
        raise ConfigError(f"rsmi-report block '{text.strip()}': --table must be one of {TABLES}")
    try:
        at_least = float(options["at-least"]) if "at-least" in options else None
    except ValueError:
        raise ConfigError(f"rsmi-report block '{text.strip()}': --at-least needs a number "
                          f"(got {options['at-least']!r})") from None
    if table != "pairs" and ("vs" in options or at_least is not None):
        raise ConfigError(f"rsmi-report block '{text.strip()}': --vs and --at-least go with "
                          "--table pairs")
    vs = tuple(m.strip() for m in options.get("vs", "").split(",") if m.strip())
    return BlockSpec(paths=tuple(paths), columns=options.get("columns"), table=table, vs=vs,
                     at_least=at_least)


def repo_root(path: str | Path) -> Path:
    """The nearest directory at or above ``path`` that holds ``.git`` or ``pyproject.toml``."""
    start = Path(path).resolve()
    for d in [start, *start.parents] if start.is_dir() else start.parents:
        if (d / ".git").exists() or (d / "pyproject.toml").exists():
            return d
    return start if start.is_dir() else start.parent


def render_block(spec: BlockSpec, root: str | Path) -> str:
    """The generated Markdown of a block (a table), from results under ``root``."""
    root = Path(root)
    try:
        results = ResultSet.load([root / p for p in spec.paths])
    except NoResultsYet:  # a table of runs a study plans but has not made yet
        return f"_No results yet under `{'`, `'.join(spec.paths)}`._\n"
    if spec.table == "training-seeds":
        return markdown_table(results.training_seed_groups(), spec.columns or SEED_COLUMNS)
    if spec.table == "pairs":
        pairs = results.pairs(reference=spec.vs)
        if not pairs:  # one run per attack so far: nothing to pair, rather than an empty table
            return "_No two runs of one attack on the same examples yet._\n"
        if spec.columns is None and spec.at_least is None:
            text = markdown_pairs(pairs)  # the classic table
        else:
            text = markdown_pair_table(pairs, spec.columns, spec.at_least)
        return text + _deployed_block(pairs, spec)
    return markdown_table(results.rows, spec.columns)


def _deployed_block(pairs: list, spec: BlockSpec) -> str:
    """The deployed threat models' pairs table after the protocol one, when some pair's runs
    have fresh draws (and the marker's ``--columns`` do not already name deployed columns)."""
    deployed = deployed_pairs(pairs)
    chosen = {c.strip() for c in (spec.columns or "").split(",")}
    if not deployed or chosen & {*DEPLOYED_MCNEMAR_COLUMNS[1:], *DEPLOYED_INTERVAL_COLUMNS}:
        return ""
    # the seed column the protocol table shows: training seeds where the marker asked for them
    columns = tuple("training_seeds" if c == "seeds" and "training_seeds" in chosen else c
                    for c in DEPLOYED_PAIR_COLUMNS)
    return (f"\nAbove: {tm.PROTOCOL_VERDICT}. Below, the deployed threat models: "
            f"{tm.MAJORITY_VERDICT}.\n\n"
            + markdown_pair_table(deployed, columns, spec.at_least))


FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,}).*?^ {0,3}\1[ \t]*$", re.DOTALL | re.MULTILINE)


def _blank_fences(text: str) -> str:
    """``text`` with fenced code blocks blanked (same length and lines): markers there are examples."""
    return FENCE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)


def blocks(text: str, source: str = "<text>") -> list[re.Match[str]]:
    """The blocks of a Markdown text (outside fenced code); an unclosed marker is an error."""
    visible = _blank_fences(text)
    found = list(BLOCK.finditer(visible))
    opens, closes = len(OPEN_AT_LINE.findall(visible)), len(CLOSE_AT_LINE.findall(visible))
    if opens != closes or opens != len(found):
        raise ConfigError(
            f"{source}: every '{OPEN} ... -->' needs its own closing '{CLOSE}' after it"
        )
    return found


def refresh(text: str, root: str | Path, source: str = "<text>") -> tuple[str, list[int]]:
    """``text`` with every block regenerated, and the line numbers of the blocks that changed."""
    changed: list[int] = []
    out: list[str] = []
    pos = 0
    for m in blocks(text, source):
        body = "\n" + render_block(parse_spec(text[m.start("args"):m.end("args")]), root)
        out.append(text[pos:m.end("open")])
        out.append(body)
        out.append(CLOSE)
        if body != text[m.start("body"):m.end("body")]:
            changed.append(text.count("\n", 0, m.start()) + 1)
        pos = m.end()
    out.append(text[pos:])
    return "".join(out), changed


def update_docs(files: Iterable[str | Path], *, check: bool = False) -> list[StaleBlock]:
    """Regenerate the blocks of ``files`` (with ``check``: only report the stale ones).

    Returns the blocks that were (or, with ``check``, would be) rewritten. Only the text
    between a block's markers changes; a file without a stale block is not written at all, and
    a file that changes is replaced atomically (a kill or a full disk leaves it as it was). A
    path that is not a regular file (a directory, a device, a FIFO) is refused before any file
    is read or written.
    """
    paths = [Path(f) for f in files]
    for f in paths:
        check_output_file(f, "docs file")
    stale: list[StaleBlock] = []
    for f in paths:
        try:
            text = f.read_text(encoding="utf-8")
        except OSError as exc:
            raise OutputError(f"cannot read {f}: {exc}") from exc
        new, changed = refresh(text, repo_root(f), source=str(f))
        specs = {text.count("\n", 0, m.start()) + 1: text[m.start("args"):m.end("args")]
                 for m in blocks(text, str(f))}
        stale.extend(StaleBlock(f, line, specs[line]) for line in changed)
        if changed and not check:
            atomic_write_text(f.resolve(), new)  # through a symlink: the file it names
    return stale
