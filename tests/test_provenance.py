"""rsmi.provenance: what every result file records about how it was produced."""

from __future__ import annotations

import json

from rsmi.provenance import git_revision, machine, package_versions, provenance


def test_provenance_records_code_packages_machine_and_date():
    info = provenance(dtype="bf16")
    assert info["dtype"] == "bf16"  # callers' keys pass through
    assert info["git_revision"] == git_revision()
    assert info["git_dirty"] in (True, False, None)
    assert info["versions"]["torch"] == package_versions()["torch"] is not None
    assert info["python"].count(".") == 2
    assert info["machine"]["cpu_count"] >= 1 and info["machine"]["torch_threads"] >= 1
    assert set(machine()) >= {"platform", "cpu", "cpu_count", "torch_threads", "gpu"}
    assert info["created"].endswith("+00:00")
    json.dumps(info)  # JSON-ready


def test_git_revision_is_a_commit_in_a_checkout():
    rev = git_revision()
    assert rev is None or (len(rev) == 40 and int(rev, 16) >= 0)


def test_the_kernel_choosing_variables_are_recorded_when_set(monkeypatch):
    """ONEDNN_MAX_CPU_ISA / MKL_CBWR change the float bits of training (docs/training.md): a
    record made under them says so, one made without them has no numerics block."""
    for name in ("ONEDNN_MAX_CPU_ISA", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS"):
        monkeypatch.delenv(name, raising=False)
    assert "numerics" not in machine()
    monkeypatch.setenv("MKL_CBWR", "COMPATIBLE")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")
    assert machine()["numerics"] == {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16",
                                     "MKL_CBWR": "COMPATIBLE"}
