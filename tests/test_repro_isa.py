"""benchmarks/repro_isa.py --compare: which kernel settings agree across two machines' digests."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("repro_isa", ROOT / "benchmarks" / "repro_isa.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write(path: Path, cpu: str, digests: dict) -> str:
    path.write_text(json.dumps({"cpu": cpu, "digests": digests}))
    return str(path)


def test_compare_names_the_settings_that_agree_across_machines(tmp_path, capsys):
    repro = _module()
    intel = _write(tmp_path / "intel.json", "Intel Xeon", {
        "default": {"float32": "a1", "bfloat16": "b1"},
        "MKL_CBWR=AVX2": {"float32": "a2", "bfloat16": "b2"},
    })
    amd = _write(tmp_path / "amd.json", "AMD EPYC", {
        "default": {"float32": "a2", "bfloat16": "b9"},
        "MKL_CBWR=COMPATIBLE": {"float32": "a3", "bfloat16": "b8"},
    })
    assert repro.compare([intel, amd]) == 0
    out = capsys.readouterr().out
    assert "float32: A MKL_CBWR=AVX2 == B default" in out
    assert "bfloat16" not in out.split("\n", 2)[2]  # no bfloat16 setting agrees
    other = _write(tmp_path / "other.json", "AMD EPYC", {"default": {"float32": "z", "bfloat16": "y"}})
    capsys.readouterr()
    assert repro.compare([intel, other]) == 1  # nothing agrees: exit status 1, said in words
    assert "no setting on A gives the bits of any setting on B" in capsys.readouterr().out
