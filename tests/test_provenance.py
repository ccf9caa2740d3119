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


def test_the_cpu_kind_names_the_instruction_sets_that_choose_the_kernels(tmp_path, monkeypatch):
    """One model name covers CPUs with and without AVX-512 BF16 ("AMD EPYC": Zen 4 and Zen 3),
    which train other bfloat16 weights from one seed: the kind is the name plus those sets."""
    import rsmi.provenance as prov

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC\n"
                       "flags\t\t: fpu sse2 avx2 avx512f avx512_bf16 sha_ni\n")
    read = prov.cpu_flags.__wrapped__  # the uncached reader
    monkeypatch.setattr(prov, "cpu_flags", lambda: read(str(cpuinfo)))
    assert prov.cpu_features() == ["avx2", "avx512_bf16", "avx512f"]  # sorted; others left out
    record = {"cpu": "AMD EPYC", "cpu_features": prov.cpu_features()}
    assert prov.cpu_kind(record) == "AMD EPYC [avx2 avx512_bf16 avx512f]"
    assert prov.cpu_kind({"cpu": "AMD EPYC"}) == "AMD EPYC"  # a record from before the sets
    assert prov.cpu_kind({"cpu": None}) is None
    assert machine()["cpu_features"] == ["avx2", "avx512_bf16", "avx512f"]

    zen3 = prov.cpu_kind({"cpu": "AMD EPYC", "cpu_features": ["avx2"]})
    assert prov.same_cpu_kind("AMD EPYC [avx2 avx512_bf16 avx512f]", zen3) is False
    assert prov.same_cpu_kind(zen3, "AMD EPYC [avx2]") is True
    assert prov.same_cpu_kind("Intel(R) Xeon(R) Processor", zen3) is False
    assert prov.same_cpu_kind("AMD EPYC", zen3) is None  # the old record cannot tell
    assert prov.same_cpu_kind(None, zen3) is None

    monkeypatch.setattr(prov, "cpu_flags", lambda: frozenset())  # no /proc/cpuinfo
    assert prov.cpu_features() is None
    assert prov.cpu_kind({"cpu": "x", "cpu_features": None}) == "x"


def test_the_machine_record_names_the_cpu_family_and_model_of_the_first_processor(tmp_path):
    """The numbers tell apart generations behind one model name (diagnostic; not the kind)."""
    import rsmi.provenance as prov

    read = prov.cpu_family_model.__wrapped__  # the uncached reader
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 26\n"
                       "model\t\t: 2\nmodel name\t: AMD EPYC\n\n"
                       "processor\t: 1\ncpu family\t: 25\nmodel\t\t: 1\n")
    assert read(str(cpuinfo)) == "26/2"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: some ARM core\n")
    assert read(str(cpuinfo)) is None
    assert read(str(tmp_path / "absent")) is None
    assert "cpu_family_model" in machine()
