"""Training (base / rsmi / freelb), resume, multi-process run, evaluation and the CLI.

Tiny BERTs built from a config (no download) learn a toy task made here: texts with three
sentiment words of one class among distractor words.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from rsmi import RSMIClassifier, RSMIConfig
from rsmi.data.types import Example, TextDataset
from rsmi.provenance import git_revision
from rsmi.training import (
    TrainConfig,
    TrainingInterrupted,
    evaluate,
    load_config_file,
    rsmi_inputs,
    train,
)
from rsmi.training.steps import StepContext

DISTRACTORS = "the a movie film plot story actor scene was is very quite really it this".split()
POSITIVE = ["good", "great", "nice", "fine"]
NEGATIVE = ["bad", "awful", "poor", "boring"]


def toy_examples(n: int, seed: int) -> list[Example]:
    """Label 1: three of POSITIVE among 3–8 distractors; label 0: three of NEGATIVE."""
    g = torch.Generator().manual_seed(seed)

    def pick(k: int) -> int:
        return int(torch.randint(0, k, (1,), generator=g))

    out = []
    for i in range(n):
        label = i % 2
        words = [DISTRACTORS[pick(len(DISTRACTORS))] for _ in range(3 + pick(6))]
        pool = POSITIVE if label else NEGATIVE
        for _ in range(3):
            words.insert(pick(len(words) + 1), pool[pick(len(pool))])
        out.append(Example(" ".join(words), label))
    return out


def toy_dataset(n_train: int = 128) -> TextDataset:
    return TextDataset(
        "toy",
        ["neg", "pos"],
        {"train": toy_examples(n_train, 0), "dev": toy_examples(40, 1), "test": toy_examples(40, 2)},
    )


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory, tokenizer) -> Path:
    """A saved tiny BERT encoder (2 layers, hidden 32) with the MiniLM tokenizer."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=64, max_position_embeddings=64, num_labels=2,
    )
    path = tmp_path_factory.mktemp("tiny")
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def tiny_config(tiny_dir: Path, out: Path, **changes) -> TrainConfig:
    base = TrainConfig(
        method="base", model=str(tiny_dir), out=str(out), epochs=3, lr=2e-2, batch_size=8,
        max_length=32, k1=8, adv_lr=0.005, adv_init_mag=0.01, seed=0,
    )
    return base.replace(**changes)


@pytest.mark.parametrize("method", ["base", "rsmi", "freelb"])
def test_each_method_learns_and_saves_a_loadable_model(method, tiny_dir, tmp_path):
    data = toy_dataset()
    out = train(tiny_config(tiny_dir, tmp_path / method, method=method), data)
    clf = RSMIClassifier.from_pretrained(out)
    assert clf.method == method
    expected = RSMIConfig(max_length=32, k1=8) if method == "rsmi" else RSMIConfig.plain(32)
    assert clf.config == expected
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    epochs = [r for r in log if r["event"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2, 3]
    assert log[-1]["event"] == "finished"
    assert log[0]["event"] == "start" and "git_revision" in log[0]["provenance"]
    saved = json.loads((out / "training_config.json").read_text())
    assert saved["provenance"]["machine"]["cpu_count"] >= 1
    assert TrainConfig.from_dict(load_config_file(out / "training_config.json")).method == method
    best = max(r["dev_accuracy"] for r in epochs)
    assert best >= 0.9, log
    assert clf.metadata["training"]["dev_accuracy"] == best  # the best epoch is what was saved
    result = evaluate(clf, data.split("test"), seed=0)
    assert result["clean_accuracy"] >= 0.85, result
    assert set(result["per_class_accuracy"]) == {"neg", "pos"}
    if method == "rsmi":  # 1 saliency pass + k0, + k1 for step-2 inputs
        assert result["avg_forward_passes"] >= 6
    else:
        assert result["avg_forward_passes"] == 1 and result["second_step_share"] == 0
    saved = json.loads((out / "training_config.json").read_text())
    assert saved["method"] == method and saved["resolved"]["lr"] == 2e-2
    assert not (out / "checkpoint").exists()


def test_resume_after_sigterm_gives_the_same_weights(tiny_dir, tmp_path):
    """rsmi (noise + dropout RNG), grad accumulation: killed mid-epoch 1, resumed = straight run."""
    data = toy_dataset(48)
    straight = train(tiny_config(tiny_dir, tmp_path / "straight", method="rsmi", epochs=2,
                                 batch_size=8, grad_accum=2), data)
    config = tiny_config(tiny_dir, tmp_path / "killed", method="rsmi", epochs=2, batch_size=8,
                         grad_accum=2)

    def kill_at_step_2(info):
        if info.global_step == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # the real signal path

    with pytest.raises(TrainingInterrupted):
        train(config, data, on_step=kill_at_step_2)
    state = json.loads((tmp_path / "killed" / "checkpoint" / "state.json").read_text())
    assert (state["epoch"], state["batches_done"], state["global_step"]) == (0, 4, 2)
    with pytest.raises(ValueError, match="--resume"):
        train(config, data)  # a used output directory is never silently overwritten
    resumed = train(config, data, resume=True)
    a = load_file(str(straight / "model.safetensors"))
    b = load_file(str(resumed / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    with pytest.raises(ValueError, match="already finished"):
        train(config, data, resume=True)


def test_freelb_without_adversary_is_plain_fine_tuning(tiny_dir, tmp_path):
    """K = 1 and a zero start: FreeLB's update must be exactly the base update."""
    data = toy_dataset(32)
    base = train(tiny_config(tiny_dir, tmp_path / "b", epochs=1), data)
    free = train(tiny_config(tiny_dir, tmp_path / "f", method="freelb", epochs=1, adv_steps=1,
                             adv_init_mag=0.0), data)
    a, b = load_file(str(base / "model.safetensors")), load_file(str(free / "model.safetensors"))
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    changed = train(tiny_config(tiny_dir, tmp_path / "f3", method="freelb", epochs=1, adv_steps=3,
                                adv_lr=0.5), data)
    c = load_file(str(changed / "model.safetensors"))
    assert not all(torch.allclose(a[k], c[k], atol=1e-6) for k in a)


def test_rsmi_step_masks_the_most_salient_tokens_and_adds_wg(make_classifier, tokenizer):
    from accelerate import Accelerator

    from rsmi.masking import saliency

    clf = make_classifier(layers=3, noise_std=0.2, noise_every=1, num_masks=2, saliency_top_k=4)
    texts = ["the movie was great and the plot was fine", "good"]
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    batch = {**enc, "labels": torch.tensor([1, 0])}
    cfg = TrainConfig(num_masks=2, saliency_top_k=4, grad_noise_weight=0.5, noise_every=1)
    ctx = StepContext(clf.model, clf.model, Accelerator(cpu=True), cfg, clf.special_ids,
                      tokenizer.mask_token_id, torch.Generator())
    clf.noise.generator = torch.Generator().manual_seed(7)
    got = rsmi_inputs(ctx, batch)
    # The same saliency pass, same noise draw, computed independently.
    clf.noise.generator = torch.Generator().manual_seed(7)
    clf.model.eval()
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    ref = saliency(clf.model, inputs, batch["labels"], reduction="mean")
    assert torch.allclose(got.saliency.grads, ref.grads)
    mask_id = tokenizer.mask_token_id
    ids = batch["input_ids"]
    # Row 0: exactly the 2 most salient real (non-special, non-pad) tokens are masked.
    real = (batch["attention_mask"][0].bool()) & ~torch.isin(ids[0], torch.tensor(clf.special_ids))
    scores = ref.scores[0].masked_fill(~real, -1.0)
    top2 = set(scores.topk(2).indices.tolist())
    assert set((got.masked_ids[0] == mask_id).nonzero().flatten().tolist()) == top2
    # Row 1 ("good"): one real token, so one mask; CLS/SEP/PAD untouched.
    assert (got.masked_ids[1] == mask_id).sum() == 1
    assert got.masked_ids[1, 1] == mask_id
    # inputs_embeds = E(masked_ids) + w · g with the raw gradient.
    expected = clf.model.get_input_embeddings()(got.masked_ids) + 0.5 * ref.grads
    assert torch.allclose(got.inputs_embeds, expected)
    assert ref.grads.abs().sum() > 0
    # candidate_rule "authors": the top 4 of all real tokens, specials included, then specials
    # dropped; the most salient remaining are masked (same noise draw, same saliency).
    clf.noise.generator = torch.Generator().manual_seed(7)
    ctx.config = cfg.replace(candidate_rule="authors", num_masks=4)
    authors = rsmi_inputs(ctx, batch)
    top4 = ref.scores[0].masked_fill(~batch["attention_mask"][0].bool(), -1.0).topk(4).indices
    kept = [t for t in top4.tolist() if int(ids[0, t]) not in clf.special_ids]
    assert len(kept) < 4  # [CLS] is among the 4 most salient here: fewer masks than "content"
    assert set((authors.masked_ids[0] == mask_id).nonzero().flatten().tolist()) == set(kept)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"method": "adversarial"}, "method"),
        ({"lr": -1.0}, "lr"),
        ({"epochs": 0}, "epochs"),
        ({"num_masks": 6, "saliency_top_k": 5}, "num_masks"),
        ({"warmup_ratio": 1.0}, "warmup_ratio"),
        ({"dtype": "fp8"}, "dtype"),
        ({"alpha": 1.5}, "alpha"),
        ({"learning_rate": 1e-5}, "learning_rate"),
    ],
)
def test_bad_settings_are_errors(changes, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig.from_dict(changes)


def _write_jsonl(path: Path, examples: list[Example]) -> Path:
    with path.open("w") as fh:
        for ex in examples:
            fh.write(json.dumps({"text": ex.text, "label": ["neg", "pos"][ex.label]}) + "\n")
    return path


def test_cli_train_with_config_file_then_evaluate(tiny_dir, tmp_path, capsys):
    from rsmi.cli.main import main

    data = _write_jsonl(tmp_path / "toy.jsonl", toy_examples(200, 3))
    config = tmp_path / "train.yaml"
    config.write_text(f"method: base\nmodel: {tiny_dir}\nepochs: 5\nlr: 0.01\nbatch-size: 16\n"
                      "max_length: 32\n")
    out = tmp_path / "run"
    argv = ["train", "--config", str(config), "--data", str(data), "--out", str(out), "--epochs", "2"]
    assert main(argv) == 0
    saved = json.loads((out / "training_config.json").read_text())
    assert saved["epochs"] == 2 and saved["batch_size"] == 16 and saved["data"] == str(data)
    assert main(argv) == 2  # used output directory without --resume
    capsys.readouterr()
    report = tmp_path / "eval.json"
    assert main(["evaluate", "--model", str(out), "--data", str(data), "--split", "test",
                 "--max-examples", "10", "--out", str(report), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(report.read_text())
    assert printed["num_examples"] == 10 and printed["method"] == "base"
    assert printed["model_overrides"] == {} and printed["git_revision"] == git_revision()
    records = [json.loads(x) for x in (tmp_path / "eval.predictions.jsonl").read_text().splitlines()]
    assert len(records) == 10 and printed["predictions"] == "eval.predictions.jsonl"
    assert sum(r["correct"] for r in records) / 10 == printed["clean_accuracy"]
    assert all(r["pred"] == max(range(2), key=r["probs"].__getitem__) for r in records)
    # Inference overrides: the same weights as a smoothed, masked model; recorded.
    assert main(["evaluate", "--model", str(out), "--data", str(data), "--split", "test",
                 "--max-examples", "10", "--noise-std", "0.3", "--num-masks", "1", "--k0", "3",
                 "--k1", "4", "--out", str(out / "evaluation.json")]) == 0
    rs = json.loads((out / "evaluation.json").read_text())
    assert rs["model_overrides"] == {"noise_std": 0.3, "num_masks": 1, "k0": 3, "k1": 4}
    assert rs["config"]["noise_std"] == 0.3 and rs["config"]["k0"] == 3
    smoothed = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["index"] for r in smoothed] == [r["index"] for r in records]  # same examples
    assert {r["forward_passes"] for r in smoothed} <= {1 + 3, 1 + 3 + 4}
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "x"), "--num-masks", "9"]) == 2


def test_two_process_run_trains_and_saves_once(tiny_dir, tmp_path):
    """torchrun with 2 CPU processes: accelerate's MULTI_CPU (gloo) DDP path."""
    data = _write_jsonl(tmp_path / "toy.jsonl", toy_examples(80, 4))
    out = tmp_path / "ddp"
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_port", "29517", "-m", "rsmi.cli.main", "train", "--method", "rsmi",
           "--model", str(tiny_dir), "--data", str(data), "--out", str(out), "--epochs", "1",
           "--batch-size", "8", "--max-length", "32", "--k1", "4", "--checkpoint-every", "2"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == str(out)  # printed once, by rank 0
    saved = json.loads((out / "training_config.json").read_text())
    assert saved["resolved"]["num_processes"] == 2
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["event"] for r in log] == ["start", "epoch", "finished"]  # one writer
    # 64 train examples / 8 = 8 batches, 4 per process: 4 optimizer steps.
    assert log[1]["global_step"] == 4
    assert RSMIClassifier.from_pretrained(out).method == "rsmi"


@pytest.mark.parametrize("method", ["base", "rsmi", "freelb"])
def test_bf16_training_learns_and_records_its_dtype(method, tiny_dir, tmp_path):
    """Every method trains under bfloat16 autocast (saliency and FreeLB ascent included)."""
    data = toy_dataset()
    out = train(tiny_config(tiny_dir, tmp_path / method, method=method, dtype="bfloat16"), data)
    saved = json.loads((out / "training_config.json").read_text())
    assert saved["dtype"] == "bfloat16" and saved["resolved"]["dtype"] == "bfloat16"
    weights = load_file(str(out / "model.safetensors"))
    assert all(t.dtype == torch.float32 for t in weights.values())  # weights stay float32
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert max(r["dev_accuracy"] for r in log if r["event"] == "epoch") >= 0.9, log


def test_resume_in_another_dtype_is_refused(tiny_dir, tmp_path):
    data = toy_dataset(48)
    config = tiny_config(tiny_dir, tmp_path / "run", method="base", epochs=2)

    def stop_at_step_2(info):
        if info.global_step == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(TrainingInterrupted):
        train(config, data, on_step=stop_at_step_2)
    with pytest.raises(ValueError, match="dtype=float32.*dtype=bfloat16"):
        train(config.replace(dtype="bfloat16"), data, resume=True)
    assert TrainConfig.from_dict({"mixed_precision": "bf16"}).dtype == "bfloat16"  # older runs

def test_freelb_textdefender_preset_fills_and_guards_the_adv_settings():
    from rsmi.cli.main import build_parser
    from rsmi.cli.train import build_config
    from rsmi.training.config import FREELB_PRESETS

    cfg = TrainConfig.from_dict({"method": "freelb", "freelb_preset": "textdefender"})
    assert (cfg.adv_steps, cfg.adv_lr, cfg.adv_init_mag, cfg.adv_max_norm) == (10, 0.03, 0.05, 0.0)
    assert cfg.to_dict()["freelb_preset"] == "textdefender"  # recorded in training_config.json
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="adv_steps"):
        TrainConfig.from_dict({"method": "freelb", "freelb_preset": "textdefender", "adv_steps": 5})
    with pytest.raises(ValueError, match="freelb_preset"):
        TrainConfig(freelb_preset="nope")
    args = build_parser().parse_args(
        ["train", "--method", "freelb", "--freelb-preset", "textdefender", "--data", "x"]
    )
    assert build_config(args).adv_steps == FREELB_PRESETS["textdefender"]["adv_steps"]
    assert TrainConfig().freelb_preset is None and TrainConfig().adv_steps == 3  # unchanged
