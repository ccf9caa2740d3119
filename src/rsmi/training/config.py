"""`TrainConfig`: every setting of a training run in one validated, serialisable object.

The same names are used for the CLI flags (``--noise-std``), the YAML/JSON config file keys
(``noise_std``) and ``training_config.json`` in the output directory.
"""

from __future__ import annotations

import json
import math
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any

from rsmi.config import RSMIConfig
from rsmi.errors import ConfigError
from rsmi.precision import normalize_dtype
from rsmi.store.atomic import atomic_write_text
from rsmi.store.names import TRAINING_CONFIG_FILE

METHODS = ("base", "rsmi", "freelb")
CONFIG_FILE = TRAINING_CONFIG_FILE  # the name other modules import from here

# Learning rate used when --lr is not given: the reference 1e-5 is for base-size (768-d)
# encoders; small ones such as MiniLM (384-d) learn far too slowly with it.
SMALL_MODEL_HIDDEN_SIZE = 512
SMALL_MODEL_LR = 5e-5
BASE_MODEL_LR = 1e-5

RSMI_FIELDS = tuple(f.name for f in fields(RSMIConfig))

# Named FreeLB settings. "textdefender": FreeLB++ as TextDefender (Li et al., EMNLP 2021,
# github.com/RockyLzy/TextDefender trainer/freelb.py + gradient.py) runs it: adv-learning-rate
# 0.03, adv-init-mag 0.05, adv-max-norm 0 (unbounded), L2 norm type; its code's default of 5
# ascent steps raised to 10, the paper's FreeLB++ change (with the unbounded norm).
FREELB_PRESETS: dict[str, dict[str, Any]] = {
    "textdefender": {"adv_steps": 10, "adv_lr": 0.03, "adv_init_mag": 0.05, "adv_max_norm": 0.0},
}


class _FromRSMI:
    """An :class:`RSMIConfig` field read (and set) through a :class:`TrainConfig`."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: TrainConfig | None, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return getattr(obj.rsmi, self.name)

    def __set__(self, obj: TrainConfig, value: Any) -> None:
        obj.rsmi = _rsmi_config(obj.rsmi, {self.name: value})


@dataclass(init=False)
class TrainConfig:
    """Settings of one ``rsmi train`` run.

    Args:
        method: ``"base"`` (ordinary fine-tuning), ``"rsmi"`` (docs/method.md's training step) or
            ``"freelb"`` (FreeLB++ adversarial training in embedding space).
        model: backbone (``"minilm"``, a Hugging Face model directory/id, or a saved RSMI dir).
        data: dataset name or path for :func:`rsmi.data.load_dataset` (``None`` when a loaded
            ``TextDataset`` is passed to :func:`rsmi.training.train`).
        out: output directory (model, ``training_config.json``, ``log.jsonl``, checkpoint).
        epochs: passes over the training data.
        max_examples: train on a seeded random subset of this many training examples.
        max_eval_examples: evaluate on a seeded subset of this many dev examples each epoch.
        seed: seeds data order, dropout, RSMI noise, FreeLB initialisation and model head.
        split_seed: seed of the dataset's train/dev/test split (datasets without official splits).
        text_column, label_column: columns of a local/HF dataset file.
        label_names: the label set in index order (default: the data's distinct labels).
        split_column: the column of a local file naming each row's split (default: ``split``).
        rsmi: the :class:`rsmi.RSMIConfig` of the run (used by ``rsmi`` and saved with the
            model; ``base``/``freelb`` models are saved with ``RSMIConfig.plain(max_length)``).
            Its fields are also settings of their own here: ``TrainConfig(noise_std=0.3)``,
            ``cfg.noise_std``, the flags and the flat keys of ``training_config.json``.
        lr: AdamW learning rate; ``None`` = 5e-5 for hidden size ≤ 512, else 1e-5.
        batch_size: examples per forward pass (per process); eval_batch_size for evaluation.
        weight_decay: AdamW weight decay (not applied to biases and LayerNorm weights).
        warmup_ratio: share of optimizer steps with linear warm-up before the linear decay.
        grad_accum: micro-batches per optimizer step.
        max_grad_norm: gradient-norm clipping (0 = off).
        adv_steps: FreeLB ascent steps K (FreeLB++ uses 10; 3 is the CPU default here).
        adv_lr: FreeLB ascent step size on the normalised gradient.
        adv_init_mag: magnitude of FreeLB's random initial perturbation (0 = start at zero).
        adv_max_norm: per-example L2 bound of the perturbation (0 = unbounded).
        freelb_preset: a named set of the four ``adv_*`` values (:data:`FREELB_PRESETS`;
            ``"textdefender"`` = FreeLB++: 10 steps, lr 0.03, init 0.05, unbounded). Through
            :meth:`from_dict` (config files, the CLI) it fills the ``adv_*`` values not given;
            values that contradict it are an error.
        dtype: compute precision of every forward/backward pass (``"float32"``,
            ``"bfloat16"``, ``"float16"`` on CUDA, or ``"auto"``: :mod:`rsmi.precision`), via
            accelerate's autocast; weights and optimiser state stay float32.
        checkpoint_every: also checkpoint every this many optimizer steps (0 = only per epoch
            and on SIGTERM/SIGINT).
        keep_checkpoint: keep the last checkpoint after a finished run (default: delete it).
        select_epoch: save the model of this epoch (1-based) instead of the epoch with the best
            dev accuracy. For regenerating a model an earlier run selected: its ``log.jsonl``
            names the epoch (``best_epoch``), while the dev accuracy of a randomized model may
            read otherwise today (other draws, issue 28's seeding), which would pick another
            epoch. ``None``: the best dev epoch (ties keep the earlier).
    """

    method: str = "rsmi"
    model: str = "minilm"
    data: str | None = None
    out: str = "runs/train"
    epochs: int = 3
    max_examples: int | None = None
    max_eval_examples: int | None = None
    seed: int = 0
    split_seed: int = 0
    text_column: str | None = None
    label_column: str | None = None
    label_names: list[str] | None = None
    split_column: str | None = None
    # The RSMI hyperparameters; flattened into their own keys, in this place, on disk.
    rsmi: RSMIConfig = field(default_factory=RSMIConfig)
    # optimiser
    lr: float | None = None
    batch_size: int = 32
    eval_batch_size: int = 64
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    grad_accum: int = 1
    max_grad_norm: float = 1.0
    # FreeLB
    adv_steps: int = 3
    adv_lr: float = 0.03
    adv_init_mag: float = 0.05
    adv_max_norm: float = 1.0
    freelb_preset: str | None = None
    # run
    dtype: str = "float32"
    checkpoint_every: int = 0
    keep_checkpoint: bool = False
    select_epoch: int | None = None

    # The RSMIConfig fields, read and set through ``rsmi`` (``cfg.noise_std``).
    noise_std = _FromRSMI()
    noise_every = _FromRSMI()
    num_masks = _FromRSMI()
    saliency_top_k = _FromRSMI()
    candidate_rule = _FromRSMI()
    step2_resample = _FromRSMI()
    grad_noise_weight = _FromRSMI()
    k0 = _FromRSMI()
    k1 = _FromRSMI()
    alpha = _FromRSMI()
    vote = _FromRSMI()
    max_length = _FromRSMI()

    def __init__(self, *, rsmi: RSMIConfig | None = None, **settings: Any) -> None:
        """Keyword arguments: the fields above, and the ``RSMIConfig`` fields flat
        (``TrainConfig(method="rsmi", noise_std=0.3)``), which change ``rsmi``."""
        changes = {name: settings.pop(name) for name in RSMI_FIELDS if name in settings}
        unknown = set(settings) - _OWN_FIELDS
        if unknown:
            raise TypeError(f"TrainConfig got unexpected keyword argument(s): {', '.join(sorted(unknown))}")
        for f in fields(self):
            if f.name != "rsmi":
                setattr(self, f.name, settings.get(f.name, f.default))
        self._check_run_settings()
        self.rsmi = _rsmi_config(rsmi, changes)  # validated by RSMIConfig's own checks
        self._check_freelb_preset()

    def _check_run_settings(self) -> None:
        if self.label_names is not None:
            if isinstance(self.label_names, str) or not all(
                isinstance(n, str) for n in self.label_names
            ):
                raise ConfigError(
                    f"label_names={self.label_names!r} is invalid: give a list of names"
                )
            self.label_names = list(self.label_names)
        if self.method not in METHODS:
            raise ConfigError(f"method={self.method!r} is invalid: choose one of {', '.join(METHODS)}")
        self.dtype = normalize_dtype(self.dtype)
        for name in ("epochs", "batch_size", "eval_batch_size", "grad_accum", "adv_steps"):
            _check_int(name, getattr(self, name), minimum=1)
        for name in ("seed", "split_seed", "checkpoint_every"):
            _check_int(name, getattr(self, name), minimum=0)
        for name in ("max_examples", "max_eval_examples"):
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), minimum=1)
        if self.select_epoch is not None:
            _check_int("select_epoch", self.select_epoch, minimum=1)
            if self.select_epoch > self.epochs:
                raise ConfigError(
                    f"select_epoch={self.select_epoch} is invalid: the run has {self.epochs} "
                    f"epoch(s); give an epoch between 1 and {self.epochs}, or leave it unset to "
                    "save the best dev epoch")
        if self.lr is not None:
            _check_float("lr", self.lr, minimum=0.0, strict=True)
        for name in ("weight_decay", "max_grad_norm", "adv_lr", "adv_init_mag", "adv_max_norm"):
            _check_float(name, getattr(self, name), minimum=0.0)
        _check_float("warmup_ratio", self.warmup_ratio, minimum=0.0)
        if self.warmup_ratio >= 1.0:
            raise ConfigError(f"warmup_ratio={self.warmup_ratio} is invalid: it must lie in [0, 1)")

    def _check_freelb_preset(self) -> None:
        if self.freelb_preset is None:
            return
        if self.freelb_preset not in FREELB_PRESETS:
            raise ConfigError(
                f"freelb_preset={self.freelb_preset!r} is invalid: choose one of "
                f"{', '.join(FREELB_PRESETS)}"
            )
        wrong = {k: getattr(self, k) for k, v in FREELB_PRESETS[self.freelb_preset].items()
                 if getattr(self, k) != v}
        if wrong:
            raise ConfigError(
                f"freelb_preset={self.freelb_preset} sets {FREELB_PRESETS[self.freelb_preset]} "
                f"but {wrong} were given: drop those settings or the preset"
            )

    def rsmi_config(self) -> RSMIConfig:
        """The RSMI hyperparameters of this run (what an ``rsmi`` model is saved with)."""
        return self.rsmi

    def saved_config(self) -> RSMIConfig:
        """The configuration the trained model is saved with (plain for base/freelb)."""
        if self.method == "rsmi":
            return self.rsmi
        return RSMIConfig.plain(self.max_length)

    def resolved_lr(self, hidden_size: int) -> float:
        """``lr``, or the default for a backbone of this hidden size."""
        if self.lr is not None:
            return float(self.lr)
        return SMALL_MODEL_LR if hidden_size <= SMALL_MODEL_HIDDEN_SIZE else BASE_MODEL_LR

    def to_dict(self) -> dict[str, Any]:
        """The flat settings in their on-disk order (``rsmi``'s fields in its place)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "rsmi":
                out.update(self.rsmi.to_dict())
            elif f.name in LATER_SETTINGS and getattr(self, f.name) is None:
                continue  # unset: a run writes the bytes it wrote before these existed
            else:
                out[f.name] = getattr(self, f.name)
        return out

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some settings changed (flat names, or ``rsmi=``), validated again."""
        _check_keys({k: v for k, v in changes.items() if k != "rsmi"})
        current = {f.name: getattr(self, f.name) for f in fields(self)}
        return TrainConfig(**{**current, **changes})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from a flat mapping; unknown keys are an error (a typo must not pass silently).

        A ``freelb_preset`` fills the ``adv_*`` settings the mapping does not give.
        """
        data = _upgrade_keys(data)
        _check_keys(data)
        preset = FREELB_PRESETS.get(str(data.get("freelb_preset")), {})
        return cls(**{**preset, **data})

    def save(
        self, directory: Path, *, provenance: dict[str, Any] | None = None, **extra: Any
    ) -> Path:
        """Write ``training_config.json`` atomically (resolved values such as ``lr`` in ``extra``).

        ``provenance`` (:func:`rsmi.provenance.provenance`: git revision, package versions,
        machine, date) is recorded under its own key; a config file read back ignores it.
        The text is ``json.dumps(..., indent=2)`` as runs before rsmi.store wrote it (ASCII
        escapes included), so a rerun writes the same bytes.
        """
        payload = {**self.to_dict(), **({"resolved": extra} if extra else {})}
        if provenance is not None:
            payload["provenance"] = provenance
        return atomic_write_text(Path(directory) / CONFIG_FILE, json.dumps(payload, indent=2) + "\n")


# Settings added after training_config.json's first form; written only when set.
LATER_SETTINGS = ("label_names", "split_column", "select_epoch")
_OWN_FIELDS = frozenset(f.name for f in fields(TrainConfig) if f.name != "rsmi")


def setting_fields() -> tuple[Field[Any], ...]:
    """Every flat setting (a CLI flag, a config-file key, a ``training_config.json`` key) in its
    on-disk order: TrainConfig's own fields with ``rsmi`` replaced by RSMIConfig's fields."""
    out: list[Field[Any]] = []
    for f in fields(TrainConfig):
        out.extend(fields(RSMIConfig) if f.name == "rsmi" else (f,))
    return tuple(out)


SETTINGS = tuple(f.name for f in setting_fields())


def _rsmi_config(base: RSMIConfig | None, changes: dict[str, Any]) -> RSMIConfig:
    """``base`` (default ``RSMIConfig()``) with ``changes``; its ValueErrors as ConfigError."""
    try:
        if base is None:
            return RSMIConfig(**changes)
        return base.replace(**changes) if changes else base
    except ConfigError:
        raise
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Keys of a YAML or JSON config file (``noise_std: 0.3`` or ``"noise-std": 0.3``)."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"config file {file} does not exist")
    text = file.read_text(encoding="utf-8")
    if file.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"config file {file} is not valid JSON: {exc}") from exc
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {file} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {file} must hold a mapping of settings, not {type(data).__name__}")
    out = {str(k).replace("-", "_"): v for k, v in data.items()}
    # A saved training_config.json can be reused as a config file.
    out.pop("resolved", None)
    out.pop("provenance", None)
    _check_keys(out, source=str(file))
    return out


def saved_dtype(saved: dict[str, Any]) -> str:
    """The precision a saved ``training_config.json`` was trained in (older runs: their
    ``mixed_precision``; none recorded: float32)."""
    return saved.get("resolved", {}).get("dtype") or normalize_dtype(
        saved.get("dtype", saved.get("mixed_precision", "float32"))
    )


def _upgrade_keys(data: dict[str, Any]) -> dict[str, Any]:
    """Settings of older runs: ``mixed_precision`` ("no"/"bf16"/"fp16") became ``dtype``."""
    if "mixed_precision" not in data:
        return data
    out = dict(data)
    legacy = out.pop("mixed_precision")
    out.setdefault("dtype", normalize_dtype(legacy))
    return out


def _check_keys(data: dict[str, Any], source: str = "TrainConfig") -> None:
    known = set(SETTINGS)
    unknown = set(data) - known
    if unknown:
        raise ConfigError(
            f"unknown setting(s) in {source}: {', '.join(sorted(unknown))}; known settings: "
            f"{', '.join(sorted(known))}"
        )


def _check_int(name: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name}={value!r} is invalid: it must be an integer ≥ {minimum}")


def _check_float(name: str, value: Any, *, minimum: float, strict: bool = False) -> None:
    ok = (
        not isinstance(value, bool)
        and isinstance(value, (int, float))
        and math.isfinite(value)
        and (value > minimum if strict else value >= minimum)
    )
    if not ok:
        relation = ">" if strict else "≥"
        raise ConfigError(f"{name}={value!r} is invalid: it must be a finite number {relation} {minimum}")
