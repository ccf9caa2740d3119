"""``README.md`` of a saved model: a Hugging Face style model card generated from its records.

Every model ``rsmi train`` saves gets one (:func:`write_model_card`, after each save of the
best epoch); ``rsmi report --model-card DIR [RUN_OR_DIR ...]`` and ``rsmi pipeline`` refresh
it with the results found for that model (clean evaluations, attacks). Its parts:

* YAML front matter (the Hub's model-card metadata): ``library_name: rsmi``, ``tags``,
  ``pipeline_tag``, ``datasets``, ``metrics``, ``base_model``;
* how to load it (rsmi, never plain transformers: :mod:`rsmi.store.hf_config`);
* the labels, the RSMI settings (``rsmi.json``), the training data and its digest
  (``training_config.json``'s ``resolved.data_sha256``), the dev accuracy of the saved epoch
  with its 95 % Wilson interval, and the result tables (:mod:`rsmi.reports.tables`).

The README is documentation, not part of the model: ``rsmi.json`` records no digest of it
(:func:`rsmi.store.model_card.answer_files` lists what is digested), so refreshing it never
invalidates the model.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rsmi.reports import threat_models as tm
from rsmi.reports.rows import ResultRow
from rsmi.reports.stats import wilson
from rsmi.reports.tables import fmt_interval, markdown_table
from rsmi.store.atomic import atomic_write_text
from rsmi.store.model_card import read_card
from rsmi.store.names import MODEL_CARD_FILE, README_FILE, TRAINING_CONFIG_FILE, WEIGHTS_FILE

TAGS = ("rsmi", "randomized-smoothing", "text-classification", "adversarial-robustness")
BACKBONE_IDS = {"minilm": "sentence-transformers/all-MiniLM-L6-v2",
                "all-minilm-l6-v2": "sentence-transformers/all-MiniLM-L6-v2"}
CLEAN_COLUMNS = "dataset,split,clean,clean_ci,fwd,n"
ATTACK_COLUMNS = "dataset,attack,seeds,clean,aua,aua_ci,asr,fwd_per_query,n"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _base_model(backbone: Any) -> str | None:
    """A Hub id for ``base_model`` (a local directory is not one: left out)."""
    if not backbone:
        return None
    text = str(backbone)
    if text.lower() in BACKBONE_IDS:
        return BACKBONE_IDS[text.lower()]
    return None if Path(text).exists() or text.startswith((".", "/")) else text


def front_matter(card: Mapping[str, Any], training: Mapping[str, Any],
                 rows: Sequence[ResultRow]) -> str:
    """The YAML front matter (between ``---`` lines)."""
    import yaml

    meta = card.get("metadata") or {}
    data = training.get("data") or (meta.get("training") or {}).get("data")
    fields: dict[str, Any] = {"library_name": "rsmi", "pipeline_tag": "text-classification",
                              "tags": list(TAGS)}
    base = _base_model(training.get("model") or meta.get("backbone"))
    if base:
        fields["base_model"] = base
    datasets = sorted({str(d) for d in [data, *(r.dataset for r in rows)] if d and d != "?"})
    if datasets:
        fields["datasets"] = datasets
    fields["metrics"] = ["accuracy"] + (["accuracy_under_attack"] if any(
        r.kind == "attack" for r in rows) else [])
    return "---\n" + yaml.safe_dump(fields, sort_keys=False, allow_unicode=True) + "---\n"


def _settings_table(config: Mapping[str, Any]) -> str:
    lines = ["| setting | value |", "|---|---|"]
    lines += [f"| `{k}` | {json.dumps(v)} |" for k, v in config.items()]
    return "\n".join(lines)


def _training_section(card: Mapping[str, Any], training: Mapping[str, Any]) -> list[str]:
    meta = (card.get("metadata") or {}).get("training") or {}
    resolved = training.get("resolved") or {}
    if not training and not meta:
        return ["No training record (`training_config.json`) beside the weights."]
    facts = [
        ("method", card.get("method")), ("backbone", training.get("model")),
        ("data", training.get("data") or meta.get("data")),
        ("split seed", training.get("split_seed")),
        ("text / label column", " / ".join(str(training.get(k) or "default")
                                            for k in ("text_column", "label_column"))),
        ("training / dev examples", f"{resolved.get('num_train_examples', '?')} / "
                                    f"{resolved.get('num_dev_examples', '?')}"),
        ("data sha256", f"`{resolved['data_sha256']}`" if resolved.get("data_sha256") else None),
        ("epochs (saved epoch)", f"{training.get('epochs', '?')} ({meta.get('epoch', '?')})"),
        ("learning rate", resolved.get("lr", training.get("lr"))),
        ("seed", training.get("seed")), ("compute dtype", resolved.get("dtype")),
    ]
    return [f"- {name}: {value}" for name, value in facts if value not in (None, "", "? / ?")]


def _dev_accuracy(card: Mapping[str, Any]) -> str | None:
    meta = (card.get("metadata") or {}).get("training") or {}
    accuracy, check = meta.get("dev_accuracy"), meta.get("learning_check") or {}
    if accuracy is None:
        return None
    n = check.get("num_dev_examples")
    interval = fmt_interval(wilson(round(accuracy * n), n)) if n else "?"
    text = f"Dev accuracy of the saved epoch: **{100 * accuracy:.1f} %** (95 % Wilson CI {interval}, N = {n or '?'})"
    if check and not check.get("learned", True):
        text += (" — **the model did not learn**: not significantly above the majority-class "
                 f"rate {100 * check['majority_rate']:.1f} % (p = {check['p_value']:.3g})")
    return text + "."


def _title(path: Path) -> str:
    """The directory's name; a ``seed-<s>`` directory with its parent (``rsmi-paper/seed-0``)."""
    full = path.resolve()
    if full.name.startswith("seed-") and full.name[5:].isdigit():
        return f"{full.parent.name}/{full.name}"
    return full.name


def render_model_card(model_dir: str | os.PathLike[str], rows: Sequence[ResultRow] = ()) -> str:
    """The README.md text of ``model_dir`` with the results ``rows`` (already its own)."""
    path = Path(model_dir)
    card = read_card(path)
    training = _read_json(path / TRAINING_CONFIG_FILE)
    names = card.get("label_names") or []
    clean = [r for r in rows if r.kind == "clean"]
    attacked = [r for r in rows if r.kind == "attack"]
    parts = [
        front_matter(card, training, rows),
        f"# {_title(path)} — an RSMI text classifier\n",
        "A text classifier made robust to word-substitution attacks with **RSMI** (Randomized "
        "Smoothing with Masked Inference; Moon et al., ACL 2023): Gaussian noise on the hidden "
        "states and masking of the most salient tokens, at training and at inference. The "
        "model is the *smoothed* classifier, estimated by two-step Monte-Carlo sampling.\n",
        "## How to use\n",
        "Load it with the `rsmi` library — plain `transformers` refuses this directory "
        "on purpose (its `config.json` names the model type `rsmi-…`), because it would run the "
        "bare encoder without the noise and masks that make the model robust.\n",
        "```python\nfrom rsmi import RSMIClassifier, text_classification_pipeline\n\n"
        f'clf = RSMIClassifier.from_pretrained("{path}")\n'
        'clf.predict(["a gorgeous, witty, seductive movie."], seed=0).labels\n'
        f'classify = text_classification_pipeline("{path}")  # transformers-style\n'
        'classify("a gorgeous, witty, seductive movie.")  # [{"label": ..., "score": ...}]\n```\n',
        f"or `rsmi predict --model {path} \"some text\"`, `rsmi serve --model {path}`.\n",
        f"## Labels\n\n{', '.join(f'`{n}`' for n in names) or '?'}\n",
        "## RSMI settings\n\nAs saved in `rsmi.json` (what each does: docs/method.md of rsmi).\n",
        _settings_table(card.get("config") or {}) + "\n",
        "## Training\n",
        "\n".join(_training_section(card, training)) + "\n",
        "## Results\n",
    ]
    dev = _dev_accuracy(card)
    if dev:
        parts.append(dev + "\n")
    if clean:
        parts += ["Clean accuracy (two-step smoothed prediction):\n", markdown_table(clean, CLEAN_COLUMNS) + "\n"]
    if attacked:
        cols = tm.with_deployed(ATTACK_COLUMNS.split(","), attacked)
        parts += ["Under attack (AUA: accuracy under attack; ASR: attack success rate):\n",
                  markdown_table(attacked, cols) + "\n"]
        if tm.has_deployed(attacked):
            parts.append(tm.legend_line(cols) + " " + tm.NO_FRESH_DRAWS + ".\n")
    else:
        parts.append("Not attacked yet: `rsmi attack`, then `rsmi report --model-card "
                     f"{path} RUN_DIR` adds the robustness results here.\n")
    digest = (card.get("weights_sha256") or {}).get(WEIGHTS_FILE)
    if digest:
        parts.append(f"Weights: `{WEIGHTS_FILE}`, sha256 `{digest}` (checked at every load).\n")
    parts.append("*Generated by rsmi from the model's records; refresh with "
                 f"`rsmi report --model-card {path} [RUN_OR_DIR ...]`.*\n")
    return "\n".join(parts)


def write_model_card(model_dir: str | os.PathLike[str], rows: Sequence[ResultRow] = ()) -> Path:
    """Write (atomically) ``model_dir/README.md``; returns its path."""
    return atomic_write_text(Path(model_dir) / README_FILE, render_model_card(model_dir, rows))


def _same_path(a: Any, b: Path) -> bool:
    try:
        return bool(a) and Path(str(a)).resolve() == b.resolve()
    except (OSError, RuntimeError):
        return False


def belongs_to(row: ResultRow, model_dir: str | os.PathLike[str]) -> bool:
    """Whether a result was measured on this model (its recorded path or weights digest)."""
    path = Path(model_dir)
    data = _read_json(Path(row.source)) if row.source else {}
    model = data.get("model")
    info = model if isinstance(model, dict) else {}
    recorded = [model if isinstance(model, str) else None, (data.get("config") or {}).get("model"),
                info.get("path")]
    if any(_same_path(p, path) for p in recorded):
        return True
    weights = (_read_json(path / MODEL_CARD_FILE).get("weights_sha256") or {}).get(WEIGHTS_FILE)
    return bool(weights) and info.get("weights_sha256") == weights


def results_for_model(model_dir: str | os.PathLike[str],
                      searched: Iterable[str | os.PathLike[str]]) -> list[ResultRow]:
    """The results under ``searched`` (rsmi report's RUN_OR_DIR) measured on ``model_dir``."""
    from rsmi.reports.model import ResultSet

    return [r for r in ResultSet.load([str(s) for s in searched]).rows if belongs_to(r, model_dir)]


__all__ = ["belongs_to", "front_matter", "render_model_card", "results_for_model",
           "write_model_card"]
