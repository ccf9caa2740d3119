"""Which random draws a text gets: the seeding scheme of predictions, certificates and attacks.

Every draw of a text (noise, masks, samples) derives from ``(seed, row key, pass, sample)``
(:func:`rsmi.noise.row_seed`); the row key is ``(digest of the exact string, k)`` with ``k`` the
number of earlier copies of the same string in the call (or stream), so a text gets the same
answer wherever it stands in a batch, and copies of a text (EOT) keep independent draws. The
scheme's name is part of the identity of every result made with it (``seeding`` in
``run.json``, ``summary.json``, ``evaluation.json``): results of another scheme are never
resumed, merged or reused under this one.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from rsmi.noise import row_key, text_digest

# The seeding scheme (module docstring): part of the identity of every result made with it.
SEEDING = "text-v1"
LEGACY_SEEDING = "index"  # what a record without a ``seeding`` field was made under


def recorded_seeding(record: Mapping[str, Any]) -> str:
    """The seeding scheme a result file (``run.json``, ``summary.json``, ``evaluation.json``)
    was made under: its ``seeding`` field, ``"index"`` when it has none (older rsmi)."""
    return str(record.get("seeding") or LEGACY_SEEDING)


class StreamSeed:
    """The seed of one stream of texts answered in chunks (the CLI's ``--input``).

    Draws follow ``(seed, text, k)`` with ``k`` the occurrence number of the text (module
    docstring); a ``StreamSeed`` remembers how often each text occurred in the chunks it already
    answered, so that ``predict(t[:m], seed=s)`` then ``predict(t[m:], seed=s)`` with one
    ``s = StreamSeed(seed)`` answers exactly as ``predict(t, seed=seed)`` — a text repeated in
    two chunks included. Use one ``StreamSeed`` per stream and per method (``predict`` and
    ``certify`` count apart only when given separate objects). It holds one 64-bit digest and a
    count per distinct text of the stream. The counts advance only when a call succeeds.

    ``start`` is deprecated and ignored: under seeding ``"index"`` it was the stream position of
    the chunk's first text; under ``"text-v1"`` the position plays no part.
    """

    def __init__(self, seed: int, start: int | None = None) -> None:
        if start is not None:
            warnings.warn(
                "StreamSeed(seed, start): start is ignored — draws follow the text, not its "
                "position (seeding 'text-v1'); pass one StreamSeed(seed) to every chunk",
                DeprecationWarning,
                stacklevel=2,
            )
        self.seed = seed
        self.seen: dict[int, int] = {}  # text digest → occurrences in earlier chunks

    def __repr__(self) -> str:
        return f"StreamSeed({self.seed!r}, texts seen={sum(self.seen.values())})"


def row_keys(
    texts: Sequence[str], earlier: Mapping[int, int] | None = None
) -> tuple[list[int], dict[int, int]]:
    """The row key of every text of one call, and the occurrences the call adds per digest.

    Occurrence ``k`` of a text counts its earlier copies in ``texts`` (plus ``earlier[digest]``,
    those of earlier chunks of a stream).
    """
    earlier = earlier or {}
    added: dict[int, int] = {}
    keys = []
    for text in texts:
        digest = text_digest(text)
        k = added.get(digest, 0)
        keys.append(row_key(digest, earlier.get(digest, 0) + k))
        added[digest] = k + 1
    return keys, added


def split_seed(seed: int | StreamSeed) -> tuple[int, StreamSeed | None]:
    if isinstance(seed, StreamSeed):
        return seed.seed, seed
    return seed, None


def advance(stream: StreamSeed | None, added: Mapping[int, int]) -> None:
    if stream is not None:
        for digest, count in added.items():
            stream.seen[digest] = stream.seen.get(digest, 0) + count
