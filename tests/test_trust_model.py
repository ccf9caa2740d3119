"""Trust, round 2: every file of a model directory that changes an answer is checked, an
incomplete model directory is refused, and evaluate's output files are owned.

``CASES`` is the table of docs/reliability.md ("Trust round 2: the model directory and
evaluation files"): each row runs one ``rsmi`` command in-process (``rsmi.cli.main.main``) on a
tiny saved model (in the format of this rsmi, or of an older one) and asserts the exit code, the
one-line message and, for a refusal, that no file was touched.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import make_tiny_bert
from rsmi import RSMIClassifier, RSMIConfig
from rsmi.errors import ConfigError
from rsmi.store import evaluation as store_eval
from rsmi.store import model_card
from test_reliability import run_cli, snapshot, toy_rows, write_csv


@pytest.fixture(scope="module")
def saved(tmp_path_factory, tokenizer) -> Path:
    model = make_tiny_bert(tokenizer, layers=2, hidden=32, seed=3)
    clf = RSMIClassifier(model, tokenizer, RSMIConfig(max_length=32, k0=3, k1=4), ["neg", "pos"])
    return clf.save_pretrained(tmp_path_factory.mktemp("trust") / "model")


@dataclass
class Ctx:
    tmp: Path
    saved: Path

    def model(self) -> Path:
        copy = self.tmp / "model"
        if not copy.exists():
            shutil.copytree(self.saved, copy)
        return copy

    def data(self) -> Path:
        rows = [(t, ["neg", "pos"][y]) for t, y in toy_rows(40)]
        return write_csv(self.tmp / "data.csv", rows)


# ----------------------------------------------------------------------------- model edits
def edit(name: str, change: Callable[[dict], None]) -> Callable[[Ctx], Path]:
    def build(ctx: Ctx) -> Path:
        m = ctx.model()
        data = json.loads((m / name).read_text())
        change(data)
        (m / name).write_text(json.dumps(data, indent=2))
        return m

    return build


def both(*builds: Callable[[Ctx], Path]) -> Callable[[Ctx], Path]:
    def build(ctx: Ctx) -> Path:
        for b in builds:
            b(ctx)
        return ctx.model()

    return build


def older(*dropped: str) -> Callable[[Ctx], Path]:
    """The model as an older rsmi saved it: without the given card keys."""
    return edit("rsmi.json", lambda card: [card.pop(k, None) for k in dropped])


OLD = ("files_sha256", "card_sha256")


def swap_vocab(ctx: Ctx) -> Path:
    """Two token ids swapped in every tokenizer file that lists the vocabulary."""
    m = ctx.model()
    lines = (m / "vocab.txt").read_text().splitlines()
    a, b = lines.index("good"), lines.index("bad")
    lines[a], lines[b] = lines[b], lines[a]
    (m / "vocab.txt").write_text("\n".join(lines) + "\n")
    tok = json.loads((m / "tokenizer.json").read_text())
    vocab = tok["model"]["vocab"]
    vocab["good"], vocab["bad"] = vocab["bad"], vocab["good"]
    (m / "tokenizer.json").write_text(json.dumps(tok))
    return m


def remove(*names: str) -> Callable[[Ctx], Path]:
    def build(ctx: Ctx) -> Path:
        m = ctx.model()
        for n in names:
            (m / n).unlink()
        return m

    return build


def add(name: str, text: str) -> Callable[[Ctx], Path]:
    def build(ctx: Ctx) -> Path:
        m = ctx.model()
        (m / name).write_text(text)
        return m

    return build


def set_key(key: str, value: object) -> Callable[[dict], None]:
    def change(d: dict) -> None:
        d[key] = value

    return change


def set_config(key: str, value: object) -> Callable[[dict], None]:
    def change(d: dict) -> None:
        d["config"][key] = value

    return change


def swap_id2label(cfg: dict) -> None:
    cfg["id2label"] = {"0": "pos", "1": "neg"}
    cfg["label2id"] = {"pos": 0, "neg": 1}


# ----------------------------------------------------------------------------- commands
def predict(build: Callable[[Ctx], Path]) -> Callable[[Ctx], list[str]]:
    return lambda ctx: ["predict", "--model", str(build(ctx)), "good film"]


def evaluate(*extra: str, before: Callable[[Ctx], None] | None = None) -> Callable[[Ctx], list[str]]:
    def argv(ctx: Ctx) -> list[str]:
        if before is not None:
            before(ctx)
        return ["evaluate", "--model", str(ctx.model()), "--data", str(ctx.data()),
                "--max-examples", "4", *[e.format(tmp=ctx.tmp) for e in extra]]

    return argv


def user_file(name: str, text: str = "my own notes\n") -> Callable[[Ctx], None]:
    def make(ctx: Ctx) -> None:
        (ctx.tmp / name).parent.mkdir(parents=True, exist_ok=True)
        (ctx.tmp / name).write_text(text)

    return make


def fifo(name: str) -> Callable[[Ctx], None]:
    return lambda ctx: os.mkfifo(ctx.tmp / name)


def earlier_evaluation(ctx: Ctx) -> None:
    (ctx.tmp / "e").mkdir()
    (ctx.tmp / "e" / "evaluation.json").write_text('{"model": "m", "clean_accuracy": 0.5}\n')
    (ctx.tmp / "e" / "predictions.jsonl").write_text('{"index": 0, "label": 1, "pred": 1}\n')


@dataclass
class Case:
    name: str
    argv: Callable[[Ctx], list[str]]
    code: int
    message: str
    before: str = ""  # what happened before this change (docs/reliability.md)
    check: Callable[[Ctx, str, str], None] | None = None
    skip: str | None = None


def warns_once(*named: str) -> Callable[[Ctx, str, str], None]:
    def check(ctx: Ctx, out: str, err: str) -> None:
        lines = [line for line in err.splitlines() if "older rsmi" in line]
        assert len(lines) == 1, err
        for n in named:
            assert n in lines[0], (n, lines[0])
        assert json.loads(out)["label_name"] in ("neg", "pos")

    return check


def file_is(name: str, predicate: Callable[[str], bool]) -> Callable[[Ctx, str, str], None]:
    def check(ctx: Ctx, out: str, err: str) -> None:
        assert predicate((ctx.tmp / name).read_text()), (ctx.tmp / name).read_text()

    return check


ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
CASES = [
    # --- every file that changes an answer is covered by a digest
    Case("label names duplicated in rsmi.json", predict(edit("rsmi.json", set_key("label_names", ["pos", "pos"]))),
         2, r"label name 'pos' is given for two classes", "loaded; both classes answered 'pos'"),
    Case("label names swapped in rsmi.json", predict(edit("rsmi.json", set_key("label_names", ["pos", "neg"]))),
         2, r"names the classes \['pos', 'neg'\], but .*config\.json.* names them \['neg', 'pos'\]",
         "loaded; every answer inverted"),
    Case("label names swapped in rsmi.json and config.json",
         predict(both(edit("rsmi.json", set_key("label_names", ["pos", "neg"])), edit("config.json", swap_id2label))),
         2, r"config\.json is corrupt", "loaded; every answer inverted"),
    Case("config.json: fewer layers", predict(edit("config.json", set_key("num_hidden_layers", 1))), 2,
         r"config\.json is corrupt.*changed or replaced", "loaded (one layer's weights ignored), exit 0"),
    Case("config.json: another activation", predict(edit("config.json", set_key("hidden_act", "relu"))), 2,
         r"config\.json is corrupt", "loaded, other answers, exit 0"),
    Case("tokenizer with swapped ids", predict(swap_vocab), 2, r"(vocab\.txt|tokenizer\.json) is corrupt",
         "loaded; 'good' read as 'bad'"),
    Case("tokenizer file added after saving", predict(add("added_tokens.json", '{"goodish": 30000}')), 2,
         r"added_tokens\.json was added after the model was saved", "loaded with the new tokens"),
    Case("RSMI setting edited in rsmi.json", predict(edit("rsmi.json", set_config("noise_std", 5.0))), 2,
         r"rsmi\.json was edited after the model was saved", "loaded with the edited setting"),
    Case("method edited in rsmi.json", predict(edit("rsmi.json", set_key("method", "base"))), 2,
         r"rsmi\.json was edited", "loaded, reported as another method"),
    # --- an incomplete model directory is refused, never loaded as a plain encoder
    Case("final save killed: no rsmi.json in a training run",
         predict(both(remove("rsmi.json"), add("training_config.json", "{}"))), 2,
         r"holds an rsmi training run \(training_config\.json\) but no rsmi\.json.*--resume",
         "loaded as a plain encoder with a new random head"),
    Case("finished run whose rsmi.json was deleted",
         predict(both(remove("rsmi.json"), add("log.jsonl", '{"event": "finished"}\n'))), 2,
         r"the run finished, but its model card is missing", "loaded as a plain encoder"),
    Case("weights half-saved in an unfinished training run",
         predict(both(add("training_config.json", "{}"), add("model.safetensors", "torn"))), 2,
         r"model\.safetensors is corrupt.*holds an unfinished training run.*--resume", "is corrupt"),
    Case("a file rsmi.json lists is missing", predict(remove("tokenizer.json")), 2,
         r"tokenizer\.json is missing.*incomplete", "loaded from vocab.txt alone, unchecked"),
    Case("config.json missing", predict(remove("config.json")), 2, r"config\.json is missing",
         "a transformers message"),
    # --- models saved before this change still load, with one warning naming what is unchecked
    Case("model saved before file digests", predict(older(*OLD)), 0,
         r"records no digest of config\.json, the tokenizer files and rsmi\.json's own fields "
         r"\(label names, RSMI settings\)", "loaded, no warning",
         check=warns_once("config.json", "label names")),
    Case("model saved before any digest", predict(older("weights_sha256", *OLD)), 0,
         r"records no digest of the weights, ", "a warning about the weights only",
         check=warns_once("the weights", "tokenizer")),
    Case("older model with duplicated label names",
         predict(both(older(*OLD), edit("rsmi.json", set_key("label_names", ["neg", "neg"])))), 2,
         r"label name 'neg' is given for two classes", "loaded; both classes answered 'neg'"),
    Case("older model with swapped label names",
         predict(both(older(*OLD), edit("rsmi.json", set_key("label_names", ["pos", "neg"])))), 2,
         r"label names were edited, swapped or dropped", "loaded; every answer inverted"),
    # --- evaluate's output files are owned
    Case("evaluate --predictions is the user's file", evaluate("--predictions", "{tmp}/notes.txt",
         before=user_file("notes.txt")), 2, r"--predictions .*notes\.txt exists and is not an rsmi predictions file",
         "replaced without a check"),
    Case("evaluate --predictions is the user's empty file", evaluate("--predictions", "{tmp}/empty.jsonl",
         before=user_file("empty.jsonl", "")), 2, r"not an rsmi predictions file", "replaced without a check"),
    Case("the user's predictions.jsonl beside --out", evaluate("--out", "{tmp}/d/evaluation.json",
         before=user_file("d/predictions.jsonl")), 2,
         r"the predictions file .*predictions\.jsonl exists and is not an rsmi predictions file",
         "replaced without a check"),
    Case("evaluate --predictions is a character device", evaluate("--predictions", "/dev/null"), 2,
         r"/dev/null is a character device", "/dev/null replaced by a file (as root)"),
    Case("evaluate --out is a FIFO", evaluate("--out", "{tmp}/pipe", before=fifo("pipe")), 2,
         r"is a FIFO", "hung, reading the FIFO"),
    Case("evaluate --predictions is a FIFO", evaluate("--predictions", "{tmp}/pipe", before=fifo("pipe")), 2,
         r"is a FIFO", "blocked writing, or replaced by a file"),
    Case("evaluate --out and --predictions name one file",
         evaluate("--out", "{tmp}/e.json", "--predictions", "{tmp}/e.json"), 2, r"name the same file",
         "the predictions overwritten by the evaluation"),
    Case("evaluate again over its own files", evaluate("--out", "{tmp}/e/evaluation.json",
         before=earlier_evaluation), 0, r"clean accuracy \d", "replaced (unchanged)",
         check=file_is("e/predictions.jsonl", lambda t: len(t.splitlines()) == 4)),
    Case("evaluate --overwrite replaces the user's file", evaluate(
         "--predictions", "{tmp}/notes.txt", "--overwrite", before=user_file("notes.txt")), 0,
         r"clean accuracy \d", "replaced (without asking)",
         check=file_is("notes.txt", lambda t: json.loads(t.splitlines()[0])["index"] >= 0)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_trust_model(case: Case, saved, tmp_path, monkeypatch, caplog):
    if case.skip:
        pytest.skip(case.skip)
    ctx = Ctx(tmp_path, saved)
    argv = case.argv(ctx)
    before = snapshot(tmp_path)
    code, out, err = run_cli(argv, monkeypatch)
    assert code == case.code, (out, err)
    if case.code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"rsmi {argv[0]}: error: "), err
        assert snapshot(tmp_path) == before  # a refused command touches no file
    else:
        err += "".join(f"{r.getMessage()}\n" for r in caplog.records)  # warnings (logging)
    assert re.search(case.message, err if case.code else err + out, re.S), err
    if case.check is not None:
        case.check(ctx, out, err)


def test_every_case_says_what_happened_before():
    assert all(c.before for c in CASES) and len(CASES) >= 20


# ----------------------------------------------------------------------------- the card itself
def test_a_saved_card_records_every_answer_file(saved):
    card = json.loads((saved / "rsmi.json").read_text())
    assert list(card)[:8] == ["format", "format_version", "method", "architecture",
                              "weights_sha256", "config", "label_names", "metadata"]
    assert {"config.json", "tokenizer.json", "vocab.txt"} <= set(card["files_sha256"])
    assert card["card_sha256"] == model_card.card_digest(card)
    model_card.verify(saved, card)  # no warning, no error


def test_duplicate_label_names_are_refused_at_save(tokenizer, tmp_path):
    clf = RSMIClassifier(make_tiny_bert(tokenizer, layers=1), tokenizer, RSMIConfig(), ["a", "a"])
    with pytest.raises(ConfigError, match="'a' is given for two classes"):
        clf.save_pretrained(tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_a_plain_encoder_directory_still_gets_a_new_head(tokenizer, tmp_path):
    make_tiny_bert(tokenizer, layers=1).save_pretrained(tmp_path / "enc")
    tokenizer.save_pretrained(tmp_path / "enc")
    clf = RSMIClassifier.from_pretrained(tmp_path / "enc", label_names=["a", "b"])
    assert clf.label_names == ["a", "b"]


@pytest.mark.parametrize("log, finished, learned", [
    (None, False, None),
    ('{"event": "start"}\n', False, None),
    ('{"event": "start"}\n{"event": "fini', False, None),  # a torn last line
    ('{"event": "finished", "learned": true}\n', True, None),
    ('{"event": "finished", "learned": false, "best_dev_accuracy": 0.5, "learning_p_value": 0.4}\n',
     True, "did not learn (dev accuracy 50.0 %, p = 0.4 against the majority rate)"),
])
def test_training_records_are_read_in_one_place(tmp_path, log, finished, learned):
    if log is not None:
        (tmp_path / "log.jsonl").write_text(log)
    assert model_card.training_finished(tmp_path) is finished
    assert model_card.did_not_learn(tmp_path) == learned


def test_the_cpu_a_model_was_trained_on(tmp_path):
    assert model_card.training_cpu(tmp_path) is None
    (tmp_path / "training_config.json").write_text(json.dumps({"provenance": {"machine": {"cpu": "X"}}}))
    assert model_card.training_cpu(tmp_path) == "X"


# ----------------------------------------------------------------------------- one evaluation shape
def test_the_pipeline_and_the_cli_write_one_evaluation_shape(saved, tmp_path, monkeypatch):
    from rsmi.data import load_dataset
    from rsmi.pipeline import PipelineConfig, evaluate_stage

    ctx = Ctx(tmp_path, saved)
    data = ctx.data()
    code, _, err = run_cli(["evaluate", "--model", str(saved), "--data", str(data),
                            "--out", str(tmp_path / "cli" / "evaluation.json")], monkeypatch)
    assert code == 0, err
    cfg = PipelineConfig(out=str(tmp_path / "run"), data=str(data))
    path = evaluate_stage(cfg, "rsmi", saved, load_dataset(str(data)), lambda _: None)
    cli = store_eval.read_evaluation(tmp_path / "cli")
    pipe = store_eval.read_evaluation(path)
    assert list(cli) == list(pipe)
    assert pipe["predictions"] == "predictions.jsonl"
    assert store_eval.read_predictions(path.with_name("predictions.jsonl")) == \
        store_eval.read_predictions(tmp_path / "cli" / "predictions.jsonl")
    for key in ("clean_accuracy", "method", "model", "data", "split", "training", "config", "seed"):
        assert key in pipe  # what the reports and the pipeline's cache read
