"""Golden digests: prove that a refactor leaves rsmi's outputs byte-identical (issue 25).

Runs a fixed, small workload through the public command line only (``python -m
rsmi.cli.main``, in subprocesses, so the same script runs on the code before and after a
refactor) and writes the sha256 of everything it produced:

1. ``rsmi resources prepare`` (idempotent: verifies the shared resources, builds what is
   missing; the per-file sha256 of its manifest are recorded);
2. ``rsmi train --method base`` and ``--method rsmi``: MiniLM, MR, 1,024 training and 100 dev
   sentences, 1 epoch, max length 48, batch 16, lr 2e-4, float32, seed 0;
3. ``rsmi evaluate`` of both models on 40 MR test sentences (float32, seed 0);
4. ``rsmi attack``: TextFooler, TextDefender preset, 8 MR test sentences, sample seed 0,
   attack seed 0, float32, on the base model and on the RSMI model.

Digests: every file of each output directory, byte for byte, except the fields listed in
``NORMALISATION`` (timings, UTC timestamps, the provenance block whose git revision changes
by definition, and the work directory's absolute path, replaced by ``<WORK>``); the lock
files are not hashed. ``examples.jsonl`` is hashed with only ``wall_s`` removed (the other
fields keep their order and their exact JSON text), as a whole and line by line, so that a
difference can be traced to an example. Every command runs with one thread
(``OMP_NUM_THREADS``/``MKL_NUM_THREADS``, ``--threads``), ``PYTHONHASHSEED=0`` and no GPU, in
the work directory (``--work``, default a temporary directory): nothing is written into the
repository except ``--out``.

Float32 results depend on the CPU's kernels: the digests are valid only on the same kind of
CPU (``lscpu`` model, family/model/stepping and the ISA flags that choose kernels), with the
same package versions and the same number of threads. ``--compare`` checks the CPU kind
first and refuses to run on another (``--allow-other-cpu`` runs and compares anyway).

    python benchmarks/golden_digests.py --out results/refactor/golden-b953ba9.json
    python benchmarks/golden_digests.py --compare results/refactor/golden-b953ba9.json
    python benchmarks/golden_digests.py --compare OLD.json --against NEW.json   # no run

Exit status: 0 all digests equal (or digests written), 1 a digest differs, 2 an error
(a command failed: its work directory is kept; another CPU, thread count or protocol).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

FORMAT = 1
WORK_TOKEN = "<WORK>"
# The fixed workload. Changing anything here makes new golden files necessary: the protocol
# is stored in the JSON and --compare refuses files of another protocol.
TRAIN_ARGS = [
    "--model", "minilm", "--data", "mr", "--split-seed", "0", "--max-examples", "1024",
    "--max-eval-examples", "100", "--epochs", "1", "--max-length", "48", "--batch-size", "16",
    "--lr", "2e-4", "--dtype", "float32", "--seed", "0",
]
EVAL_ARGS = [
    "--data", "mr", "--split", "test", "--max-examples", "40", "--seed", "0",
    "--split-seed", "0", "--dtype", "float32", "--device", "cpu",
]
ATTACK_ARGS = [
    "--data", "mr", "--split", "test", "--recipe", "textfooler", "--preset", "textdefender",
    "--num-examples", "8", "--sample-seed", "0", "--seed", "0", "--dtype", "float32",
    "--device", "cpu", "--batch-size", "32", "--no-progress",
]
METHODS = ("base", "rsmi")
PROVENANCE_KEYS = ["git_revision", "git_dirty", "versions", "python", "machine", "created"]
# What is not compared byte for byte, and why (stored in the JSON as well).
NORMALISATION: dict[str, Any] = {
    "skipped_files": {
        ".rsmi-run.lock": "the empty filelock of the run directory: holds no output",
    },
    "dropped_keys": {
        # file name -> top-level keys removed from the JSON document (or from each JSON line)
        ".rsmi-run.json": ["created"],
        "training_config.json": ["provenance"],
        "log.jsonl": ["provenance", "train_seconds", "dev_seconds"],
        "evaluation.json": ["seconds", *PROVENANCE_KEYS],
        "predictions.jsonl": [],
        "examples.jsonl": ["wall_s", "model_s"],
        "summary.json": ["wall_time_s", "attack_time_s", "seconds", *PROVENANCE_KEYS],
        "run.json": [],
    },
    "why": {
        "created": "UTC timestamp of the run",
        "provenance": "git revision and dirty flag (different by definition across a "
        "refactor), package versions, python, machine, UTC date: recorded once at the top "
        "level of this file instead",
        "train_seconds, dev_seconds, seconds, wall_s, model_s, wall_time_s, attack_time_s": "timings",
        "paths": f"the work directory's absolute path is replaced by {WORK_TOKEN} in every "
        "JSON file (training_config.json `out`, the attack config's `model`, ...)",
    },
    "resources": "the sha256 of each resource file as manifest.json records it; the "
    "tagger's *.classes.json (a set NLTK writes in hash order) is hashed sorted",
    "json": "JSON documents (.json) are re-serialised after the change with indent=2 and "
    "ensure_ascii=False in their own key order; JSON lines (.jsonl) with json.dumps(..., "
    "ensure_ascii=False), the format rsmi writes them in, so an unchanged line keeps its bytes; "
    "files with nothing to drop and no path are hashed as they are",
}
# Files whose normalised records are stored too (a few KB), so --compare names what differs.
KEEP_RECORDS = ("examples.jsonl",)
# lscpu fields and ISA flags that decide which float32 kernels run.
LSCPU_FIELDS = ("Vendor ID", "Model name", "CPU family", "Model", "Stepping")
# = rsmi.provenance.KERNEL_FLAGS, copied: this script also runs against older rsmi revisions
KERNEL_FLAGS = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
                "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_bf16", "amx_tile", "amx_int8")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cpu_kind() -> dict[str, Any]:
    """The lscpu fields and kernel-relevant ISA flags of this machine."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True,
                              env={**os.environ, "LC_ALL": "C"}).stdout
    except (OSError, subprocess.CalledProcessError):
        text = ""
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    flags = set(fields.get("Flags", "").split())
    return {
        **{k: fields.get(k) for k in LSCPU_FIELDS},
        "kernel_flags": sorted(f for f in KERNEL_FLAGS if f in flags),
    }


def _replace_paths(obj: Any, work: str) -> Any:
    if isinstance(obj, str):
        return obj.replace(work, WORK_TOKEN)
    if isinstance(obj, list):
        return [_replace_paths(v, work) for v in obj]
    if isinstance(obj, dict):
        return {k: _replace_paths(v, work) for k, v in obj.items()}
    return obj


def _drop(obj: Any, keys: list[str]) -> Any:
    return {k: v for k, v in obj.items() if k not in keys} if isinstance(obj, dict) else obj


def file_digest(path: Path, work: str) -> dict[str, Any]:
    """sha256 of a file after NORMALISATION; for .jsonl also one digest per line."""
    keys = NORMALISATION["dropped_keys"].get(path.name, [])
    raw = path.read_bytes()
    if path.suffix == ".jsonl":
        lines = [
            json.dumps(_replace_paths(_drop(json.loads(line), keys), work), ensure_ascii=False)
            for line in raw.decode("utf-8").splitlines() if line.strip()
        ]
        data = "".join(line + "\n" for line in lines).encode("utf-8")
        out = {"sha256": sha256_bytes(data), "dropped": keys, "lines": len(lines),
               "line_sha256": [sha256_bytes(line.encode("utf-8")) for line in lines]}
        if path.name in KEEP_RECORDS:  # small: kept so that --compare can name the fields
            out["records"] = [json.loads(line) for line in lines]
        return out
    if path.suffix == ".json" and (keys or work.encode() in raw):
        doc = _replace_paths(_drop(json.loads(raw.decode("utf-8")), keys), work)
        data = (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
        return {"sha256": sha256_bytes(data), "dropped": keys, "normalised": True}
    if work.encode() in raw:
        data = raw.replace(work.encode(), WORK_TOKEN.encode())
        return {"sha256": sha256_bytes(data), "normalised": True}
    return {"sha256": sha256_file(path)}


def dir_digests(directory: Path, work: str) -> dict[str, Any]:
    """Digests of every file under ``directory`` (relative names, sorted)."""
    out: dict[str, Any] = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        rel = path.relative_to(directory).as_posix()
        if path.name in NORMALISATION["skipped_files"]:
            continue
        out[rel] = file_digest(path, work)
    return out


class CommandFailed(RuntimeError):
    """An ``rsmi`` command of the workload exited non-zero."""


def cli(args: list[str], *, work: Path, env: dict[str, str], log_name: str) -> float:
    """Run ``python -m rsmi.cli.main ARGS`` in ``work``; its output goes to work/logs."""
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "rsmi.cli.main", *args]
    print("$ rsmi " + " ".join(args).replace(str(work), WORK_TOKEN), flush=True)
    started = time.perf_counter()
    with open(logs / f"{log_name}.out", "wb") as out, open(logs / f"{log_name}.err", "wb") as err:
        proc = subprocess.run(cmd, cwd=work, env=env, stdout=out, stderr=err, check=False)
    seconds = time.perf_counter() - started
    print(f"  exit {proc.returncode} in {seconds:.1f} s", flush=True)
    if proc.returncode != 0:
        tail = (logs / f"{log_name}.err").read_text(errors="replace")[-3000:]
        raise CommandFailed(f"`rsmi {args[0]}` failed (exit {proc.returncode}); its output is "
                            f"in {logs}:\n{tail}")
    return seconds


def subprocess_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
        "PYTHONHASHSEED": "0", "CUDA_VISIBLE_DEVICES": "", "TOKENIZERS_PARALLELISM": "false",
        "NO_COLOR": "1", "COLUMNS": "120",
    })
    env.pop("RSMI_DEBUG", None)
    return env


# rsmi.provenance.NUMERICS_ENV, copied: this script also runs against an older rsmi (before and
# after a refactor), so it imports nothing from it.
NUMERICS_ENV = ("ONEDNN_MAX_CPU_ISA", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS")


def environment(env: dict[str, str]) -> dict[str, Any]:
    """rsmi's location and git state, package versions, python, CPU, in the subprocess's view."""
    probe = (
        "import importlib.metadata as m, json, sys, rsmi, torch\n"
        "v = {}\n"
        "for n in ('rsmi','torch','transformers','tokenizers','safetensors','textattack','nltk',"
        "'sentence-transformers','numpy','scipy','accelerate'):\n"
        "    try: v[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: v[n] = None\n"
        "print(json.dumps({'rsmi_file': rsmi.__file__, 'python': sys.version.split()[0],"
        " 'versions': v, 'torch_threads': torch.get_num_threads()}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], env=env, check=False,
                          capture_output=True, text=True, cwd=tempfile.gettempdir())
    if proc.returncode != 0:
        raise CommandFailed(f"cannot import rsmi and torch with {sys.executable}:\n"
                            f"{proc.stderr[-2000:]}")
    info = json.loads(proc.stdout)
    src = Path(info["rsmi_file"]).resolve().parent

    def git(*a: str) -> str | None:
        p = subprocess.run(["git", *a], cwd=src, capture_output=True, text=True, check=False)
        return p.stdout.strip() if p.returncode == 0 else None

    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "rsmi_source": str(src),
        "git_revision": git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
        "python": info["python"],
        "versions": info["versions"],
        "torch_threads": info["torch_threads"],
        "platform": platform.platform(),
        "cpu": cpu_kind(),
        "env": {k: env[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "PYTHONHASHSEED")},
        # the kernel-choosing variables of issue 27 item 6, where set (they change float32 bits)
        "numerics": {k: env[k] for k in NUMERICS_ENV if env.get(k)},
    }


def resources_digest(root: Path) -> dict[str, Any]:
    """sha256 of each resource file as its manifest records it (timestamps and paths left out).

    The tagger's ``*.classes.json`` is a Python set written in hash order (NLTK's perceptron
    ``save``): two builds with other PYTHONHASHSEEDs differ in its order only (tagging breaks
    ties by label, not by that order), so it is hashed sorted.
    """
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    files: dict[str, dict[str, str]] = {}
    for part, info in sorted(manifest.get("parts", {}).items()):
        files[part] = {}
        for name, f in sorted(info.get("files", {}).items()):
            if name.endswith(".classes.json"):
                labels = sorted(json.loads((root / name).read_text(encoding="utf-8")))
                files[part][name] = "sorted:" + sha256_bytes(json.dumps(labels).encode())
            else:
                files[part][name] = f["sha256"]
    return {"root": str(root), "files_sha256": sha256_bytes(json.dumps(files, sort_keys=True)
                                                             .encode()),
            "parts": {p: sha256_bytes(json.dumps(f, sort_keys=True).encode())
                      for p, f in files.items()}}


def run_workload(work: Path, threads: int, resources: Path | None) -> dict[str, Any]:
    env = subprocess_env(threads)
    wk = str(work)
    timings: dict[str, float] = {}
    res_args = ["--root", str(resources)] if resources else []
    timings["resources"] = cli(["resources", "prepare", *res_args], work=work, env=env,
                               log_name="resources")
    res_root = resources or Path(os.environ.get("RSMI_HOME") or "~/.cache/rsmi").expanduser() \
        / "resources"
    result: dict[str, Any] = {"resources": resources_digest(res_root), "train": {},
                              "evaluate": {}, "attack": {}}
    for method in METHODS:
        out = work / "models" / method
        timings[f"train_{method}"] = cli(["train", "--method", method, *TRAIN_ARGS,
                                          "--out", str(out)], work=work, env=env,
                                         log_name=f"train_{method}")
        result["train"][method] = dir_digests(out, wk)
    for method in METHODS:
        out = work / "evaluate" / method
        out.mkdir(parents=True)
        timings[f"evaluate_{method}"] = cli(
            ["evaluate", "--model", str(work / "models" / method), *EVAL_ARGS,
             "--out", str(out / "evaluation.json")], work=work, env=env,
            log_name=f"evaluate_{method}")
        result["evaluate"][method] = dir_digests(out, wk)
    res_flag = ["--resources", str(resources)] if resources else []
    for method in METHODS:
        out = work / "attacks" / method
        timings[f"attack_{method}"] = cli(
            ["attack", "--model", str(work / "models" / method), *ATTACK_ARGS, *res_flag,
             "--out", str(out)], work=work, env=env, log_name=f"attack_{method}")
        result["attack"][method] = dir_digests(out, wk)
    result["observed"] = observations(work)
    result["seconds"] = {k: round(v, 1) for k, v in timings.items()}
    return result


def observations(work: Path) -> dict[str, Any]:
    """A few numbers for a human reader (not compared: the digests cover them)."""
    obs: dict[str, Any] = {}
    for method in METHODS:
        log = [json.loads(x) for x in (work / "models" / method / "log.jsonl").read_text()
               .splitlines() if x.strip()]
        epoch = [r for r in log if r.get("event") == "epoch"][-1]
        ev = json.loads((work / "evaluate" / method / "evaluation.json").read_text())
        summ = json.loads((work / "attacks" / method / "summary.json").read_text())
        recs = [json.loads(x) for x in (work / "attacks" / method / "examples.jsonl")
                .read_text().splitlines() if x.strip()]
        obs[method] = {
            "train_loss": epoch.get("train_loss"), "dev_accuracy": epoch.get("dev_accuracy"),
            "test_accuracy_40": ev.get("clean_accuracy"),
            "attack_clean_accuracy": summ.get("clean_accuracy"),
            "attack_accuracy_under_attack": summ.get("accuracy_under_attack"),
            "attack_result_types": [r.get("result_type") for r in recs],
            "attack_queries": [r.get("queries") for r in recs],
        }
    return obs


def protocol() -> dict[str, Any]:
    return {"format": FORMAT, "train": TRAIN_ARGS, "methods": list(METHODS),
            "evaluate": EVAL_ARGS, "attack": ATTACK_ARGS}


def flatten(result: dict[str, Any]) -> dict[str, str]:
    """'train/rsmi/model.safetensors' -> sha256, for every compared digest."""
    flat: dict[str, str] = {f"resources/{part}": digest
                            for part, digest in result["resources"]["parts"].items()}
    for section in ("train", "evaluate", "attack"):
        for method, files in result[section].items():
            for name, d in files.items():
                flat[f"{section}/{method}/{name}"] = d["sha256"]
                for i, line in enumerate(d.get("line_sha256", [])):
                    flat[f"{section}/{method}/{name}#{i}"] = line
    return flat


def record_diff(old: dict[str, Any], new: dict[str, Any], name: str) -> str:
    """For 'attack/rsmi/examples.jsonl#3': the fields of record 3 that differ, old -> new."""
    if "#" not in name:
        return ""
    path, _, i = name.partition("#")
    section, method, file = path.split("/", 2)
    try:
        a = old[section][method][file]["records"][int(i)]
        b = new[section][method][file]["records"][int(i)]
    except (KeyError, IndexError, TypeError):
        return ""
    parts = []
    for key in list(dict.fromkeys([*a, *b])):
        if a.get(key, "<absent>") != b.get(key, "<absent>"):
            parts.append(f"{key}: {str(a.get(key, '<absent>'))[:60]} -> "
                         f"{str(b.get(key, '<absent>'))[:60]}")
    if not parts and list(a) != list(b):
        parts.append("same fields in another order")
    return ("\n             " + "\n             ".join(parts)) if parts else ""


def compare(old: dict[str, Any], new: dict[str, Any]) -> int:
    if old.get("protocol") != new.get("protocol"):
        print("golden_digests: the two files ran different workloads (protocol differs): "
              "nothing to compare", file=sys.stderr)
        return 2
    eo, en = old["environment"], new["environment"]
    for key in ("python", "versions", "torch_threads", "cpu"):
        if eo.get(key) != en.get(key):
            print(f"warning: {key} differs: {eo.get(key)} vs {en.get(key)} — a difference "
                  "below may come from that, not from the code", file=sys.stderr)
    a, b = flatten(old["results"]), flatten(new["results"])
    differ = 0
    for name in sorted(set(a) | set(b), key=lambda n: (n.split("#")[0], len(n), n)):
        if "#" in name and a.get(name.split("#")[0]) == b.get(name.split("#")[0]):
            continue  # per-line digests are shown only for files that differ
        if a.get(name) == b.get(name):
            print(f"  same     {name}")
            continue
        differ += 1
        what = "missing " if name not in b else "new     " if name not in a else "DIFFERS "
        print(f"  {what} {name}{record_diff(old['results'], new['results'], name)}")
    print(f"{old['environment'].get('git_revision')} vs {new['environment'].get('git_revision')}"
          f": {len(set(a) | set(b)) - differ} same, {differ} different")
    if differ:
        print("observed (old / new):")
        for method in METHODS:
            print(f"  {method}: {old['results']['observed'].get(method)}\n"
                  f"  {' ' * len(method)}  {new['results']['observed'].get(method)}")
    return 1 if differ else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, help="write the digests to this JSON file")
    p.add_argument("--compare", type=Path, metavar="OLD.json",
                   help="run, then compare with this golden file (exit 1 on any difference)")
    p.add_argument("--against", type=Path, metavar="NEW.json",
                   help="with --compare: compare two files, run nothing")
    p.add_argument("--work", type=Path,
                   help="work directory (must not exist or be empty; default: a temporary "
                   "directory, deleted at the end unless --keep-work)")
    p.add_argument("--keep-work", action="store_true", help="keep the temporary work directory")
    p.add_argument("--threads", type=int, default=1,
                   help="OMP/MKL threads of every command (1; float32 results may depend on the "
                   "thread count, so it is part of what the digests need; one thread per process "
                   "suffers least on a shared machine)")
    p.add_argument("--resources", type=Path,
                   help="resource root for prepare/attack (default: RSMI_HOME/resources)")
    p.add_argument("--allow-other-cpu", action="store_true",
                   help="with --compare: run even though the golden file was made on another "
                   "kind of CPU (differences are then expected)")
    args = p.parse_args()
    if not args.out and not args.compare:
        p.error("give --out FILE, --compare OLD.json, or both")

    old = json.loads(args.compare.read_text(encoding="utf-8")) if args.compare else None
    if args.against:
        if old is None:
            p.error("--against needs --compare")
        return compare(old, json.loads(args.against.read_text(encoding="utf-8")))
    if old is not None and old["environment"].get("cpu") != cpu_kind():
        print(f"warning: {args.compare} was made on another kind of CPU:\n  "
              f"{old['environment'].get('cpu')}\nthis machine:\n  {cpu_kind()}\nfloat32 "
              "kernels round differently on other CPUs, so the digests cannot match there",
              file=sys.stderr)
        if not args.allow_other_cpu:
            print("golden_digests: refusing to run (--allow-other-cpu runs anyway)",
                  file=sys.stderr)
            return 2
    old_threads = (old or {}).get("environment", {}).get("env", {}).get("OMP_NUM_THREADS")
    if old_threads is not None and old_threads != str(args.threads):
        print(f"golden_digests: {args.compare} was made with {old_threads} thread(s): run with "
              f"--threads {old_threads}", file=sys.stderr)
        return 2
    if old is not None and old.get("protocol") != protocol():
        print(f"golden_digests: {args.compare} ran another workload (protocol differs); "
              "make a new golden file with --out", file=sys.stderr)
        return 2

    temporary = args.work is None
    work = Path(tempfile.mkdtemp(prefix="rsmi-golden-")) if temporary else args.work
    work = work.resolve()
    if work.exists() and any(work.iterdir()):
        p.error(f"--work {work} is not empty")
    work.mkdir(parents=True, exist_ok=True)
    env = subprocess_env(args.threads)
    started = time.perf_counter()
    failed = False
    try:
        doc = {
            "what": "golden digests of a fixed small rsmi workload (benchmarks/golden_digests.py)",
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "environment": environment(env),
            "protocol": protocol(),
            "normalisation": NORMALISATION,
        }
        print(f"rsmi from {doc['environment']['rsmi_source']} at "
              f"{doc['environment']['git_revision']}"
              f"{' (dirty)' if doc['environment']['git_dirty'] else ''}; work {work}", flush=True)
        doc["results"] = run_workload(work, args.threads,
                                      args.resources.resolve() if args.resources else None)
        doc["total_seconds"] = round(time.perf_counter() - started, 1)
    except CommandFailed as exc:
        failed = True
        print(f"golden_digests: {exc}", file=sys.stderr)
        if any(work.iterdir()):
            print(f"work directory kept: {work}", file=sys.stderr)
        return 2
    finally:
        if temporary and not args.keep_work and not (failed and any(work.iterdir())):
            shutil.rmtree(work, ignore_errors=True)
    print(f"done in {doc['total_seconds']} s")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"digests written to {args.out}")
    if old is not None:
        return compare(old, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
