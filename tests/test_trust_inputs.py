"""Trust round 2 (issue 25): input lines, data and advice.

``CASES`` is the table of docs/reliability.md, Trust round 2, section "input lines, data and
advice": each row runs one ``rsmi`` command in-process on a tiny saved model (or a small data
file) and asserts the exit code, the one-line message and, where it answers, one output line
per input line. Streaming and chunked answers have their own tests below.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
import time
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from conftest import make_tiny_bert
from rsmi import RSMIClassifier, RSMIConfig, StreamSeed
from rsmi.cli._input import CHUNK_LINES, MAX_LINE_BYTES
from rsmi.cli.main import main
from rsmi.data import DataError, Example, TextDataset, check_training_classes


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory, tokenizer) -> Path:
    model = make_tiny_bert(tokenizer, layers=2, hidden=32, seed=3)
    clf = RSMIClassifier(model, tokenizer, RSMIConfig(max_length=32, k0=3, k1=4), ["neg", "pos"])
    return clf.save_pretrained(tmp_path_factory.mktemp("trust") / "model")


def run_cli(argv: list[str], stdin: bytes = b"") -> tuple[int, str, str]:
    old = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = main(argv)
    finally:
        sys.stdin = old
    return code, out.getvalue(), err.getvalue()


@dataclass
class Ctx:
    tmp: Path
    model: Path
    encoder: Path

    def file(self, name: str, data: bytes | str) -> str:
        path = self.tmp / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return str(path)

    def csv(self, rows: list[tuple[str, str]], header: str = "text,label") -> str:
        return self.file("d.csv", header + "\n" + "".join(",".join(r) + "\n" for r in rows))


def texts_out(*expected: str) -> Callable[[str], None]:
    """Output line k answers input line k: one JSON record each, the same text."""

    def check(out: str) -> None:
        records = [json.loads(line) for line in out.split("\n") if line]
        assert [r["text"] for r in records] == list(expected)

    return check


def predict(*extra: str) -> Callable[[Ctx], list[str]]:
    return lambda ctx: ["predict", "--model", str(ctx.model), *extra]


def certify(*extra: str) -> Callable[[Ctx], list[str]]:
    return lambda ctx: ["certify", "--model", str(ctx.model), "--n0", "3", "--n", "5", *extra]


def rows(labels: list[str], split: list[str] | None = None) -> list[tuple[str, ...]]:
    words = ["good film", "bad plot", "nice cast", "dull story", "great fun", "awful end"]
    out = []
    for i, label in enumerate(labels):
        row: tuple[str, ...] = (f"{words[i % len(words)]} {i}", label)
        out.append(row + ((split[i],) if split else ()))
    return out


ONE_CLASS_TRAIN = rows(["pos", "neg"] * 10, ["train" if i % 2 == 0 else "test" for i in range(20)])


@dataclass
class Case:
    name: str
    argv: Callable[[Ctx], list[str]]
    code: int
    message: str = ""
    stdin: bytes = b""
    check: Callable[[str], None] | None = None


CASES = [
    # --- input lines: split on \n only, one output line per input line
    Case("U+2028 inside a line: predict", predict(), 0, stdin="good\u2028film\nbad film\n".encode(),
         check=texts_out("good\u2028film", "bad film")),
    Case("U+0085 inside a line: predict", predict(), 0, stdin="bad\u0085film\nfine\n".encode(),
         check=texts_out("bad\u0085film", "fine")),
    Case("form feed inside a line: predict", predict(), 0, stdin=b"nice\x0cfilm\nok\x0bfilm\n",
         check=texts_out("nice\x0cfilm", "ok\x0bfilm")),
    Case("U+2028 inside a line: --input file, certify",
         lambda ctx: certify("--input", ctx.file("in.txt", "a\u2028b\nc\u2029d\x1ce\n"))(ctx), 0,
         check=texts_out("a\u2028b", "c\u2029d\x1ce")),
    Case("CRLF line ends", predict(), 0, stdin=b"good film\r\nbad film\r\n",
         check=texts_out("good film", "bad film")),
    Case("a BOM and no final newline", predict(), 0, stdin="\ufeffgood film\nbad film".encode(),
         check=texts_out("good film", "bad film")),
    # --- line numbers in errors: 1-based, counted on \n
    Case("blank line after a U+2028 line", predict(), 2, r"text 2 \(stdin, line 2\) is empty",
         stdin="good\u2028film\n\nbad\n".encode()),
    Case("non-UTF-8 after a U+2028 line", predict(), 2, r"stdin, line 2: byte 0xff is not UTF-8",
         stdin=b"a\xe2\x80\xa8b\n\xff\n"),
    Case("blank line in --input after TEXT arguments",
         lambda ctx: predict("good", "--input", ctx.file("in.txt", "fine\n \n"))(ctx), 2,
         r"text 3 \(.*in\.txt, line 2\) is empty"),
    Case("zero-width line in the second chunk",
         predict(), 2, rf"text {CHUNK_LINES + 6} \(stdin, line {CHUNK_LINES + 6}, '\\u200b'\) has no content",
         stdin=b"good film\n" * (CHUNK_LINES + 5) + "\u200b\n".encode()),
    Case("zero-width TEXT argument names it", predict("good", "\u2060"), 2,
         r"text 2 \(argument 2, '\\u2060'\) has no content"),
    # --- unbounded inputs
    Case("a line without newline longer than the bound (like /dev/zero)",
         lambda ctx: predict("--input", ctx.file("zero.bin", b"\0" * (MAX_LINE_BYTES + 10)))(ctx), 2,
         r"zero\.bin, line 1 is longer than 1,048,576 bytes"),
    Case("--input /dev/zero", predict("--input", "/dev/zero"), 2, r"/dev/zero, line 1 is longer than"),
    Case("a long line after good ones", predict(), 2, r"stdin, line 3 is longer than",
         stdin=b"good\nbad\n" + b"x" * (MAX_LINE_BYTES + 1)),
    # --- numbers on the command line
    Case("--seed 2**33", predict("--seed", str(2**33), "good"), 2,
         r"--seed 8589934592 is out of range: it must be an integer from 0 to 4,294,967,295"),
    Case("--seed -1", certify("--seed", "-1", "good"), 2, r"--seed -1 is out of range"),
    Case("--k0 100000000", predict("--k0", "100000000", "good"), 2,
         r"--k0 100000000 is out of range: it must be an integer from 1 to 10,000"),
    Case("--k1 0", predict("--k1", "0", "good"), 2, r"--k1 0 is out of range"),
    Case("--n 10**9", certify("--n", str(10**9), "good"), 2, r"--n 1000000000 is out of range"),
    Case("--n0 0", certify("--n0", "0", "good"), 2, r"--n0 0 is out of range"),
    Case("--certify-alpha 1.5", certify("--certify-alpha", "1.5", "good"), 2,
         r"--certify-alpha 1.5 is out of range: it must lie strictly between 0 and 1"),
    Case("--alpha nan", predict("--alpha", "nan", "good"), 2, r"--alpha nan is out of range"),
    Case("--batch-size 0", predict("--batch-size", "0", "good"), 2, r"--batch-size 0 is out of range"),
    # --- data and advice
    Case("labels pos and POS", lambda ctx: ["data", "show", ctx.csv(rows(["pos", "neg", "POS", "neg"] * 3))],
         2, r"labels 'pos' \(.*data row 1\) and 'POS' \(.*data row 3\) differ only in case"),
    Case("labels 'very pos' and 'Very  pos'",
         lambda ctx: ["data", "show", ctx.file("d.jsonl", "".join(
             json.dumps({"text": f"t {i}", "label": lab}) + "\n"
             for i, lab in enumerate(["very pos", "neg", "Very  pos", "neg"] * 2)))],
         2, r"'very pos' .* and 'Very\s+pos' .* differ only in case or spacing"),
    Case("labels ' pos' and 'pos' are one class",
         lambda ctx: ["data", "show", ctx.csv(rows([" pos", "neg", "pos", "neg"] * 3)), "--json"], 0,
         check=lambda out: json.loads(out)["info"]["label_names"] == ["neg", "pos"] or pytest.fail(out)),
    Case("pos and POS named apart on purpose",
         lambda ctx: ["data", "show", ctx.csv(rows(["pos", "neg", "POS"] * 3)), "--json",
                      "--label-names", "neg,pos,POS"], 0,
         check=lambda out: json.loads(out)["info"]["label_names"] == ["neg", "pos", "POS"] or pytest.fail(out)),
    Case("a training split of one class",
         lambda ctx: ["train", "--method", "base", "--model", str(ctx.encoder), "--data",
                      ctx.csv(ONE_CLASS_TRAIN, "text,label,split"), "--out", str(ctx.tmp / "run"),
                      "--epochs", "1"], 2,
         r"the training split of dataset 'd' has only class 'pos' \(\d+ examples\) of \['neg', 'pos'\]"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_trust_inputs(case: Case, saved_model, tiny_encoder, tmp_path):
    ctx = Ctx(tmp_path, saved_model, tiny_encoder)
    argv = case.argv(ctx)
    code, out, err = run_cli(argv, case.stdin)
    assert code == case.code, (out, err)
    if case.code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"rsmi {argv[0]}: error: "), err
    assert re.search(case.message, err), err
    if case.check is not None:
        case.check(out)


def test_the_table_has_the_cases_of_the_docs():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "reliability.md").read_text()
    section = doc.split("### input lines, data and advice", 1)[1]
    for case in CASES:
        assert f"| {case.name} |" in section, case.name


# ----------------------------------------------------------------------------- streaming
class LineFeed(io.RawIOBase):
    """A stdin that hands out ``n`` lines and records how far output lags behind the input."""

    def __init__(self, n: int, written: Callable[[], int]) -> None:
        self.n, self.read_lines, self.written = n, 0, written
        self.lag = 0
        self.first_output_at: int | None = None

    def readable(self) -> bool:
        return True

    def readline(self, size: int | None = -1) -> bytes:  # type: ignore[override]
        if self.first_output_at is None and self.written():
            self.first_output_at = self.read_lines
        if self.read_lines >= self.n:
            return b""
        self.lag = max(self.lag, self.read_lines - self.written())
        self.read_lines += 1
        return f"film {self.read_lines % 7} was {'good' if self.read_lines % 2 else 'bad'}\n".encode()


class CountingOut(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.lines = 0

    def write(self, s: str) -> int:
        self.lines += s.count("\n")
        return super().write(s)


def test_a_10k_line_input_streams_in_order_with_bounded_lag(saved_model, monkeypatch):
    out = CountingOut()
    feed = LineFeed(10_000, lambda: out.lines)

    class Stdin:
        buffer = feed

    monkeypatch.setattr(sys, "stdin", Stdin())
    err = io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["predict", "--model", str(saved_model), "--num-masks", "0", "--k0", "1",
                     "--batch-size", "64"])
    assert code == 0, err.getvalue()
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(records) == 10_000
    assert [r["text"] for r in records[:3]] == ["film 1 was good", "film 2 was bad", "film 3 was good"]
    assert records[-1]["text"] == f"film {10_000 % 7} was bad"
    # The first answers were written while the input was still open, and reading never ran
    # more than one chunk ahead of writing: memory is bounded by the chunk, not the input.
    assert feed.first_output_at is not None and feed.first_output_at <= 2 * CHUNK_LINES
    assert feed.lag <= CHUNK_LINES
    assert err.getvalue() == ""  # no progress bar without a terminal or -v


def test_chunked_answers_are_the_whole_answers(make_classifier, texts):
    """One StreamSeed over the chunks of a stream: each chunk answers exactly as the same rows
    of the whole, a text repeated across chunks included (its occurrence count carries over)."""
    clf = make_classifier(max_length=16, k1=8)
    many = texts * 4  # every text 4 times, repeated within and across chunks
    assert len(set(many)) < len(many)
    whole = clf.predict(many, seed=5, batch_size=3)
    stream = StreamSeed(5)
    for lo, hi in ((0, 5), (5, 9), (9, len(many))):
        part = clf.predict(many[lo:hi], seed=stream, batch_size=2)
        np.testing.assert_array_equal(part.labels, whole.labels[lo:hi])
        np.testing.assert_array_equal(part.probs, whole.probs[lo:hi])
        np.testing.assert_array_equal(part.second_step, whole.second_step[lo:hi])
    cert = clf.certify(many[:6], n0=4, n=12, seed=2)
    stream = StreamSeed(2)
    clf.certify(many[:3], n0=4, n=12, seed=stream)
    tail = clf.certify(many[3:6], n0=4, n=12, seed=stream)
    np.testing.assert_array_equal(tail.counts, cert.counts[3:])
    np.testing.assert_array_equal(tail.labels, cert.labels[3:])


def test_the_cli_answers_a_long_input_as_the_library_does(saved_model, tmp_path):
    n = 2 * CHUNK_LINES + 9
    lines = [f"the {'good' if i % 3 else 'awful'} film number {i}" for i in range(n)]
    path = tmp_path / "in.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, out, err = run_cli(["predict", "--model", str(saved_model), "--input", str(path),
                              "--seed", "11", "--batch-size", "5"])
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    whole = RSMIClassifier.from_pretrained(saved_model, device="cpu").predict(lines, seed=11)
    assert [r["label"] for r in records] == whole.labels.tolist()
    assert [r["second_step"] for r in records] == whole.second_step.tolist()
    assert [r["probs"]["pos"] for r in records] == [round(float(p), 6) for p in whole.probs[:, 1]]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs a FIFO")
def test_an_interrupted_stream_keeps_the_answers_so_far(saved_model, tmp_path):
    """Output of the first chunk is on disk before the input ends (a killed run keeps it)."""
    import subprocess
    import threading

    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    out_path = tmp_path / "out.jsonl"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    with out_path.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rsmi.cli.main", "predict", "--model", str(saved_model),
             "--input", str(fifo), "--num-masks", "0", "--k0", "1"],
            stdout=out, stderr=subprocess.PIPE, env=env,
        )
        writer_done = threading.Event()

        def feed() -> None:
            with fifo.open("w") as fh:
                fh.write("good film\n" * CHUNK_LINES)
                fh.flush()
                writer_done.wait(120)  # keep the input open

        thread = threading.Thread(target=feed, daemon=True)
        thread.start()
        deadline = time.time() + 120
        while time.time() < deadline and out_path.read_text().count("\n") < CHUNK_LINES:
            time.sleep(0.2)
        answered = out_path.read_text().count("\n")
        proc.terminate()
        proc.wait(30)
        writer_done.set()
        thread.join(10)
    assert answered == CHUNK_LINES, proc.stderr.read().decode() if proc.stderr else ""


# ----------------------------------------------------------------------------- data layer
def test_check_training_classes_names_the_one_class():
    examples = [Example("a", 1), Example("b", 1)]
    with pytest.raises(DataError, match=r"has only class 'pos' \(2 examples\)"):
        check_training_classes(examples, ["neg", "pos"], "dataset 'x'")
    check_training_classes(examples + [Example("c", 0)], ["neg", "pos"], "dataset 'x'")
    data = TextDataset("x", ["neg", "pos"], {"train": examples})
    with pytest.raises(DataError, match="no split 'dev'"):
        data.split("dev")
