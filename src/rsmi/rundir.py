"""Run directories are owned: a marker says which command writes one, a lock says who is.

A command that writes a run (``rsmi train --out``, ``rsmi attack --out``, ``rsmi pipeline
--out``) claims its directory with :func:`claim_run`:

* ``.rsmi-run.json`` marks the directory as that command's run (command, creation time);
* an existing directory with other content (the user's own files, another command's run) is
  refused unless ``overwrite`` is given, before anything in it is touched;
* ``.rsmi-run.lock`` (an exclusive ``filelock``) stops a second process from writing the same
  run; ``.rsmi-run.holder.json`` next to it names the holder (pid, host, command, start), so
  the refusal says who holds it.

Runs written before markers existed are recognised by their own files (``legacy`` names)
and adopted.
"""

from __future__ import annotations

import datetime as _dt
import fnmatch
import json
import os
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rsmi.errors import RunDirError, RunLockedError
from rsmi.store.atomic import atomic_write_text
from rsmi.store.names import RUN_HOLDER_FILE as HOLDER
from rsmi.store.names import RUN_LOCK_FILE as LOCK
from rsmi.store.names import RUN_MARKER_FILE as MARKER

_OWN = (MARKER, LOCK, HOLDER)
__all__ = ["RunDirError", "RunLockedError", "atomic_write_text", "check_run_dir", "check_writable",
           "claim_run", "read_marker"]


def check_writable(path: str | os.PathLike[str], what: str = "--out") -> None:
    """Fail now, before long work, when ``path`` (a file to write) cannot be written."""
    path = Path(path)
    if path.is_dir():
        raise RunDirError(f"{what} {path} is a directory: give a file name")
    parent = path.parent
    probe_dir = parent
    while not probe_dir.exists():  # the nearest existing ancestor must let us create parent
        probe_dir = probe_dir.parent
    if not probe_dir.is_dir():
        raise RunDirError(f"{what} {path}: {probe_dir} is a file, not a directory; choose another path")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        probe = parent / f".rsmi-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise RunDirError(
            f"{what} {path} cannot be written ({exc.strerror or exc}): choose a writable place"
        ) from exc


def read_marker(directory: Path) -> dict[str, Any] | None:
    """The run marker of ``directory`` (None when it has none or it is unreadable)."""
    try:
        data = json.loads((Path(directory) / MARKER).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _content(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name not in _OWN)


def check_run_dir(
    out: Path, command: str, *, overwrite: bool = False, legacy: Iterable[str] = (),
    evidence: Iterable[str] = (),
) -> bool:
    """Whether ``out`` may be written by ``command``; RunDirError when not. Touches nothing.

    A directory without a marker is adopted as a ``command`` run only when all its files are
    ``legacy`` names and one of them is in ``evidence`` (a file only that command writes).
    Returns True when ``out`` already is (or has the files of) a ``command`` run.
    """
    out = Path(out)
    if not out.exists():
        return False
    if not out.is_dir():
        raise RunDirError(f"--out {out} is a file, not a directory: choose another --out")
    content = _content(out)
    marker = read_marker(out)
    if marker is not None:
        owner = marker.get("command")
        if owner == command or overwrite:
            return owner == command
        raise RunDirError(
            f"--out {out} holds a run of `rsmi {owner}`, not of `rsmi {command}`: choose "
            "another --out (or --overwrite to write into it anyway)"
        )
    if not content:
        return False
    foreign = [name for name in content if not _matches(name, legacy) and not name.endswith(".tmp")]
    if not foreign and evidence and not any(_matches(name, evidence) for name in content):
        foreign = content  # only names rsmi also uses (config.json, ...), but not its run
    if foreign and not overwrite:
        shown = ", ".join(content[:5]) + (f" and {len(content) - 5} more" if len(content) > 5 else "")
        raise RunDirError(
            f"--out {out} already holds files ({shown}) that are not an rsmi {command} run: "
            "choose a new or empty --out (or --overwrite to write into it anyway, replacing "
            "files of the same name)"
        )
    return not foreign


def _matches(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def _holder(directory: Path) -> str:
    try:
        info = json.loads((directory / HOLDER).read_text(encoding="utf-8"))
        return (f"pid {info.get('pid')} on {info.get('host')} (`{info.get('command')}`, since "
                f"{info.get('started')})")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return "another process"


@contextmanager
def claim_run(
    out: str | os.PathLike[str],
    command: str,
    *,
    overwrite: bool = False,
    legacy: Iterable[str] = (),
    evidence: Iterable[str] = (),
    enabled: bool = True,
) -> Iterator[Path]:
    """Hold ``out`` for ``command`` while the block runs: check, create, lock, mark.

    Args:
        out: the run directory (created).
        command: the ``rsmi`` sub-command writing it (``"train"``, ``"attack"``, ...).
        overwrite: write into a directory holding other files or another command's run.
        legacy, evidence: names of the files ``command`` writes, and those only it writes (a
            run from before markers is adopted when it has one of ``evidence``).
        enabled: False on non-main processes of a distributed run (the main one holds it).

    Raises:
        RunDirError: ``out`` is a file or holds other content (without ``overwrite``).
        RunLockedError: another process holds the run; the message names it.
    """
    from filelock import FileLock, Timeout

    out = Path(out)
    if not enabled:
        yield out
        return
    names = {"overwrite": overwrite, "legacy": tuple(legacy), "evidence": tuple(evidence)}
    check_run_dir(out, command, **names)
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(out / LOCK), timeout=0)
        lock.acquire()
    except Timeout:
        raise RunLockedError(
            f"--out {out} is being written by {_holder(out)}: wait for it to finish, or choose "
            "another --out"
        ) from None
    except OSError as exc:
        raise RunDirError(
            f"--out {out} cannot be written ({exc.strerror or exc}): choose a writable --out"
        ) from exc
    try:
        check_run_dir(out, command, **names)  # again, under the lock
        now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        holder = {"pid": os.getpid(), "host": socket.gethostname(),
                  "command": f"rsmi {command}", "started": now}
        atomic_write_text(out / HOLDER, json.dumps(holder) + "\n")
        marker = read_marker(out)
        if marker is None or marker.get("command") != command:
            atomic_write_text(out / MARKER, json.dumps({"command": command, "created": now}) + "\n")
        yield out
    finally:
        (out / HOLDER).unlink(missing_ok=True)
        lock.release()
