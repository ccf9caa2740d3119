"""One example → one record: attack it (directly or by transfer) and describe the result.

Everything random while attacking example ``index`` under seed ``s`` (the model's noise and
masks, TextAttack's random character edits) derives from ``row_seed(s, index)``, so a record
does not depend on which other examples ran before it: a resumed, a sharded and an
uninterrupted run give the same records.
"""

from __future__ import annotations

import random
import time
from typing import Any

import numpy as np

from rsmi.attacks.config import AttackConfig
from rsmi.attacks.metrics import FAILED, SKIPPED, SUCCESSFUL
from rsmi.attacks.sampling import AttackExample
from rsmi.noise import row_seed


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
        model_s=round(float(wrapper.model_seconds), 4),
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
    with wrapper.deterministic():
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


__all__ = ["attack_example"]
