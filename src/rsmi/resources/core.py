"""The prepared offline resource directory: :class:`Resources` and :func:`import_textattack`.

Attacks need WordNet, stopwords, a POS tagger, counter-fitted word vectors and a sentence
encoder, and TextAttack tries to download NLTK data the first time it is imported. A
:class:`Resources` points NLTK and TextAttack at files built once by ``rsmi resources prepare``,
so that nothing is downloaded at run time. Importing this module imports neither NLTK nor
TextAttack.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from rsmi.packages import ResourceError
from rsmi.resources.layout import TA_MARKER, Layout, default_root
from rsmi.resources.manifest import Manifest

if TYPE_CHECKING:  # pragma: no cover - typing only
    import numpy as np
    from textattack.shared import WordEmbedding

logger = logging.getLogger(__name__)

PARTS = ("wordnet", "stopwords", "tagger", "embedding", "sentence_encoder", "textattack_cache")


def _hint(root: Path) -> str:
    flag = "" if root == default_root() else f" --root {root}"
    return f"run `rsmi resources prepare{flag}`"


# Environment variables that `import textattack` overwrites when TA_CACHE_DIR is set
# (textattack.shared.utils.install.set_cache_dir); import_textattack puts them back.
_TA_CLOBBERED_ENV = ("TFHUB_CACHE_DIR", "PYTORCH_TRANSFORMERS_CACHE", "HF_HOME", "XDG_CACHE_HOME")


def add_nltk_path(nltk_data: Path) -> None:
    """Put ``nltk_data`` first on ``nltk.data.path`` and ``$NLTK_DATA`` (idempotent).

    NLTK >= 3.9 refuses to read any file outside these roots, so every reader of our files
    (WordNet, tagger, stopwords) goes through this first.
    """
    import nltk

    path = str(nltk_data)
    if path not in nltk.data.path:
        nltk.data.path.insert(0, path)
    current = [p for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p]
    if path not in current:
        os.environ["NLTK_DATA"] = os.pathsep.join([path, *current])


class Resources:
    """A prepared offline resource directory (see :mod:`rsmi.resources.layout` for its files).

    Build it with ``rsmi resources prepare`` (or :func:`rsmi.resources.prepare.prepare`), open it
    with :meth:`load`, call :meth:`activate` before anything uses NLTK or TextAttack.
    """

    def __init__(self, root: Path, manifest: Manifest) -> None:
        self.root = root
        self.layout = Layout(root)
        self.manifest = manifest
        self.nltk_data = self.layout.nltk_data

    @classmethod
    def load(cls, root: Path | None = None) -> Resources:
        """Open the directory at ``root`` (default ``RSMI_HOME/resources``).

        Checks that every part is recorded and its files have the recorded sizes (fast);
        :meth:`problems` also checks sha256. Raises :class:`ResourceError` if anything is missing.
        """
        root = Path(root) if root is not None else default_root()
        manifest = Manifest.read(root)
        if not manifest.parts:
            raise ResourceError(f"no prepared attack resources in {root}: {_hint(root)}")
        problems = [p for part in PARTS for p in manifest.problems(part, checksums=False)]
        if problems:
            raise ResourceError(
                f"attack resources in {root} are incomplete ({'; '.join(problems[:3])}): "
                f"{_hint(root)}"
            )
        return cls(root, manifest)

    def problems(self) -> list[str]:
        """Every missing or corrupt file (sha256-checked); empty when all parts verify."""
        return [p for part in PARTS for p in self.manifest.problems(part, checksums=True)]

    @property
    def sentence_encoder_path(self) -> Path:
        """Directory of the MiniLM sentence encoder (recorded at prepare time)."""
        return self.manifest.base_of("sentence_encoder")

    @property
    def stats(self) -> dict[str, Any]:
        """Build statistics per part (tagger accuracy, counter-fitting before/after, ...)."""
        return {name: part.get("stats", {}) for name, part in self.manifest.parts.items()}

    def activate(self) -> None:
        """Point NLTK and TextAttack at this directory (idempotent).

        Prepends ``nltk_data`` to ``nltk.data.path`` and ``$NLTK_DATA``, and sets
        ``$TA_CACHE_DIR`` to a directory holding TextAttack's ``post_install_check_3`` marker,
        so that ``import textattack`` skips its NLTK/stanza downloads. The user's own NLTK
        configuration and data directories are not touched.
        """
        add_nltk_path(self.nltk_data)
        cache = self.layout.ta_cache
        cache.mkdir(parents=True, exist_ok=True)
        marker = cache / TA_MARKER
        if not marker.exists():
            marker.touch()
        os.environ["TA_CACHE_DIR"] = str(cache)

    def stopwords(self) -> set[str]:
        """The English stopword list (TextFooler's), as NLTK would read it."""
        text = self.layout.stopwords.read_text(encoding="utf-8")
        return {w.strip() for w in text.splitlines() if w.strip()}

    @cached_property
    def _embedding_arrays(self) -> tuple[np.ndarray, list[str], np.ndarray]:
        import numpy as np

        emb = self.layout.embedding
        matrix = np.load(emb / "matrix.npy")
        words = (emb / "words.txt").read_text(encoding="utf-8").split("\n")[: matrix.shape[0]]
        nn = np.load(emb / "nn.npy")
        return matrix, words, nn

    @property
    def embedding_sha256(self) -> str | None:
        """One digest of the counter-fitted embedding's files (from the manifest's per-file
        sha256; ``None`` if not recorded): the synonym table word-substitution attacks draw
        their candidates from.

        The table is built here from GloVe (``rsmi resources prepare``), and its bits follow
        the CPU's BLAS: counter-fitting amplifies float rounding, so a build on another kind of
        CPU (or under another ``MKL_CBWR``) has other nearest neighbours for about half of the
        words (docs/training.md, "Attack resources"). An attack run records this digest, and a
        resume refuses another table.
        """
        files = (self.manifest.parts.get("embedding") or {}).get("files") or {}
        if not files:
            return None
        text = json.dumps({name: info.get("sha256") for name, info in sorted(files.items())},
                          sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def embedding_arrays(self) -> tuple[np.ndarray, list[str], np.ndarray]:
        """``(matrix float32 [V, d] unit rows, words [V], nn int32 [V, 51])``; ``nn[i, 0] == i``."""
        return self._embedding_arrays

    def word_embedding(self) -> WordEmbedding:
        """Counter-fitted GloVe as a ``textattack.shared.WordEmbedding`` (with ``nn_matrix``)."""
        textattack = import_textattack(self)
        matrix, words, nn = self._embedding_arrays
        word2index = {w: i for i, w in enumerate(words)}
        index2word = dict(enumerate(words))
        return textattack.shared.WordEmbedding(matrix, word2index, index2word, nn)


_NLTK_SUBDIRS = ("corpora", "taggers", "tokenizers", "chunkers", "misc", "models", "stemmers")


@contextlib.contextmanager
def offline_nltk() -> Iterator[None]:
    """Within the block, ``nltk.download(id)`` never touches the network.

    TextAttack's ``WordSwapWordNet()`` calls ``nltk.download("omw-1.4")`` in its constructor,
    which fetches NLTK's index from GitHub (and, online, writes to ``~/nltk_data``). Here a
    download returns True when the resource is already on the NLTK path and otherwise logs
    and returns False, as NLTK does when a download fails. English WordNet needs no OMW::

        with offline_nltk():
            swap = WordSwapWordNet()
    """
    import nltk

    original = nltk.download

    def download(info_or_id=None, *args: Any, **kwargs: Any) -> bool:
        name = str(info_or_id)
        for sub in _NLTK_SUBDIRS:
            try:
                nltk.data.find(f"{sub}/{name}")
                return True
            except LookupError:
                continue
        logger.info("NLTK resource %r is not in the offline resources; not downloading it", name)
        return False

    nltk.download = download
    try:
        yield
    finally:
        nltk.download = original


def import_textattack(resources: Resources | None = None) -> ModuleType:
    """``activate()`` the resources (default: :meth:`Resources.load`), then ``import textattack``.

    Undoes two side effects of TextAttack's import: it rewrites ``HF_HOME``/``XDG_CACHE_HOME``
    (and two other cache variables) to ``TA_CACHE_DIR``, and its ``logging.config.dictConfig``
    disables every logger that existed before; both are restored here.
    """
    if "textattack" in sys.modules:
        if resources is not None:
            resources.activate()
        return sys.modules["textattack"]
    resources = resources or Resources.load()
    resources.activate()
    saved_env = {name: os.environ.get(name) for name in _TA_CLOBBERED_ENV}
    enabled = [
        lg for lg in logging.root.manager.loggerDict.values()
        if isinstance(lg, logging.Logger) and not lg.disabled
    ]
    try:
        import textattack
    finally:
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        for lg in enabled:
            lg.disabled = False
    logger.info("imported textattack %s offline (NLTK data %s)",
                getattr(textattack, "__version__", "?"), resources.nltk_data)
    return textattack
