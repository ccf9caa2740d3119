"""Input texts of ``rsmi predict`` / ``rsmi certify``, read as a stream of numbered lines.

One text per line: lines end at ``\\n`` only (a trailing ``\\r`` is dropped), so a text holding
U+2028, U+0085 or a form feed stays one text and output line ``k`` answers input line ``k``.
Lines are read lazily, with a bounded length (:data:`MAX_LINE_BYTES`), and handed out in chunks
so that an unbounded input (a 100k-line file, a pipe, ``/dev/zero``) never has to fit in memory
and the answers of each chunk can be written as soon as they are done.
Every error names the source and its 1-based line number.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, TextIO

from rsmi.errors import InputError

MAX_LINE_BYTES = 1 << 20
"""The longest input line (1 MiB): a longer one is not a text to classify (``/dev/zero``, a
binary file); the model reads at most ``max_length`` tokens of it anyway."""
CHUNK_LINES = 64
"""Texts predicted (and written) together when streaming (at least ``--batch-size``)."""
_BOM = "\ufeff"


@dataclass(frozen=True)
class InputText:
    """One input text and where it came from, e.g. ``"argument 2"`` or ``"in.txt, line 7"``."""

    text: str
    where: str


def _stream_lines(stream: BinaryIO | TextIO, source: str) -> Iterator[InputText]:
    """The lines of ``stream`` (bytes decoded as UTF-8), split on ``\\n`` only, read lazily."""
    number = 0
    while True:
        raw = stream.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        number += 1
        ends = raw.endswith(b"\n" if isinstance(raw, bytes) else "\n")
        if not ends and len(raw) > MAX_LINE_BYTES:
            raise InputError(
                f"{source}, line {number} is longer than {MAX_LINE_BYTES:,} bytes (no newline "
                "within them): rsmi reads one text per line; give a text file (not a device or "
                "a binary file) and split long documents into lines"
            )
        body = raw[:-1] if ends else raw
        if isinstance(body, bytes):
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(
                    f"{source}, line {number}: byte 0x{body[exc.start]:02x} is not UTF-8: "
                    "re-save the text as UTF-8"
                ) from None
        else:
            text = body
        if text.endswith("\r"):
            text = text[:-1]
        if number == 1 and text.startswith(_BOM):
            text = text[1:]
        yield InputText(text, f"{source}, line {number}")


def _from_stdin(stdin: TextIO) -> Iterator[InputText]:
    buffer = getattr(stdin, "buffer", None)
    yield from _stream_lines(buffer if buffer is not None else stdin, "stdin")


def _from_file(path: str) -> Iterator[InputText]:
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below, after the last line
    except OSError as exc:
        raise InputError(
            f"--input {path} cannot be read ({exc.strerror or exc}): check the path"
        ) from None
    with handle:
        yield from _stream_lines(handle, path)


def _arguments(args: argparse.Namespace) -> Iterator[InputText]:
    for i, text in enumerate(args.texts, start=1):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise InputError(
                f"TEXT argument {i} is not valid UTF-8 (the shell passed undecodable bytes): "
                "give the text in UTF-8"
            ) from None
        yield InputText(text, f"argument {i}")


def iter_texts(args: argparse.Namespace, stdin: TextIO | None = None) -> Iterator[InputText]:
    """The texts of the arguments, then ``--input FILE`` ('-' = stdin) or stdin, lazily.

    Stdin is read when neither TEXT nor ``--input`` is given. An empty or whitespace-only
    text is an :class:`InputError` naming its number and line; so is no text at all.
    """
    stdin = stdin or sys.stdin
    sources: list[Iterator[InputText]] = [_arguments(args)]
    if args.input:
        sources.append(_from_stdin(stdin) if args.input == "-" else _from_file(args.input))
    elif not args.texts:
        sources.append(_from_stdin(stdin))
    count = 0
    for source in sources:
        for item in source:
            count += 1
            if not item.text.strip():
                raise InputError(
                    f"text {count} ({item.where}) is empty or whitespace only: RSMI cannot "
                    "classify an empty text; remove the blank line"
                )
            yield item
    if count == 0:
        raise InputError("no input texts: give TEXT arguments, --input FILE, or lines on stdin")


def text_chunks(
    args: argparse.Namespace, size: int, stdin: TextIO | None = None
) -> Iterator[list[InputText]]:
    """:func:`iter_texts` in lists of at most ``size`` texts (the last may be shorter)."""
    chunk: list[InputText] = []
    for item in iter_texts(args, stdin):
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def read_texts(args: argparse.Namespace, stdin: TextIO | None = None) -> list[str]:
    """All input texts at once (for small inputs; ``rsmi predict`` streams instead)."""
    return [item.text for item in iter_texts(args, stdin)]
