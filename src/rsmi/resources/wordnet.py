"""WordNet 3.0 for NLTK, built from the Debian packages ``wordnet-base`` + ``wordnet-sense-index``.

NLTK reads WordNet from ``<NLTK_DATA>/corpora/wordnet/``: the ``data.*``/``index.*`` files,
the ``*.exc`` exception lists, ``index.sense`` (from ``wordnet-sense-index``) and ``lexnames``,
which no Debian package ships and which we therefore write from the fixed list of the 45
lexicographer files of WordNet 3.0.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from rsmi.errors import ResourceError

DEFAULT_WORDNET_DIR = Path("/usr/share/wordnet")
INSTALL_HINT = (
    "install the Debian packages with `apt-get install -y wordnet-base wordnet-sense-index` "
    "(as root), or run scripts/install-system-deps.sh"
)

# Files NLTK's WordNetCorpusReader opens (besides lexnames, which we write).
REQUIRED_FILES = (
    "data.adj", "data.adv", "data.noun", "data.verb",
    "index.adj", "index.adv", "index.noun", "index.verb", "index.sense",
    "adj.exc", "adv.exc", "noun.exc", "verb.exc",
)
OPTIONAL_FILES = ("cntlist.rev", "verb.exc", "frames.vrb", "sentidx.vrb", "sents.vrb")

# The lexicographer files of WordNet 3.0 in file-number order, with their syntactic category
# (1 noun, 2 verb, 3 adjective, 4 adverb), as in WordNet's own ``lexnames`` (lexnames(5WN)).
LEXNAMES: tuple[tuple[str, int], ...] = (
    ("adj.all", 3), ("adj.pert", 3), ("adv.all", 4), ("noun.Tops", 1), ("noun.act", 1),
    ("noun.animal", 1), ("noun.artifact", 1), ("noun.attribute", 1), ("noun.body", 1),
    ("noun.cognition", 1), ("noun.communication", 1), ("noun.event", 1), ("noun.feeling", 1),
    ("noun.food", 1), ("noun.group", 1), ("noun.location", 1), ("noun.motive", 1),
    ("noun.object", 1), ("noun.person", 1), ("noun.phenomenon", 1), ("noun.plant", 1),
    ("noun.possession", 1), ("noun.process", 1), ("noun.quantity", 1), ("noun.relation", 1),
    ("noun.shape", 1), ("noun.state", 1), ("noun.substance", 1), ("noun.time", 1),
    ("verb.body", 2), ("verb.change", 2), ("verb.cognition", 2), ("verb.communication", 2),
    ("verb.competition", 2), ("verb.consumption", 2), ("verb.contact", 2),
    ("verb.creation", 2), ("verb.emotion", 2), ("verb.motion", 2), ("verb.perception", 2),
    ("verb.possession", 2), ("verb.social", 2), ("verb.stative", 2), ("verb.weather", 2),
    ("adj.ppl", 3),
)


class WordNetMissingError(ResourceError, FileNotFoundError):
    """The system WordNet files are not installed; the message says what to install."""


def lexnames_text() -> str:
    """The ``lexnames`` file: ``NN<TAB>name<TAB>category`` for the 45 lexicographer files."""
    return "".join(f"{i:02d}\t{name}\t{cat}\n" for i, (name, cat) in enumerate(LEXNAMES))


def check_wordnet_source(source: Path = DEFAULT_WORDNET_DIR) -> None:
    """Raise :class:`WordNetMissingError` naming what to install if ``source`` is incomplete."""
    if not source.is_dir():
        raise WordNetMissingError(f"WordNet 3.0 is not installed: {source} does not exist; "
                                  f"{INSTALL_HINT}")
    missing = [name for name in REQUIRED_FILES if not (source / name).is_file()]
    if missing:
        pkg = "wordnet-sense-index" if missing == ["index.sense"] else "wordnet-base"
        raise WordNetMissingError(
            f"WordNet in {source} lacks {', '.join(missing)} (from the Debian package {pkg}); "
            f"{INSTALL_HINT}"
        )


def build_wordnet(target: Path, source: Path = DEFAULT_WORDNET_DIR) -> list[Path]:
    """Copy WordNet from ``source`` to ``target`` (= ``<nltk_data>/corpora/wordnet``), add lexnames.

    Returns the files written. Raises :class:`WordNetMissingError` if ``source`` is incomplete.
    """
    check_wordnet_source(source)
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    written = []
    for name in sorted(set(REQUIRED_FILES) | set(OPTIONAL_FILES)):
        src = source / name
        if src.is_file():
            shutil.copyfile(src, target / name)
            written.append(target / name)
    (target / "lexnames").write_text(lexnames_text(), encoding="utf-8")
    written.append(target / "lexnames")
    return sorted(written)


def wordnet_reader(nltk_data: Path):
    """An NLTK ``WordNetCorpusReader`` on ``<nltk_data>/corpora/wordnet`` (no OMW, no download)."""
    import warnings

    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    from rsmi.resources.core import add_nltk_path

    add_nltk_path(nltk_data)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The multilingual functions")
        return WordNetCorpusReader(str(nltk_data / "corpora" / "wordnet"), None)
