"""What every long run (training, an attack) shares: stopping on signals, and resume identity.

* :func:`stop_on_signals` — the one signal guard. SIGTERM (and SIGINT where asked) either asks
  the run to stop at its next safe point (a ``threading.Event``, e.g. after a checkpoint) or
  stops it at once as Ctrl-C does (``KeyboardInterrupt``); a second signal always stops at once.
* :func:`identity_differences` / :func:`check_resumable` — the one resume-identity comparer: a
  resumed run must continue with what shaped its finished part (settings, data, weights,
  examples); the refusal lists each difference as ``key: was X, now Y``.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from rsmi.errors import ResumeError

logger = logging.getLogger(__name__)

_MISSING = object()


@contextmanager
def stop_on_signals(
    stop: threading.Event | None = None,
    signals: Iterable[int] = (signal.SIGTERM,),
    *,
    what: str = "stopping",
) -> Iterator[threading.Event]:
    """While the block runs, ``signals`` stop the run; the handlers are restored afterwards.

    Args:
        stop: when given, the first signal sets it (the run stops at its next safe point, e.g.
            after a checkpoint); a second signal raises ``KeyboardInterrupt``. When None, the
            first signal raises ``KeyboardInterrupt`` at once (as Ctrl-C does), so that what is
            on disk and the locks are settled by the run's own ``finally`` blocks.
        signals: the signal numbers to catch (default SIGTERM).
        what: the log message's action on the first signal with ``stop``.

    Yields the event (a new one when ``stop`` is None). Off the main thread (where Python cannot
    install handlers) the block runs unguarded.
    """
    event = stop if stop is not None else threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield event
        return
    previous = {sig: signal.getsignal(sig) for sig in signals}

    def restore(signum: int) -> None:
        old = previous[signum]
        signal.signal(signum, old if old is not None else signal.SIG_DFL)

    def handler(signum: int, frame: Any) -> None:
        if stop is None or event.is_set():
            restore(signum)
            raise KeyboardInterrupt
        logger.warning("signal %d: %s", signum, what)
        event.set()

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield event
    finally:
        for sig in previous:
            restore(sig)


def identity_differences(
    saved: Mapping[str, Any],
    wanted: Mapping[str, Any],
    keys: Iterable[str] | None = None,
    *,
    defaults: Mapping[str, Any] | None = None,
) -> list[tuple[str, Any, Any]]:
    """``(key, saved, wanted)`` for each of ``keys`` (default: all of ``wanted``) that differ.

    A key missing from ``saved`` takes its value from ``defaults`` (a setting added after the
    run was started ran at its default); without a default it is not compared.
    """
    defaults = defaults or {}
    out = []
    for key in (wanted if keys is None else keys):
        before = saved.get(key, defaults.get(key, _MISSING))
        now = wanted.get(key, _MISSING)
        if before is _MISSING or now is _MISSING:
            continue
        if before != now:
            out.append((key, before, now))
    return out


def check_resumable(
    what: str,
    saved: Mapping[str, Any],
    wanted: Mapping[str, Any],
    keys: Iterable[str] | None = None,
    *,
    defaults: Mapping[str, Any] | None = None,
    advice: str = "resume with the same settings, or start a new run in another --out",
) -> None:
    """Raise :class:`ResumeError` naming every difference between ``saved`` and ``wanted``."""
    differ = identity_differences(saved, wanted, keys, defaults=defaults)
    if differ:
        details = "; ".join(f"{k}: was {a!r}, now {b!r}" for k, a, b in differ)
        raise ResumeError(f"cannot resume {what}: {details} — {advice}")
