"""The adaptive attacker (margin-EOT, rsmi.attacks.goals): its goal test, its run identity, the
summary's ``attacker``, fresh-draw verification of its final texts, the CLI's errors, the
report label and the dev selection's arithmetic (benchmarks/adaptive_select.py).

Tiny models and resources from tests/test_attack.py.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rsmi.attacks import AttackConfig, read_records, run_attack
from rsmi.errors import ConfigError
from test_attack import DATA, _rsmi_run, resources, tiny_classifier, tokenizer_module  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]


def _goals(resources, tokenizer, margin):  # noqa: F811
    from textattack.goal_functions import UntargetedClassification

    import rsmi.attacks.recipes  # noqa: F401 - its log filter, as in every run
    from rsmi.attacks.goals import MarginUntargetedClassification
    from rsmi.attacks.wrapper import RSMIModelWrapper

    wrapper = RSMIModelWrapper(tiny_classifier(tokenizer, k0=1))
    return (UntargetedClassification(wrapper, use_cache=False),
            MarginUntargetedClassification(wrapper, margin=margin, use_cache=False))


def _outputs(num_classes):
    """Probability vectors: random ones, ties, and vectors right at the decision boundary."""
    rng = np.random.default_rng(0)
    out = [rng.dirichlet(np.ones(num_classes)) for _ in range(200)]
    out += [np.full(num_classes, 1.0 / num_classes), np.eye(num_classes)[0]]
    if num_classes == 3:
        out += [np.array([0.4, 0.4, 0.2]), np.array([0.2, 0.4, 0.4]), np.array([0.4, 0.2, 0.4])]
    return [torch.tensor(p, dtype=torch.float32) for p in out]


@pytest.mark.parametrize("num_classes", [2, 3])
def test_goal_at_zero_margin_is_textattacks_untargeted_goal(resources, tokenizer_module, num_classes):  # noqa: F811
    plain, margin = _goals(resources, tokenizer_module, 0.0)
    for probs, label in itertools.product(_outputs(num_classes), range(num_classes)):
        plain.ground_truth_output = margin.ground_truth_output = label
        assert margin._is_goal_complete(probs, None) == plain._is_goal_complete(probs, None)
        assert margin._should_skip(probs, None) == plain._should_skip(probs, None)
        assert margin._get_score(probs, None) == plain._get_score(probs, None)


@pytest.mark.parametrize(
    ("probs", "label", "delta", "succeeds"),
    [
        ([0.45, 0.55], 0, 0.2, False),        # wrong, margin 0.1 ≤ 0.2: a lucky mean
        ([0.42, 0.58], 0, 0.2, False),        # margin 0.16
        ([0.35, 0.65], 0, 0.2, True),         # margin 0.3 > 0.2 (p_y < (1 − δ)/2 = 0.4)
        ([0.70, 0.30], 1, 0.2, True),
        ([0.60, 0.40], 0, 0.2, False),        # right
        ([0.30, 0.36, 0.34], 0, 0.1, False),  # 3 classes: wrong by 0.06
        ([0.10, 0.20, 0.70], 0, 0.1, True),   # wrong by 0.6
        ([0.20, 0.45, 0.35], 2, 0.05, True),  # wrong by 0.10 (class 1 against class 2)
        ([0.20, 0.42, 0.38], 2, 0.05, False),  # wrong by 0.04
    ],
)
def test_a_positive_margin_rejects_a_barely_wrong_mean_and_accepts_a_clearly_wrong_one(
    resources, tokenizer_module, probs, label, delta, succeeds  # noqa: F811
):
    plain, goal = _goals(resources, tokenizer_module, delta)
    goal.ground_truth_output = plain.ground_truth_output = label
    output = torch.tensor(probs)
    assert goal._is_goal_complete(output, None) is succeeds
    # The skip test stays TextAttack's: which examples are attacked does not depend on δ.
    assert goal._should_skip(output, None) == plain._is_goal_complete(output, None)
    if len(probs) == 2:  # two classes: the margin test is p_y < (1 − δ) / 2
        assert succeeds == (probs[label] < (1 - delta) / 2)


def test_build_attack_picks_the_margin_goal_only_with_a_margin(resources, tokenizer_module):  # noqa: F811
    from textattack.goal_functions import UntargetedClassification

    from rsmi.attacks.goals import MarginUntargetedClassification
    from rsmi.attacks.recipes import build_attack
    from rsmi.attacks.wrapper import RSMIModelWrapper

    wrapper = RSMIModelWrapper(tiny_classifier(tokenizer_module, k0=1), eot=2)
    plain = build_attack(wrapper, AttackConfig(recipe="deepwordbug", eot=2), resources)
    assert type(plain.goal_function) is UntargetedClassification  # δ = 0: today's EOT attack
    adaptive = build_attack(wrapper, AttackConfig(recipe="deepwordbug", eot=2, eot_margin=0.2),
                            resources)
    assert isinstance(adaptive.goal_function, MarginUntargetedClassification)
    assert adaptive.goal_function.margin == 0.2


def test_config_margin_validation_identity_and_attacker():
    assert AttackConfig(recipe="pwws").attacker == "direct"
    assert AttackConfig(recipe="pwws", eot=4).attacker == "eot m=4"
    assert AttackConfig(recipe="pwws", eot=8, eot_margin=0.2).attacker == "adaptive margin-EOT m=8 δ=0.2"
    assert AttackConfig(recipe="pwws", transfer=True).attacker == "transfer"
    for bad in (1.0, -0.1, float("nan"), 1.5):
        with pytest.raises(ConfigError, match=r"\[0, 1\)"):
            AttackConfig(recipe="pwws", eot=4, eot_margin=bad)
    with pytest.raises(ConfigError, match="no effect with --transfer"):
        AttackConfig(recipe="pwws", transfer=True, eot_margin=0.1)
    # δ = 0 is recorded as before the field existed; the identity always compares it.
    plain = AttackConfig(recipe="pwws", eot=4)
    assert "eot_margin" not in plain.to_dict() and plain.identity()["eot_margin"] == 0.0
    adaptive = plain.replace(eot_margin=0.3)
    assert adaptive.to_dict()["eot_margin"] == 0.3
    assert AttackConfig.from_dict(adaptive.to_dict()) == adaptive
    assert AttackConfig.from_dict(plain.to_dict()).eot_margin == 0.0


def _margin(probs, label):
    from rsmi.attacks.goals import wrong_margin

    return wrong_margin(probs, label)


def test_adaptive_run_records_the_attacker_and_its_successes_meet_the_margin(
    resources, tokenizer_module, tmp_path  # noqa: F811
):
    delta = 0.05
    summary = _rsmi_run(resources, tokenizer_module, tmp_path / "adaptive", eot=2,
                        eot_margin=delta, num_examples=4)
    assert summary["attacker"] == "adaptive margin-EOT m=2 δ=0.05"
    assert summary["eot_margin"] == delta and summary["config"]["eot_margin"] == delta
    run = json.loads((tmp_path / "adaptive" / "run.json").read_text())
    assert run["config"]["eot"] == 2 and run["config"]["eot_margin"] == delta
    for r in read_records(tmp_path / "adaptive" / "examples.jsonl"):
        if r["result_type"] == "successful":  # the search stopped only past the margin
            assert _margin(r["perturbed_probs"], r["ground_truth"]) > delta
    plain = _rsmi_run(resources, tokenizer_module, tmp_path / "eot", eot=2, num_examples=1)
    assert plain["attacker"] == "eot m=2" and plain["eot_margin"] == 0.0
    assert "eot_margin" not in json.loads((tmp_path / "eot" / "run.json").read_text())["config"]


def test_resuming_with_another_margin_is_refused_and_an_old_run_resumes_at_zero(
    resources, tokenizer_module, tmp_path  # noqa: F811
):
    out = tmp_path / "run"
    _rsmi_run(resources, tokenizer_module, out, eot=2, eot_margin=0.2, num_examples=1)
    with pytest.raises(ValueError, match="eot_margin"):
        _rsmi_run(resources, tokenizer_module, out, resume=True, eot=2, eot_margin=0.1,
                  num_examples=1)
    with pytest.raises(ValueError, match="eot_margin"):
        _rsmi_run(resources, tokenizer_module, out, resume=True, eot=2, num_examples=1)
    assert _rsmi_run(resources, tokenizer_module, out, resume=True, eot=2, eot_margin=0.2,
                     num_examples=1)["complete"]
    # A run.json written before the margin existed (no eot_margin key) is a δ = 0 run.
    old = tmp_path / "old"
    _rsmi_run(resources, tokenizer_module, old, eot=2, num_examples=2)
    meta = json.loads((old / "run.json").read_text())
    assert "eot_margin" not in meta["config"]
    lines = (old / "examples.jsonl").read_text().splitlines(keepends=True)
    (old / "examples.jsonl").write_text(lines[0])  # a killed run: one of two examples done
    (old / "run.json").write_text(json.dumps(meta))
    summary = _rsmi_run(resources, tokenizer_module, old, resume=True, eot=2, num_examples=2)
    assert summary["complete"] and summary["attacker"] == "eot m=2"
    with pytest.raises(ValueError, match="eot_margin"):
        _rsmi_run(resources, tokenizer_module, old, resume=True, eot=2, eot_margin=0.3,
                  num_examples=2)


def test_fresh_draws_verify_an_adaptive_runs_final_texts(resources, tokenizer_module, tmp_path):  # noqa: F811
    from rsmi.attacks.fresh import fresh_seed, rescore_run
    from test_attack import strip

    fresh = _rsmi_run(resources, tokenizer_module, tmp_path / "fresh", eot=2, eot_margin=0.05,
                      num_examples=3, fresh_draws=4)
    block = fresh["fresh_draws"]
    assert block["draws"] == 4 and block["num_examples"] == 3 and block["complete"]
    assert set(block["accuracy_under_attack_k"]) == {"1", "5", "25"}
    records = read_records(tmp_path / "fresh" / "examples.jsonl")
    for r in records:
        assert r["fresh_draws"] == 4
        assert r["p_correct_original"] in {i / 4 for i in range(5)}
        assert r["p_correct_perturbed"] in {i / 4 for i in range(5)}
        assert fresh_seed(r["seed"], r["index"]) != 0
    # The verification adds fields and changes none of the attack's; rescore gives the same.
    bare = _rsmi_run(resources, tokenizer_module, tmp_path / "bare", eot=2, eot_margin=0.05,
                     num_examples=3)
    assert bare["attacker"] == fresh["attacker"]
    fields = ("p_correct_original", "p_correct_perturbed", "fresh_draws", "fresh_forward_passes")
    drop = [{k: v for k, v in r.items() if k not in fields} for r in records]
    assert strip(drop) == strip(read_records(tmp_path / "bare" / "examples.jsonl"))
    clf = tiny_classifier(tokenizer_module, k0=1, num_masks=1, saliency_top_k=2)
    rescored = rescore_run(tmp_path / "bare", clf, draws=4)
    assert rescored["fresh_draws"] == block
    assert rescored["attacker"] == "adaptive margin-EOT m=2 δ=0.05"


def test_cli_margin_errors(resources, tokenizer_module, tmp_path, monkeypatch, capsys):  # noqa: F811
    from rsmi.cli.main import main
    from rsmi.resources import Resources

    monkeypatch.setattr(Resources, "load", classmethod(lambda cls, root=None: resources))
    data = tmp_path / "data.csv"
    data.write_text("text,label\n" + "".join(f'"{t}",{y}\n' for t, y in DATA * 2))
    randomized = tiny_classifier(tokenizer_module, k0=1).save_pretrained(tmp_path / "rsmi")
    plain = tiny_classifier(tokenizer_module, noise_std=0.0, num_masks=0).save_pretrained(
        tmp_path / "plain")

    def attack(model, *flags):
        out = tmp_path / f"out-{len(list(tmp_path.iterdir()))}"
        rc = main(["attack", "--model", str(model), "--data", str(data), "--split", "train",
                   "--recipe", "deepwordbug", "--preset", "recipe", "--num-examples", "1",
                   "--no-progress", "--out", str(out), *flags])
        return rc, out, capsys.readouterr().err

    for bad in ("1", "1.5", "-0.1"):
        rc, out, err = attack(randomized, "--eot", "4", "--eot-margin", bad)
        assert rc == 2 and "[0, 1)" in err and not out.exists()
    rc, out, err = attack(randomized, "--transfer", "--eot-margin", "0.2")
    assert rc == 2 and "no effect with --transfer" in err and not out.exists()
    rc, out, err = attack(plain, "--eot-margin", "0.2")
    assert rc == 2 and "deterministic model" in err and not out.exists()
    rc, out, err = attack(randomized, "--num-masks", "0", "--noise-std", "0", "--eot-margin", "0.2")
    assert rc == 2 and "deterministic model" in err  # made deterministic by the overrides
    rc, out, _ = attack(randomized, "--eot", "2", "--eot-margin", "0.1")
    assert rc == 0
    assert json.loads((out / "summary.json").read_text())["attacker"] == "adaptive margin-EOT m=2 δ=0.1"


def test_reports_label_the_adaptive_attacker(resources, tokenizer_module, tmp_path):  # noqa: F811
    from rsmi.reports import load_row
    from rsmi.reports.rows import attack_label

    assert attack_label({"recipe": "textfooler", "eot": 8, "eot_margin": 0.2}) == \
        "textfooler (margin-EOT m=8 δ=0.2)"
    assert attack_label({"recipe": "textfooler", "eot": 4}) == "textfooler (EOT m=4)"
    _rsmi_run(resources, tokenizer_module, tmp_path / "a", eot=2, eot_margin=0.1, num_examples=1)
    _rsmi_run(resources, tokenizer_module, tmp_path / "b", eot=2, num_examples=1)
    rows = [load_row(tmp_path / "a"), load_row(tmp_path / "b")]
    labels = sorted(r.attack for r in rows)
    assert labels == ["deepwordbug (EOT m=2) (recipe preset)",
                      "deepwordbug (margin-EOT m=2 δ=0.1) (recipe preset)"]
    assert {r.plain_attack for r in rows} == {"deepwordbug (recipe preset)"}


def _select_module():
    spec = importlib.util.spec_from_file_location("adaptive_select", ROOT / "benchmarks" / "adaptive_select.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_dev_selection_takes_the_lowest_deployed_aua_and_breaks_ties_by_cost():
    sel = _select_module()
    assert sel.parse_grid("1:0,4:0,4:0.2") == [(1, 0.0), (4, 0.0), (4, 0.2)]
    assert len(sel.STUDY_GRID) == 9

    def point(m, delta, aua, passes):
        return {"m": m, "delta": delta, "figures": {"deployed": {"k": {"1": {"aua": aua}}},
                                                     "cost": {"avg_forward_passes": passes}}}

    points = [point(1, 0.0, 40.0, 100), point(4, 0.0, 30.0, 400), point(8, 0.1, 30.0, 900),
              {"m": 8, "delta": 0.3},  # not run
              {**point(8, 0.3, 10.0, 900), "complete": False}]  # unfinished: not selected
    assert (sel.select(points)["m"], sel.select(points)["delta"]) == (4, 0.0)
    common = {"seed": 0, "queries": 10, "forward_passes": 100, "perturbed_word_pct": 10.0,
              "wall_s": 1.0, "fresh_draws": 20, "fresh_forward_passes": 40}
    records = [
        {**common, "index": 0, "result_type": "failed", "p_correct_original": 1.0,
         "p_correct_perturbed": 0.8},
        {**common, "index": 1, "result_type": "successful", "p_correct_original": 0.9,
         "p_correct_perturbed": 0.3},
        {**common, "index": 2, "result_type": "skipped", "p_correct_original": 0.2,
         "p_correct_perturbed": 0.2},
    ]
    ex = sel.per_example(records)
    assert ex["robust"].tolist() == [True, False, False]
    assert ex["majority"].tolist() == [True, False, False]
    assert ex["k1"] == pytest.approx([0.8, 0.3, 0.0]) and ex["k5"] == pytest.approx([0.8**5, 0.3**5, 0])
    f = sel.figures({"attacker": "direct"}, records, seed=0)
    assert f["protocol"]["aua"] == pytest.approx(100 / 3, abs=0.01)
    assert f["protocol"]["clean_accuracy"] == pytest.approx(200 / 3)
    assert f["deployed"]["k"]["1"]["aua"] == pytest.approx(100 * 1.1 / 3, abs=0.01)
    # The same figure as rsmi's own fresh_draws block of these records.
    assert f["fresh_draws_block"]["accuracy_under_attack"] == pytest.approx(100 * 1.1 / 3)
    assert f["cost"]["avg_forward_passes"] == 100 and f["cost"]["seconds_per_example"] == 1.0
    lo, hi = f["deployed"]["k"]["1"]["ci95_bootstrap"]
    assert lo <= f["deployed"]["k"]["1"]["aua"] <= hi
    table = sel.markdown({"points": [{"m": 1, "delta": 0.0, "complete": False, "figures": f},
                                     {"m": 8, "delta": 0.3}]})
    assert "| direct | 3 (unfinished) | 33.3 [" in table and "| m = 8, δ = 0.3 | not run |" in table
    diff = sel.paired_difference(ex["k1"], ex["k1"], seed=0)
    assert diff["diff"] == 0 and diff["ci95_paired_bootstrap"] == (0.0, 0.0)
    versus = sel.markdown_versus({"selected": {"m": 8, "delta": 0.3}, "selected_minus_others": [
        {"versus": "m1-d0", "num_examples": 3, **sel.paired_difference(ex["k1"] * 0, ex["k1"], seed=0)}]})
    assert versus.splitlines()[0].startswith("| selected m8-d0.3 minus |")
    assert "| m1-d0 | 3 | -36.7 [" in versus  # 0 minus the mean of 0.8, 0.3, 0.0
    argv = sel.attack_argv(sel.main.__globals__["argparse"].Namespace(
        model="m", data="mr", split="dev", recipe="textfooler", num_examples=25, max_length=64,
        dtype="bfloat16", fresh_draws=20), 4, 0.2, Path("out"))
    assert argv[argv.index("--eot") + 1] == "4" and argv[argv.index("--eot-margin") + 1] == "0.2"
    assert "--fresh-draws" in argv and "--cut-to-max-length" in argv and "--resume" in argv


def test_a_run_attack_call_with_margin_on_a_deterministic_model_writes_nothing(
    resources, tokenizer_module, tmp_path  # noqa: F811
):
    clf = tiny_classifier(tokenizer_module, noise_std=0.0, num_masks=0)
    config = AttackConfig(recipe="deepwordbug", preset="recipe", num_examples=1, eot_margin=0.1)
    with pytest.raises(ConfigError, match="deterministic model"):
        run_attack(clf, DATA[:3], config, tmp_path / "x", resources=resources)
    assert not (tmp_path / "x").exists()


def test_a_study_row_runs_the_adaptive_attacker(tmp_path):
    import yaml

    from test_study import _config, study_mod

    path = _config(tmp_path, "minilm", tmp_path / "toy.jsonl")
    cfg = yaml.safe_load(path.read_text())
    cfg["attacks"]["extra"] = [{"name": "adaptive", "recipe": "deepwordbug", "eot": 4,
                                "eot_margin": 0.2, "attack_seeds": [0], "models": ["rsmi"]}]
    path.write_text(yaml.safe_dump(cfg))
    jobs = {j.id: j for j in study_mod.plan(study_mod.Study.load(path))}
    argv = jobs["toy/attack/rsmi/seed-0/adaptive"].argv
    assert argv[argv.index("--eot") + 1] == "4" and argv[argv.index("--eot-margin") + 1] == "0.2"
    plain = {k: j for k, j in jobs.items() if k.endswith("/deepwordbug")}
    assert plain and all("--eot-margin" not in j.argv for j in plain.values())


def test_dev_selection_runs_grid_points_in_parallel_jobs_with_one_thread_each(monkeypatch):
    import threading
    import time
    from types import SimpleNamespace

    sel = _select_module()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    lock, running, seen = threading.Lock(), [0], {"max": 0, "order": [], "env": []}
    both = threading.Event()  # set once two points run at the same time

    def runner(cmd, check, env):
        with lock:
            running[0] += 1
            seen["max"] = max(seen["max"], running[0])
            seen["order"].append(cmd[-1])
            seen["env"].append((env.get("OMP_NUM_THREADS"), env.get("MKL_NUM_THREADS")))
            if running[0] == 2:
                both.set()
        # a point keeps running until a second one has started (or 2 s passed: then the pool
        # did not run two at a time), so a slow thread start on a loaded machine cannot fail it
        both.wait(2.0 if wait_for_two else 0.0)
        time.sleep(0.01)
        with lock:
            running[0] -= 1
        return SimpleNamespace(returncode=3 if cmd[-1] == "c" else 0)

    wait_for_two = True

    pending = {name: ["rsmi", "attack", name] for name in "abcd"}
    assert sel.run_pending(pending, 2, runner=runner) == {"a": 0, "b": 0, "c": 3, "d": 0}
    # grid order, two at a time: the first two points start together (in either order)
    assert seen["max"] == 2 and sorted(seen["order"][:2]) == ["a", "b"]
    assert set(seen["env"]) == {("1", "1")}  # one torch thread per job
    seen.update(max=0, order=[], env=[])
    wait_for_two = False
    sel.run_pending(pending, 1, runner=runner)
    assert seen["max"] == 1 and seen["order"] == list("abcd")
    assert set(seen["env"]) == {(None, None)}  # one job: the caller's threads


SELECTIONS = ["adaptive-pilot", "adaptive-select/mr-dev"]  # committed dev selections in the study


@pytest.mark.parametrize("folder", SELECTIONS)
def test_the_selection_tables_in_the_study_are_the_ones_their_records_give(folder):
    """docs/study.md's selection tables are `adaptive_select.py --only-read` output: each must be
    what the committed selection.json gives, byte for byte (a results table is never typed by
    hand)."""
    sel = _select_module()
    selection = json.loads((ROOT / "results" / folder / "selection.json").read_text())
    study = (ROOT / "docs" / "study.md").read_text()
    assert sel.markdown(selection) in study
    if selection.get("selected_minus_others"):
        assert sel.markdown_versus(selection) in study


@pytest.mark.parametrize("folder", SELECTIONS)
def test_the_selections_recompute_from_their_records(tmp_path, capsys, folder):
    import shutil

    sel = _select_module()
    committed = json.loads((ROOT / "results" / folder / "selection.json").read_text())
    shutil.copytree(ROOT / "results" / folder / "attacks", tmp_path / "attacks")
    sel.main(["--model", committed["model"], "--num-examples", str(committed["num_examples"]),
              "--grid", ",".join(f"{p['m']}:{p['delta']:g}" for p in committed["points"]),
              "--out", str(tmp_path), "--only-read"])
    again = json.loads((tmp_path / "selection.json").read_text())
    strip = ("run", "command")  # paths differ; everything computed must not
    assert [{k: v for k, v in p.items() if k not in strip} for p in again["points"]] == \
        [{k: v for k, v in p.items() if k not in strip} for p in committed["points"]]
    assert again["selected"] == committed["selected"]
    if "selected_minus_others" in committed:  # written since session 18 (not in the pilot's file)
        assert again["selected_minus_others"] == committed["selected_minus_others"]
