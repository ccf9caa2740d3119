"""`rsmi serve`: the smoothed classifier as an HTTP JSON API (FastAPI + uvicorn; docs/serving.md)."""

from __future__ import annotations

import argparse
import os
import sys

from rsmi.cli._common import (
    add_dtype_flag,
    add_engine_flag,
    add_inference_flags,
    inference_overrides,
    resolve_device,
)
from rsmi.errors import ConfigError, ResourceError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve a model over HTTP: POST /predict, POST /certify, GET /health, GET /metadata",
        description="Serve a saved RSMI model as a JSON API until SIGINT/SIGTERM (in-flight "
        "requests finish; new ones get 503). Each process is stateless: run several "
        "(--workers, or replicas behind a load balancer) to scale out. See docs/serving.md.",
    )
    p.add_argument("--model", required=True, help="a saved RSMI model directory")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1, this machine only; 0.0.0.0 "
                   "for every interface)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    p.add_argument("--workers", type=int, default=1,
                   help="processes sharing the port, each with its own copy of the model (default 1)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads per process (default: torch's own; with --workers N "
                   "the CPU cores divided by N)")
    p.add_argument("--max-batch-texts", type=int, default=64,
                   help="most texts in one request and in one combined predict call (default 64)")
    p.add_argument("--max-text-chars", type=int, default=2000,
                   help="longest text accepted, in characters (default 2000)")
    p.add_argument("--max-wait-ms", type=float, default=5.0,
                   help="how long a predict request waits for others to share its model call, "
                   "where that leaves answers unchanged (default 5)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of requests that give none, for reproducible answers (default 0)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    p.add_argument("--log-level", default="info",
                   choices=("critical", "error", "warning", "info", "debug"),
                   help="uvicorn's log level (default info)")
    add_dtype_flag(p)
    add_engine_flag(p)
    add_inference_flags(p)
    p.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    try:
        from rsmi.serve.app import ServeSettings
        from rsmi.serve.server import ServeSpec, load_classifier, serve
    except ImportError as exc:
        raise ResourceError(
            f"rsmi serve needs FastAPI and uvicorn ({exc.name} is missing): install them with "
            "`pip install 'rsmi[serve]'` (scripts/setup.sh does)"
        ) from exc
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port} is invalid: use a TCP port in [0, 65535]")
    if args.workers < 1:
        raise ConfigError(f"--workers {args.workers} is invalid: use 1 or more")
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads {args.threads} is invalid: use 1 or more")
    threads = args.threads
    if threads is None and args.workers > 1:
        threads = max(1, (os.cpu_count() or 1) // args.workers)
    try:
        settings = ServeSettings(
            max_batch_texts=args.max_batch_texts,
            max_text_chars=args.max_text_chars,
            max_wait_ms=args.max_wait_ms,
            default_seed=args.seed,
        )
    except ValueError as exc:
        raise ConfigError(f"{exc} (the --{str(exc).split('=')[0].replace('_', '-')} flag)") from None
    spec = ServeSpec(
        model=args.model,
        device=resolve_device(args.device),
        dtype=args.dtype,
        engine=args.engine,
        overrides=inference_overrides(args),
        settings=settings,
        threads=threads,
    )
    # Load now: a bad model fails here in one line (with --workers N, rather than in every
    # worker, which loads its own copy).
    clf = load_classifier(spec)
    if args.workers > 1:
        del clf
        clf = None
    print(
        f"rsmi serve: {args.model} on http://{args.host}:{args.port} "
        f"({args.workers} worker{'s' if args.workers > 1 else ''}); Ctrl-C stops",
        file=sys.stderr,
    )
    serve(spec, host=args.host, port=args.port, workers=args.workers, log_level=args.log_level,
          clf=clf)
    return 0
