"""scripts/setup.sh, sourced as the README says, must leave the user's shell usable."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SETUP = ROOT / "scripts" / "setup.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def _ready_venv(tmp_path: Path) -> Path:
    """A fake .venv whose set-up stamp is current, so sourcing installs nothing."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    digest = hashlib.sha256(
        (ROOT / "pyproject.toml").read_bytes() + (ROOT / "requirements" / "constraints.txt").read_bytes()
    ).hexdigest()[:16]
    (venv / f".rsmi-setup-{digest}").touch()
    return venv


def _bash(script: str, venv: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "RSMI_VENV": str(venv), "HOME": str(venv.parent)},
    )


def test_sourcing_does_not_leave_strict_mode_in_the_users_shell(tmp_path: Path) -> None:
    venv = _ready_venv(tmp_path)
    done = _bash(
        f"set +euo pipefail; source '{SETUP}'; echo rc=$?; echo opts=$-; "
        "shopt -qo pipefail && echo pipefail-on; false; echo survived-a-failing-command; "
        "echo \"$PATH\"",
        venv,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "rc=0" in out
    assert "survived-a-failing-command" in out  # `set -e` would have closed the shell
    opts = next(line for line in out.splitlines() if line.startswith("opts="))
    assert "e" not in opts.removeprefix("opts=") and "u" not in opts.removeprefix("opts=")
    assert "pipefail-on" not in out
    assert out.strip().splitlines()[-1].startswith(f"{venv}/bin:")  # rsmi on PATH


def test_sourcing_twice_adds_the_venv_to_path_once(tmp_path: Path) -> None:
    venv = _ready_venv(tmp_path)
    done = _bash(f"source '{SETUP}'; source '{SETUP}'; echo \"$PATH\"", venv)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().split(":").count(f"{venv}/bin") == 1


def test_a_failed_setup_returns_non_zero_without_closing_the_shell(tmp_path: Path) -> None:
    venv = tmp_path / "venv"  # no stamp: set-up runs and fails (no such interpreter)
    done = subprocess.run(
        ["bash", "-c", f"source '{SETUP}'; echo rc=$?; echo still-here"],
        capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "RSMI_VENV": str(venv), "PYTHON": "/nonexistent/python",
             "HOME": str(tmp_path)},
    )
    assert "still-here" in done.stdout
    assert "rc=0" not in done.stdout
    assert "set-up failed" in done.stderr


def test_running_it_as_a_script_exits_with_its_status(tmp_path: Path) -> None:
    venv = _ready_venv(tmp_path)
    done = _bash(f"bash '{SETUP}'; echo rc=$?", venv)
    assert "rc=0" in done.stdout, done.stderr
