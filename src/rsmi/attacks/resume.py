"""``run.json``: what an attack run is (its identity), and whether a run directory may resume.

A seed's ``run.json`` records the attack settings (:meth:`AttackConfig.to_dict`), the sample
size, the model's tensor digest and training CPU, a digest of the attacked examples
(:func:`rsmi.attacks.sampling.examples_digest`), the effective RSMI settings of the model and
the seeding scheme of its draws (``seeding``, :data:`rsmi.inference.SEEDING`; a ``run.json``
without it was made under ``"index"``) and the digest of the synonym table the attack drew its
candidates from (``embedding_sha256``, :attr:`rsmi.resources.Resources.embedding_sha256`: built
on each machine, its bits follow the CPU). A resumed run must match all of them (compared by
:func:`rsmi.runctl.check_resumable`), so its new records are of the same attack, on the same
examples, against the same model, drawn the same way as the old ones: a run started under
another seeding scheme is never resumed. A run directory that holds records but no ``run.json`` cannot be resumed: nothing says
what made those records.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rsmi.attacks.config import AttackConfig
from rsmi.attacks.records import EXAMPLES_FILE, RUN_FILE, read_records, write_json
from rsmi.errors import ResumeError, RunDirError
from rsmi.inference import SEEDING, recorded_seeding
from rsmi.runctl import check_resumable
from rsmi.store.model_card import training_cpu  # the owner: rsmi.store.model_card

logger = logging.getLogger(__name__)

# Identity fields added to run.json after its first format; a run without them resumes with a
# warning that names them.
LATER_FIELDS = ("examples_sha256", "rsmi_config")


@dataclass(frozen=True)
class RunIdentity:
    """What ``run.json`` records about one seed of an attack run (see the module docstring)."""

    config: AttackConfig
    num_selected: int
    weights_sha256: str | None = None
    trained_on: str | None = None
    examples_sha256: str | None = None
    rsmi_config: Mapping[str, Any] | None = field(default=None)
    seeding: str = SEEDING
    embedding_sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The content of ``run.json`` (keys in their historical order, new ones last)."""
        return {
            "config": self.config.to_dict(),
            "num_selected": self.num_selected,
            "weights_sha256": self.weights_sha256,
            "trained_on": self.trained_on,
            "examples_sha256": self.examples_sha256,
            "rsmi_config": None if self.rsmi_config is None else dict(self.rsmi_config),
            "seeding": self.seeding,
            "embedding_sha256": self.embedding_sha256,
        }

    def write(self, run_dir: Path) -> None:
        write_json(run_dir / RUN_FILE, self.to_dict())


def check_resume(run_dir: Path, wanted: RunIdentity, resume: bool) -> RunIdentity:
    """Refuse to write into ``run_dir`` unless it is empty, or ``resume`` and it is this run.

    Returns the identity to write into ``run.json``: ``wanted``, except that records of an
    older rsmi whose ``run.json`` names no synonym table keep none (this machine's table is
    not claimed for them).

    Raises:
        RunDirError: records exist and ``resume`` is off.
        ResumeError: ``resume`` and the records were made by another attack, model or sample,
            or under another seeding scheme, or ``run.json`` is missing or unreadable beside
            records.
    """
    shards = sorted(p.parent.name for p in run_dir.glob(f"shard-*-of-*/{RUN_FILE}"))
    if shards and wanted.config.shard == (0, 1) and not (run_dir / RUN_FILE).exists():
        raise ResumeError(  # split (rsmi attack split): its records live in the shards now
            f"{run_dir} holds shard runs ({', '.join(shards)}) and no run of its own: continue "
            "each with this command plus --shard i/n --resume, or combine them first with "
            f"`rsmi attack merge {run_dir} --out {run_dir}`"
        )
    existing = read_records(run_dir / EXAMPLES_FILE)
    if existing and not resume:
        raise RunDirError(
            f"{run_dir} already holds {len(existing)} attacked examples: pass --resume to "
            "continue that run, or choose another --out"
        )
    if not resume:
        return wanted
    run_file = run_dir / RUN_FILE
    if not run_file.exists():
        if existing:
            raise ResumeError(
                f"cannot resume {run_dir}: it holds {len(existing)} attacked examples but no "
                f"{RUN_FILE}, so what made them (recipe, preset, model, data, seeds) is unknown "
                f"and cannot be checked; restore its {RUN_FILE}, or start a new run in another --out"
            )
        return wanted
    meta, previous = _read_run_file(run_dir, run_file)
    _check_seeding(run_dir, meta, wanted)
    _check_weights(run_dir, meta, wanted, len(existing))
    _check_embedding(run_dir, meta, wanted, len(existing))
    old, new = _identity(meta, previous), _identity(wanted.to_dict(), wanted.config)
    if meta.get("weights_sha256") and meta.get("weights_sha256") == wanted.weights_sha256:
        old.pop("model", None)  # the same weights, wherever they are
        new.pop("model", None)
    if old.get("examples_sha256") and old.get("examples_sha256") == new.get("examples_sha256"):
        old.pop("data", None)  # the same examples, wherever the data file is
        new.pop("data", None)
    check_resumable(f"{run_dir}: it was run with other settings", old, new,
                    sorted(set(old) | set(new)),
                    advice="repeat the original arguments, with the same data file and model, "
                    "or choose another --out")
    unchecked = [name for name in LATER_FIELDS if meta.get(name) is None]
    if existing and unchecked:
        logger.warning(
            "%s: %s (written by an older rsmi) records no %s: resuming without checking that "
            "the examples (data file, split, sample) and the model's RSMI settings are those of "
            "its records", run_dir, RUN_FILE, " or ".join(unchecked),
        )
    if existing and wanted.embedding_sha256 and not meta.get("embedding_sha256"):
        logger.warning("%s: %s records no embedding_sha256: resuming without checking that the "
                       "synonym table is the one its records drew from", run_dir, RUN_FILE)
        return replace(wanted, embedding_sha256=None)
    return wanted


def _check_seeding(run_dir: Path, meta: Mapping[str, Any], wanted: RunIdentity) -> None:
    """Refuse a run whose draws were seeded under another scheme (``run.json``'s ``seeding``)."""
    check_resumable(
        f"{run_dir}: it was started under another seeding scheme (how each text's noise and mask "
        "draws are seeded, docs/method.md), so its seeds would not reproduce its records",
        {"seeding": recorded_seeding(meta)}, {"seeding": wanted.seeding},
        advice="start a new run in another --out (the old run's results stay readable by "
        "rsmi report)",
    )


def _check_embedding(run_dir: Path, meta: Mapping[str, Any], wanted: RunIdentity, n: int) -> None:
    """Refuse records made with another synonym table (``embedding_sha256`` of ``run.json``)."""
    recorded, now = meta.get("embedding_sha256"), wanted.embedding_sha256
    if not (n and recorded and now and recorded != now):
        return
    raise ResumeError(
        f"cannot resume {run_dir}: its {n} records drew their substitutions from another "
        f"synonym table (counter-fitted embedding sha256 {recorded[:12]}…, the prepared "
        f"resources now {now[:12]}…). `rsmi resources prepare` builds the table on each machine "
        "and its bits follow the CPU's BLAS (another kind of CPU or another MKL_CBWR gives other "
        "neighbours; docs/training.md): resume on the machine whose resources made the run, "
        "or attack in a new --out"
    )


def _identity(meta: Mapping[str, Any], config: AttackConfig) -> dict[str, Any]:
    """What a resume compares: the settings, seeds and shard, the examples digest and the
    model's RSMI settings (one key per field); what is not recorded is left out."""
    out = config.identity()
    out.update(seeds=list(config.seeds), shard=list(config.shard))
    if meta.get("examples_sha256") is not None:
        out["examples_sha256"] = meta["examples_sha256"]
    for name, value in (meta.get("rsmi_config") or {}).items():
        out[f"rsmi_config.{name}"] = value
    return out


def _read_run_file(run_dir: Path, run_file: Path) -> tuple[dict[str, Any], AttackConfig]:
    try:
        meta = json.loads(run_file.read_text(encoding="utf-8"))
        return meta, AttackConfig.from_dict(meta["config"])
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise ResumeError(
            f"cannot resume {run_dir}: {run_file} cannot be read ({exc}); start a new run in "
            "another --out"
        ) from exc


def _check_weights(run_dir: Path, meta: Mapping[str, Any], wanted: RunIdentity, n: int) -> None:
    recorded, weights = meta.get("weights_sha256"), wanted.weights_sha256
    if not (n and recorded and weights and recorded != weights):
        return
    before, now = meta.get("trained_on"), wanted.trained_on
    if before and now and before != now:
        why = (f"those weights were trained on {before!r}, these on {now!r}: "
               "training from the same seed gives other weights on another kind of CPU "
               "(docs/training.md); retrain on the first kind of machine, with the thread "
               "count its training_config.json names, to resume, or "
               "attack this model in a new --out")
    else:
        why = ("the model at that path was replaced, or retrained: training from the same "
               "seed gives other weights on another kind of CPU or with another torch thread "
               "count (docs/training.md); attack this model in a new --out")
    raise ResumeError(
        f"cannot resume {run_dir}: its {n} records were made with other model "
        f"weights (sha256 {recorded[:12]}…, now {weights[:12]}…, model "
        f"{wanted.config.model or '?'}); {why}"
    )


def _check_run_dir(
    run_dir: Path, cfg: AttackConfig, resume: bool, weights: str | None = None,
    *, trained_on: str | None = None,
) -> None:
    """:func:`check_resume` on the settings and weights alone (kept for callers and tests)."""
    wanted = RunIdentity(cfg, num_selected=0, weights_sha256=weights, trained_on=trained_on)
    check_resume(run_dir, wanted, resume)


__all__ = ["LATER_FIELDS", "RunIdentity", "check_resume", "training_cpu"]
