"""The HTTP JSON API of a served RSMI model (FastAPI): /predict, /certify, /health, /metadata.

Every error answer is ``{"error": "what was wrong — what to do"}``: 4xx for a request that can be
fixed (not JSON, missing or bad fields, limits, an :class:`rsmi.errors.RSMIError` from the
library), 503 while the server shuts down, 500 with a generic message for anything else (the
traceback goes to the log). Field names follow ``rsmi predict`` / ``rsmi certify``'s JSON.
"""

from __future__ import annotations

import json
import logging
import math
import os
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from rsmi.errors import ConfigError, RSMIError
from rsmi.inference import LEGACY_SEEDING, RADIUS_SPACE, SEEDING
from rsmi.serve.batcher import MicroBatcher, ShuttingDown, combines_requests

log = logging.getLogger(__name__)

MAX_SEED = 2**63 - 1
MAX_CERTIFY_SAMPLES = 100_000


@dataclass(frozen=True)
class ServeSettings:
    """Limits and defaults of one server (the flags of ``rsmi serve``).

    Args:
        max_batch_texts: most texts in one request, and in one combined ``predict`` call.
        max_text_chars: longest text accepted, in characters (the model reads at most
            ``max_length`` tokens of it anyway; the limit bounds tokenizer work and memory).
        max_wait_ms: how long a ``predict`` request waits for others to join its call (only
            where combining keeps answers unchanged; see :mod:`rsmi.serve.batcher`).
        default_seed: the seed of a request that gives none, so that answers are reproducible.
        max_certify_samples: the largest ``n0`` and ``n`` a /certify request may ask for.
    """

    max_batch_texts: int = 64
    max_text_chars: int = 2000
    max_wait_ms: float = 5.0
    default_seed: int = 0
    max_certify_samples: int = MAX_CERTIFY_SAMPLES

    def __post_init__(self) -> None:
        for name in ("max_batch_texts", "max_text_chars", "max_certify_samples"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name}={value!r} is invalid: it must be an integer ≥ 1")
        if not (isinstance(self.max_wait_ms, (int, float)) and 0 <= self.max_wait_ms <= 1000):
            raise ConfigError(f"max_wait_ms={self.max_wait_ms!r} is invalid: it must be in [0, 1000]")
        if not _is_int(self.default_seed) or not 0 <= self.default_seed <= MAX_SEED:
            raise ConfigError(f"default_seed={self.default_seed!r} is invalid: an integer in [0, 2^63-1]")


class RequestError(Exception):
    """A request that can be fixed by its sender; ``status`` is the HTTP status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


# ---------------------------------------------------------------------- model card
def model_card(clf: Any, model_dir: str | os.PathLike[str] | None) -> dict[str, Any]:
    """What /metadata answers: method, classes, RSMI settings, weights digest, versions."""
    import rsmi
    from rsmi.store.model_card import has_card, read_card

    saved: dict[str, Any] = {}
    if model_dir is not None and has_card(model_dir):
        try:
            saved = read_card(model_dir)  # the owner's reader; from_pretrained verified it
        except RSMIError as exc:
            log.warning("cannot read the model card of %s for /metadata: %s", model_dir, exc)
    config = clf.config.to_dict() if hasattr(clf.config, "to_dict") else asdict(clf.config)
    return {
        "model": str(model_dir) if model_dir is not None else None,
        "method": clf.method,
        "label_names": list(clf.label_names),
        "num_labels": len(clf.label_names),
        "architecture": saved.get("architecture", type(getattr(clf, "model", None)).__name__),
        "rsmi_config": config,
        "max_length": config.get("max_length"),
        "seeding": getattr(clf, "seeding", LEGACY_SEEDING),
        "weights_sha256": saved.get("weights_sha256"),
        "format_version": saved.get("format_version"),
        "metadata": dict(getattr(clf, "metadata", {}) or {}),  # the card's (training, backbone)
        "rsmi_version": rsmi.__version__,
    }


# ---------------------------------------------------------------------- request parsing
def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


async def _json_object(request: Request) -> dict[str, Any]:
    body = await request.body()
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(
            f"the request body is not JSON ({exc}): send a JSON object such as "
            '{"texts": ["a gorgeous, witty, seductive movie."]} with Content-Type: application/json'
        ) from None
    if not isinstance(data, dict):
        raise RequestError(
            f"the request body is a JSON {type(data).__name__}, not an object: send "
            '{"texts": [...]}'
        )
    return data


def _texts(data: dict[str, Any], settings: ServeSettings) -> list[str]:
    if "texts" not in data:
        raise RequestError('"texts" is missing: send {"texts": ["first text", "second text"]}')
    texts = data["texts"]
    if isinstance(texts, str):
        raise RequestError('"texts" is a string: send a list of strings, e.g. {"texts": ["..."]}')
    if not isinstance(texts, list):
        raise RequestError(f'"texts" is a {type(texts).__name__}: send a list of strings')
    if not texts:
        raise RequestError('"texts" is empty: send at least one text')
    if len(texts) > settings.max_batch_texts:
        raise RequestError(
            f'"texts" has {len(texts)} texts, more than this server\'s limit of '
            f"{settings.max_batch_texts} per request: split them into several requests",
            status=413,
        )
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise RequestError(f"texts[{i}] is a {type(text).__name__}, not a string: send strings only")
        if len(text) > settings.max_text_chars:
            raise RequestError(
                f"texts[{i}] has {len(text)} characters, more than this server's limit of "
                f"{settings.max_text_chars}: shorten it (the model reads only its first tokens)",
                status=413,
            )
        if not text.strip():
            raise RequestError(
                f"texts[{i}] is empty or whitespace only: RSMI cannot classify an empty text; "
                "remove it or give it some words"
            )
    return texts


def _seed(data: dict[str, Any], settings: ServeSettings) -> int:
    seed = data.get("seed")
    if seed is None:
        return settings.default_seed
    if not _is_int(seed) or not 0 <= seed <= MAX_SEED:
        raise RequestError(
            f'"seed" is {seed!r}: it must be an integer in [0, 2^63-1], or left out for the '
            f"server's default ({settings.default_seed})"
        )
    return seed


def _certify_options(data: dict[str, Any], settings: ServeSettings) -> dict[str, Any]:
    limit = settings.max_certify_samples
    out: dict[str, Any] = {}
    for name, default in (("n0", 100), ("n", 1000)):
        value = data.get(name, default)
        if not _is_int(value) or not 1 <= value <= limit:
            raise RequestError(
                f'"{name}" is {value!r}: it must be an integer in [1, {limit}] (default {default})'
            )
        out[name] = value
    alpha = data.get("alpha", 0.001)
    if (
        not isinstance(alpha, (int, float))
        or isinstance(alpha, bool)
        or not math.isfinite(alpha)
        or not 0 < alpha < 0.5
    ):
        raise RequestError(
            f'"alpha" is {alpha!r}: it is the failure probability of the certificate and must '
            "lie in (0, 0.5) (default 0.001)"
        )
    out["alpha"] = float(alpha)
    return out


def _unknown_fields(data: dict[str, Any], known: set[str]) -> None:
    extra = sorted(set(data) - known)
    if extra:
        raise RequestError(
            f"unknown field(s) {', '.join(map(repr, extra))}: this endpoint takes "
            f"{', '.join(sorted(known))}"
        )


# ---------------------------------------------------------------------- responses
def _predict_body(clf: Any, pred: Any, seed: int) -> dict[str, Any]:
    names = list(clf.label_names)
    labels = [int(x) for x in pred.labels]
    return {
        "labels": labels,
        "label_names": [names[x] for x in labels],
        "probs": [[round(float(p), 6) for p in row] for row in pred.probs],
        "classes": names,
        "second_step": [bool(x) for x in pred.second_step],
        "forward_passes": [int(x) for x in pred.forward_passes],
        "truncated": [bool(x) for x in pred.truncated],
        "seed": seed,
    }


def _certify_body(clf: Any, cert: Any, seed: int, options: dict[str, Any]) -> dict[str, Any]:
    from scipy.stats import norm

    names = list(clf.label_names)
    labels = [int(x) for x in cert.labels]
    # The largest radius n samples can certify (all n agree): noise_std · Φ⁻¹(alpha^(1/n)).
    ceiling = float(clf.config.noise_std) * float(norm.ppf(options["alpha"] ** (1 / options["n"])))
    return {
        "labels": labels,
        "label_names": ["ABSTAIN" if x < 0 else names[x] for x in labels],
        "radius": [float(r) for r in cert.radius],
        "radius_space": RADIUS_SPACE,
        "radius_ceiling": ceiling,
        "p_lower": [float(p) for p in cert.p_lower],
        "counts": [[int(c) for c in row] for row in cert.counts],
        "classes": names,
        "forward_passes": [int(x) for x in cert.forward_passes],
        "truncated": [bool(x) for x in cert.truncated],
        "seed": seed,
        **options,
    }


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": " ".join(str(message).split())}, status_code=status)


# ---------------------------------------------------------------------- the app
def create_app(
    clf: Any,
    settings: ServeSettings | None = None,
    *,
    model_dir: str | os.PathLike[str] | None = None,
    combine: bool | None = None,
) -> FastAPI:
    """A FastAPI app serving ``clf`` (a loaded :class:`rsmi.RSMIClassifier`).

    The micro-batcher starts and stops with the app's lifespan; at shutdown it refuses new
    requests (503) and finishes those already queued. ``combine`` overrides whether concurrent
    ``predict`` requests share a call (default: only when ``clf.seeding`` is
    :data:`rsmi.inference.SEEDING`; see :mod:`rsmi.serve.batcher`).
    """
    settings = settings or ServeSettings()
    batcher = MicroBatcher(
        clf,
        max_batch_texts=settings.max_batch_texts,
        max_wait_ms=settings.max_wait_ms,
        combine=combine,
    )
    card = model_card(clf, model_dir)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await batcher.start()
        try:
            yield
        finally:
            await batcher.close()

    app = FastAPI(
        title="rsmi",
        description="RSMI robust text classifier: two-step smoothed, masked prediction and "
        "Cohen et al.'s CERTIFY. See docs/serving.md.",
        version=card["rsmi_version"],
        lifespan=lifespan,
    )
    app.state.clf = clf
    app.state.batcher = batcher
    app.state.settings = settings

    @app.exception_handler(RequestError)
    async def _request_error(request: Request, exc: RequestError) -> JSONResponse:
        return _error(exc.status, str(exc))

    @app.exception_handler(RSMIError)
    async def _rsmi_error(request: Request, exc: RSMIError) -> JSONResponse:
        return _error(422, str(exc))

    @app.exception_handler(ShuttingDown)
    async def _shutting_down(request: Request, exc: ShuttingDown) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=503, headers={"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error(500, "internal error: the server logged the details; retry, or report it if it persists")

    @app.get("/health")
    async def health() -> JSONResponse:
        status = "shutting_down" if batcher.closing else "ok"
        return JSONResponse(
            {
                "status": status,
                "queued": batcher.queued,
                "combines_requests": batcher.combine,
                **asdict(batcher.stats),
            },
            status_code=503 if batcher.closing else 200,
        )

    @app.get("/metadata")
    async def metadata() -> dict[str, Any]:
        return {
            **card,
            "limits": {
                "max_batch_texts": settings.max_batch_texts,
                "max_text_chars": settings.max_text_chars,
                "max_certify_samples": settings.max_certify_samples,
            },
            "micro_batching": {
                "combines_requests": batcher.combine,
                "max_wait_ms": settings.max_wait_ms,
                "why": "requests share a predict call only when the classifier's randomness "
                f"follows the text (seeding {SEEDING!r}) and they ask for the same seed"
                if not batcher.combine
                else "concurrent requests with the same seed and no text in common share one "
                "predict call (a text's draws follow the text and the seed, not its row)",
            },
            "default_seed": settings.default_seed,
        }

    @app.post("/predict")
    async def predict(request: Request) -> dict[str, Any]:
        data = await _json_object(request)
        _unknown_fields(data, {"texts", "seed"})
        texts, seed = _texts(data, settings), _seed(data, settings)
        pred = await batcher.predict(texts, seed)
        return _predict_body(clf, pred, seed)

    @app.post("/certify")
    async def certify(request: Request) -> dict[str, Any]:
        data = await _json_object(request)
        _unknown_fields(data, {"texts", "seed", "n0", "n", "alpha"})
        texts, seed = _texts(data, settings), _seed(data, settings)
        if not float(clf.config.noise_std) > 0:
            raise RequestError(
                "this model has no randomized smoothing (noise_std = 0), so nothing can be "
                "certified: use /predict, or serve a model with noise_std > 0",
                status=409,
            )
        options = _certify_options(data, settings)
        cert = await batcher.certify(texts, seed, **options)
        return _certify_body(clf, cert, seed, options)

    return app


__all__ = ["RADIUS_SPACE", "RequestError", "ServeSettings", "combines_requests", "create_app", "model_card"]
