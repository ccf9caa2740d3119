"""Inference engines (rsmi.engine): the exported graph answers as eager PyTorch, same seeds."""

from __future__ import annotations

import builtins
import json

import numpy as np
import pytest
import torch

from rsmi.engine import ENGINES, EngineUnavailableError, normalize_engine, require_engine
from rsmi.errors import ConfigError
from rsmi.inference import PASS_STEP1
from rsmi.noise import row_seed

pytest.importorskip("openvino")
pytest.importorskip("onnxruntime")

EXPORTED = ["openvino", "onnx"]


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("RSMI_HOME", str(tmp_path / "home"))


def _rows(clf, texts, k=3):
    batches, _ = clf.batches(texts, 32)
    (idx, inputs), = batches
    rows = clf._repeat(inputs, k)
    seeds = [row_seed(7, i, PASS_STEP1, j) for i in range(len(texts)) for j in range(k)]
    return rows, seeds


def _logits(clf, rows, seeds, max_rows=1024):
    clf.model.eval()
    with clf.noise.activated():
        return clf._forward_rows(rows, seeds, max_rows)


@pytest.mark.parametrize("engine", EXPORTED)
@pytest.mark.parametrize("noise_std", [0.2, 0.0])
def test_engine_float32_logits_equal_torch(make_classifier, texts, engine, noise_std):
    clf = make_classifier(noise_std=noise_std, noise_every=2, num_masks=0)
    rows, seeds = _rows(clf, texts)
    reference = _logits(clf, rows, seeds, max_rows=5)
    got = _logits(clf.configured(engine=engine), rows, seeds, max_rows=5)
    assert got.dtype == torch.float32 and got.shape == reference.shape
    torch.testing.assert_close(got, reference, rtol=1e-4, atol=1e-5)
    if noise_std > 0:  # the noise is really in the graph: other seeds, other logits
        other = _logits(clf.configured(engine=engine), rows, [s + 1 for s in seeds])
        assert not torch.allclose(other, reference, atol=1e-3)


def test_engine_predict_labels_identical(make_classifier, texts):
    clf = make_classifier(noise_std=0.2, noise_every=2, num_masks=2, k0=5, k1=7)
    want = clf.predict(texts, seed=3)
    for engine in EXPORTED:
        got = clf.configured(engine=engine).predict(texts, seed=3)
        np.testing.assert_array_equal(got.labels, want.labels)
        np.testing.assert_array_equal(got.votes, want.votes)
        np.testing.assert_array_equal(got.second_step, want.second_step)
        np.testing.assert_allclose(got.probs, want.probs, rtol=1e-4, atol=1e-6)


def test_engine_draws_are_the_hooks_draws(make_classifier, texts):
    clf = make_classifier(noise_std=0.3, noise_every=2, num_masks=0)
    rows, seeds = _rows(clf, texts, k=2)
    mask = rows["attention_mask"]
    seen: dict[int, torch.Tensor] = {}
    noise = clf.noise
    original = noise._noised

    def record(index, module, output):
        hidden = output[0] if isinstance(output, tuple) else output
        result = original(index, module, output)
        if result is not None:
            seen[index] = (result[0] if isinstance(result, tuple) else result) - hidden
        return result

    noise._noised = record
    with noise.per_row(seeds, mask), torch.no_grad():
        clf.model(**rows)
    draws = noise.row_draws(seeds, mask, clf.model.config.hidden_size)
    assert sorted(draws) == sorted(seen) == noise.noised_blocks == [0, 2]
    for block, tensor in draws.items():
        assert tensor.dtype == torch.float32
        assert bool(tensor[~mask.bool()].eq(0).all())  # zeros at padding
        torch.testing.assert_close(tensor, seen[block], rtol=0, atol=1e-6)  # hidden + n - hidden
        gen = torch.Generator().manual_seed(seeds[1])  # row 1: block 0 first, then block 2
        count = int(mask[1].sum())
        first = torch.randn((count, tensor.shape[-1]), generator=gen)
        if block == 0:
            assert torch.equal(tensor[1, :count], noise.noise_std * first)


def test_cache_is_keyed_by_the_weights(make_classifier, texts, tmp_path):
    from rsmi.engine.cache import cache_root

    clf = make_classifier(noise_std=0.2, noise_every=2, num_masks=0)
    view = clf.configured(engine="openvino")
    rows, seeds = _rows(clf, texts)
    _logits(view, rows, seeds)
    first = sorted(p.name for p in cache_root().iterdir() if p.is_dir())
    assert len(first) == 1
    meta = json.loads((cache_root() / first[0] / "engine.json").read_text())
    assert meta["engine"] == "openvino" and meta["noised_blocks"] == [0, 2]
    _logits(view, rows, seeds)  # same weights: no new export
    assert sorted(p.name for p in cache_root().iterdir() if p.is_dir()) == first
    with torch.no_grad():
        clf.model.classifier.bias.add_(1.0)  # changed weights (in place, as an optimiser does)
    changed = _logits(view, rows, seeds)
    assert len([p for p in cache_root().iterdir() if p.is_dir()]) == 2
    torch.testing.assert_close(changed, _logits(clf, rows, seeds), rtol=1e-4, atol=1e-5)


def test_unknown_engine_and_missing_package(make_classifier, monkeypatch):
    clf = make_classifier()
    with pytest.raises(ConfigError, match="engine='tensorrt' is invalid"):
        clf.configured(engine="tensorrt")
    assert normalize_engine(None) == "torch" and "openvino" in ENGINES
    real_import = builtins.__import__

    def no_openvino(name, *args, **kwargs):
        if name == "openvino" or name.startswith("openvino."):
            raise ImportError("No module named 'openvino'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_openvino)
    with pytest.raises(EngineUnavailableError, match=r"pip install -e '\.\[engine\]'"):
        clf.configured(engine="openvino")
    require_engine("torch")  # torch needs nothing


def test_engine_only_on_cpu():
    with pytest.raises(EngineUnavailableError, match="CPU only"):
        require_engine("openvino", "meta")


def test_default_engine_is_torch_and_views_keep_theirs(make_classifier):
    clf = make_classifier()
    assert clf.engine == "torch" and clf.engine_runner() is None
    view = clf.configured(engine="openvino")
    assert view.engine == "openvino" and clf.engine == "torch"
    assert view.configured().engine == "openvino"
    assert view.engine_precision == "float32"
    assert view.configured(dtype="bfloat16").engine_precision == "float32"  # its own precision
    assert clf.configured(engine="openvino-bf16").engine_precision == "bfloat16"
    assert clf.configured(dtype="bfloat16").engine_precision == "bfloat16"  # torch: the dtype
    assert clf.configured(engine="onnx-int8").engine_precision == "int8"


def _attack_run(tmp_path, engine_recorded):
    from rsmi.attacks import AttackConfig
    from rsmi.attacks.resume import RunIdentity

    run = tmp_path / "attack"
    run.mkdir(exist_ok=True)
    cfg = AttackConfig(recipe="deepwordbug", preset="recipe", num_examples=3, model="m")
    meta = RunIdentity(cfg, num_selected=3, weights_sha256="a" * 64).to_dict()
    assert meta["config"]["engine"] == "torch"  # recorded like dtype
    if engine_recorded is None:
        del meta["config"]["engine"]  # a run.json written before the setting existed
    else:
        meta["config"]["engine"] = engine_recorded
    (run / "run.json").write_text(json.dumps(meta))
    (run / "examples.jsonl").write_text(json.dumps({"index": 0, "result_type": "failed"}) + "\n")
    return run, cfg


@pytest.mark.parametrize("recorded", [None, "torch"])
def test_attack_identity_records_the_engine(tmp_path, recorded):
    from rsmi.attacks.resume import RunIdentity, check_resume
    from rsmi.errors import ResumeError

    run, cfg = _attack_run(tmp_path, recorded)
    check_resume(run, RunIdentity(cfg, 3, weights_sha256="a" * 64), resume=True)  # old = torch
    other = cfg.replace(engine="openvino")
    assert other.identity()["engine"] == "openvino"
    with pytest.raises(ResumeError, match="engine"):
        check_resume(run, RunIdentity(other, 3, weights_sha256="a" * 64), resume=True)
    with pytest.raises(ConfigError, match="engine='trt' is invalid"):
        cfg.replace(engine="trt")


def test_evaluation_and_cli_predict_record_and_use_the_engine(make_classifier, texts, tmp_path,
                                                              capsys):
    from rsmi.cli.main import main
    from rsmi.training.evaluate import evaluate_with_predictions

    clf = make_classifier(noise_std=0.2, noise_every=2, num_masks=1, k0=3, k1=4)
    path = clf.save_pretrained(tmp_path / "model")
    answers = {}
    for engine in ("torch", "openvino"):
        assert main(["predict", "--model", str(path), "--engine", engine, *texts[:4]]) == 0
        answers[engine] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["label"] for r in answers["torch"]] == [r["label"] for r in answers["openvino"]]

    class Item:
        def __init__(self, text, label):
            self.text, self.label = text, label

    items = [Item(t, i % 2) for i, t in enumerate(texts[:3])]
    measured, _ = evaluate_with_predictions(clf.configured(engine="openvino"), items, seed=0)
    assert measured["engine"] == "openvino"
    assert evaluate_with_predictions(clf, items, seed=0)[0]["engine"] == "torch"


def test_bfloat16_hint_exports_a_float32_graph(make_classifier, texts):
    """The export runs outside the caller's autocast: bf16 is OpenVINO's hint, not the graph's."""
    from rsmi.engine.cache import cache_root

    clf = make_classifier(noise_std=0.2, noise_every=2, num_masks=0)
    rows, seeds = _rows(clf, texts)
    reference = _logits(clf, rows, seeds)
    got = _logits(clf.configured(dtype="bfloat16", engine="openvino-bf16"), rows, seeds)
    torch.testing.assert_close(got, reference, rtol=0.05, atol=0.05)
    xml = next(cache_root().glob("*/model.xml")).read_text()
    assert 'element_type="bf16"' not in xml


def test_openvino_leaves_the_threads_signal_stack_as_it_was(make_classifier, texts):
    """Compiled models destroyed out of creation order used to leave the thread on a freed
    alternate signal stack: the next handled signal (SIGTERM to a training run) was a SIGSEGV."""
    import gc
    import os
    import signal

    from rsmi.engine.session import signal_stack

    before = signal_stack()
    if before is None:
        pytest.skip("no sigaltstack(2) on this platform")
    first = make_classifier(noise_std=0.2, noise_every=2, num_masks=0, seed=1)
    second = make_classifier(noise_std=0.2, noise_every=2, num_masks=0, seed=2)
    third = make_classifier(noise_std=0.2, noise_every=2, num_masks=0, seed=3)
    for clf in (first, second, third):  # three compiled models, alive together
        clf.configured(engine="openvino").predict(texts[:2], seed=0)
    assert signal_stack() == before
    del second  # destroyed out of order: middle, first, last
    gc.collect()
    del first
    gc.collect()
    assert signal_stack() == before
    del third
    gc.collect()
    assert signal_stack() == before
    got = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: got.append(signum))
    try:
        os.kill(os.getpid(), signal.SIGUSR1)  # handled on this thread's stack, as SIGTERM would be
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert got == [signal.SIGUSR1]
