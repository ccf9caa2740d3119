"""Trust round 2: the files ``rsmi report`` writes (docs/reliability.md, "report and docs outputs").

Each output flag (``--markdown``, ``--html``, ``--plot``, ``--update-docs``) meets each hostile
target of ``TARGETS``: a FIFO, a character device, a directory (refused before any result is
read, never read nor replaced), a user's file without rsmi's generator mark (left alone unless
``--overwrite``; a doc without blocks is never written), a file rsmi wrote (replaced), and a
full disk or a kill halfway through the write (the old file stays whole, no temporary file is
left behind).
"""

from __future__ import annotations

import builtins
import errno
import os
import shutil
import signal
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from rsmi.cli.main import main
from rsmi.errors import ConfigError, OutputError, StoreError
from rsmi.reports import docs, outputs
from rsmi.reports.grouping import ResultSet
from rsmi.store import atomic

FIXTURE = Path(__file__).parent / "fixtures" / "results"
FLAGS = ("--markdown", "--html", "--plot", "--update-docs")
USER_TEXT = b"my own notes: not a report\n"
DOC_WITHOUT_BLOCKS = "# Notes\n\nNo generated tables here.\n"
STALE_DOC = """# Results

Prose that must survive.

<!-- rsmi-report: results/mr --columns model,attack,clean,aua,n -->
| model | attack | AUA % |
|---|---|---:|
| rsmi | textfooler | 99.9 |
<!-- /rsmi-report -->

After the block.
"""


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """Results under ``results/mr`` of a throw-away repository (pyproject.toml at its root);
    the working directory is that root; a hang (a FIFO read) fails after 60 s."""
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    shutil.copytree(FIXTURE / "mr", tmp_path / "results" / "mr")
    monkeypatch.chdir(tmp_path)
    old = signal.signal(signal.SIGALRM, lambda *_: pytest.fail("hung: an output was read"))
    signal.alarm(60)
    yield tmp_path
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def _argv(flag: str, target: Path, *extra: str) -> list[str]:
    if flag == "--update-docs":
        return ["report", "--update-docs", str(target), *extra]
    return ["report", "results/mr", flag, str(target), *extra]


def _rsmi_written(flag: str, path: Path) -> None:
    """``path`` as rsmi writes it for ``flag`` (a stale doc for --update-docs)."""
    if flag == "--update-docs":
        path.write_text(STALE_DOC)
    else:
        assert main(_argv(flag, path, "--title", "first")) == 0


# ---------------------------------------------------------------------------- targets
@dataclass(frozen=True)
class Target:
    id: str
    make: Callable[[str, Path], Path]  # (flag, tmp dir) -> the output path
    code: int  # exit status
    message: str  # in stderr ("" for a success)
    read_results: bool  # whether the results may be read (False: refused before any work)


def _fifo(flag: str, d: Path) -> Path:
    os.mkfifo(d / "out")
    return d / "out"


def _char_device(flag: str, d: Path) -> Path:
    dev = Path("/dev/null")
    if not dev.exists() or not stat.S_ISCHR(dev.stat().st_mode):
        pytest.skip("no /dev/null character device here")
    return dev


def _directory(flag: str, d: Path) -> Path:
    (d / "out").mkdir()
    (d / "out" / "keep.txt").write_text("kept")
    return d / "out"


def _user_file(flag: str, d: Path) -> Path:
    path = d / "out"
    if flag == "--update-docs":
        path.write_text(DOC_WITHOUT_BLOCKS)
    else:
        path.write_bytes(USER_TEXT)
    return path


def _rsmi_file(flag: str, d: Path) -> Path:
    _rsmi_written(flag, d / "out")
    return d / "out"


def _empty_file(flag: str, d: Path) -> Path:
    (d / "out").write_bytes(b"")
    return d / "out"


TARGETS = [
    Target("fifo", _fifo, 2, "FIFO", read_results=False),
    Target("char-device", _char_device, 2, "character device", read_results=False),
    Target("directory", _directory, 2, "directory", read_results=False),
    # a user's file: an output flag refuses it; a doc without blocks is left unwritten (exit 0)
    Target("user-file", _user_file, 2, "--overwrite", read_results=False),
    Target("rsmi-file", _rsmi_file, 0, "", read_results=True),
    Target("empty-file", _empty_file, 0, "", read_results=True),
]


def _snapshot(path: Path) -> object:
    if path.is_dir():
        return sorted(p.name for p in path.iterdir())
    if path.is_file():
        return path.read_bytes(), path.stat().st_mtime_ns
    return stat.S_IFMT(path.stat().st_mode)


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.id)
@pytest.mark.parametrize("flag", FLAGS)
def test_output_targets(repo, flag, target, monkeypatch, capsys):
    path = target.make(flag, repo)
    before = _snapshot(path)
    loads: list[object] = []
    real_load = ResultSet.load.__func__
    monkeypatch.setattr(ResultSet, "load", classmethod(
        lambda cls, *a, **k: (loads.append(a), real_load(cls, *a, **k))[1]))
    capsys.readouterr()
    code = main(_argv(flag, path, "--title", "second"))
    err = capsys.readouterr().err
    if flag == "--update-docs" and target.id in ("user-file", "empty-file"):
        assert code == 0 and _snapshot(path) == before  # no block: never written
        return
    assert code == target.code, err
    assert target.message in err
    if not target.read_results:
        assert not loads, "results were read before the output path was refused"
    if target.code:
        assert _snapshot(path) == before  # refused: untouched
        assert len(err.strip().splitlines()) == 1
        return
    data = path.read_bytes()
    if flag == "--update-docs":
        text = data.decode()
        assert "99.9" not in text and "Prose that must survive." in text and "After the block." in text
    else:
        assert outputs.is_rsmi_output(path)
        assert data != before[0]  # replaced by the new report
    assert not list(repo.glob(".*.tmp"))


@pytest.mark.parametrize("flag", FLAGS[:3])
def test_overwrite_replaces_a_users_file(repo, flag):
    path = _user_file(flag, repo)
    assert main(_argv(flag, path)) == 2 and path.read_bytes() == USER_TEXT
    assert main(_argv(flag, path, "--overwrite")) == 0
    assert outputs.is_rsmi_output(path)


# ---------------------------------------------------------------------------- a full disk, a kill
class _HalfWriter:
    """A file that writes half of what it is given, then fails with ``exc``."""

    def __init__(self, fh, exc: BaseException) -> None:
        self.fh, self.exc = fh, exc

    def write(self, data):
        self.fh.write(data[: len(data) // 2])
        self.fh.flush()
        raise self.exc

    def __getattr__(self, name):
        return getattr(self.fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.fh.close()


FAILURES = [
    ("full-disk", lambda: OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), 2),
    ("interrupted", KeyboardInterrupt, 130),
]


@pytest.mark.parametrize(("failure", "make_exc", "code"), FAILURES, ids=[f[0] for f in FAILURES])
@pytest.mark.parametrize("flag", FLAGS)
def test_a_failed_write_leaves_the_old_file_whole(repo, flag, failure, make_exc, code, monkeypatch):
    path = repo / "out"
    _rsmi_written(flag, path)
    old = path.read_bytes()
    real_open = builtins.open

    def failing_open(file, mode="r", *args, **kwargs):
        fh = real_open(file, mode, *args, **kwargs)
        return _HalfWriter(fh, make_exc()) if "w" in mode else fh

    monkeypatch.setattr(atomic, "open", failing_open, raising=False)
    assert main(_argv(flag, path, "--title", "second")) == code
    assert path.read_bytes() == old
    assert not [p for p in repo.iterdir() if p.name.endswith(".tmp")]


# ---------------------------------------------------------------------------- the rest
def test_update_docs_checks_every_file_before_writing_any(repo):
    doc = repo / "doc.md"
    doc.write_text(STALE_DOC)
    os.mkfifo(repo / "fifo.md")
    assert main(["report", "--update-docs", str(doc), str(repo / "fifo.md")]) == 2
    assert doc.read_text() == STALE_DOC
    assert main(["report", "--update-docs", str(repo / "fifo.md"), "--check"]) == 2


def test_update_docs_through_a_symlink_writes_the_file_it_names(repo):
    doc = repo / "doc.md"
    doc.write_text(STALE_DOC)
    link = repo / "link.md"
    link.symlink_to(doc)
    assert main(["report", "--update-docs", str(link)]) == 0
    assert link.is_symlink() and "99.9" not in doc.read_text()


def test_two_outputs_naming_one_file_are_refused(repo, capsys):
    assert main(["report", "results/mr", "--markdown", "r.md", "--html", "./r.md"]) == 2
    assert "same file" in capsys.readouterr().err and not (repo / "r.md").exists()


def test_a_png_of_an_older_rsmi_has_no_mark_and_needs_overwrite(repo):
    old_png = Path(__file__).resolve().parents[1] / "docs" / "images" / "study-mr-sweep.png"
    path = repo / "old.png"
    shutil.copy(old_png, path)
    assert not outputs.is_rsmi_output(path)
    assert main(_argv("--plot", path)) == 2
    assert main(_argv("--plot", path, "--overwrite")) == 0 and outputs.is_rsmi_output(path)


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_library_writers_refuse_non_regular_paths(repo, kind):
    from rsmi.reports import plot
    from rsmi.reports.html import write_html
    from rsmi.reports.plots import save_figure

    path = (_fifo if kind == "fifo" else _directory)("", repo)
    rows = ResultSet.load(["results/mr"])
    for write in (lambda: plot(rows.rows, path), lambda: write_html(rows, path),
                  lambda: save_figure(rows.rows, "aua-vs-clean", path)):
        with pytest.raises(OutputError):
            write()


ERRORS = [
    ("unreadable results", StoreError, lambda d: _load_broken(d)),
    ("unknown block option", ConfigError,
     lambda d: docs.parse_spec("results/mr --colour red")),
    ("unclosed block", ConfigError, lambda d: docs.blocks("<!-- rsmi-report: x -->\n")),
    ("unknown column", ConfigError, lambda d: _columns("model,colour")),
    ("missing doc", OutputError, lambda d: docs.update_docs([d / "none.md"])),
]


def _load_broken(d: Path) -> None:
    from rsmi.reports import load_row

    (d / "summary.json").write_text("{broken")
    load_row(d)


def _columns(names: str) -> None:
    from rsmi.reports.tables import columns

    columns(names)


@pytest.mark.parametrize(("case", "error", "call"), ERRORS, ids=[e[0] for e in ERRORS])
def test_report_errors_have_rsmi_types(tmp_path, case, error, call):
    with pytest.raises(error):
        call(tmp_path)
