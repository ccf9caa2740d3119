"""Run an attack over a dataset sample: the seed loop, resume, shards, partial summaries.

``run_attack`` is the library entry point behind ``rsmi attack``. For each attack seed it
attacks the sampled examples one by one with TextAttack's ``Attack.attack(text, label)``,
writes each example's record to ``examples.jsonl`` as soon as it is done, and writes
``summary.json`` (metrics from :func:`rsmi.attacks.metrics.compute_metrics`) at the end. While
it runs, a summary of the examples finished so far (``"complete": false``) is rewritten every
``PARTIAL_SUMMARY_EVERY_S`` seconds and when the run is stopped (Ctrl-C or SIGTERM), so a run
stopped early is still readable by ``rsmi report`` (its rows say "incomplete") and
``--resume`` continues it.

Layout of ``out``: one seed → ``out/{examples.jsonl,summary.json,run.json}``; several seeds →
``out/seed-<s>/...`` plus ``out/summary.json`` with per-seed results and mean ± std; a shard
``i/n`` writes below ``.../shard-<i>-of-<n>/`` (combine with :func:`merge_runs`).

The jobs around the loop live in their own modules: the sample (:mod:`rsmi.attacks.sampling`),
one example → one record (:mod:`rsmi.attacks.example`), summaries
(:mod:`rsmi.attacks.summary`), the resume check and ``run.json`` (:mod:`rsmi.attacks.resume`),
shard merge (:mod:`rsmi.attacks.merge`).

Reproducibility: the example sample depends only on ``sample_seed``; everything random while
attacking example ``index`` under seed ``s`` derives from ``row_seed(s, index)``, so a resumed
run, a sharded run and an uninterrupted run give the same records.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np

from rsmi.attacks.config import AttackConfig, default_max_length
from rsmi.attacks.example import attack_example
from rsmi.attacks.fresh import is_deterministic, score_missing, score_record, write_records
from rsmi.attacks.merge import merge_runs, recompute_summary
from rsmi.attacks.metrics import FAILED, SKIPPED, SUCCESSFUL
from rsmi.attacks.records import (
    ATTACK_RUN_EVIDENCE,
    ATTACK_RUN_FILES,
    EXAMPLES_FILE,
    RUN_FILE,
    SUMMARY_FILE,
    RecordWriter,
    read_records,
    repair,
    write_json,
)
from rsmi.attacks.resume import (
    RunIdentity,
    _check_run_dir,
    _read_run_file,
    check_resume,
    training_cpu,
)
from rsmi.attacks.sampling import (
    AttackExample,
    cut_texts,
    cut_to_max_length,
    cut_words,
    examples_digest,
    sample_examples,
    shard_examples,
)
from rsmi.attacks.summary import build_summary, combine_seeds, describe_model
from rsmi.errors import ConfigError
from rsmi.runctl import stop_on_signals
from rsmi.rundir import check_run_dir, claim_run

if TYPE_CHECKING:
    from typing_extensions import Unpack

logger = logging.getLogger(__name__)

PARTIAL_SUMMARY_EVERY_S = 60.0  # how often a running seed rewrites its partial summary.json

ResultCallback = Callable[[dict[str, Any], dict[str, int]], None]
StartCallback = Callable[[int, int, int], None]


class AttackHooks(TypedDict, total=False):
    """What :func:`run_attack` calls or records besides the attack itself, by event name."""

    on_start: StartCallback | None  # (seed, total, already_done) before each seed's loop
    on_result: ResultCallback | None  # (record, counts so far) after each example
    model_info: Mapping[str, Any] | None  # extra model description for the summary


def seed_dir(out: Path, cfg: AttackConfig, seed: int) -> Path:
    """Where the records of ``seed`` (and of this shard) go."""
    path = out / f"seed-{seed}" if len(cfg.seeds) > 1 else out
    i, n = cfg.shard
    return path / f"shard-{i}-of-{n}" if n > 1 else path


def run_attack(
    classifier: Any,
    examples: Sequence[Any],
    config: AttackConfig,
    out: str | os.PathLike[str],
    *,
    resources: Any | None = None,
    resume: bool = False,
    overwrite: bool = False,
    **hooks: Unpack[AttackHooks],
) -> dict[str, Any]:
    """Attack a sample of ``examples`` with ``config``; write records and summaries to ``out``.

    Args:
        classifier: an :class:`rsmi.RSMIClassifier` (its current config is the deployed model).
        examples: the split to sample from (``rsmi.data.Example`` or ``(text, label)``).
        config: recipe, preset, seeds, EOT, transfer, cache, shard, ... (recorded).
        out: output directory.
        resources: prepared offline resources (default ``rsmi.resources.Resources.load()``).
        resume: continue the records already in ``out`` (without it, existing records are
            an error, never overwritten); the model must be the same weights (by digest), the
            examples the same (by digest) and the settings the same.
        overwrite: write into an ``out`` that holds files this command did not write.
        **hooks: by name (:class:`AttackHooks`): ``on_start`` ``(seed, total, already_done)``
            before each seed's loop (progress display); ``on_result`` ``(record, counts)``
            after each example (counts of the seed so far); ``model_info``, extra model
            description for the summary.

    Returns:
        the summary (also written to ``out/summary.json``): per-seed when one seed, else with
        ``per_seed`` results and the mean ± std ``aggregate``.
    """
    unknown = sorted(set(hooks) - set(AttackHooks.__annotations__))
    if unknown:
        raise TypeError(f"run_attack() got an unexpected keyword argument {unknown[0]!r}")
    _check_margin_applies(classifier, config)  # before anything is written
    out = Path(out)
    owned = {"overwrite": overwrite, "legacy": ATTACK_RUN_FILES, "evidence": ATTACK_RUN_EVIDENCE}
    check_run_dir(out, "attack", **owned)  # before any work: never write into the user's files
    whole = config.shard[1] == 1  # shards of one run write side by side: each holds its own
    # SIGTERM stops the run as Ctrl-C does (KeyboardInterrupt), so that the records and the
    # partial summary on disk agree and locks are released; a second SIGTERM kills at once.
    config = _recorded_max_length(out, config, resume)
    with stop_on_signals(), claim_run(out, "attack", enabled=whole, **owned):
        run = _prepare(classifier, examples, config, resources, hooks.get("model_info"))
        run.resume, run.on_start, run.on_result = resume, hooks.get("on_start"), hooks.get("on_result")
        return run.run(out, owned)


def _configure_classifier(
    classifier: Any, config: AttackConfig, selected: Sequence[AttackExample]
) -> tuple[Any, AttackConfig]:
    """The classifier as attacked (overrides, dtype, max length) and the config recording it.

    Returns a view (:meth:`RSMIClassifier.configured`) sharing the caller's weights; the
    caller's classifier is not changed. The returned config carries the effective
    ``max_length``.
    """
    own = classifier.config.max_length  # what the model was trained (saved) with
    settings = classifier.config.replace(**config.model_overrides)
    max_length = settings.max_length if config.max_length is None else config.max_length
    limit = getattr(classifier.model.config, "max_position_embeddings", max_length)
    settings = settings.replace(max_length=min(max_length, limit))
    attacked = classifier.configured(settings, dtype=config.dtype, engine=config.engine)
    used = attacked.config.max_length
    if used != own:
        mean_words = float(np.mean([len(ex.text.split()) for ex in selected])) if selected else 0.0
        logger.warning(
            "attacking the model at max length %d, not its own %d (the max length it was "
            "trained with%s): texts are cut where the deployed model would not cut them; drop "
            "--max-length to attack it as trained (recorded as max_length / model_max_length)",
            used, own, _preset_note(config, mean_words, used),
        )
    return attacked, config.replace(max_length=used, model_max_length=own)


def _preset_note(config: AttackConfig, mean_words: float, used: int) -> str:
    protocol = default_max_length(config.preset_settings, mean_words)
    return f"; {used} is the {config.preset} protocol's" if protocol == used else ""


def _recorded_max_length(out: Path, config: AttackConfig, resume: bool) -> AttackConfig:
    """The max length a run recorded before ``model_max_length`` existed, for its resume.

    Such a run chose the preset's max length when none was given; resumed without
    ``--max-length`` it continues at the max length it recorded (its identity), not the
    model's own.
    """
    if not resume or config.max_length is not None:
        return config
    run_dir = seed_dir(out, config, config.seeds[0])
    if not (run_dir / RUN_FILE).is_file():
        return config  # a fresh start
    _, recorded = _read_run_file(run_dir, run_dir / RUN_FILE)  # the owner's reader
    if recorded.model_max_length is not None or recorded.max_length is None:
        return config
    logger.info("%s was recorded before model_max_length: resuming at its max length %d",
                run_dir / RUN_FILE, recorded.max_length)
    return config.replace(max_length=recorded.max_length)


def _prepare(
    classifier: Any, examples: Sequence[Any], config: AttackConfig, resources: Any | None,
    model_info: Mapping[str, Any] | None,
) -> _AttackRun:
    """Sample, configure the model, build the attack: everything the seed loop needs."""
    from rsmi.attacks._textattack import load_textattack
    from rsmi.integrity import state_digest

    started = time.perf_counter()
    selected = sample_examples(examples, config.num_examples, config.sample_seed,
                               config.preset_settings.min_words)
    classifier, config = _configure_classifier(classifier, config, selected)
    selected = cut_texts(selected, config, classifier.tokenizer, classifier.config.max_length)
    if resources is None:
        from rsmi.resources import Resources

        resources = Resources.load()
    load_textattack(resources)
    from rsmi.attacks.recipes import build_attack
    from rsmi.attacks.wrapper import RSMIModelWrapper

    wrapper = RSMIModelWrapper(classifier, batch_size=config.batch_size, eot=config.eot)
    attack = build_attack(wrapper, config, resources)
    info = {**describe_model(classifier), **dict(model_info or {})}
    info["weights_sha256"] = state_digest(classifier.model)
    info.setdefault("trained_on", training_cpu(config.model))
    return _AttackRun(attack=attack, wrapper=wrapper, classifier=classifier, config=config,
                      todo=shard_examples(selected, config.shard), num_selected=len(selected),
                      examples_sha256=examples_digest(selected), model_info=info,
                      started=started, embedding_sha256=resources.embedding_sha256)


def _check_margin_applies(classifier: Any, config: AttackConfig) -> None:
    """The adaptive attacker's margin needs a randomized model (rsmi.attacks.goals)."""
    if config.eot_margin and is_deterministic(classifier.config.replace(**config.model_overrides)):
        raise ConfigError(
            f"--eot-margin {config.eot_margin:g} has no effect on a deterministic model (no "
            "noise, no masks: every query gives the same answer, so the deployed decision is "
            "the plain argmax the direct attack already targets): drop --eot-margin"
        )


@dataclass
class _AttackRun:
    """One attack run, prepared: the attack, the model, the examples to attack, what it records.

    :meth:`run` loops over the seeds; :meth:`run_seed` attacks this run's examples under one
    seed into one directory (records, ``run.json``, summaries).
    """

    attack: Any
    wrapper: Any
    classifier: Any
    config: AttackConfig
    todo: Sequence[AttackExample]
    num_selected: int
    examples_sha256: str
    model_info: dict[str, Any]
    started: float = field(default_factory=time.perf_counter)
    embedding_sha256: str | None = None  # the synonym table's digest (Resources)
    resume: bool = False
    on_start: StartCallback | None = None
    on_result: ResultCallback | None = None

    def run(self, out: Path, owned: Mapping[str, Any]) -> dict[str, Any]:
        summaries = []
        for seed in self.config.seeds:
            run_dir = seed_dir(out, self.config, seed)
            with claim_run(run_dir, "attack", enabled=run_dir != out, **owned):
                summaries.append(self.run_seed(seed, run_dir))
        if len(self.config.seeds) == 1:
            return summaries[0]
        summary = combine_seeds(summaries, self.config, time.perf_counter() - self.started)
        if self.config.shard[1] == 1:  # a shard's seeds are combined by merge_runs
            write_json(out / SUMMARY_FILE, summary)
        return summary

    def identity(self, seed: int) -> RunIdentity:
        """What ``run.json`` of ``seed`` records (and a resume must match)."""
        return RunIdentity(
            config=self.config.replace(seeds=(seed,)), num_selected=self.num_selected,
            weights_sha256=self.model_info.get("weights_sha256"),
            trained_on=self.model_info.get("trained_on"),
            examples_sha256=self.examples_sha256, rsmi_config=self.classifier.config.to_dict(),
            embedding_sha256=self.embedding_sha256,
        )

    def score_resumed(self, path: Path, records: list[dict[str, Any]]) -> None:
        """With ``fresh_draws``, give the records of a resumed run that lack them their
        fresh-draw verdicts (then ``examples.jsonl`` is rewritten atomically, before appending)."""
        if not self.config.fresh_draws or not records:
            return
        if score_missing(self.classifier, records, self.config.fresh_draws,
                         batch_size=self.config.batch_size):
            write_records(path, records)

    def run_seed(self, seed: int, run_dir: Path) -> dict[str, Any]:
        started = time.perf_counter()
        identity = self.identity(seed)
        run_cfg = identity.config
        identity = check_resume(run_dir, identity, self.resume)
        path = run_dir / EXAMPLES_FILE
        repair(path)
        records = read_records(path)
        self.score_resumed(path, records)
        done = {int(r["index"]) for r in records}
        counts = {t: sum(r["result_type"] == t for r in records) for t in (SUCCESSFUL, FAILED, SKIPPED)}
        counts.update(done=len(records), total=len(self.todo))
        if self.on_start is not None:
            self.on_start(seed, len(self.todo), len(records))
        identity.write(run_dir)

        def write_summary() -> dict[str, Any]:
            summary = build_summary(records, run_cfg, num_selected=self.num_selected,
                                    model_info=self.model_info,
                                    wall_time_s=time.perf_counter() - started)
            write_json(run_dir / SUMMARY_FILE, summary)
            return summary

        # A run stopped before its end (killed, out of time) still leaves a summary of what it
        # finished, marked ``"complete": false``: rewritten every PARTIAL_SUMMARY_EVERY_S, and
        # once more when the run is stopped (Ctrl-C, SIGTERM) so that it matches the records.
        last_partial, partial = time.monotonic(), False
        try:
            with RecordWriter(path) as writer:
                for ex in self.todo:
                    if ex.index in done:
                        continue
                    record = attack_example(self.attack, self.wrapper, self.classifier, ex, seed,
                                            self.config)
                    if self.config.fresh_draws:  # the deployed verdicts (rsmi.attacks.fresh)
                        record = score_record(self.classifier, record, self.config.fresh_draws,
                                              batch_size=self.config.batch_size)
                    writer.write(record)
                    records.append(record)
                    counts[record["result_type"]] += 1
                    counts["done"] += 1
                    if time.monotonic() - last_partial >= PARTIAL_SUMMARY_EVERY_S:
                        write_summary()
                        last_partial, partial = time.monotonic(), True
                    if self.on_result is not None:
                        self.on_result(record, dict(counts))
        except BaseException:
            if partial:  # a seed stopped within its first minute leaves its records only
                write_summary()
            raise
        return write_summary()


def shard_from_accelerate() -> tuple[int, int] | None:
    """``(process_index, num_processes)`` under ``accelerate launch`` with several processes."""
    launched = any(k.startswith("ACCELERATE_") for k in os.environ) or "WORLD_SIZE" in os.environ
    if not launched:
        return None
    from accelerate import PartialState

    state = PartialState()
    if state.num_processes <= 1:
        return None
    return int(state.process_index), int(state.num_processes)


# The names this module has always offered (their owners are the modules named above).
_REEXPORTED = (AttackExample, attack_example, build_summary, combine_seeds, cut_texts,
               cut_to_max_length, cut_words, merge_runs, recompute_summary, shard_examples,
               _check_run_dir, training_cpu)

__all__ = [
    "ATTACK_RUN_EVIDENCE",
    "ATTACK_RUN_FILES",
    "AttackExample",
    "attack_example",
    "build_summary",
    "cut_texts",
    "cut_to_max_length",
    "cut_words",
    "combine_seeds",
    "merge_runs",
    "recompute_summary",
    "run_attack",
    "sample_examples",
    "shard_examples",
    "shard_from_accelerate",
]
