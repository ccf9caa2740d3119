"""Throughput and latency of `rsmi serve` against calling `predict` in-process (issue 28).

For each concurrency level (default 1, 4, 16, 64) a fixed number of HTTP clients send
one-text /predict requests (MR test sentences, each request its own sentence) to a real
`rsmi serve` process on 127.0.0.1, as fast as each gets its answer; the benchmark reports texts
per second over the level and the p50/p99 latency of the requests. The baseline is the same
model in this process: `predict` called once per text (what a single client gets, without HTTP)
and once on all texts of a level (the most the Monte-Carlo samples can amortise).

Requests are combined into one `predict` call only when the classifier's randomness follows the
text (`seeding == "text-v1"`, every model since the seeding change): the plain server then
micro-batches. With `--combine-levels` the benchmark also starts a server that combines
regardless of the classifier's seeding (a measurement for classifiers without `text-v1`, never
a way to serve; with a `text-v1` model it measures the same thing as the plain server).

    python benchmarks/bench_serve.py --out results/benchmarks/serve/minilm_cpu.json
    python benchmarks/bench_serve.py --model runs/user-path/model --data tweets --combine-levels '' \
        --min-requests 8 --single-texts 8 --out results/benchmarks/serve/tweets_rsmi_trained_cpu.json

The model is a trained RSMI directory (--model) or, by default, the untrained MiniLM backbone
with a new 2-class head (noise and masks on: every forward pass costs what a trained model's
does; the share of texts that need step 2 differs).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def test_texts(data: str, num: int, seed: int) -> list[str]:
    """Test texts of a built-in dataset (MR: ≈21 words; tweets: ≈16), a fixed random sample."""
    from rsmi.data import load_dataset

    pool = [e.text for e in load_dataset(data).split("test")]
    rng = np.random.default_rng(seed)
    return [pool[i] for i in rng.choice(len(pool), size=min(num, len(pool)), replace=False)]


def machine() -> dict:
    info: dict = {"platform": platform.platform(), "python": platform.python_version()}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("Model name", "CPU(s)", "Thread(s) per core", "Core(s) per socket"):
                info[key.strip()] = value.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    info["loadavg_start"] = list(os.getloadavg())
    return info


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q)) if values else float("nan")


# ---------------------------------------------------------------------- the model
def prepare_model(args: argparse.Namespace, workdir: Path) -> tuple[str, str]:
    """A model directory to serve, and what it is (said in the output)."""
    if args.model:
        return args.model, f"trained RSMI model {args.model}"
    import torch

    from rsmi import RSMIClassifier

    torch.manual_seed(0)  # the new head's initial weights
    clf = RSMIClassifier.from_pretrained("minilm", label_names=["negative", "positive"])
    path = clf.save_pretrained(workdir / "minilm-untrained")
    return str(path), (
        "untrained MiniLM (all-MiniLM-L6-v2) with a new 2-class head, RSMI reference settings "
        "(noise and masks on; --k1 overrides step 2's samples, see settings.rsmi_config): no "
        "trained model was given"
    )


# ---------------------------------------------------------------------- in-process baseline
def baseline(
    model: str, texts: list[str], threads: int, seed: int, single: int, overrides: dict
) -> dict:
    import torch

    from rsmi import RSMIClassifier

    torch.set_num_threads(threads)
    clf = RSMIClassifier.from_pretrained(model, **overrides)
    clf.predict(texts[:2], seed=seed)  # warm-up
    latencies = []
    start = time.perf_counter()
    for text in texts[:single]:
        t0 = time.perf_counter()
        clf.predict([text], seed=seed)
        latencies.append(time.perf_counter() - t0)
    single_wall = time.perf_counter() - start
    t0 = time.perf_counter()
    pred = clf.predict(texts, seed=seed)
    batch_wall = time.perf_counter() - t0
    return {
        "one_text_per_call": {
            "texts": len(latencies),
            "texts_per_s": len(latencies) / single_wall,
            "p50_ms": 1000 * percentile(latencies, 50),
            "p99_ms": 1000 * percentile(latencies, 99),
        },
        "all_texts_in_one_call": {
            "texts": len(texts),
            "texts_per_s": len(texts) / batch_wall,
            "wall_s": batch_wall,
            "mean_forward_passes": float(pred.forward_passes.mean()),
            "second_step_share": float(pred.second_step.mean()),
        },
        "config": clf.config.to_dict(),
        "seeding": getattr(clf, "seeding", "row"),
    }


# ---------------------------------------------------------------------- the server
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, port: int, args: argparse.Namespace, combine: bool) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    if combine:
        command = [sys.executable, __file__, "--serve-combined", model, "--port", str(port),
                   "--threads", str(args.threads), "--max-wait-ms", str(args.max_wait_ms)]
        if args.k1 is not None:
            command += ["--k1", str(args.k1)]
    else:
        command = [sys.executable, "-m", "rsmi.cli.main", "serve", "--model", model,
                   "--port", str(port), "--threads", str(args.threads),
                   "--max-wait-ms", str(args.max_wait_ms), "--log-level", "warning"]
        if args.k1 is not None:
            command += ["--k1", str(args.k1)]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_ready(proc: subprocess.Popen, url: str, timeout: float = 300) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            if httpx.get(url + "/health", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the server did not answer /health within {timeout} s")


def stop_server(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)


async def run_level(url: str, texts: list[str], concurrency: int, seed: int) -> dict:
    import httpx

    queue: asyncio.Queue[str] = asyncio.Queue()
    for text in texts:
        queue.put_nowait(text)
    latencies: list[float] = []
    errors: list[str] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:

        async def worker() -> None:
            while not queue.empty():
                text = queue.get_nowait()
                t0 = time.perf_counter()
                r = await client.post("/predict", json={"texts": [text], "seed": seed})
                latencies.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    errors.append(r.text)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - start
        stats = (await client.get("/health")).json()
    return {
        "concurrency": concurrency,
        "requests": len(texts),
        "texts_per_s": len(texts) / wall,
        "p50_ms": 1000 * percentile(latencies, 50),
        "p99_ms": 1000 * percentile(latencies, 99),
        "wall_s": wall,
        "errors": len(errors),
        "server_model_calls_so_far": stats.get("model_calls"),
        "server_combined_calls_so_far": stats.get("combined_calls"),
    }


def bench_server(model: str, texts: list[str], levels: list[int], args, combine: bool) -> list[dict]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(model, port, args, combine)
    try:
        wait_ready(proc, url)
        asyncio.run(run_level(url, texts[:2], 1, args.seed))  # warm-up
        out = []
        for c in levels:
            n = max(args.min_requests, c)
            result = asyncio.run(run_level(url, texts[:n], c, args.seed))
            print(json.dumps({"combine": combine, **result}), flush=True)
            out.append(result)
        return out
    finally:
        stop_server(proc)


def serve_combined(args: argparse.Namespace) -> None:
    """Server mode: combine requests whatever the classifier's seeding (benchmark only)."""
    import torch

    from rsmi import RSMIClassifier
    from rsmi.serve import ServeSettings, create_app
    from rsmi.serve.server import GracefulServer, uvicorn_config

    torch.set_num_threads(args.threads)
    overrides = {} if args.k1 is None else {"k1": args.k1}
    clf = RSMIClassifier.from_pretrained(args.serve_combined, **overrides)
    app = create_app(clf, ServeSettings(max_wait_ms=args.max_wait_ms), model_dir=args.serve_combined, combine=True)
    GracefulServer(uvicorn_config(app, "127.0.0.1", args.port, log_level="warning"), app).run()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=None, help="a trained RSMI model directory (default: untrained MiniLM)")
    p.add_argument("--data", default="mr",
                   help="built-in dataset whose test texts are sent, one per request (default mr)")
    p.add_argument("--levels", default="1,4,16,64", help="concurrency levels")
    p.add_argument("--combine-levels", default="16,64",
                   help="levels also run against a server that always combines ('' for none)")
    p.add_argument("--min-requests", type=int, default=32,
                   help="requests per level: max(this, concurrency) (default 32)")
    p.add_argument("--single-texts", type=int, default=16, help="texts of the one-per-call baseline")
    p.add_argument("--threads", type=int, default=2, help="torch threads of server and baseline")
    p.add_argument("--max-wait-ms", type=float, default=5.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--k1", type=int, default=None,
                   help="step-2 samples, in process and served alike (default: the model's own); "
                   "the untrained head sends every text to step 2, so k1=8 gives the 14 forward "
                   "passes per text that the trained MR model averages (README)")
    p.add_argument("--out", default=None, help="JSON file to write")
    p.add_argument("--serve-combined", default=None, help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if args.serve_combined:
        serve_combined(args)
        return
    levels = [int(x) for x in args.levels.split(",") if x]
    combine_levels = [int(x) for x in args.combine_levels.split(",") if x]
    started = time.time()
    info = machine()
    texts = test_texts(args.data, max([args.min_requests, *levels]), args.seed)
    with tempfile.TemporaryDirectory(prefix="rsmi-bench-serve-") as tmp:
        model, what = prepare_model(args, Path(tmp))
        print(f"model: {what}", flush=True)
        overrides = {} if args.k1 is None else {"k1": args.k1}
        base = baseline(model, texts[: max(levels)], args.threads, args.seed, args.single_texts, overrides)
        print(json.dumps({"in_process": {k: base[k] for k in ("one_text_per_call", "all_texts_in_one_call")}}), flush=True)
        served = bench_server(model, texts, levels, args, combine=False)
        combined = bench_server(model, texts, combine_levels, args, combine=True) if combine_levels else []
    info["loadavg_end"] = list(os.getloadavg())
    result = {
        "benchmark": "serve",
        "command": "python benchmarks/bench_serve.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                     capture_output=True, text=True).stdout.strip(),
        "machine": info,
        "model": what,
        "settings": {
            "texts": f"{args.data} test texts, one per request, each request its own text",
            "levels": levels, "min_requests": args.min_requests, "threads": args.threads,
            "max_wait_ms": args.max_wait_ms, "seed": args.seed, "rsmi_config": base["config"],
            "seeding": base["seeding"], "transport": "HTTP/1.1 on 127.0.0.1, httpx AsyncClient",
        },
        "in_process": {k: base[k] for k in ("one_text_per_call", "all_texts_in_one_call")},
        "served": served,
        "served_always_combining": combined,
        "elapsed_s": time.time() - started,
    }
    print(json.dumps(result, indent=2))
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
