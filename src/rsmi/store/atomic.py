"""The one atomic writer and the one durable appender of rsmi.

A file written by :func:`atomic_write_text` (and its JSON / bytes forms) is either the old file
or the complete new one, whatever happens meanwhile (a kill, a full disk, a power cut): the
content goes to a temporary file in the same directory, is flushed to disk (``fsync``), and is
renamed over the target. A failed write removes the temporary file and leaves the target as it
was.

:class:`JsonlWriter` appends one JSON object per line and fsyncs each line, so a killed run
loses at most the line being written (readers drop a torn last line).

:func:`check_output_file` refuses paths that are not regular files (a directory, a character
device such as ``/dev/zero``, a FIFO, a socket) before any work is done, so nothing is read from
or replaced at such a path.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from rsmi.errors import OutputError


def dump_json(data: Any, *, indent: int | None = 2) -> str:
    """The text rsmi writes for a JSON file: UTF-8 (no ASCII escapes), a final newline."""
    return json.dumps(data, indent=indent, ensure_ascii=False) + "\n"


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename); return the path.

    Raises:
        OutputError: ``path`` exists and is not a regular file (a directory, a device, a FIFO).
        OSError: the directory cannot be created or written (the target is left unchanged).
    """
    path = Path(path)
    check_output_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; see :func:`atomic_write_bytes`."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(
    path: str | os.PathLike[str], data: Any, *, indent: int | None = 2
) -> Path:
    """Write ``data`` as JSON (:func:`dump_json`) to ``path`` atomically."""
    return atomic_write_text(path, dump_json(data, indent=indent))


def check_output_file(path: str | os.PathLike[str], what: str = "output") -> None:
    """Refuse an output path that exists and is not a regular file.

    A character device (``/dev/zero``, ``/dev/stdout``), a FIFO or a socket would be read to the
    end or replaced by a file; a directory cannot be written as a file.
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return
    except OSError:
        return  # unreadable metadata: the write itself reports the problem
    if stat.S_ISREG(mode):
        return
    kind = (
        "a directory" if stat.S_ISDIR(mode)
        else "a character device" if stat.S_ISCHR(mode)
        else "a block device" if stat.S_ISBLK(mode)
        else "a FIFO (named pipe)" if stat.S_ISFIFO(mode)
        else "a socket" if stat.S_ISSOCK(mode)
        else "not a regular file"
    )
    raise OutputError(f"{what} {path} is {kind}, not a regular file: give the path of a file to write")


class JsonlWriter:
    """Append JSON objects to a ``.jsonl`` file, one per line, each flushed and fsynced.

    A crash loses at most the line being written; :func:`rsmi.attacks.records.read_records`
    (and the other JSONL readers) drop a torn last line.
    """

    def __init__(self, path: str | os.PathLike[str], *, mode: str = "a") -> None:
        if mode not in ("a", "w"):
            raise ValueError(f"mode must be 'a' or 'w', not {mode!r}")
        self.path = Path(path)
        check_output_file(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[str] = open(self.path, mode, encoding="utf-8")  # noqa: SIM115

    def write(self, record: Mapping[str, Any]) -> None:
        self._fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def publish_directory(tmp: str | os.PathLike[str], final: str | os.PathLike[str]) -> Path:
    """Replace the directory ``final`` by the complete directory ``tmp`` (same parent).

    The files of ``tmp`` are flushed to disk first; the old ``final`` is renamed aside
    (``<final>.old``), ``tmp`` renamed to ``final``, and the old one removed, so at every moment
    one complete directory exists under ``final`` or ``<final>.old``.
    """
    import shutil

    tmp, final = Path(tmp), Path(final)
    for path in tmp.rglob("*"):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
    _fsync_dir(tmp)
    old = final.with_name(final.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    _fsync_dir(final.parent)
    shutil.rmtree(old, ignore_errors=True)
    return final
