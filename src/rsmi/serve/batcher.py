"""The micro-batcher: one model call at a time, concurrent requests combined where that is safe.

Every model call of the server goes through one :class:`MicroBatcher`: requests wait in a FIFO
queue and one worker thread runs them one after the other, so the model and its tokenizer are
never used by two threads at once and the event loop never blocks on the model.

Combining. ``predict`` requests that arrive within ``max_wait_ms`` of the first waiting one are
joined into one ``predict`` call of at most ``max_batch_texts`` texts (the Monte-Carlo samples of
all of them share forward passes), and the result is split back per request, in order. This
changes no answer only when a text's noise and mask draws depend on the text and the seed, not
on its row within the call: requests are combined only when the classifier says so (its
``seeding`` is :data:`rsmi.inference.SEEDING`, ``"text-v1"``: draws follow the text, the seed and
the text's occurrence number within the call), only when they ask for the same seed, and only
when no text of a joining request is already in the call (a second copy would be the text's
next occurrence, with other draws than it gets alone). Otherwise (and always for ``certify``)
each request is its own call, still queued through the same worker.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rsmi.errors import ConfigError
from rsmi.inference import SEEDING

log = logging.getLogger(__name__)


class ShuttingDown(RuntimeError):
    """The server is stopping: the request was not queued (HTTP 503)."""


def combines_requests(clf: Any) -> bool:
    """Whether answers stay the same when requests share one ``predict`` call.

    True only when the classifier draws a text's randomness from the text and the seed (its
    ``seeding`` attribute is :data:`rsmi.inference.SEEDING`); with row-index seeding (or any
    other) the answer would depend on which other requests happened to arrive at the same time.
    """
    return getattr(clf, "seeding", None) == SEEDING


@dataclass
class _Job:
    kind: str  # "predict" or "certify"
    texts: list[str]
    seed: int
    options: dict[str, Any]
    future: asyncio.Future = field(repr=False)


@dataclass
class BatcherStats:
    """Counters for /health: requests answered and model calls made."""

    requests: int = 0
    texts: int = 0
    model_calls: int = 0
    combined_calls: int = 0  # calls that served more than one request


def split_rows(result: Any, sizes: Sequence[int]) -> list[Any]:
    """Cut a Prediction/Certification of ``sum(sizes)`` rows into one per request, in order."""
    out, start = [], 0
    cls = type(result)
    for size in sizes:
        stop = start + size
        values = {
            name: (value[start:stop] if isinstance(value, np.ndarray) else value)
            for name, value in vars(result).items()
        }
        out.append(cls(**values))
        start = stop
    return out


class MicroBatcher:
    """Queue of model calls run by one worker thread, with safe micro-batching of ``predict``.

    Args:
        clf: the classifier (``predict(texts, seed=)``, ``certify(texts, ..., seed=)``).
        max_batch_texts: most texts in one combined ``predict`` call.
        max_wait_ms: how long the first waiting ``predict`` request waits for others to join.
        combine: join requests (default: :func:`combines_requests`); forcing True on a classifier
            with row-index seeding changes answers, so it is only for tests and benchmarks.
    """

    def __init__(
        self,
        clf: Any,
        *,
        max_batch_texts: int = 64,
        max_wait_ms: float = 5.0,
        combine: bool | None = None,
    ) -> None:
        if max_batch_texts < 1:
            raise ConfigError(f"max_batch_texts={max_batch_texts} is invalid: it must be ≥ 1")
        if max_wait_ms < 0:
            raise ConfigError(f"max_wait_ms={max_wait_ms} is invalid: it must be ≥ 0")
        self.clf = clf
        self.max_batch_texts = int(max_batch_texts)
        self.max_wait = float(max_wait_ms) / 1000.0
        self.combine = combines_requests(clf) if combine is None else bool(combine)
        self.stats = BatcherStats()
        self._pending: deque[_Job] = deque()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._closing = False
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Start the worker (call from the event loop that will submit requests)."""
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rsmi-model")
        self._task = asyncio.create_task(self._run(), name="rsmi-batcher")

    def refuse_new(self) -> None:
        """From now on :meth:`submit` raises :class:`ShuttingDown`; queued work still runs.

        Safe to call from any thread (e.g. a signal handler).
        """
        with self._lock:
            self._closing = True

    @property
    def closing(self) -> bool:
        return self._closing

    async def close(self) -> None:
        """Refuse new requests, finish every queued one, stop the worker thread."""
        self.refuse_new()
        if self._wake is not None:
            self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    @property
    def queued(self) -> int:
        return len(self._pending)

    # ------------------------------------------------------------------ submitting
    async def predict(self, texts: list[str], seed: int) -> Any:
        """``clf.predict(texts, seed=seed)``, possibly answered from a combined call."""
        return await self._submit("predict", texts, seed, {})

    async def certify(self, texts: list[str], seed: int, **options: Any) -> Any:
        """``clf.certify(texts, seed=seed, **options)``, always its own call."""
        return await self._submit("certify", texts, seed, options)

    async def _submit(self, kind: str, texts: list[str], seed: int, options: dict) -> Any:
        if self._task is None or self._wake is None:
            raise RuntimeError("MicroBatcher.start() was not called")
        with self._lock:
            if self._closing:
                raise ShuttingDown("the server is shutting down: send the request to another replica or retry later")
            job = _Job(kind, list(texts), int(seed), options, asyncio.get_running_loop().create_future())
            self._pending.append(job)
        self._wake.set()
        return await job.future

    # ------------------------------------------------------------------ the worker
    async def _run(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            while not self._pending:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
            first = self._pending.popleft()
            batch = [first]
            if first.kind == "predict" and self.combine:
                deadline = loop.time() + self.max_wait
                while True:
                    self._take_compatible(batch)
                    remaining = deadline - loop.time()
                    if self._size(batch) >= self.max_batch_texts or remaining <= 0 or self._closing:
                        break
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), remaining)
                    except asyncio.TimeoutError:
                        self._take_compatible(batch)
                        break
            await self._execute(batch)

    @staticmethod
    def _size(batch: list[_Job]) -> int:
        return sum(len(job.texts) for job in batch)

    def _take_compatible(self, batch: list[_Job]) -> None:
        """Move waiting predict jobs with the first job's seed into ``batch`` while they fit.

        A job sharing a text with the batch stays queued: in the combined call its copy would be
        a later occurrence of the text, with other draws than the job gets on its own.
        """
        seed, room = batch[0].seed, self.max_batch_texts - self._size(batch)
        taken = {text for job in batch for text in job.texts}
        keep: deque[_Job] = deque()
        while self._pending:
            job = self._pending.popleft()
            if (
                job.kind == "predict" and job.seed == seed and len(job.texts) <= room
                and taken.isdisjoint(job.texts)
            ):
                batch.append(job)
                room -= len(job.texts)
                taken.update(job.texts)
            else:
                keep.append(job)
        self._pending = keep

    async def _execute(self, batch: list[_Job]) -> None:
        batch = [job for job in batch if not job.future.cancelled()]
        if not batch:
            return
        try:
            results = await self._call(batch)
        except Exception as exc:  # noqa: BLE001 - handed to each request
            if len(batch) > 1:
                # One request's bad text must not fail the others, and its error must name its
                # own index: run each alone.
                for job in batch:
                    await self._execute([job])
                return
            results = [exc]
        for job, result in zip(batch, results, strict=True):
            if job.future.cancelled():
                continue
            if isinstance(result, BaseException):
                job.future.set_exception(result)
            else:
                job.future.set_result(result)

    async def _call(self, batch: list[_Job]) -> list[Any]:
        loop = asyncio.get_running_loop()
        first = batch[0]
        texts = [text for job in batch for text in job.texts]
        call: Callable[[], Any]
        if first.kind == "predict":
            def call() -> Any:
                return self.clf.predict(texts, seed=first.seed)
        else:
            def call() -> Any:
                return self.clf.certify(texts, seed=first.seed, **first.options)
        result = await loop.run_in_executor(self._executor, call)
        self.stats.model_calls += 1
        self.stats.combined_calls += len(batch) > 1
        self.stats.requests += len(batch)
        self.stats.texts += len(texts)
        if len(batch) == 1:
            return [result]
        return split_rows(result, [len(job.texts) for job in batch])
