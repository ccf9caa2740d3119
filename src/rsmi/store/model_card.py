"""The model directory card (``rsmi.json``): read, verify, write — and what the run recorded.

A saved RSMI model is a directory: the weights (safetensors), the transformers ``config.json``,
the tokenizer files, and the card ``rsmi.json`` written **last** by :func:`write_card`. The card
records the sha256 of every file that changes an answer:

* ``weights_sha256`` — each safetensors weights file;
* ``files_sha256`` — ``config.json`` (layers, activation, ``id2label`` ...) and every tokenizer
  file (a tokenizer whose ids were swapped answers differently);
* ``card_sha256`` — the card's own answer-changing fields (method, architecture, RSMI config,
  label names), so an edited label name or setting is found.

:func:`load_card` reads and verifies a directory before anything is loaded from it; a failure is
a :class:`~rsmi.errors.ModelLoadError` naming the file and what to do. A card written before
these digests existed is accepted with one warning that names what cannot be checked.
:func:`check_not_incomplete` refuses a directory that holds an rsmi training run but no card
(its final save was killed), which would otherwise load as a plain encoder.

A training run writes its model into the same directory, beside ``training_config.json`` and
``log.jsonl``: :func:`training_finished`, :func:`did_not_learn`, :func:`metadata_warning` and
:func:`training_cpu` read those records. File formats: docs/protocol.md.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rsmi.errors import ConfigError, ModelLoadError
from rsmi.packages import sha256_file
from rsmi.provenance import cpu_kind
from rsmi.store.atomic import atomic_write_json
from rsmi.store.names import (
    CHECKPOINT_DIR,
    HF_CONFIG_FILE,
    MODEL_CARD_FILE,
    RUN_MARKER_FILE,
    TOKENIZER_FILES,
    TRAINING_CONFIG_FILE,
    TRAINING_LOG_FILE,
    WEIGHTS_FILE,
    WEIGHTS_INDEX_FILE,
)

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1  # new keys are additive: an older rsmi still loads (and ignores) them
WEIGHT_SUFFIX = ".safetensors"
# The card's own fields that change an answer; card_sha256 is computed over them (the file
# digests are checked against the files themselves).
IDENTITY_KEYS = ("format", "method", "architecture", "config", "label_names")


class IntegrityError(ModelLoadError):
    """A file of a model directory does not match the digest recorded when it was saved."""


# ---------------------------------------------------------------------------- digests
def weight_files(directory: str | os.PathLike[str]) -> list[Path]:
    """The safetensors weight files of a model directory, sorted by name."""
    return sorted(p for p in Path(directory).iterdir() if p.name.endswith(WEIGHT_SUFFIX))


def weights_digests(directory: str | os.PathLike[str]) -> dict[str, str]:
    """``{file name: sha256}`` of every safetensors weight file in ``directory``."""
    return {p.name: sha256_file(p) for p in weight_files(directory)}


def answer_files(directory: str | os.PathLike[str]) -> list[Path]:
    """The files besides the weights that change an answer: ``config.json``, tokenizer files."""
    directory = Path(directory)
    names = (HF_CONFIG_FILE, *TOKENIZER_FILES)
    return [directory / n for n in names if (directory / n).is_file()]


def files_digests(directory: str | os.PathLike[str]) -> dict[str, str]:
    """``{file name: sha256}`` of ``config.json`` and every tokenizer file in ``directory``."""
    return {p.name: sha256_file(p) for p in answer_files(directory)}


def card_digest(card: Mapping[str, Any]) -> str:
    """sha256 of the card's answer-changing fields (:data:`IDENTITY_KEYS`), canonical JSON."""
    fields = {k: card.get(k) for k in IDENTITY_KEYS}
    text = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------- write
def check_label_names(names: Sequence[Any], where: str) -> list[str]:
    """The label names as strings; ConfigError when one is repeated (two classes, one name)."""
    names = [str(n) for n in names]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(
            f"{where}: the label name {repeated[0]!r} is given for two classes ({names}): every "
            "class needs its own name"
        )
    return names


def write_card(
    directory: str | os.PathLike[str],
    *,
    method: str,
    architecture: str,
    config: Mapping[str, Any],
    label_names: Sequence[str],
    metadata: Mapping[str, Any],
) -> Path:
    """Write ``rsmi.json`` (atomically) for the files already saved in ``directory``.

    Call it last: the card records the digests of the weights, ``config.json`` and the
    tokenizer files as they are now. Raises ConfigError for repeated label names.
    """
    path = Path(directory)
    card: dict[str, Any] = {
        "format": "rsmi",
        "format_version": FORMAT_VERSION,
        "method": method,
        "architecture": architecture,
        "weights_sha256": weights_digests(path),
        "config": dict(config),
        "label_names": check_label_names(label_names, "cannot save the model"),
        "metadata": dict(metadata),
        "files_sha256": files_digests(path),
    }
    card["card_sha256"] = card_digest(card)
    return atomic_write_json(path / MODEL_CARD_FILE, card)


# ---------------------------------------------------------------------------- read / verify
def has_card(directory: str | os.PathLike[str]) -> bool:
    """Whether ``directory`` holds an rsmi model card (``rsmi.json``)."""
    return (Path(directory) / MODEL_CARD_FILE).exists()


def read_card(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The card of ``directory`` as saved, unverified; ModelLoadError when unreadable."""
    path = Path(directory) / MODEL_CARD_FILE
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path} is not valid JSON ({exc}): re-save the model") from exc
    if not isinstance(card, dict) or card.get("format") != "rsmi":
        raise ModelLoadError(f'{path} is not an RSMI model description (no "format": "rsmi")')
    try:
        version = int(card.get("format_version", 0))
    except (TypeError, ValueError) as exc:
        raise ModelLoadError(
            f"{path} has format_version {card.get('format_version')!r}, not a number: restore "
            "the file or re-save the model"
        ) from exc
    if version > FORMAT_VERSION:
        raise ModelLoadError(
            f"{path} has format_version {card.get('format_version')}, newer than this rsmi "
            f"({FORMAT_VERSION}): upgrade rsmi"
        )
    return card


def load_card(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The card of ``directory``, after every file it covers was verified (:func:`verify`)."""
    card = read_card(directory)
    verify(directory, card)
    return card


def verify(directory: str | os.PathLike[str], card: Mapping[str, Any]) -> None:
    """Check a model directory against its card; ModelLoadError naming the first problem.

    The weights exist and match ``weights_sha256``; ``config.json`` and the tokenizer files match
    ``files_sha256`` (none missing, none added); the card's fields match ``card_sha256``;
    ``config.json`` names the saved architecture and the card's label names, which are
    distinct. A card without some of these digests (an older rsmi) gives one warning.
    """
    source = Path(directory)
    weights = source / WEIGHTS_FILE
    if not weights.exists() and not (source / WEIGHTS_INDEX_FILE).exists():
        raise ModelLoadError(f"{weights} is missing: the model directory is incomplete")
    verify_digests(source, card.get("weights_sha256") or {}, "weights file")
    # The specific checks first (their messages say what changed), then the digests.
    hf_config = _read_hf_config(source)
    _check_architecture(source, card, hf_config)
    _check_label_names(source, card, hf_config)
    verify_digests(source, card.get("files_sha256") or {}, "file")
    if card.get("files_sha256"):
        _refuse_added_files(source, card["files_sha256"])
    if card.get("card_sha256") and card["card_sha256"] != card_digest(card):
        raise IntegrityError(
            f"{source / MODEL_CARD_FILE} was edited after the model was saved: its method, "
            "architecture, RSMI config or label names differ from those recorded; "
            "restore the file from a backup or re-save the model"
        )
    _warn_unchecked(source, card)


def verify_digests(source: Path, recorded: Mapping[str, str], what: str) -> None:
    """Each file named in ``recorded`` exists with that sha256; IntegrityError naming it."""
    for name, expected in sorted(recorded.items()):
        path = source / name
        if not path.is_file():
            raise IntegrityError(
                f"{path} is missing ({MODEL_CARD_FILE} records its sha256): the model directory "
                "is incomplete; restore the file or re-save the model"
            )
        actual = sha256_file(path)
        if actual != expected:
            raise IntegrityError(
                f"{path} is corrupt: its sha256 is {actual[:16]}…, but {expected[:16]}… was "
                f"recorded when the model was saved (the {what} was changed or replaced); restore "
                "the file from a backup or re-save (re-train) the model" + _run_advice(source)
            )


def _refuse_added_files(source: Path, recorded: Mapping[str, str]) -> None:
    for path in answer_files(source):
        if path.name not in recorded:
            raise IntegrityError(
                f"{path} was added after the model was saved ({MODEL_CARD_FILE} records no "
                "sha256 for it) and would change how texts are read: remove it or re-save the "
                "model"
            )


def _run_advice(source: Path) -> str:
    if (source / TRAINING_CONFIG_FILE).exists() and not training_finished(source):
        return (f"; {source} holds an unfinished training run (a kill while saving?): continue "
                f"it with `rsmi train --resume --out {source}`")
    return ""


def _read_hf_config(source: Path) -> dict[str, Any]:
    path = source / HF_CONFIG_FILE
    if not path.exists():
        raise ModelLoadError(f"{path} is missing: the model directory is incomplete; restore the "
                             "file or re-save the model")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(
            f"{path} cannot be read ({' '.join(str(exc).split())}): restore the file or re-save "
            "the model"
        ) from exc
    return data if isinstance(data, dict) else {}


def _check_architecture(source: Path, card: Mapping[str, Any], hf_config: Mapping[str, Any]) -> None:
    architecture = card.get("architecture")
    if not architecture:
        return
    named = (hf_config.get("architectures") or [None])[0]
    if named != architecture:
        raise ModelLoadError(
            f"{source / HF_CONFIG_FILE} names the architecture {named!r}, but the model was "
            f"saved as {architecture!r}: the file was replaced or edited; restore it or "
            "re-save the model"
        )


def _check_label_names(source: Path, card: Mapping[str, Any], hf_config: Mapping[str, Any]) -> None:
    """Distinct label names, the same (in the same order) as config.json's ``id2label``."""
    names = card.get("label_names")
    if names is None:
        return
    card_path = source / MODEL_CARD_FILE
    if not isinstance(names, list):
        raise ModelLoadError(f"{card_path}: label_names is not a list: restore the file or re-save the model")
    try:
        names = check_label_names(names, str(card_path))
    except ConfigError as exc:
        raise ModelLoadError(f"{exc}; restore the file or re-save the model") from exc
    id2label = hf_config.get("id2label")
    if not isinstance(id2label, dict) or not id2label:
        return
    saved = [id2label.get(str(i), id2label.get(i)) for i in range(len(id2label))]  # type: ignore[call-overload]
    if [str(n) for n in saved] != names:
        raise ModelLoadError(
            f"{card_path} names the classes {names}, but {source / HF_CONFIG_FILE} (which the "
            f"weights were saved with) names them {saved}: label names were edited, swapped or "
            "dropped; restore the files or re-save the model"
        )


def _warn_unchecked(source: Path, card: Mapping[str, Any]) -> None:
    unchecked = []
    if not card.get("weights_sha256"):
        unchecked.append("the weights")
    if "files_sha256" not in card:
        unchecked += [HF_CONFIG_FILE, "the tokenizer files"]
    if "card_sha256" not in card:
        unchecked.append(f"{MODEL_CARD_FILE}'s own fields (label names, RSMI settings)")
    if unchecked:
        logger.warning(
            "%s records no digest of %s (saved by an older rsmi): these cannot be verified; "
            "re-save the model (RSMIClassifier.from_pretrained(DIR).save_pretrained(DIR)) to "
            "record them", source / MODEL_CARD_FILE, _and(unchecked),
        )


def _and(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def check_not_incomplete(directory: str | os.PathLike[str]) -> None:
    """Refuse a directory that holds an rsmi training run but no card.

    Its final save was killed (or the run never saved a model): loading it as a plain encoder
    would silently give a new random head, or an unverified one.
    """
    source = Path(directory)
    if not source.is_dir() or has_card(source):
        return
    evidence = [n for n in (TRAINING_CONFIG_FILE, TRAINING_LOG_FILE, CHECKPOINT_DIR)
                if (source / n).exists()]
    marker = _read_json(source / RUN_MARKER_FILE)
    if marker and marker.get("command") == "train" and RUN_MARKER_FILE not in evidence:
        evidence.append(RUN_MARKER_FILE)
    if not evidence:
        return
    if training_finished(source):
        state = "the run finished, but its model card is missing (deleted, or the last save was killed)"
    else:
        state = ("the run has not saved a model yet, or its save was killed; continue it with "
                 f"`rsmi train --resume --out {source}`")
    raise ModelLoadError(
        f"{source} holds an rsmi training run ({', '.join(evidence)}) but no {MODEL_CARD_FILE}: "
        f"{state}. It is not loaded as a plain encoder; train again, or restore {MODEL_CARD_FILE}"
    )


# ---------------------------------------------------------------------------- the training run
def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def training_events(directory: str | os.PathLike[str]) -> Iterable[dict[str, Any]]:
    """The events of ``log.jsonl`` (a torn or unreadable line is skipped)."""
    try:
        text = (Path(directory) / TRAINING_LOG_FILE).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return
    for line in text.splitlines():
        try:
            event = json.loads(line) if line.strip() else None
        except ValueError:
            continue
        if isinstance(event, dict):
            yield event


def finished_event(directory: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The ``finished`` event the trainer logs last (None: the run has not finished)."""
    events = [e for e in training_events(directory) if e.get("event") == "finished"]
    return events[-1] if events else None


def training_finished(directory: str | os.PathLike[str]) -> bool:
    """Whether the training run in ``directory`` finished (``log.jsonl`` ends it)."""
    return finished_event(directory) is not None


def did_not_learn(directory: str | os.PathLike[str]) -> str | None:
    """Why a finished training is not a usable model, else None: ``rsmi train`` ends with a
    one-sided binomial test of dev accuracy against the majority-class rate (its ``finished``
    event records ``learned`` and the p-value)."""
    event = finished_event(directory)
    if event is None or event.get("learned") is not False:
        return None
    acc, p = event.get("best_dev_accuracy"), event.get("learning_p_value")
    return ("did not learn (dev accuracy "
            + ("?" if acc is None else f"{100 * acc:.1f} %")
            + ("" if p is None else f", p = {p:.2g} against the majority rate") + ")")


def not_learned_warning(check: Mapping[str, Any]) -> str:
    """The warning for a learning check (``metadata.training.learning_check``) that failed."""
    return (
        f"the model did not learn: dev accuracy {check['dev_accuracy']:.3f} is not significantly "
        f"above the majority-class rate {check['majority_rate']:.3f} (one-sided binomial test, "
        f"p = {check['p_value']:.3g}, n = {check['num_dev_examples']}); train longer, on more "
        "data, or with another --lr before using it"
    )


def metadata_warning(metadata: Mapping[str, Any] | None) -> str | None:
    """The warning for a model whose card's learning check says it did not learn (else None)."""
    check = ((metadata or {}).get("training") or {}).get("learning_check")
    if not check or check.get("learned", True):
        return None
    return not_learned_warning(check)


def model_warning(directory: str | os.PathLike[str]) -> str | None:
    """:func:`metadata_warning` of the card in ``directory`` (None: learned, or no card)."""
    card = _read_json(Path(directory) / MODEL_CARD_FILE)
    return None if card is None else metadata_warning(card.get("metadata") or {})


def recorded_data_options(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """How the model's training data was read (``metadata.training.data_options``: text and
    label column, split column, label names); ``{}`` for a model saved before rsmi recorded it.
    Later commands read a local file with these columns unless others are given."""
    options = ((metadata or {}).get("training") or {}).get("data_options")
    return dict(options) if isinstance(options, Mapping) else {}


NOT_LEARNED_ADVICE = (
    "try more epochs (--epochs), a higher --lr (e.g. 1e-4), a smaller --batch-size, or more data"
)


def training_summary(directory: str | os.PathLike[str]) -> str | None:
    """One line: the best dev accuracy, its epoch, the optimiser steps and the learning check
    of the finished run in ``directory`` (None: no finished run); with advice when it did not
    learn."""
    event = finished_event(directory)
    if event is None:
        return None
    settings = _read_json(Path(directory) / TRAINING_CONFIG_FILE) or {}
    acc = event.get("best_dev_accuracy")
    epochs = settings.get("epochs")
    line = ("best dev accuracy " + ("?" if acc is None else f"{100 * acc:.1f} %")
            + f" at epoch {event.get('best_epoch', '?')}"
            + (f" of {epochs}" if epochs else "")
            + f" ({event.get('global_step', '?')} optimiser steps)")
    p = event.get("learning_p_value")
    p_text = "" if p is None else f", p = {p:.2g} against the majority-class rate"
    if event.get("learned") is False:
        return f"{line}; learning check: did NOT learn{p_text} — {NOT_LEARNED_ADVICE}"
    return f"{line}; learning check: learned{p_text}"


def _provenance(directory: str | os.PathLike[str] | None) -> dict[str, Any]:
    """``provenance`` of the ``training_config.json`` beside a model ({} if none)."""
    data = _read_json(Path(directory) / TRAINING_CONFIG_FILE) if directory else None
    prov = (data or {}).get("provenance")
    return prov if isinstance(prov, dict) else {}


def training_cpu(directory: str | os.PathLike[str] | None) -> str | None:
    """The kind of CPU a saved model was trained on (:func:`rsmi.provenance.cpu_kind`; ``None``:
    not recorded). bfloat16 training from one seed gives other weights on another kind of
    CPU, so a resumed attack names both."""
    machine = _provenance(directory).get("machine")
    return cpu_kind(machine) if isinstance(machine, dict) else None


def training_dtype(directory: str | os.PathLike[str] | None) -> str | None:
    """The compute dtype a saved model was trained in (``None``: not recorded)."""
    dtype = _provenance(directory).get("dtype")
    return dtype if isinstance(dtype, str) and dtype else None


def training_threads(directory: str | os.PathLike[str] | None) -> int | None:
    """The torch thread count a saved model was trained with (``None``: not recorded): on one
    kind of CPU the same seed trains other bfloat16 weights with another thread count
    (docs/training.md), so a model is regenerated with the count its records name."""
    machine = _provenance(directory).get("machine")
    threads = machine.get("torch_threads") if isinstance(machine, dict) else None
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        return None
    return threads


__all__ = [
    "FORMAT_VERSION",
    "IntegrityError",
    "card_digest",
    "check_label_names",
    "check_not_incomplete",
    "did_not_learn",
    "files_digests",
    "finished_event",
    "has_card",
    "load_card",
    "metadata_warning",
    "model_warning",
    "not_learned_warning",
    "read_card",
    "recorded_data_options",
    "training_cpu",
    "training_dtype",
    "training_threads",
    "training_summary",
    "training_events",
    "training_finished",
    "verify",
    "verify_digests",
    "weights_digests",
    "write_card",
]
