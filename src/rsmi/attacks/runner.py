"""Run an attack over a dataset sample: per-example records, resume, shards, seeds, merge.

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

Reproducibility: the example sample depends only on ``sample_seed``; everything random while
attacking example ``index`` under seed ``s`` (the model's noise and masks, TextAttack's random
character edits) derives from ``row_seed(s, index)``. An example's record therefore does not
depend on which other examples ran before it, so a resumed run, a sharded run and an
uninterrupted run give the same records.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import random
import re
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rsmi.attacks.config import AttackConfig, default_max_length
from rsmi.attacks.metrics import (
    FAILED,
    METRIC_KEYS,
    SKIPPED,
    SUCCESSFUL,
    aggregate_seeds,
    compute_metrics,
)
from rsmi.attacks.records import (
    EXAMPLES_FILE,
    RUN_FILE,
    SUMMARY_FILE,
    RecordWriter,
    read_records,
    repair,
    write_json,
)
from rsmi.noise import row_seed
from rsmi.provenance import provenance
from rsmi.rundir import check_run_dir, claim_run
from rsmi.training.config import CONFIG_FILE as TRAINING_CONFIG_FILE

logger = logging.getLogger(__name__)

# What an attack run writes (a run from before run markers is adopted when it holds only these).
PARTIAL_SUMMARY_EVERY_S = 60.0  # how often a running seed rewrites its partial summary.json
RUN_FILES = (EXAMPLES_FILE, RUN_FILE, SUMMARY_FILE, "seed-*", "shard-*-of-*")
RUN_EVIDENCE = (EXAMPLES_FILE, RUN_FILE, "seed-*", "shard-*-of-*")

ResultCallback = Callable[[dict[str, Any], dict[str, int]], None]
StartCallback = Callable[[int, int, int], None]


@dataclass(frozen=True)
class AttackExample:
    """One example of the attack sample.

    Attributes:
        index: position in the sample (the key of resume, shards and merge).
        data_index: position in the dataset split.
        text, label: the example (as attacked: after any cut, see :func:`cut_texts`).
        words_cut: whitespace-separated words removed from the end of the text by the cut.
    """

    index: int
    data_index: int
    text: str
    label: int
    words_cut: int = 0


def select_examples(
    examples: Sequence[Any], num_examples: int, sample_seed: int, min_words: int = 0
) -> list[AttackExample]:
    """A seeded random sample of ``num_examples`` examples with more than ``min_words`` words.

    ``examples`` are ``rsmi.data.Example`` objects or ``(text, label)`` pairs. The sample is a
    prefix of one seeded permutation, so a smaller sample is a prefix of a larger one.
    """
    pairs = [(e.text, int(e.label)) if hasattr(e, "text") else (e[0], int(e[1])) for e in examples]
    eligible = [i for i, (text, _) in enumerate(pairs) if len(text.split()) > min_words]
    if not eligible:
        raise ValueError(
            f"no example of the split has more than {min_words} words: nothing to attack"
        )
    order = np.random.default_rng(sample_seed).permutation(len(eligible))[:num_examples]
    return [
        AttackExample(index=k, data_index=eligible[j], text=pairs[eligible[j]][0], label=pairs[eligible[j]][1])
        for k, j in enumerate(order.tolist())
    ]


def cut_words(text: str, num_words: int) -> str:
    """The first ``num_words`` tokens of ``text`` split on single spaces (the RSMI authors' cut).

    ``" ".join(text.split(" ")[:num_words])``, as in their ``textattack_main.py``; a text with
    no more tokens than that is returned unchanged.
    """
    tokens = text.split(" ")
    return text if len(tokens) <= num_words else " ".join(tokens[:num_words])


def cut_to_max_length(text: str, tokenizer: Any, max_length: int) -> str:
    """The longest whitespace-word prefix of ``text`` whose tokenization fits ``max_length``.

    Special tokens count. The model reads only the first ``max_length`` tokens, so words past
    that prefix can never change its output: an attacker who sees them spends queries on them
    and a cap on modified words or a query budget counted in words grows with them. At least
    one word is kept (the model then truncates it, as it would any input).
    """
    ends = [m.end() for m in re.finditer(r"\S+", text)]

    def fits(k: int) -> bool:
        ids = tokenizer(text[: ends[k - 1]], truncation=False, verbose=False)["input_ids"]
        return len(ids) <= max_length

    if not ends or fits(len(ends)):
        return text
    best, lo, hi = 1, 1, len(ends) - 1
    while lo <= hi:  # the token count grows with the prefix: binary search on the word count
        mid = (lo + hi) // 2
        if fits(mid):
            best, lo = mid, mid + 1
        else:
            hi = mid - 1
    return text[: ends[best - 1]]


def cut_texts(
    selected: Sequence[AttackExample], config: AttackConfig, tokenizer: Any, max_length: int
) -> list[AttackExample]:
    """The sample with each text cut as the preset and ``config.cut_to_max_length`` say."""
    preset = config.preset_settings
    if preset.cut_words is None and not config.cut_to_max_length:
        return list(selected)
    out = []
    for ex in selected:
        text = ex.text
        if preset.cut_words is not None:
            text = cut_words(text, preset.cut_words)
        if config.cut_to_max_length:
            text = cut_to_max_length(text, tokenizer, max_length)
        cut = len(ex.text.split()) - len(text.split())
        out.append(dataclasses.replace(ex, text=text, words_cut=cut))
    return out


def shard_examples(selected: Sequence[AttackExample], shard: tuple[int, int]) -> list[AttackExample]:
    """Examples ``i, i + n, i + 2n, ...`` of the sample for shard ``(i, n)``."""
    i, n = shard
    return [ex for ex in selected if ex.index % n == i]


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
    on_start: StartCallback | None = None,
    on_result: ResultCallback | None = None,
    model_info: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Attack a sample of ``examples`` with ``config``; write records and summaries to ``out``.

    Args:
        classifier: an :class:`rsmi.RSMIClassifier` (its current config is the deployed model).
        examples: the split to sample from (``rsmi.data.Example`` or ``(text, label)``).
        config: recipe, preset, seeds, EOT, transfer, cache, shard, ... (recorded).
        out: output directory.
        resources: prepared offline resources (default ``rsmi.resources.Resources.load()``).
        resume: continue the records already in ``out`` (without it, existing records are
            an error, never overwritten); the model must be the same weights (by digest).
        overwrite: write into an ``out`` that holds files this command did not write.
        on_start: ``(seed, total, already_done)`` before each seed's loop (progress display).
        on_result: ``(record, counts)`` after each example (counts of the seed so far).
        model_info: extra model description for the summary.

    Returns:
        the summary (also written to ``out/summary.json``): per-seed when one seed, else with
        ``per_seed`` results and the mean ± std ``aggregate``.
    """
    out = Path(out)
    owned = {"overwrite": overwrite, "legacy": RUN_FILES, "evidence": RUN_EVIDENCE}
    check_run_dir(out, "attack", **owned)  # before any work: never write into the user's files
    whole = config.shard[1] == 1  # shards of one run write side by side: each holds its own
    with _sigterm_interrupts(), claim_run(out, "attack", enabled=whole, **owned):
        return _run_attack(classifier, examples, config, out, resources=resources,
                           resume=resume, owned=owned, on_start=on_start, on_result=on_result,
                           model_info=model_info)


def _run_attack(
    classifier: Any, examples: Sequence[Any], config: AttackConfig, out: Path, *,
    resources: Any | None, resume: bool, owned: dict[str, Any],
    on_start: StartCallback | None, on_result: ResultCallback | None,
    model_info: Mapping[str, Any] | None,
) -> dict[str, Any]:
    from rsmi.attacks._textattack import load_textattack
    from rsmi.integrity import state_digest

    started = time.perf_counter()
    preset = config.preset_settings
    selected = select_examples(examples, config.num_examples, config.sample_seed, preset.min_words)
    if config.model_overrides:
        classifier.set_config(classifier.config.replace(**config.model_overrides))
    classifier.set_dtype(config.dtype)
    max_length = config.max_length
    if max_length is None:
        mean_words = float(np.mean([len(ex.text.split()) for ex in selected]))
        max_length = default_max_length(preset, mean_words)
    if max_length is not None:
        limit = getattr(classifier.model.config, "max_position_embeddings", max_length)
        classifier.set_config(classifier.config.replace(max_length=min(max_length, limit)))
    config = config.replace(max_length=classifier.config.max_length)
    selected = cut_texts(selected, config, classifier.tokenizer, classifier.config.max_length)
    if resources is None:
        from rsmi.resources import Resources

        resources = Resources.load()
    load_textattack(resources)
    from rsmi.attacks.recipes import build_attack
    from rsmi.attacks.wrapper import RSMIModelWrapper

    wrapper = RSMIModelWrapper(classifier, batch_size=config.batch_size, eot=config.eot)
    attack = build_attack(wrapper, config, resources)
    todo = shard_examples(selected, config.shard)
    info = {**describe_model(classifier), **dict(model_info or {})}
    info["weights_sha256"] = state_digest(classifier.model)
    info.setdefault("trained_on", training_cpu(config.model))
    summaries = []
    for seed in config.seeds:
        run_dir = seed_dir(out, config, seed)
        with claim_run(run_dir, "attack", enabled=run_dir != out, **owned):
            summaries.append(
                _run_seed(
                    attack, wrapper, classifier, todo, config, seed, run_dir,
                    num_selected=len(selected), resume=resume, on_start=on_start,
                    on_result=on_result, model_info=info,
                )
            )
    if len(config.seeds) == 1:
        return summaries[0]
    summary = combine_seeds(summaries, config, time.perf_counter() - started)
    if config.shard[1] == 1:  # a shard's seeds are combined by merge_runs
        write_json(out / SUMMARY_FILE, summary)
    return summary


def _run_seed(
    attack: Any,
    wrapper: Any,
    classifier: Any,
    todo: Sequence[AttackExample],
    config: AttackConfig,
    seed: int,
    run_dir: Path,
    *,
    num_selected: int,
    resume: bool,
    on_start: StartCallback | None,
    on_result: ResultCallback | None,
    model_info: Mapping[str, Any],
) -> dict[str, Any]:
    started = time.perf_counter()
    run_cfg = config.replace(seeds=(seed,))
    _check_run_dir(run_dir, run_cfg, resume, model_info.get("weights_sha256"),
                   trained_on=model_info.get("trained_on"))
    path = run_dir / EXAMPLES_FILE
    repair(path)
    records = read_records(path)
    done = {int(r["index"]) for r in records}
    counts = {t: sum(r["result_type"] == t for r in records) for t in (SUCCESSFUL, FAILED, SKIPPED)}
    counts.update(done=len(records), total=len(todo))
    if on_start is not None:
        on_start(seed, len(todo), len(records))
    write_json(run_dir / RUN_FILE, {"config": run_cfg.to_dict(), "num_selected": num_selected,
                                    "weights_sha256": model_info.get("weights_sha256"),
                                    "trained_on": model_info.get("trained_on")})
    def write_summary() -> dict[str, Any]:
        summary = build_summary(records, run_cfg, num_selected=num_selected,
                                model_info=model_info, wall_time_s=time.perf_counter() - started)
        write_json(run_dir / SUMMARY_FILE, summary)
        return summary

    # A run stopped before its end (killed, out of time) still leaves a summary of what it
    # finished, marked ``"complete": false``: rewritten every PARTIAL_SUMMARY_EVERY_S, and once
    # more when the run is stopped (Ctrl-C, SIGTERM) so that it matches the records on disk.
    last_partial, partial = time.monotonic(), False
    try:
        with RecordWriter(path) as writer:
            for ex in todo:
                if ex.index in done:
                    continue
                record = attack_example(attack, wrapper, classifier, ex, seed, config)
                writer.write(record)
                records.append(record)
                counts[record["result_type"]] += 1
                counts["done"] += 1
                if time.monotonic() - last_partial >= PARTIAL_SUMMARY_EVERY_S:
                    write_summary()
                    last_partial, partial = time.monotonic(), True
                if on_result is not None:
                    on_result(record, dict(counts))
    except BaseException:
        if partial:  # a seed stopped within its first minute leaves its records only
            write_summary()
        raise
    return write_summary()


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM stops the run as Ctrl-C does (``KeyboardInterrupt``), so that the records and the
    partial summary on disk agree and locks are released; a second SIGTERM kills at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    restore = previous if previous is not None else signal.SIG_DFL

    def handler(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, restore)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, restore)


def training_cpu(model: str | os.PathLike[str] | None) -> str | None:
    """The CPU a saved model was trained on (``training_config.json`` beside its weights, as
    ``rsmi train`` writes it), or ``None`` when not recorded: bfloat16 training from one seed
    gives other weights on another kind of CPU, so a resumed attack names both."""
    if not model:
        return None
    import json

    try:
        data = json.loads((Path(model) / TRAINING_CONFIG_FILE).read_text(encoding="utf-8"))
        cpu = data["provenance"]["machine"]["cpu"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        return None
    return cpu if isinstance(cpu, str) and cpu else None


def _check_run_dir(
    run_dir: Path, cfg: AttackConfig, resume: bool, weights: str | None = None,
    *, trained_on: str | None = None,
) -> None:
    existing = read_records(run_dir / EXAMPLES_FILE)
    if existing and not resume:
        raise ValueError(
            f"{run_dir} already holds {len(existing)} attacked examples: pass --resume to "
            "continue that run, or choose another --out"
        )
    run_file = run_dir / RUN_FILE
    if resume and run_file.exists():
        import json

        try:
            meta = json.loads(run_file.read_text(encoding="utf-8"))
            previous = AttackConfig.from_dict(meta["config"])
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f"cannot resume {run_dir}: {run_file} cannot be read ({exc}); start a new run in "
                "another --out"
            ) from exc
        recorded = meta.get("weights_sha256")
        if existing and recorded and weights and recorded != weights:
            before = meta.get("trained_on")
            if before and trained_on and before != trained_on:
                why = (f"those weights were trained on {before!r}, these on {trained_on!r}: "
                       "training from the same seed gives other weights on another kind of CPU "
                       "(docs/training.md); retrain on the first kind of machine to resume, or "
                       "attack this model in a new --out")
            else:
                why = ("the model at that path was replaced, or retrained: training from the same "
                       "seed gives other weights on another kind of CPU (docs/training.md); "
                       "attack this model in a new --out")
            raise ValueError(
                f"cannot resume {run_dir}: its {len(existing)} records were made with other model "
                f"weights (sha256 {recorded[:12]}…, now {weights[:12]}…, model "
                f"{cfg.model or '?'}); {why}"
            )
        old, new = previous.identity(), cfg.identity()
        if recorded and weights and recorded == weights:  # the same weights, wherever they are
            old.pop("model", None)
            new.pop("model", None)
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        if diff or previous.seeds != cfg.seeds or previous.shard != cfg.shard:
            raise ValueError(
                f"cannot resume {run_dir}: it was run with other settings "
                f"({', '.join(f'{k}={old.get(k)!r}' for k in diff) or 'seeds/shard'}); "
                "repeat the original arguments or choose another --out"
            )


def _seed_everything(example_seed: int) -> None:
    """TextAttack's random transformations draw from the global RNGs: seed them per example."""
    import torch

    random.seed(example_seed)
    np.random.seed(example_seed % 2**32)
    torch.manual_seed(example_seed)


def attack_example(
    attack: Any, wrapper: Any, classifier: Any, ex: AttackExample, seed: int, config: AttackConfig
) -> dict[str, Any]:
    """Attack one example; its record for ``examples.jsonl``."""
    from textattack.shared import AttackedText

    from rsmi.attacks.recipes import set_query_budget

    example_seed = row_seed(seed, ex.index)
    _seed_everything(example_seed)
    wrapper.start_example(example_seed)
    if config.cache:
        attack.goal_function.clear_cache()  # results must not depend on earlier examples
    original = AttackedText(ex.text)
    budget = set_query_budget(attack, config.preset_settings, original.num_words)
    started = time.perf_counter()
    if config.transfer:
        record = _transfer_attack(attack, wrapper, classifier, ex, original)
    else:
        record = _direct_attack(attack, wrapper, ex)
    record.update(
        queries=int(wrapper.queries) if "queries" not in record else record["queries"],
        forward_passes=int(wrapper.forward_passes),
        query_budget=None if budget == float("inf") else int(budget),
        num_words=original.num_words,
        wall_s=round(time.perf_counter() - started, 4),
    )
    return {
        "index": ex.index, "data_index": ex.data_index, "seed": seed, **record,
        "words_cut": ex.words_cut,
    }


def _result_type(result: Any) -> str:
    from textattack.attack_results import (
        FailedAttackResult,
        SkippedAttackResult,
        SuccessfulAttackResult,
    )

    if isinstance(result, SuccessfulAttackResult):
        return SUCCESSFUL
    if isinstance(result, SkippedAttackResult):
        return SKIPPED
    if isinstance(result, FailedAttackResult):
        return FAILED
    raise TypeError(f"unexpected TextAttack result {type(result).__name__}")


def _probs_list(raw: Any) -> list[float]:
    return [round(float(p), 6) for p in np.asarray(raw, dtype=np.float64).ravel()]


def _direct_attack(attack: Any, wrapper: Any, ex: AttackExample) -> dict[str, Any]:
    result = attack.attack(ex.text, int(ex.label))
    orig, pert = result.original_result, result.perturbed_result
    kind = _result_type(result)
    changed = len(orig.attacked_text.all_words_diff(pert.attacked_text)) if kind == SUCCESSFUL else 0
    return {
        "original_text": ex.text,
        "perturbed_text": pert.attacked_text.text,
        "ground_truth": int(ex.label),
        "original_output": int(orig.output),
        "original_score": float(orig.score),
        "original_probs": _probs_list(orig.raw_output),
        "perturbed_output": int(pert.output),
        "perturbed_score": float(pert.score),
        "perturbed_probs": _probs_list(pert.raw_output),
        "result_type": kind,
        "num_words_perturbed": changed,
        "perturbed_word_pct": 100.0 * changed / max(orig.attacked_text.num_words, 1),
        "goal_function_queries": int(attack.goal_function.num_queries),
    }


def _transfer_attack(
    attack: Any, wrapper: Any, classifier: Any, ex: AttackExample, original: Any
) -> dict[str, Any]:
    """Attack the noise-off surrogate, then score clean and adversarial text with the smoothed model."""
    from textattack.shared import AttackedText

    from rsmi.attacks.wrapper import deterministic

    label = int(ex.label)
    p_clean = wrapper.predict_probs([ex.text])[0]
    base = {
        "original_text": ex.text,
        "ground_truth": label,
        "original_output": int(np.argmax(p_clean)),
        "original_score": float(1.0 - p_clean[label]),
        "original_probs": _probs_list(p_clean),
    }
    if int(np.argmax(p_clean)) != label:
        return {**base, "perturbed_text": ex.text, "perturbed_output": base["original_output"],
                "perturbed_score": base["original_score"], "perturbed_probs": base["original_probs"],
                "result_type": SKIPPED, "surrogate_result_type": None, "num_words_perturbed": 0,
                "perturbed_word_pct": 0.0, "queries": 0, "goal_function_queries": 0}
    before = wrapper.queries
    with deterministic(classifier):
        result = attack.attack(ex.text, label)
    surrogate_queries = wrapper.queries - before
    adv_text = result.perturbed_result.attacked_text.text
    p_adv = wrapper.predict_probs([adv_text])[0]
    fooled = int(np.argmax(p_adv)) != label
    changed = len(original.all_words_diff(AttackedText(adv_text))) if fooled else 0
    return {
        **base,
        "perturbed_text": adv_text,
        "perturbed_output": int(np.argmax(p_adv)),
        "perturbed_score": float(1.0 - p_adv[label]),
        "perturbed_probs": _probs_list(p_adv),
        "result_type": SUCCESSFUL if fooled else FAILED,
        "surrogate_result_type": _result_type(result),
        "num_words_perturbed": changed,
        "perturbed_word_pct": 100.0 * changed / max(original.num_words, 1),
        "queries": int(surrogate_queries),
        "goal_function_queries": int(attack.goal_function.num_queries),
    }


# ---------------------------------------------------------------------------- summaries
def describe_model(classifier: Any) -> dict[str, Any]:
    """What the summary records about the attacked model."""
    return {
        "method": getattr(classifier, "method", None),
        "rsmi_config": classifier.config.to_dict(),
        "label_names": list(classifier.label_names),
        "metadata": dict(getattr(classifier, "metadata", {}) or {}),
    }


def _run_fields(config: AttackConfig, wall_time_s: float | None) -> dict[str, Any]:
    """What every summary records about the run: settings and provenance."""
    return {
        "recipe": config.recipe,
        "preset": config.preset,
        "eot": config.eot,
        "transfer": config.transfer,
        "cache": config.cache,
        "dtype": config.dtype,
        "cut_to_max_length": config.cut_to_max_length,
        "preset_settings": dataclasses.asdict(config.preset_settings),
        "config": config.to_dict(),
        "wall_time_s": None if wall_time_s is None else round(wall_time_s, 3),
        **provenance(),
    }


def build_summary(
    records: Iterable[Mapping[str, Any]],
    config: AttackConfig,
    *,
    num_selected: int,
    model_info: Mapping[str, Any] | None = None,
    wall_time_s: float | None = None,
) -> dict[str, Any]:
    """``summary.json`` of one seed: metrics from the records, plus provenance."""
    recs = list(records)
    metrics = compute_metrics(recs)
    return {
        **metrics,
        "num_selected": num_selected,
        "complete": metrics["num_examples"] == len(range(config.shard[0], num_selected, config.shard[1])),
        "seed": config.seeds[0],
        "seeds": list(config.seeds),
        "model": dict(model_info or {}),
        "method": (model_info or {}).get("method"),
        "attack_time_s": round(float(sum(r.get("wall_s", 0.0) for r in recs)), 3),
        **_run_fields(config, wall_time_s),
    }


def combine_seeds(
    summaries: Sequence[Mapping[str, Any]], config: AttackConfig, wall_time_s: float | None
) -> dict[str, Any]:
    """The multi-seed summary: per-seed results, mean ± std, and the means at top level."""
    agg = aggregate_seeds(summaries)
    top = {key: agg[key]["mean"] for key in METRIC_KEYS}
    for key in ("num_examples", "num_successful", "num_failed", "num_skipped"):
        top[key] = agg[key]["mean"]
    first = summaries[0]
    return {
        **top,
        "aggregate": agg,
        "per_seed": [dict(s) for s in summaries],
        "seeds": [s["seed"] for s in summaries],
        "model": first.get("model", {}),
        "method": first.get("method"),
        "complete": all(s.get("complete") for s in summaries),
        "attack_time_s": round(sum(float(s.get("attack_time_s") or 0.0) for s in summaries), 3),
        **_run_fields(config, wall_time_s),
    }


# ---------------------------------------------------------------------------- merge
def _find_runs(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    runs: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise FileNotFoundError(f"{p} does not exist")
        found = sorted({f.parent for f in p.rglob(RUN_FILE)})
        if not found:
            raise ValueError(f"{p} holds no attack run (no {RUN_FILE} below it)")
        runs.extend(found)
    return sorted(set(runs))


def _is_merge_output(run: Path, out: Path) -> bool:
    """Whether ``run`` was written by an earlier merge into ``out`` (not an input shard)."""
    if run.name.startswith("shard-"):
        return False
    run, out = run.resolve(), out.resolve()
    return run == out or (run.parent == out and run.name.startswith("seed-"))


def merge_runs(
    paths: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str]
) -> dict[str, Any]:
    """Combine shard (or partial) runs into one run in ``out`` and recompute the summary.

    The runs must share their settings (all but shard and batch size); an example attacked
    twice under one seed is an error. Returns the summary written to ``out/summary.json``.
    """
    import json

    out = Path(out)
    check_run_dir(out, "attack", legacy=RUN_FILES, evidence=RUN_EVIDENCE)
    by_seed: dict[int, dict[int, dict[str, Any]]] = {}
    base: AttackConfig | None = None
    num_selected = 0
    model_info: dict[str, Any] = {}
    for run in _find_runs(paths):
        if _is_merge_output(run, out):
            continue
        meta = json.loads((run / RUN_FILE).read_text())
        cfg = AttackConfig.from_dict(meta["config"])
        if base is None:
            base = cfg
        elif cfg.identity() != base.identity():
            diff = sorted(k for k, v in cfg.identity().items() if base.identity().get(k) != v)
            raise ValueError(f"{run} was run with other settings ({', '.join(diff)}): cannot merge")
        num_selected = max(num_selected, int(meta.get("num_selected", 0)))
        summary_path = run / SUMMARY_FILE
        if summary_path.exists() and not model_info:
            model_info = json.loads(summary_path.read_text()).get("model", {})
        seed = cfg.seeds[0]
        bucket = by_seed.setdefault(seed, {})
        for rec in read_records(run / EXAMPLES_FILE):
            index = int(rec["index"])
            if index in bucket:
                raise ValueError(
                    f"example {index} of seed {seed} appears twice (again in {run}): "
                    "merge each shard once"
                )
            bucket[index] = rec
    if base is None:
        raise ValueError("nothing to merge")
    seeds = tuple(sorted(by_seed))
    merged_cfg = base.replace(seeds=seeds, shard=(0, 1))
    summaries = []
    for seed in seeds:
        run_dir = out / f"seed-{seed}" if len(seeds) > 1 else out
        recs = [by_seed[seed][i] for i in sorted(by_seed[seed])]
        path = run_dir / EXAMPLES_FILE
        run_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs), encoding="utf-8")
        tmp.replace(path)
        seed_cfg = merged_cfg.replace(seeds=(seed,))
        write_json(run_dir / RUN_FILE, {"config": seed_cfg.to_dict(), "num_selected": num_selected})
        summary = build_summary(recs, seed_cfg, num_selected=num_selected, model_info=model_info)
        write_json(run_dir / SUMMARY_FILE, summary)
        summaries.append(summary)
    if len(seeds) == 1:
        return summaries[0]
    summary = combine_seeds(summaries, merged_cfg, None)
    write_json(out / SUMMARY_FILE, summary)
    return summary


def recompute_summary(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Metrics of a run directory recomputed from its ``examples.jsonl``."""
    return compute_metrics(read_records(Path(run_dir) / EXAMPLES_FILE))


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


__all__ = [
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
    "select_examples",
    "shard_examples",
    "shard_from_accelerate",
]
