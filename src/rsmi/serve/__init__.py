"""Serving an RSMI model over HTTP: ``rsmi serve --model DIR`` (docs/serving.md).

:func:`create_app` builds the FastAPI app around a loaded classifier; :class:`MicroBatcher`
queues its model calls and combines concurrent ``predict`` requests where that leaves every
answer unchanged. Needs the ``serve`` extra (FastAPI, uvicorn).
"""

from rsmi.serve.app import RADIUS_SPACE, ServeSettings, create_app, model_card
from rsmi.serve.batcher import MicroBatcher, ShuttingDown, combines_requests

__all__ = [
    "RADIUS_SPACE",
    "MicroBatcher",
    "ServeSettings",
    "ShuttingDown",
    "combines_requests",
    "create_app",
    "model_card",
]
