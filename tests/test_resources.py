"""Offline attack resources: WordNet build, counter-fitting, tagger, manifest, errors, imports.

Everything is built from tiny fixtures under tests/fixtures/resources (a WordNet-format
dictionary of 8 synsets, 30 8-d vectors, 10 tagged sentences).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nltk
import numpy as np
import pytest

from rsmi.cli.main import main
from rsmi.resources import ResourceError, Resources, WordNetMissingError
from rsmi.resources import counterfit as cf
from rsmi.resources.manifest import Manifest
from rsmi.resources.prepare import PrepareOptions, Sources, build_embedding, prepare
from rsmi.resources.tagger import load_tagger, parse_tagged, train_tagger
from rsmi.resources.wordnet import LEXNAMES, build_wordnet, wordnet_reader

FIXTURES = Path(__file__).parent / "fixtures" / "resources"
WORDNET = FIXTURES / "wordnet"


@pytest.fixture(autouse=True)
def isolated_nltk(monkeypatch):
    """Builders put their data root on nltk.data.path / NLTK_DATA: undo that after each test."""
    monkeypatch.setattr(nltk.data, "path", list(nltk.data.path))
    for var in ("NLTK_DATA", "TA_CACHE_DIR"):
        monkeypatch.setenv(var, os.environ.get(var, ""))
    nltk.tag._get_tagger.cache_clear()
    yield
    nltk.tag._get_tagger.cache_clear()


def fixture_vectors(tmp_path: Path) -> tuple[Path, Path]:
    """The GloVe-text fixture as (matrix .npy, one-word-per-line index)."""
    lines = (FIXTURES / "vectors.txt").read_text().splitlines()
    words = [ln.split()[0] for ln in lines]
    matrix = np.array([[float(x) for x in ln.split()[1:]] for ln in lines], dtype=np.float32)
    np.save(tmp_path / "vectors.npy", matrix)
    (tmp_path / "words.txt").write_text("\n".join(words))
    return tmp_path / "vectors.npy", tmp_path / "words.txt"


def fixture_sources(tmp_path: Path) -> Sources:
    npy, index = fixture_vectors(tmp_path)
    encoder = tmp_path / "encoder"
    encoder.mkdir()
    (encoder / "config.json").write_text('{"model_type": "bert"}')
    return Sources(wordnet_dir=WORDNET, tagged_corpora=[FIXTURES / "tagged.txt"], glove_npy=npy,
                   glove_index=index, sentence_encoder_dir=encoder)


def cos(m: np.ndarray, a: int, b: int) -> float:
    return float(m[a] @ m[b] / np.linalg.norm(m[a]) / np.linalg.norm(m[b]))


def test_wordnet_fixture_is_readable_by_nltk_from_built_root(tmp_path):
    nltk_data = tmp_path / "nltk_data"
    files = build_wordnet(nltk_data / "corpora" / "wordnet", WORDNET)
    assert {"data.adj", "index.sense", "lexnames"} <= {f.name for f in files}
    lexnames = (nltk_data / "corpora" / "wordnet" / "lexnames").read_text().splitlines()
    assert len(lexnames) == len(LEXNAMES) == 45
    assert lexnames[0] == "00\tadj.all\t3" and lexnames[44] == "44\tadj.ppl\t3"
    wn = wordnet_reader(nltk_data)
    good = wn.synsets("good")[0]
    assert good.lexname() == "adj.all"
    assert [a.name() for a in good.lemmas()[0].antonyms()] == ["bad"]
    assert set(wn.synset("film.n.01").lemma_names()) == {"film", "movie", "picture"}
    assert wn.morphy("better", "a") == "good"  # exception list copied
    assert wn.lemma_from_key("film%1:06:00::").name() == "film"  # index.sense copied


def test_wordnet_pairs_from_fixture(tmp_path):
    build_wordnet(tmp_path / "nltk_data" / "corpora" / "wordnet", WORDNET)
    words = ["good", "bad", "happy", "glad", "sad", "film", "movie", "love", "hate", "xyz"]
    syn, ant = cf.wordnet_pairs(wordnet_reader(tmp_path / "nltk_data"), words)
    named = {tuple(sorted((words[a], words[b]))) for a, b in syn}
    assert named == {("glad", "happy"), ("film", "movie")}
    anti = {tuple(sorted((words[a], words[b]))) for a, b in ant}
    # synset-level antonymy: glad (same synset as happy) is also opposed to sad
    assert anti == {("bad", "good"), ("happy", "sad"), ("glad", "sad"), ("hate", "love")}


def test_missing_wordnet_says_what_to_install(tmp_path):
    with pytest.raises(WordNetMissingError, match="apt-get install -y wordnet-base "
                       "wordnet-sense-index.*install-system-deps.sh"):
        build_wordnet(tmp_path / "out", tmp_path / "no-such-dir")
    partial = tmp_path / "partial"
    partial.mkdir()
    for f in WORDNET.iterdir():
        if f.name != "index.sense":
            (partial / f.name).write_bytes(f.read_bytes())
    with pytest.raises(WordNetMissingError, match="index.sense.*wordnet-sense-index"):
        build_wordnet(tmp_path / "out", partial)


def test_cli_prepare_without_wordnet_exits_2_with_install_hint(tmp_path, capsys):
    code = main(["resources", "prepare", "--root", str(tmp_path / "res"),
                 "--wordnet-dir", str(tmp_path / "missing")])
    assert code == 2
    assert "apt-get install -y wordnet-base wordnet-sense-index" in capsys.readouterr().err


def test_counter_fit_repels_antonyms_attracts_synonyms(tmp_path):
    npy, index = fixture_vectors(tmp_path)
    words, matrix = cf.load_glove(npy, index, vocab_size=100)
    w = {word: i for i, word in enumerate(words)}
    syn = np.array([[w["happy"], w["glad"]]])
    ant = np.array([[w["good"], w["bad"]]])
    idx, sims = cf.nearest_neighbours(matrix, k=5)
    fitted = cf.counter_fit(matrix, syn, ant, cf.vsp_pairs(idx, sims, rho=0.2))
    assert cos(matrix, w["good"], w["bad"]) > 0.8
    assert cos(fitted, w["good"], w["bad"]) < cos(matrix, w["good"], w["bad"]) - 0.5
    assert abs(cos(matrix, w["happy"], w["glad"])) < 0.05
    assert cos(fitted, w["happy"], w["glad"]) > 0.9
    np.testing.assert_allclose(np.linalg.norm(fitted, axis=1), 1.0, atol=1e-5)
    # a word in no constraint and no VSP pair does not move
    untouched = w["tree"]
    np.testing.assert_allclose(fitted[untouched], cf.normalise(matrix)[untouched], atol=1e-6)


def test_nearest_neighbours_blocks_match_brute_force():
    rng = np.random.default_rng(1)
    m = rng.normal(size=(37, 6)).astype(np.float32)
    idx, sims = cf.nearest_neighbours(m, k=4, block=5)
    unit = cf.normalise(m)
    full = unit @ unit.T
    np.fill_diagonal(full, -np.inf)
    np.testing.assert_array_equal(idx, np.argsort(-full, axis=1)[:, :4])
    np.testing.assert_allclose(sims, np.sort(full, axis=1)[:, ::-1][:, :4], atol=1e-5)


def test_build_embedding_reports_before_after_and_saves_textattack_layout(tmp_path):
    nltk_data = tmp_path / "nltk_data"
    build_wordnet(nltk_data / "corpora" / "wordnet", WORDNET)
    npy, index = fixture_vectors(tmp_path)
    words, matrix = cf.load_glove(npy, index, vocab_size=100)
    files, stats = build_embedding(tmp_path / "emb", words, matrix, nltk_data,
                                   cf.CounterFitConfig(), k=5)
    assert stats["antonym_pairs"] == 4 and stats["synonym_pairs"] == 5  # film/movie/picture: 3
    assert stats["antonyms"]["after"]["mean_cos"] < stats["antonyms"]["before"]["mean_cos"]
    assert stats["synonyms"]["after"]["mean_cos"] > stats["synonyms"]["before"]["mean_cos"]
    assert stats["named_antonyms"]["after"]["share_in_nn"] == 0.0
    nn = np.load(tmp_path / "emb" / "nn.npy")
    assert nn.dtype == np.int32 and nn.shape == (len(words), 6)
    np.testing.assert_array_equal(nn[:, 0], np.arange(len(words)))
    assert (tmp_path / "emb" / "words.txt").read_text().split("\n") == words
    assert np.load(tmp_path / "emb" / "matrix.npy").dtype == np.float32


def test_tagger_trains_saves_and_loads_through_nltk(tmp_path):
    sentences = parse_tagged((FIXTURES / "tagged.txt").read_text())
    assert len(sentences) == 10 and sentences[0][0] == ("The", "DT")
    nltk_data = tmp_path / "nltk_data"
    files, stats = train_tagger(sentences, nltk_data, heldout_fraction=0.2, seed=0)
    assert stats["heldout_sentences"] == 2 and 0.0 <= stats["heldout_accuracy"] <= 1.0
    assert any(f.name.endswith(".weights.json") for f in files)
    tagger = load_tagger(nltk_data)
    assert tagger.tag(["The", "cat", "sat", "."]) == [
        ("The", "DT"), ("cat", "NN"), ("sat", "VBD"), (".", ".")]
    # the way TextAttack's PartOfSpeech constraint calls it
    assert nltk.pos_tag(["the", "dog"], tagset="universal") == [("the", "DET"), ("dog", "NOUN")]


def test_manifest_checksums_detect_corruption(tmp_path):
    part = tmp_path / "a.bin"
    part.write_bytes(b"0123456789")
    manifest = Manifest(root=tmp_path)
    manifest.set_part("x", [part], source="test")
    manifest.write()
    manifest = Manifest.read(tmp_path)
    assert manifest.is_done("x") and manifest.problems("x") == []
    part.write_bytes(b"0123456780")  # same size, one byte changed
    assert manifest.problems("x", checksums=False) == []
    assert "sha256" in manifest.problems("x")[0] and not manifest.is_done("x")
    part.write_bytes(b"01234")
    assert "size" in manifest.problems("x")[0]
    part.unlink()
    assert "missing" in manifest.problems("x")[0]
    assert manifest.problems("y") == ["y: not prepared"]


def test_load_without_prepare_says_run_prepare(tmp_path):
    with pytest.raises(ResourceError, match="rsmi resources prepare"):
        Resources.load(tmp_path / "empty")


def test_prepare_end_to_end_is_idempotent_and_status_verifies(tmp_path, capsys):
    root = tmp_path / "res"
    sources = fixture_sources(tmp_path)
    options = PrepareOptions(vocab_size=100, tagger_heldout=0.2)
    first = prepare(root, options=options, sources=sources)
    assert {p["status"] for p in first.values()} == {"built"}
    assert first["embedding"]["stats"]["vocab_size"] == 30
    second = prepare(root, options=options, sources=sources)
    assert {p["status"] for p in second.values()} == {"verified"}
    # a changed parameter rebuilds only that part
    third = prepare(root, options=PrepareOptions(vocab_size=20, tagger_heldout=0.2),
                    sources=sources)
    assert [n for n, p in third.items() if p["status"] == "built"] == ["embedding"]

    res = Resources.load(root)
    assert res.problems() == []
    assert {"the", "a", "not"} <= res.stopwords()
    assert res.sentence_encoder_path == sources.sentence_encoder_dir
    matrix, words, nn = res.embedding_arrays()
    assert matrix.shape == (20, 8) and len(words) == 20 and nn.shape[0] == 20
    res.activate()
    res.activate()
    assert nltk.data.path.count(str(res.nltk_data)) == 1
    assert (Path(os.environ["TA_CACHE_DIR"]) / "post_install_check_3").exists()
    assert os.environ["NLTK_DATA"].split(os.pathsep)[0] == str(res.nltk_data)

    assert main(["resources", "status", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "embedding" in out and "CORRUPT" not in out
    with open(root / "embedding" / "matrix.npy", "r+b") as fh:
        fh.seek(-1, os.SEEK_END)
        fh.write(b"\x01")
    assert main(["resources", "status", "--root", str(root)]) == 1
    assert "CORRUPT" in capsys.readouterr().out
    rebuilt = prepare(root, options=PrepareOptions(vocab_size=20, tagger_heldout=0.2),
                      sources=sources)
    assert rebuilt["embedding"]["status"] == "built" and rebuilt["tagger"]["status"] == "verified"


OFFLINE_CHECK = """
import logging, os, socket, sys
attempts = []
def refuse(self, address, *a, **k):
    attempts.append(address)
    raise OSError("network disabled by the test")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = lambda address, *a, **k: refuse(None, address)

import rsmi, rsmi.resources, rsmi.resources.prepare, rsmi.cli.resources
early = [m for m in ("textattack", "nltk") if m in sys.modules]
assert not early, f"importing rsmi imported {early}"
mine = logging.getLogger("rsmi.some.module")
from rsmi.resources import Resources, import_textattack
res = Resources.load(sys.argv[1])
textattack = import_textattack(res)
assert attempts == [], f"import textattack tried the network: {attempts}"
assert not os.path.exists(os.path.expanduser("~/.cache/textattack")), "used the user's cache"
assert not os.path.exists(os.path.expanduser("~/nltk_data")), "downloaded NLTK data"
assert "HF_HOME" not in os.environ and "XDG_CACHE_HOME" not in os.environ, "env not restored"
assert not mine.disabled, "textattack's dictConfig disabled an existing logger"
emb = res.word_embedding()
assert isinstance(emb, textattack.shared.WordEmbedding)
happy = emb.word2index("happy")
print(" ".join(emb.index2word(i) for i in emb.nearest_neighbours(happy, 3)))
from rsmi.resources import offline_nltk
from textattack.shared import AttackedText
from textattack.transformations import WordSwapWordNet
with offline_nltk():
    swap = WordSwapWordNet()  # calls nltk.download("omw-1.4") in its constructor
swaps = [t.words[0] for t in swap(AttackedText("happy day"), indices_to_modify={0})]
assert swaps == ["glad"], swaps
assert attempts == [], f"network attempts: {attempts}"
good, bad = emb.word2index("good"), emb.word2index("bad")
print(round(float(emb.get_cos_sim(good, bad)), 3))
"""


def test_rsmi_import_is_light_and_textattack_imports_offline(tmp_path):
    """`import rsmi` loads neither NLTK nor TextAttack; `import_textattack` makes no network
    attempt and touches no user cache; `word_embedding()` gives counter-fitted neighbours."""
    root = tmp_path / "res"
    prepare(root, options=PrepareOptions(vocab_size=100, tagger_heldout=0.2),
            sources=fixture_sources(tmp_path))
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in {"TA_CACHE_DIR", "NLTK_DATA", "HF_HOME", "XDG_CACHE_HOME", "RSMI_HOME"}}
    env["HOME"] = str(home)
    proc = subprocess.run([sys.executable, "-c", OFFLINE_CHECK, str(root)], capture_output=True,
                          text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Error loading" not in proc.stderr  # no nltk.download attempt under offline_nltk()
    neighbours, good_bad_cos = proc.stdout.strip().splitlines()[-2:]
    assert neighbours.split()[0] == "glad"  # WordNet synonym pulled next to happy
    assert float(good_bad_cos) < 0.3         # antonyms that started at cos 0.97


def test_the_synonym_tables_digest_follows_its_files(tmp_path):
    """Resources.embedding_sha256 (what an attack run records) changes with any file of the
    counter-fitted embedding and is None where no embedding is recorded."""
    from rsmi.resources.core import Resources

    files = []
    for name in ("matrix.npy", "nn.npy", "words.txt"):
        path = tmp_path / "embedding" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(name.encode())
        files.append(path)
    manifest = Manifest(root=tmp_path)
    assert Resources(tmp_path, manifest).embedding_sha256 is None
    manifest.set_part("embedding", files, source="test")
    first = Resources(tmp_path, manifest).embedding_sha256
    assert first is not None and len(first) == 64
    assert Resources(tmp_path, manifest).embedding_sha256 == first  # stable
    files[1].write_bytes(b"other neighbours")
    manifest.set_part("embedding", files, source="test")
    assert Resources(tmp_path, manifest).embedding_sha256 != first
