"""Running the app with uvicorn: one process, or ``workers`` processes sharing one port.

Each worker process loads its own copy of the model and answers on its own (nothing is shared
between workers or replicas), so any number of them can stand behind a load balancer.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from typing import Any

import uvicorn

from rsmi.errors import ConfigError
from rsmi.serve.app import ServeSettings, create_app

log = logging.getLogger(__name__)

SPEC_ENV = "RSMI_SERVE_SPEC"


@dataclass(frozen=True)
class ServeSpec:
    """Everything a worker process needs to build the same app (passed as JSON in an env var)."""

    model: str
    device: str = "cpu"
    dtype: str = "float32"
    engine: str = "torch"  # rsmi.engine: where the passes without gradient run
    overrides: dict[str, Any] = field(default_factory=dict)
    settings: ServeSettings = field(default_factory=ServeSettings)
    threads: int | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeSpec:
        data = json.loads(text)
        data["settings"] = ServeSettings(**data.get("settings", {}))
        return cls(**data)


def load_classifier(spec: ServeSpec) -> Any:
    """The classifier of ``spec`` (a saved RSMI model directory), on its device, in eval mode."""
    import torch

    from rsmi import RSMIClassifier

    if spec.threads is not None:
        torch.set_num_threads(spec.threads)
    clf = RSMIClassifier.from_pretrained(
        spec.model, device=spec.device, dtype=spec.dtype, **spec.overrides
    )
    return clf if spec.engine == "torch" else clf.configured(engine=spec.engine)


def build_app(spec: ServeSpec, clf: Any | None = None):
    """The FastAPI app of ``spec`` (loads the model unless ``clf`` is given)."""
    clf = load_classifier(spec) if clf is None else clf
    return create_app(clf, spec.settings, model_dir=spec.model)


def app_from_env():
    """uvicorn factory for worker processes: the spec comes from ``$RSMI_SERVE_SPEC``."""
    text = os.environ.get(SPEC_ENV)
    if not text:
        raise ConfigError(f"${SPEC_ENV} is not set: start workers with `rsmi serve --workers N`")
    return build_app(ServeSpec.from_json(text))


class GracefulServer(uvicorn.Server):
    """uvicorn's server, but a stop signal also makes the batcher refuse new requests (503) at
    once, while the requests already queued run to the end."""

    def __init__(self, config: uvicorn.Config, app: Any) -> None:
        super().__init__(config)
        self._app = app

    def handle_exit(self, sig: int, frame: Any) -> None:
        batcher = getattr(getattr(self._app, "state", None), "batcher", None)
        if batcher is not None:
            batcher.refuse_new()
        super().handle_exit(sig, frame)


def uvicorn_config(app: Any, host: str, port: int, **kwargs: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=kwargs.pop("log_level", "info"),
        timeout_graceful_shutdown=kwargs.pop("timeout_graceful_shutdown", 30),
        **kwargs,
    )


def serve(
    spec: ServeSpec,
    *,
    host: str,
    port: int,
    workers: int = 1,
    log_level: str = "info",
    clf: Any | None = None,
) -> None:
    """Run the server until SIGINT/SIGTERM (then finish in-flight requests and stop).

    ``clf``: the classifier already loaded from ``spec`` (one process only; workers load their
    own).
    """
    if workers <= 1:
        app = build_app(spec, clf)
        GracefulServer(uvicorn_config(app, host, port, log_level=log_level), app).run()
        return
    os.environ[SPEC_ENV] = spec.to_json()
    uvicorn.run(
        "rsmi.serve.server:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        timeout_graceful_shutdown=30,
    )
