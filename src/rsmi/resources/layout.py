"""Where each part of a prepared resource directory lives (one place, used by every builder).

A resource directory ``root`` (default ``RSMI_HOME/resources``) holds::

    manifest.json                         every file with sha256/size, sources, versions, stats
    nltk_data/corpora/wordnet/            WordNet 3.0 (Debian wordnet-base + wordnet-sense-index)
    nltk_data/corpora/stopwords/english   English stopwords (TextFooler's list)
    nltk_data/taggers/averaged_perceptron_tagger_eng/   NLTK perceptron POS tagger (JSON)
    nltk_data/taggers/universal_tagset/en-ptb.map       PTB -> universal tag map
    embedding/words.txt                   vocabulary, one word per line, GloVe frequency order
    embedding/matrix.npy                  counter-fitted vectors, float32, unit length
    embedding/nn.npy                      int32 [V, 51]: column 0 the word itself, then its 50
                                          nearest neighbours by cosine (TextAttack's convention)
    textattack_cache/post_install_check_3 marker that stops TextAttack's import-time downloads
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rsmi.home import rsmi_home

MANIFEST = "manifest.json"
TA_MARKER = "post_install_check_3"
TAGGER_DIR = "taggers/averaged_perceptron_tagger_eng"
UNIVERSAL_MAP = "taggers/universal_tagset/en-ptb.map"


def default_root() -> Path:
    """``RSMI_HOME/resources``."""
    return rsmi_home() / "resources"


@dataclass(frozen=True)
class Layout:
    """Paths of the parts of a resource directory rooted at ``root``."""

    root: Path

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST

    @property
    def nltk_data(self) -> Path:
        return self.root / "nltk_data"

    @property
    def wordnet(self) -> Path:
        return self.nltk_data / "corpora" / "wordnet"

    @property
    def stopwords(self) -> Path:
        return self.nltk_data / "corpora" / "stopwords" / "english"

    @property
    def tagger(self) -> Path:
        return self.nltk_data / TAGGER_DIR

    @property
    def universal_map(self) -> Path:
        return self.nltk_data / UNIVERSAL_MAP

    @property
    def embedding(self) -> Path:
        return self.root / "embedding"

    @property
    def ta_cache(self) -> Path:
        return self.root / "textattack_cache"
