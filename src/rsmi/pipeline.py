"""The main job: train on a dataset, evaluate clean, attack, and report — resumable end to end.

``rsmi pipeline`` (and ``scripts/main.sh``) run it on the embedded defaults: RSMI and the
undefended ``base`` fine-tuning of the MiniLM backbone on MR, clean test accuracy, then
TextFooler under the TextDefender protocol against both, with no output cache for the
randomized model and 20 fresh draws per attacked text (the deployed threat models beside the
protocol one). Every stage writes its result under ``out`` and is skipped (or resumed) when
run again, so a killed run loses nothing that was finished.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from rsmi.config import RSMIConfig
from rsmi.errors import ConfigError, ResumeError, StoreError
from rsmi.store.atomic import atomic_write_text
from rsmi.store.names import (
    EVALUATION_FILE,
    MODEL_CARD_FILE,
    PIPELINE_FILE,
    PIPELINE_HTML_FILE,
    PIPELINE_PLOT_FILE,
    PIPELINE_REPORT_FILE,
    PREDICTIONS_FILE,
    SUMMARY_FILE,
    TRAINING_CONFIG_FILE,
)

logger = logging.getLogger(__name__)

Say = Callable[[str], None]


@dataclass
class PipelineConfig:
    """Settings of ``rsmi pipeline``; the defaults are the embedded main job.

    Args:
        out: directory of everything the run writes.
        data: dataset (``rsmi.data.load_dataset`` name or path).
        model: backbone (``"minilm"`` or a Hugging Face encoder).
        methods: training methods to compare (``base``, ``rsmi``, ``freelb``).
        epochs: training epochs of every method.
        max_length: tokens per input in training and evaluation.
        max_train_examples: train on a seeded subset (None: the whole train split).
        recipes: attacks run against every trained model.
        preset: attack protocol (``textdefender`` or ``recipe``).
        num_examples: test examples attacked (TextDefender sampling: > 4 words, fixed seed).
        attack_seeds: attack seeds of randomized models (mean ± std); a deterministic
            model is attacked with the first one only.
        eot: EOT samples per query for the randomized model (1 = plain queries).
        fresh_draws: ``R``: a randomized model's attacks re-classify each example's original
            and final text with R fresh draws (``rsmi attack --fresh-draws R``), so the table
            gives the deployed threat models beside the protocol one; 0 = off. A finished
            attack without them (or with another R) is re-scored, not attacked again
            (:func:`rsmi.attacks.fresh.rescore_run`). Deterministic models need none.
        seed: training seed.
        rsmi_overrides: :class:`rsmi.RSMIConfig` fields for the ``rsmi`` method only (e.g.
            ``{"num_masks": 1}``); the other methods ignore them.
        train_overrides: other :class:`rsmi.training.TrainConfig` fields, for every method.
        dtype: compute precision of training, evaluation and attacks (``auto``, ``float32``,
            ``bfloat16``; :mod:`rsmi.precision`).
        engine: where evaluation's and attacks' passes without gradient run (``torch``,
            ``openvino``, ``onnx``, ...; :mod:`rsmi.engine`).
        data_options: how ``data`` is read, the :class:`rsmi.data.DataOptions` fields given
            (``text_column``, ``label_column``, ``label_names``, ``split_column``,
            ``split_seed``); they are training settings of every method.
    """

    out: str = "runs/main"
    data: str = "mr"
    model: str = "minilm"
    methods: tuple[str, ...] = ("base", "rsmi")
    epochs: int = 2
    max_length: int = 64
    max_train_examples: int | None = None
    recipes: tuple[str, ...] = ("textfooler",)
    preset: str = "textdefender"
    num_examples: int = 100
    attack_seeds: tuple[int, ...] = (0, 1, 2)
    eot: int = 1
    fresh_draws: int = 20  # rsmi.attacks.fresh.DEFAULT_DRAWS (not imported: it loads torch)
    seed: int = 0
    rsmi_overrides: dict[str, Any] = field(default_factory=dict)
    train_overrides: dict[str, Any] = field(default_factory=dict)
    dtype: str = "float32"
    engine: str = "torch"
    data_options: dict[str, Any] = field(default_factory=dict)

    def read_options(self) -> Any:
        """``data_options`` as :class:`rsmi.data.DataOptions`."""
        from rsmi.data import DataOptions

        given = dict(self.data_options)
        if given.get("label_names") is not None:
            given["label_names"] = tuple(given["label_names"])
        return DataOptions(**given)

    def compute_dtype(self) -> str:
        """The effective precision of ``dtype`` on this machine's default device."""
        import torch

        from rsmi.precision import resolve_dtype

        return resolve_dtype(self.dtype, "cuda" if torch.cuda.is_available() else "cpu")


# Settings that change the trained weights (or, for rsmi, the saved predictor); a reused
# model must match them.
_TRAINING_KEYS = (
    "method", "model", "data", "epochs", "max_examples", "max_length", "seed", "split_seed",
    "text_column", "label_column", "label_names", "split_column", "lr", "batch_size", "weight_decay", "warmup_ratio",
    "grad_accum", "max_grad_norm",
)
_METHOD_KEYS = {
    "rsmi": tuple(f.name for f in fields(RSMIConfig) if f.name not in _TRAINING_KEYS),
    "freelb": ("adv_steps", "adv_lr", "adv_init_mag", "adv_max_norm", "freelb_preset"),
}


def _check_same_training(config: Any, model_dir: Path) -> None:
    import torch

    from rsmi.precision import resolve_dtype
    from rsmi.training.config import saved_dtype

    raw = json.loads((model_dir / TRAINING_CONFIG_FILE).read_text(encoding="utf-8"))
    wanted = config.to_dict()
    # A setting added after the model was trained ran at its default (which is what ran).
    saved = {**type(config)().to_dict(), **raw}
    keys = _TRAINING_KEYS + _METHOD_KEYS.get(config.method, ())
    differ = [k for k in keys if saved.get(k) != wanted.get(k)]
    before = saved_dtype(raw)
    asked = resolve_dtype(config.dtype, "cuda" if torch.cuda.is_available() else "cpu")
    if before != asked:
        differ.append("dtype")
        saved["dtype"], wanted["dtype"] = before, asked
    if differ:
        details = ", ".join(
            f"{k}: saved {saved.get(k)!r} vs asked {wanted.get(k)!r}" for k in differ
        )
        raise ResumeError(
            f"{model_dir} holds a model trained with other settings ({details}): "
            "choose another --out, or delete that directory to train again"
        )


def train_stage(cfg: PipelineConfig, method: str, dataset: Any, say: Say) -> Path:
    """Train ``method`` (or resume it, or reuse the finished model)."""
    from rsmi.store.model_card import training_finished
    from rsmi.training import TrainConfig, train

    model_dir = Path(cfg.out) / "models" / method
    config = TrainConfig(
        method=method,
        model=cfg.model,
        data=cfg.data,
        out=str(model_dir),
        epochs=cfg.epochs,
        max_examples=cfg.max_train_examples,
        max_length=cfg.max_length,
        seed=cfg.seed,
        dtype=cfg.dtype,
        **_train_data_settings(cfg),
        **{**cfg.train_overrides, **(cfg.rsmi_overrides if method == "rsmi" else {})},
    )
    if training_finished(model_dir):
        _check_same_training(config, model_dir)
        say(f"[train] {method}: finished model in {model_dir}, reused")
        return model_dir
    resume = model_dir.exists() and any(model_dir.iterdir())
    say(f"[train] {method}: {'resuming' if resume else 'training'} → {model_dir}")
    train(config, dataset, resume=resume, progress=True)
    return model_dir


def _train_data_settings(cfg: PipelineConfig) -> dict[str, Any]:
    """The data options as :class:`rsmi.training.TrainConfig` settings (recorded with each
    model, so a reused model must have been read the same way)."""
    options = cfg.read_options()
    return {"text_column": options.text_column, "label_column": options.label_column,
            "label_names": None if options.label_names is None else list(options.label_names),
            "split_column": options.split_column, "split_seed": options.split_seed}


def evaluate_stage(
    cfg: PipelineConfig, method: str, model_dir: Path, dataset: Any, say: Say
) -> Path:
    """Clean test accuracy (two-step prediction for RSMI), cached in ``eval/<method>/``.

    Writes ``evaluation.json`` and ``predictions.jsonl`` in the shape ``rsmi evaluate`` writes
    (:mod:`rsmi.store.evaluation`); an existing evaluation made with the same settings and the
    current seeding scheme (:data:`rsmi.inference.SEEDING`) is reused.
    """
    from rsmi import RSMIClassifier
    from rsmi.inference import SEEDING, recorded_seeding
    from rsmi.store import evaluation as store
    from rsmi.training.evaluate import evaluate_with_predictions

    path = Path(cfg.out) / "eval" / method / EVALUATION_FILE
    clf = RSMIClassifier.from_pretrained(model_dir, dtype=cfg.dtype)
    clf = clf if cfg.engine == "torch" else clf.configured(engine=cfg.engine)
    if path.exists():
        try:
            cached = store.read_evaluation(path)
        except StoreError:
            cached = {}
        if (
            cached.get("config") == clf.config.to_dict()
            and cached.get("seed") == cfg.seed
            and cached.get("dtype", "float32") == clf.compute_dtype
            and cached.get("engine", "torch") == cfg.engine
            and recorded_seeding(cached) == SEEDING
        ):
            say(f"[evaluate] {method}: {path} exists, reused")
            return path
        why = "with other settings"
        if cached and recorded_seeding(cached) != SEEDING:
            why = f"under the seeding scheme {recorded_seeding(cached)!r}, not {SEEDING!r}"
        say(f"[evaluate] {method}: {path} was made {why}, evaluating again")
    measured, records = evaluate_with_predictions(clf, dataset.split("test"), seed=cfg.seed)
    measured = {**measured, **store.confusion_summary(records, clf.label_names)}  # as rsmi evaluate
    setup = store.EvaluationSetup(
        model=str(model_dir), data=cfg.data, split="test", predictions=PREDICTIONS_FILE
    )
    result = store.build_evaluation(setup, measured, clf.metadata)
    store.write_evaluation(path, result, records, path.with_name(PREDICTIONS_FILE))
    say(f"[evaluate] {method}: clean accuracy {100 * result['clean_accuracy']:.1f} %")
    return path


@functools.lru_cache(maxsize=1)
def _load_for_attacks(model_dir: str, dtype: str, saved: int) -> Any:
    """One load per model for all its recipes: ``run_attack`` attacks a configured view and
    leaves the loaded classifier as it was, so the next recipe starts from the same model."""
    from rsmi import RSMIClassifier

    return RSMIClassifier.from_pretrained(model_dir, dtype=dtype)


def attack_stage(
    cfg: PipelineConfig,
    method: str,
    recipe: str,
    model_dir: Path,
    dataset: Any,
    resources: Any,
    say: Say,
) -> Path:
    """Attack one model with one recipe; resumes an unfinished run."""
    from rsmi.attacks import AttackConfig, run_attack

    run_dir = Path(cfg.out) / "attacks" / f"{method}-{recipe}"
    summary_path = run_dir / SUMMARY_FILE
    dtype = cfg.compute_dtype()
    saved = (Path(model_dir) / MODEL_CARD_FILE).stat().st_mtime_ns  # a re-saved model is reloaded
    if summary_path.exists() and json.loads(summary_path.read_text()).get("complete"):
        summary = json.loads(summary_path.read_text())
        done = summary.get("dtype", "float32")
        engine = summary.get("engine", "torch")  # a summary without it: an attack in torch
        if (done, engine) != (dtype, cfg.engine):
            raise ResumeError(
                f"{run_dir} holds a finished attack computed in {done} by engine {engine}, not "
                f"{dtype} by {cfg.engine}: choose another --out, or use the same --dtype and "
                "--engine"
            )
        if _needs_fresh_draws(cfg, summary, lambda: _load_for_attacks(str(model_dir), dtype, saved)):
            from rsmi.attacks.fresh import rescore_run

            say(f"[attack] {method} × {recipe}: finished, re-scoring its texts with "
                f"{cfg.fresh_draws} fresh draws (deployed threat models)")
            rescore_run(run_dir, _load_for_attacks(str(model_dir), dtype, saved), cfg.fresh_draws)
            return run_dir
        say(f"[attack] {method} × {recipe}: finished, reused")
        return run_dir
    clf = _load_for_attacks(str(model_dir), dtype, saved)
    randomized = clf.config.smoothing or clf.config.masking
    config = AttackConfig(
        recipe=recipe,
        preset=cfg.preset,
        num_examples=cfg.num_examples,
        # docs/protocol.md: a randomized defense is reported as mean ± std over its attack seeds;
        # a deterministic model gives the same result for every seed, so it runs one.
        seeds=cfg.attack_seeds if randomized else cfg.attack_seeds[:1],
        eot=cfg.eot if randomized else 1,
        fresh_draws=cfg.fresh_draws if randomized else 0,  # the deployed threat models
        model=str(model_dir),
        data=cfg.data,
        dtype=dtype,
        engine=cfg.engine,
    )
    resume = run_dir.exists() and any(run_dir.iterdir())
    say(
        f"[attack] {method} × {recipe}: {'resuming' if resume else 'attacking'} {cfg.num_examples} examples"
    )
    run_attack(clf, dataset.split("test"), config, run_dir, resources=resources, resume=resume)
    return run_dir


def _needs_fresh_draws(cfg: PipelineConfig, summary: dict[str, Any], load: Callable[[], Any]
                       ) -> bool:
    """A finished attack of a randomized model lacks the fresh draws ``cfg`` asks for (none, not
    all records, or another R): it is re-scored rather than attacked again. The model's
    settings are those the summary records (``load()``: the model, where it records none)."""
    from rsmi.attacks.fresh import is_deterministic

    block = summary.get("fresh_draws") or {}
    if not cfg.fresh_draws or (block.get("complete") and block.get("draws") == cfg.fresh_draws):
        return False
    settings = (summary.get("model") or {}).get("rsmi_config") or load().config
    return not is_deterministic(settings)


PIPELINE_RUN_FILES = (PIPELINE_FILE, "models", "eval", "attacks", PIPELINE_REPORT_FILE,
                      PIPELINE_PLOT_FILE, PIPELINE_HTML_FILE)


def run_pipeline(
    cfg: PipelineConfig, say: Say | None = None, *, overwrite: bool = False
) -> list[Any]:
    """Run (or resume) every stage; return the result rows (``rsmi.reports.ResultRow``).

    ``cfg.out`` is claimed as a pipeline run (:func:`rsmi.rundir.claim_run`): a directory with
    other files is refused unless ``overwrite``, and a second process on it is stopped.
    """
    from rsmi.rundir import claim_run

    if not isinstance(cfg.fresh_draws, int) or cfg.fresh_draws < 0:
        raise ConfigError(f"fresh_draws={cfg.fresh_draws!r} is invalid: give R ≥ 1 fresh draws "
                          "per attacked text (20 is the default), or 0 for none")
    with claim_run(cfg.out, "pipeline", overwrite=overwrite, legacy=PIPELINE_RUN_FILES,
                   evidence=(PIPELINE_FILE,)):
        return _run_pipeline(cfg, say)


def _run_pipeline(cfg: PipelineConfig, say: Say | None) -> list[Any]:
    from rsmi import reports
    from rsmi.reports.html import write_html
    from rsmi.reports.model_card import write_model_card
    from rsmi.resources import Resources
    from rsmi.resources.prepare import prepare

    say = say or (lambda msg: logger.info("%s", msg))
    out = Path(cfg.out)
    atomic_write_text(out / PIPELINE_FILE, json.dumps(asdict(cfg), indent=2) + "\n")
    dataset = cfg.read_options().load(cfg.data)
    resources = None
    if cfg.recipes:
        say("[resources] preparing offline attack resources (once; verified afterwards)")
        prepare(progress=say)
        resources = Resources.load()
    rows = []
    for method in cfg.methods:
        model_dir = train_stage(cfg, method, dataset, say)
        own = [reports.load_row(evaluate_stage(cfg, method, model_dir, dataset, say))]
        for recipe in cfg.recipes:
            run_dir = attack_stage(cfg, method, recipe, model_dir, dataset, resources, say)
            own.append(reports.load_row(run_dir))
        write_model_card(model_dir, own)  # README.md with this model's results
        rows += own
    plot = reports.plot(rows, out / PIPELINE_PLOT_FILE, title=f"{cfg.data}: clean vs under attack")
    fresh = (f"{cfg.fresh_draws} fresh draws per text for the deployed threat models"
             if cfg.fresh_draws else "no fresh draws (protocol threat model only)")
    notes = (
        f"Data `{cfg.data}`, backbone `{cfg.model}`, {cfg.epochs} epoch(s), max length "
        f"{cfg.max_length}; attacks: {', '.join(cfg.recipes) or 'none'}, preset `{cfg.preset}`, "
        f"{cfg.num_examples} test examples, attack seeds {list(cfg.attack_seeds)}, no output "
        f"cache, {fresh}."
    )
    atomic_write_text(
        out / PIPELINE_REPORT_FILE,
        reports.markdown_report(
            rows, title="rsmi pipeline results", notes=notes, plot_file=plot.name,
            cols=table_columns(rows),
        ),
    )
    write_html(reports.ResultSet(rows), out / PIPELINE_HTML_FILE, title="rsmi pipeline results")
    return rows


def table_columns(rows: list[Any]) -> list[str]:
    """The main job's table: the default columns, and the deployed threat models beside the
    protocol AUA when its attacks have fresh draws (printed and in ``report.md``)."""
    from rsmi.reports import DEFAULT_COLUMNS
    from rsmi.reports.threat_models import with_deployed

    return with_deployed(DEFAULT_COLUMNS, rows)
