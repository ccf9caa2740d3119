"""The training-run object (issue 25): TrainConfig's flat on-disk form, callbacks by event name,
resume identity, and bit-identical resumes from a checkpoint taken mid-epoch or at an epoch end.

Tiny BERTs built from a config (no download) on the toy task of tests/test_training.py.
"""

from __future__ import annotations

import ast
import json
import os
import signal
import threading
from pathlib import Path

import pytest

from rsmi import RSMIConfig
from rsmi.errors import ConfigError, ResumeError
from rsmi.training import TrainConfig, TrainingInterrupted, TrainingRun, load_config_file, train
from rsmi.training.config import LATER_SETTINGS, SETTINGS, setting_fields
from rsmi.training.trainer import check_resume_settings
from test_training import tiny_config, tiny_dir, toy_dataset  # noqa: F401 (tiny_dir: a fixture)

# TrainConfig(method="rsmi", model="tiny", data="toy", out="runs/x", epochs=2, seed=3,
# noise_std=0.3, num_masks=1, k1=8, max_length=32, lr=2e-2, batch_size=8).to_dict() as the code
# before the run object (76667b7) wrote it: the same keys in the same order.
OLD_FLAT = {
    "method": "rsmi", "model": "tiny", "data": "toy", "out": "runs/x", "epochs": 2,
    "max_examples": None, "max_eval_examples": None, "seed": 3, "split_seed": 0,
    "text_column": None, "label_column": None, "noise_std": 0.3, "noise_every": 3, "num_masks": 1,
    "saliency_top_k": 5, "candidate_rule": "content", "step2_resample": False,
    "grad_noise_weight": 1.0, "k0": 5, "k1": 8, "alpha": 0.98, "vote": "avg", "max_length": 32,
    "lr": 0.02, "batch_size": 8, "eval_batch_size": 64, "weight_decay": 0.01, "warmup_ratio": 0.1,
    "grad_accum": 1, "max_grad_norm": 1.0, "adv_steps": 3, "adv_lr": 0.03, "adv_init_mag": 0.05,
    "adv_max_norm": 1.0, "freelb_preset": None, "dtype": "float32", "checkpoint_every": 0,
    "keep_checkpoint": False,
}
# The flags of `rsmi train` at 76667b7, in order.
OLD_FLAGS = [
    "--config", "--resume", "--overwrite", "--method", "--model", "--data", "--out", "--epochs",
    "--max-examples", "--max-eval-examples", "--seed", "--split-seed", "--text-column",
    "--label-column", "--noise-std", "--noise-every", "--num-masks", "--saliency-top-k",
    "--candidate-rule", "--step2-resample", "--grad-noise-weight", "--k0", "--k1", "--alpha",
    "--vote", "--max-length", "--lr", "--batch-size", "--eval-batch-size", "--weight-decay",
    "--warmup-ratio", "--grad-accum", "--max-grad-norm", "--adv-steps", "--adv-lr",
    "--adv-init-mag", "--adv-max-norm", "--freelb-preset", "--dtype", "--checkpoint-every",
    "--keep-checkpoint",
]


def _old_config() -> TrainConfig:
    return TrainConfig(method="rsmi", model="tiny", data="toy", out="runs/x", epochs=2, seed=3,
                       noise_std=0.3, num_masks=1, k1=8, max_length=32, lr=2e-2, batch_size=8)


# ------------------------------------------------------------------ TrainConfig holds an RSMIConfig
def test_train_config_holds_an_rsmi_config_and_keeps_the_flat_form(tmp_path):
    cfg = _old_config()
    assert cfg.rsmi == RSMIConfig(noise_std=0.3, num_masks=1, k1=8, max_length=32)
    assert cfg.rsmi_config() is cfg.rsmi and cfg.saved_config() is cfg.rsmi
    assert (cfg.noise_std, cfg.num_masks, cfg.k1) == (0.3, 1, 8)  # flat reads delegate
    assert list(cfg.to_dict().items()) == list(OLD_FLAT.items())  # same keys, same order
    # Issue 28 added the data options label_names and split_column: settings (and flags),
    # written only when set, so the file of a run without them is unchanged.
    assert [s for s in SETTINGS if s not in LATER_SETTINGS] == list(OLD_FLAT)
    assert list(SETTINGS) == [f.name for f in setting_fields()]
    assert set(SETTINGS) - set(OLD_FLAT) == set(LATER_SETTINGS)
    assert TrainConfig.from_dict(OLD_FLAT) == cfg
    # The file, byte for byte, as the old writer wrote it (json.dumps, indent 2).
    resolved = {"lr": 0.02, "data_sha256": "ab" * 32}
    path = cfg.save(tmp_path, **resolved)
    assert path.read_text() == json.dumps({**OLD_FLAT, "resolved": resolved}, indent=2) + "\n"
    assert TrainConfig.from_dict(load_config_file(path)) == cfg  # a saved run is read back


def test_train_config_rsmi_changes_and_validation():
    cfg = TrainConfig(rsmi=RSMIConfig(k0=7), num_masks=1)
    assert cfg.to_dict()["k0"] == 7 and cfg.num_masks == 1
    changed = cfg.replace(candidate_rule="authors", lr=1e-3)
    assert changed.rsmi.candidate_rule == "authors" and changed.rsmi.k0 == 7 and changed.lr == 1e-3
    assert cfg.candidate_rule == "content"  # the original is unchanged
    assert cfg.replace(rsmi=RSMIConfig()).rsmi == RSMIConfig()
    cfg.noise_std = 0.4  # attribute writes go to the held RSMIConfig (validated)
    assert cfg.rsmi.noise_std == 0.4
    with pytest.raises(ConfigError, match="num_masks"):
        cfg.num_masks = 9
    with pytest.raises(ConfigError, match="num_masks"):
        TrainConfig(num_masks=6, saliency_top_k=5)
    with pytest.raises(ConfigError, match="unknown setting"):
        TrainConfig.from_dict({"rsmi": {}})  # the flat form only, on disk
    with pytest.raises(TypeError, match="learning_rate"):
        TrainConfig(learning_rate=1e-5)


def test_cli_flags_are_unchanged():
    from rsmi.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    flags = [s for a in sub.choices["train"]._actions for s in a.option_strings if s not in ("-h", "--help")]
    # The data options are the shared group of every data command (issue 28): in its order,
    # with --label-names and --split-column added.
    # --select-epoch (issue 27) is a new setting, last of the training settings.
    data = {"--split-seed", "--text-column", "--label-column", "--label-names", "--split-column"}
    assert [f for f in flags if f not in data] == [f for f in OLD_FLAGS if f not in data] + [
        "--select-epoch"]
    assert set(flags) == set(OLD_FLAGS) | {"--label-names", "--split-column", "--select-epoch"}


# ------------------------------------------------------------------ resume identity
def _saved_run(tmp_path: Path) -> tuple[TrainConfig, dict]:
    config = _old_config().replace(out=str(tmp_path))
    resolved = {"lr": 0.02, "num_train_examples": 48, "num_dev_examples": 40,
                "data_sha256": "ab" * 32, "num_processes": 1, "total_steps": 12}
    config.save(tmp_path, **resolved)
    return config, resolved


@pytest.mark.parametrize(
    ("settings", "resolved", "message"),
    [
        ({"num_masks": 2}, {}, r"num_masks: was 1, now 2"),
        ({"seed": 4}, {}, r"seed: was 3, now 4"),
        ({"method": "base"}, {}, r"method: was 'rsmi', now 'base'"),
        ({}, {"data_sha256": "cd" * 32}, r"resolved data_sha256: was 'abab"),
        ({}, {"num_processes": 2}, r"resolved num_processes: was 1, now 2"),
    ],
)
def test_resume_refusals_name_the_field_was_now_and_what_to_do(tmp_path, settings, resolved, message):
    config, saved = _saved_run(tmp_path)
    with pytest.raises(ResumeError, match=message) as err:
        check_resume_settings(tmp_path, config.replace(**settings), {**saved, **resolved})
    assert f"cannot resume {tmp_path}" in str(err.value) and "--resume" in str(err.value)


def test_resume_allows_settings_that_do_not_shape_the_weights(tmp_path):
    config, saved = _saved_run(tmp_path)
    check_resume_settings(tmp_path, config.replace(checkpoint_every=3, eval_batch_size=7,
                                                   keep_checkpoint=True, out="elsewhere"), saved)
    (tmp_path / "training_config.json").write_text("{not json")
    with pytest.raises(ResumeError, match="cannot be read"):
        check_resume_settings(tmp_path, config, saved)


# ------------------------------------------------------------------ the run object
def _weights(out: Path) -> bytes:
    return (out / "model.safetensors").read_bytes()


def _drive(config: TrainConfig, data, events: list) -> TrainingRun:
    """The run object driven by hand, as train() drives it (a fresh output directory)."""
    from accelerate import Accelerator

    from rsmi.training.build import reset_accelerate_precision

    reset_accelerate_precision("no")
    run = TrainingRun(config, Accelerator(mixed_precision="no", gradient_accumulation_steps=config.grad_accum),
                      dtype="float32")
    run.add_callback("on_step", lambda info: events.append(("step", info.epoch, info.global_step)))
    run.add_callback("on_epoch_end", lambda r: events.append(("epoch", r.state.epoch, r.state.global_step)))
    Path(config.out).mkdir(parents=True)
    run.setup(data)
    run.record_start(resumed=False)
    run.fit()
    return run


def test_the_run_object_calls_epoch_hooks_and_is_what_train_runs(tiny_dir, tmp_path):  # noqa: F811
    data = toy_dataset(48)
    events: list = []
    run = _drive(tiny_config(tiny_dir, tmp_path / "hand", method="rsmi", epochs=2), data, events)
    steps_per_epoch = 6  # 48 examples / batch 8
    assert [e for e in events if e[0] == "epoch"] == [("epoch", 0, 6), ("epoch", 1, 12)]
    assert [e[2] for e in events if e[0] == "step"] == list(range(1, 2 * steps_per_epoch + 1))
    assert run.state.epoch == 2 and [r["epoch"] for r in run.state.history] == [1, 2]
    assert not (tmp_path / "hand" / "checkpoint").exists()
    log = [json.loads(x) for x in (tmp_path / "hand" / "log.jsonl").read_text().splitlines()]
    assert [r["event"] for r in log] == ["start", "epoch", "epoch", "finished"]
    via_train = train(tiny_config(tiny_dir, tmp_path / "train", method="rsmi", epochs=2), data)
    assert _weights(via_train) == _weights(tmp_path / "hand")
    with pytest.raises(ConfigError, match="on_epoch_end"):
        run.add_callback("on_epoch", print)


def test_resume_from_a_mid_epoch_and_an_epoch_end_checkpoint_is_byte_identical(tiny_dir, tmp_path):  # noqa: F811
    """freelb (its own generator) with accumulation (3 optimizer steps per epoch): stopped by a
    stop event in the middle of epoch 1 (checkpoint then), and by two SIGINTs in epoch 2 (the
    second stops at once: the epoch-end checkpoint is what is resumed)."""
    data = toy_dataset(48)

    def config(name: str, every: int = 1):
        return tiny_config(tiny_dir, tmp_path / name, method="freelb", epochs=2, grad_accum=2,
                           checkpoint_every=every)

    straight = train(config("straight"), data)

    stop = threading.Event()

    def stop_at_step_2(info):
        if info.global_step == 2:
            stop.set()

    with pytest.raises(TrainingInterrupted) as err:
        train(config("mid"), data, stop=stop, on_step=stop_at_step_2)
    assert (err.value.state.epoch, err.value.state.batches_done, err.value.state.global_step) == (0, 4, 2)
    mid = train(config("mid"), data, resume=True)
    assert _weights(mid) == _weights(straight)

    before = signal.getsignal(signal.SIGINT)

    def two_sigints_at_step_5(info):
        if info.global_step == 5:
            os.kill(os.getpid(), signal.SIGINT)  # first: checkpoint at the next step, then stop
            os.kill(os.getpid(), signal.SIGINT)  # second: stop at once

    with pytest.raises(KeyboardInterrupt):
        train(config("end", every=0), data, on_step=two_sigints_at_step_5)
    assert signal.getsignal(signal.SIGINT) is before  # the guard restored the handler
    state = json.loads((tmp_path / "end" / "checkpoint" / "state.json").read_text())
    assert (state["epoch"], state["batches_done"], state["global_step"]) == (1, 0, 3)
    assert len(state["history"]) == 1 and state["best_epoch"] == 0
    end = train(config("end", every=0), data, resume=True)
    assert _weights(end) == _weights(straight)


# ------------------------------------------------------------------ shape of the modules
def test_no_training_function_takes_more_than_eight_parameters():
    import rsmi.training as pkg

    root = Path(pkg.__file__).parent
    for path in sorted(root.glob("*.py")):
        tree = ast.parse(path.read_text())
        assert len(path.read_text().splitlines()) <= 500, path
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = node.args
                count = len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs) + bool(a.vararg) + bool(a.kwarg)
                assert count <= 8, f"{path.name}:{node.lineno} {node.name} takes {count}"


def test_select_epoch_saves_that_epoch_whatever_the_dev_accuracy(tiny_dir, tmp_path):  # noqa: F811
    """--select-epoch regenerates the model an earlier run selected (its log's best_epoch): the
    epoch named is saved, the others are not, and the log and the model's metadata say so."""
    data = toy_dataset(48)
    picked = {}
    for epoch in (1, 2):
        out = tmp_path / f"select-{epoch}"
        train(tiny_config(tiny_dir, out, method="base", epochs=2, select_epoch=epoch), data)
        events = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
        assert [e["best"] for e in events if e["event"] == "epoch"] == [epoch == 1, epoch == 2]
        assert events[-1]["best_epoch"] == epoch
        meta = json.loads((out / "rsmi.json").read_text())
        assert meta["metadata"]["training"]["epoch"] == epoch
        assert json.loads((out / "training_config.json").read_text())["select_epoch"] == epoch
        picked[epoch] = _weights(out)
    assert picked[1] != picked[2]  # two epochs, two models
    assert "select_epoch" not in TrainConfig().to_dict()  # unset: the file's bytes as before
    with pytest.raises(ConfigError, match=r"select_epoch=3 is invalid: the run has 2 epoch"):
        TrainConfig(epochs=2, select_epoch=3)
