"""Fresh-draw verdicts: the deployed threat models of a randomized model (docs/attacks.md).

An attack's own verdicts come from single draws (the query whose draw flipped the label, the
last query): the **protocol** threat model. The deployed classifier answers every request with
fresh randomness, so this module classifies each record's original text and final (perturbed)
text again with ``R`` fresh draws and records per example

* ``p_correct_original``: the share of the ``R`` draws of the original text that are correct,
* ``p_correct_perturbed``: the same for the final text (a skipped example's final text is its
  original, whose draws are reused),
* ``fresh_draws`` (``R``) and ``fresh_forward_passes`` (encoder passes spent on them).

Seeds: the draws of example ``index`` under attack seed ``s`` come from one ``predict`` call
with seed ``row_seed(FRESH_DRAWS_TAG, s, index)`` on ``R`` copies of each text. Under seeding
``"text-v1"`` (:mod:`rsmi.seeding`) copy ``j`` of a text is its occurrence ``j`` in the call,
so the ``R`` copies get independent draws; the attack's own calls use
``row_seed(row_seed(s, index), t)``, a different mix of keys, so the fresh draws are disjoint
from (independent of) every draw the attack saw. A deterministic model (no noise, no masks:
base, FreeLB) needs one draw (``p`` ∈ {0, 1}).

:func:`fresh_block` turns the records into ``summary.json``'s ``fresh_draws`` block: the
example is attacked iff the majority of its clean draws is correct (``p_correct_original >
0.5``); deployed AUA for ``k`` submissions = mean over N of ``[attacked] × p^k`` (k = 1: one
submission; an attacker who sends the final text ``k`` times wins on any wrong answer); the
majority AUA = mean of ``[attacked] × [p_correct_perturbed > 0.5]``; the deployed clean
accuracy = mean ``p_correct_original``. Percentages, as every metric of a run.

:func:`rescore_run` re-scores a finished run in place (``rsmi attack rescore``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rsmi.attacks.config import AttackConfig
from rsmi.attacks.metrics import SKIPPED
from rsmi.attacks.records import EXAMPLES_FILE, RUN_FILE, SUMMARY_FILE, read_records, write_json
from rsmi.errors import ConfigError, ResumeError, StoreError
from rsmi.noise import row_seed
from rsmi.seeding import SEEDING, recorded_seeding
from rsmi.store.atomic import atomic_write_text

logger = logging.getLogger(__name__)

FRESH_DRAWS_TAG = 0x4652455348445257  # "FRESHDRW": the first key of every fresh-draw seed
DEFAULT_DRAWS = 20
K_SUBMISSIONS = (1, 5, 25)
FIELDS = ("p_correct_original", "p_correct_perturbed", "fresh_draws", "fresh_forward_passes")
CHECKPOINT_EVERY_S = 60.0  # how often rescore_run rewrites examples.jsonl while it works


def is_deterministic(settings: Any) -> bool:
    """Whether a model with these RSMI settings (``RSMIConfig`` or its dict) answers without
    randomness: no noise and no masks."""
    get = settings.get if isinstance(settings, Mapping) else lambda k, d=None: getattr(settings, k, d)
    return float(get("noise_std", 0.0) or 0.0) == 0.0 and int(get("num_masks", 0) or 0) == 0


def effective_draws(classifier: Any, draws: int) -> int:
    """``draws`` for a randomized model, 1 for a deterministic one."""
    if draws < 1:
        raise ConfigError(f"fresh draws = {draws} is invalid: give R ≥ 1 (20 is the default)")
    return 1 if is_deterministic(classifier.config) else int(draws)


def fresh_seed(seed: int, index: int) -> int:
    """The seed of the fresh draws of example ``index`` under attack seed ``seed``."""
    return row_seed(FRESH_DRAWS_TAG, int(seed), int(index))


def _model_texts(classifier: Any, texts: Sequence[str]) -> list[str]:
    """What the model is given, as in the attack's wrapper: a text left without content (all
    words deleted) becomes the unknown token."""
    empty = classifier.tokenizer.unk_token or "."
    out = [t if t.strip() else empty for t in texts]
    for i in classifier.content_free(out):
        out[i] = empty
    return out


def score_record(
    classifier: Any, record: Mapping[str, Any], draws: int, *, batch_size: int = 32
) -> dict[str, Any]:
    """``record`` with its fresh-draw fields (module docstring); ``classifier`` is the model as
    attacked (its overrides, max length and precision)."""
    r = effective_draws(classifier, draws)
    original = str(record["original_text"])
    final = original if record.get("result_type") == SKIPPED else str(record["perturbed_text"])
    texts = [original] * r if final == original else [original] * r + [final] * r
    pred = classifier.predict(
        _model_texts(classifier, texts), seed=fresh_seed(record.get("seed", 0), record["index"]),
        batch_size=batch_size,
    )
    correct = pred.labels == int(record["ground_truth"])
    p_original = float(correct[:r].mean())
    p_final = p_original if final == original else float(correct[r:].mean())
    return {
        **record,
        "p_correct_original": p_original,
        "p_correct_perturbed": p_final,
        "fresh_draws": r,
        "fresh_forward_passes": int(pred.forward_passes.sum()),
    }


def needs_scoring(record: Mapping[str, Any], draws: int) -> bool:
    """Whether ``record`` lacks fresh-draw fields made with ``draws`` (effective) draws."""
    return any(k not in record for k in FIELDS) or int(record["fresh_draws"]) != draws


def score_missing(
    classifier: Any, records: list[dict[str, Any]], draws: int, *, batch_size: int = 32,
    checkpoint: Any = None,
) -> int:
    """Score, in place, the records of ``records`` that need it; the number scored.

    ``checkpoint()`` is called every :data:`CHECKPOINT_EVERY_S` seconds while scoring (to write
    the records so far), so that a killed re-score keeps most of its work.
    """
    r = effective_draws(classifier, draws)
    scored, last = 0, time.monotonic()
    for i, record in enumerate(records):
        if not needs_scoring(record, r):
            continue
        records[i] = score_record(classifier, record, r, batch_size=batch_size)
        scored += 1
        if checkpoint is not None and time.monotonic() - last >= CHECKPOINT_EVERY_S:
            checkpoint()
            last = time.monotonic()
    return scored


def fresh_block(
    records: Sequence[Mapping[str, Any]], *, deterministic: bool | None = None
) -> dict[str, Any] | None:
    """``summary.json``'s ``fresh_draws`` block from the records (None: none was scored).

    Figures are over the scored records (all records when ``complete``), in percent.
    ``deterministic``: the model answers without randomness (None: judged from one draw).
    """
    scored = [r for r in records if all(k in r for k in FIELDS)]
    if not scored:
        return None
    p0 = np.array([float(r["p_correct_original"]) for r in scored])
    p1 = np.array([float(r["p_correct_perturbed"]) for r in scored])
    attacked = p0 > 0.5  # the majority of the clean draws is correct
    counts = sorted({int(r["fresh_draws"]) for r in scored})
    draws: int | list[int] = counts[0] if len(counts) == 1 else counts
    if deterministic is None:
        deterministic = counts == [1]
    return {
        "draws": draws,
        "deterministic": bool(deterministic),
        "seed_tag": hex(FRESH_DRAWS_TAG),
        "seeding": SEEDING,
        "num_examples": len(scored),
        "complete": len(scored) == len(records),
        "num_attacked": int(attacked.sum()),
        "clean_accuracy": 100.0 * float(p0.mean()),
        "accuracy_under_attack": 100.0 * float((attacked * p1).mean()),
        "majority_accuracy_under_attack": 100.0 * float((attacked * (p1 > 0.5)).mean()),
        "accuracy_under_attack_k": {
            str(k): 100.0 * float((attacked * p1**k).mean()) for k in K_SUBMISSIONS
        },
        "forward_passes": int(sum(int(r["fresh_forward_passes"]) for r in scored)),
    }


BLOCK_FIGURES = ("clean_accuracy", "accuracy_under_attack", "majority_accuracy_under_attack")


def combine_blocks(blocks: Sequence[Mapping[str, Any] | None]) -> dict[str, Any] | None:
    """The ``fresh_draws`` block over several attack seeds: the mean of each figure, and its
    sample std under ``std`` (None unless every seed has a block)."""
    if not blocks or any(b is None for b in blocks):
        return None
    present = [b for b in blocks if b is not None]
    out = dict(present[0])

    def stats(values: list[float]) -> tuple[float, float | None]:
        arr = np.array(values, dtype=float)
        return float(arr.mean()), (float(arr.std(ddof=1)) if len(arr) > 1 else None)

    std: dict[str, Any] = {}
    for key in BLOCK_FIGURES:
        out[key], std[key] = stats([b[key] for b in present])
    out["accuracy_under_attack_k"], std["accuracy_under_attack_k"] = {}, {}
    for k in present[0]["accuracy_under_attack_k"]:
        mean, sd = stats([b["accuracy_under_attack_k"][k] for b in present])
        out["accuracy_under_attack_k"][k], std["accuracy_under_attack_k"][k] = mean, sd
    out.update(
        std=std, num_examples=sum(int(b["num_examples"]) for b in present),
        num_attacked=sum(int(b["num_attacked"]) for b in present),
        complete=all(b.get("complete") for b in present),
        forward_passes=sum(int(b["forward_passes"]) for b in present),
    )
    return out


# ----------------------------------------------------------------------------- a finished run


def write_records(path: Path, records: Sequence[Mapping[str, Any]]) -> None:
    """Replace ``examples.jsonl`` by ``records`` in one atomic write."""
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def _seed_runs(root: Path) -> list[Path]:
    """The seed directories (those holding ``run.json``) of a run: ``root`` or ``root/seed-*``."""
    if (root / RUN_FILE).is_file():
        return [root]
    runs = sorted(p.parent for p in root.glob(f"seed-*/{RUN_FILE}"))
    if not runs:
        raise StoreError(
            f"{root} holds no attack run ({RUN_FILE} there or in seed-*/): give the directory "
            "rsmi attack --out wrote"
        )
    if any(root.glob("seed-*/shard-*-of-*")) or any(root.glob("shard-*-of-*")):
        raise StoreError(f"{root} holds shards: merge them first (rsmi attack merge)")
    return runs


def attacked_view(classifier: Any, meta: Mapping[str, Any]) -> Any:
    """The classifier as the run attacked it: its recorded RSMI settings and precision."""
    from rsmi.config import RSMIConfig

    config = AttackConfig.from_dict(meta["config"])
    if meta.get("rsmi_config"):
        settings = RSMIConfig.from_dict(dict(meta["rsmi_config"]))
    else:  # run.json of an older rsmi: its overrides and max length
        settings = classifier.config.replace(**config.model_overrides)
        if config.max_length is not None:
            settings = settings.replace(max_length=config.max_length)
    return classifier.configured(settings, dtype=config.dtype, engine=config.engine)


def check_weights(run_dir: Path, meta: Mapping[str, Any], classifier: Any) -> None:
    """Refuse a model whose weights are not those the run attacked (by tensor digest)."""
    from rsmi.integrity import state_digest

    recorded, now = meta.get("weights_sha256"), state_digest(classifier.model)
    if not recorded:
        raise ResumeError(
            f"cannot re-score {run_dir}: its {RUN_FILE} records no weights digest, so nothing "
            "shows that this model is the one attacked; re-run the attack with this rsmi"
        )
    if recorded != now:
        raise ResumeError(
            f"cannot re-score {run_dir}: it attacked other weights (sha256 {recorded[:12]}…, this "
            f"model {now[:12]}…): the model cannot be regenerated (retrained on another kind of "
            "CPU or with another torch thread count, or replaced); give the model that was "
            "attacked, or re-run the attack on this one"
        )


def rescore_run(
    run: str | Path, classifier: Any, draws: int = DEFAULT_DRAWS, *, batch_size: int = 32
) -> dict[str, Any]:
    """Add fresh-draw verdicts to a finished run in place; the run's (top) summary.

    Records that already hold the fields at the same number of draws are kept (a second call
    does nothing; a killed call continues where its last checkpoint left off). Each seed's
    ``examples.jsonl`` is rewritten atomically, then its ``summary.json`` gets the
    ``fresh_draws`` block (the attack-time figures stay beside it). Records made under the old
    seeding scheme (``"index"``) are re-scored too: the fresh draws are new draws of the final
    texts, made under this rsmi's scheme (the block's ``seeding``).

    Raises:
        ResumeError: the model's weights are not those the run attacked.
        RunLockedError: an attack (or another re-score) is writing the run.
    """
    from rsmi.attacks.records import ATTACK_RUN_EVIDENCE, ATTACK_RUN_FILES
    from rsmi.rundir import claim_run

    root = Path(run)
    seed_runs = _seed_runs(root)
    # Locked as an attack holds it: never rewritten under a running attack or a second re-score.
    with claim_run(root, "attack", legacy=ATTACK_RUN_FILES, evidence=ATTACK_RUN_EVIDENCE):
        return _rescore_locked(root, seed_runs, classifier, draws, batch_size)


def _rescore_locked(
    root: Path, seed_runs: Sequence[Path], classifier: Any, draws: int, batch_size: int
) -> dict[str, Any]:
    blocks = []
    for run_dir in seed_runs:
        meta = json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))
        check_weights(run_dir, meta, classifier)
        view = attacked_view(classifier, meta)
        path = run_dir / EXAMPLES_FILE
        records = read_records(path)
        scored = score_missing(view, records, draws, batch_size=batch_size,
                               checkpoint=lambda p=path, r=records: write_records(p, r))
        if scored:
            write_records(path, records)
        logger.info("%s: %d records re-scored, %d kept (seeding of the attack %s)", run_dir,
                    scored, len(records) - scored, recorded_seeding(meta))
        block = fresh_block(records, deterministic=is_deterministic(view.config))
        blocks.append(block)
        _update_summary(run_dir / SUMMARY_FILE, block)
    if len(seed_runs) == 1:
        return _read_summary(seed_runs[0] / SUMMARY_FILE)
    return _update_summary(root / SUMMARY_FILE, combine_blocks(blocks), per_seed=blocks)


def _read_summary(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def _update_summary(
    path: Path, block: dict[str, Any] | None, per_seed: Sequence[Any] | None = None
) -> dict[str, Any]:
    summary = _read_summary(path)
    if not summary:  # a run stopped before its first summary: its records hold the verdicts
        logger.warning("%s does not exist: the fresh-draw fields are in the records only", path)
        return summary
    summary["fresh_draws"] = block
    if per_seed is not None and isinstance(summary.get("per_seed"), list):
        for entry, seed_block in zip(summary["per_seed"], per_seed, strict=False):
            entry["fresh_draws"] = seed_block
    write_json(path, summary)
    return summary


__all__ = [
    "DEFAULT_DRAWS",
    "FIELDS",
    "FRESH_DRAWS_TAG",
    "K_SUBMISSIONS",
    "combine_blocks",
    "fresh_block",
    "fresh_seed",
    "is_deterministic",
    "rescore_run",
    "score_missing",
    "score_record",
]
