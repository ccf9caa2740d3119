"""Combine shard (or partial) attack runs into one run, split a partial run into shards, and
recompute a run's metrics.

Shards of one run share their settings (all but shard and batch size), their example sample
(``examples_sha256`` in ``run.json``, where recorded) and their seeding scheme (``seeding``,
``"index"`` where not recorded); an example attacked twice under one seed
is an error, never counted twice.

:func:`split_run` is the inverse for a run still in progress: its records go to shard runs
``shard-<i>-of-<n>/`` (example ``index % n == i``) that ``rsmi attack ... --shard i/n --resume``
continues side by side — each example's draws depend on its text, not on the run's order
(``seeding``), so the shards give the records the unsplit run would have — and
:func:`merge_runs` combines at the end.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rsmi.attacks.config import AttackConfig
from rsmi.attacks.metrics import compute_metrics
from rsmi.attacks.records import (
    ATTACK_RUN_EVIDENCE,
    ATTACK_RUN_FILES,
    EXAMPLES_FILE,
    RUN_FILE,
    SUMMARY_FILE,
    read_records,
    write_json,
)
from rsmi.attacks.summary import build_summary, combine_seeds
from rsmi.errors import StoreError
from rsmi.inference import SEEDING, recorded_seeding
from rsmi.rundir import check_run_dir, claim_run
from rsmi.store.atomic import atomic_write_text

MODEL_FIELDS = ("weights_sha256", "trained_on", "rsmi_config", "embedding_sha256")


def _find_runs(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    runs: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise FileNotFoundError(f"{p} does not exist")
        found = sorted({f.parent for f in p.rglob(RUN_FILE)})
        if not found:
            raise StoreError(f"{p} holds no attack run (no {RUN_FILE} below it)")
        runs.extend(found)
    return sorted(set(runs))


def _is_merge_output(run: Path, out: Path) -> bool:
    """Whether ``run`` was written by an earlier merge into ``out`` (not an input shard)."""
    if run.name.startswith("shard-"):
        return False
    run, out = run.resolve(), out.resolve()
    return run == out or (run.parent == out and run.name.startswith("seed-"))


class _Collected:
    """The records of the runs to merge, by seed and example index, and what they share."""

    def __init__(self) -> None:
        self.by_seed: dict[int, dict[int, dict[str, Any]]] = {}
        self.base: AttackConfig | None = None
        self.num_selected = 0
        self.model_info: dict[str, Any] = {}
        self.digest: tuple[str, Path] | None = None  # the sample's digest and a run recording it
        self.seeding: tuple[str, Path] | None = None  # the runs' seeding scheme and a run of it
        # what run.json records of the attacked model (weights digest, training CPU, effective
        # RSMI settings), the same for every shard: the merged run.json keeps them, so that a
        # resumed merged run is checked against its model as a shard would be
        self.model_fields: dict[str, tuple[Any, Path]] = {}

    def _same_weights(self, meta: dict[str, Any]) -> bool:
        """Whether a run's weights digest is recorded and equals the runs' so far."""
        weights, known = meta.get("weights_sha256"), self.model_fields.get("weights_sha256")
        return bool(weights) and known is not None and weights == known[0]

    def add(self, run: Path) -> None:
        meta = json.loads((run / RUN_FILE).read_text())
        cfg = AttackConfig.from_dict(meta["config"])
        if self.base is None:
            self.base = cfg
        elif cfg.identity() != self.base.identity():
            base = self.base.identity()
            diff = sorted(k for k, v in cfg.identity().items() if base.get(k) != v)
            raise StoreError(f"{run} was run with other settings ({', '.join(diff)}): cannot merge")
        seeding = recorded_seeding(meta)
        if self.seeding is None:
            self.seeding = (seeding, run)
        elif seeding != self.seeding[0]:
            raise StoreError(
                f"{run} was made under the seeding scheme {seeding!r}, {self.seeding[1]} under "
                f"{self.seeding[0]!r} (how each text's draws are seeded, docs/method.md): cannot "
                "merge; rerun the older shards with this rsmi"
            )
        digest = meta.get("examples_sha256")
        if digest and self.digest is None:
            self.digest = (digest, run)
        elif digest and self.digest is not None and digest != self.digest[0]:
            raise StoreError(
                f"{run} attacked other examples than {self.digest[1]} (examples_sha256 "
                f"{digest[:12]}… vs {self.digest[0][:12]}…: the data file changed between the "
                "shards): cannot merge; rerun the shards on the same data"
            )
        for name in MODEL_FIELDS:
            value = meta.get(name)
            if value is None:
                continue
            if name not in self.model_fields:
                self.model_fields[name] = (value, run)
            elif name == "trained_on" and self._same_weights(meta):
                # One model regenerated bit for bit on two machines: each shard's run.json
                # names the machine that regenerated the weights it attacked (the first kept).
                continue
            elif value != self.model_fields[name][0]:
                raise StoreError(
                    f"{run} attacked another model, or drew from another synonym table, than "
                    f"{self.model_fields[name][1]} (its run.json {name} differs): cannot merge; "
                    "merge the shards of one model, attacked with one machine's resources"
                )
        self.num_selected = max(self.num_selected, int(meta.get("num_selected", 0)))
        summary_path = run / SUMMARY_FILE
        if summary_path.exists() and not self.model_info:
            self.model_info = json.loads(summary_path.read_text()).get("model", {})
        seed = cfg.seeds[0]
        bucket = self.by_seed.setdefault(seed, {})
        for rec in read_records(run / EXAMPLES_FILE):
            index = int(rec["index"])
            if index in bucket:
                raise StoreError(
                    f"example {index} of seed {seed} appears twice (again in {run}): "
                    "merge each shard once"
                )
            bucket[index] = rec


def merge_runs(
    paths: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str]
) -> dict[str, Any]:
    """Combine shard (or partial) runs into one run in ``out`` and recompute the summary.

    The runs must share their settings (all but shard and batch size); an example attacked
    twice under one seed is an error. Returns the summary written to ``out/summary.json``.
    """
    out = Path(out)
    check_run_dir(out, "attack", legacy=ATTACK_RUN_FILES, evidence=ATTACK_RUN_EVIDENCE)
    runs = _Collected()
    for run in _find_runs(paths):
        if not _is_merge_output(run, out):
            runs.add(run)
    if runs.base is None:
        raise StoreError("nothing to merge")
    seeds = tuple(sorted(runs.by_seed))
    merged_cfg = runs.base.replace(seeds=seeds, shard=(0, 1))
    summaries = []
    for seed in seeds:
        run_dir = out / f"seed-{seed}" if len(seeds) > 1 else out
        recs = [runs.by_seed[seed][i] for i in sorted(runs.by_seed[seed])]
        atomic_write_text(run_dir / EXAMPLES_FILE,
                          "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs))
        seed_cfg = merged_cfg.replace(seeds=(seed,))
        meta: dict[str, Any] = {"config": seed_cfg.to_dict(), "num_selected": runs.num_selected}
        meta.update({name: value for name, (value, _) in runs.model_fields.items()})
        if runs.digest is not None:
            meta["examples_sha256"] = runs.digest[0]
        seeding = runs.seeding[0] if runs.seeding else SEEDING
        meta["seeding"] = seeding
        write_json(run_dir / RUN_FILE, meta)
        summary = build_summary(recs, seed_cfg, num_selected=runs.num_selected,
                                model_info=runs.model_info, seeding=seeding)
        write_json(run_dir / SUMMARY_FILE, summary)
        summaries.append(summary)
    if len(seeds) == 1:
        return summaries[0]
    summary = combine_seeds(summaries, merged_cfg, None)
    write_json(out / SUMMARY_FILE, summary)
    return summary


def split_run(run_dir: str | os.PathLike[str], shards: int) -> list[Path]:
    """Split the unfinished single-seed run in ``run_dir`` into ``shards`` shard runs.

    Each ``run_dir/shard-<i>-of-<n>/`` gets the records with ``index % n == i``, the run's
    ``run.json`` with ``shard = [i, n]`` (the model, sample, seeding and synonym-table digests
    unchanged, so a resume checks them as before) and a partial summary; the run's own
    ``examples.jsonl``, ``run.json`` and ``summary.json`` are then removed (the shards hold every
    record). Continue each shard with the run's command plus ``--shard i/n --resume`` (one
    process per core), then :func:`merge_runs` the shards into ``run_dir``. Returns the shard
    directories.
    """
    run_dir = Path(run_dir)
    if shards < 2:
        raise StoreError(f"--shards {shards}: give 2 or more shards")
    if not (run_dir / RUN_FILE).is_file():
        seeds = sorted(p.parent.name for p in run_dir.glob(f"seed-*/{RUN_FILE}"))
        raise StoreError(
            f"{run_dir} holds no single-seed attack run ({RUN_FILE}): "
            + (f"split each seed's directory ({', '.join(seeds)}) on its own" if seeds
               else "give the --out directory of an `rsmi attack` run"))
    owned = {"legacy": ATTACK_RUN_FILES, "evidence": ATTACK_RUN_EVIDENCE}
    with claim_run(run_dir, "attack", **owned):  # not while an attack is writing it
        meta = json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))
        cfg = AttackConfig.from_dict(meta["config"])
        if cfg.shard != (0, 1):
            raise StoreError(f"{run_dir} is already shard {cfg.shard[0]}/{cfg.shard[1]}: split "
                             "an unsharded run")
        taken = sorted(p.name for p in run_dir.glob("shard-*-of-*"))
        if taken:
            raise StoreError(f"{run_dir} already holds shard runs ({', '.join(taken)}): merge "
                             "them first, or continue them")
        records = read_records(run_dir / EXAMPLES_FILE)
        num_selected = int(meta.get("num_selected", 0))
        if len(records) >= num_selected:
            raise StoreError(f"{run_dir} is complete ({len(records)} of {num_selected} "
                             "examples): nothing is left to attack")
        summary_path = run_dir / SUMMARY_FILE
        model_info = (json.loads(summary_path.read_text(encoding="utf-8")).get("model", {})
                      if summary_path.exists() else {})
        out = []
        for i in range(shards):
            shard_cfg = cfg.replace(shard=(i, shards))
            mine = [r for r in records if int(r["index"]) % shards == i]
            shard_dir = run_dir / f"shard-{i}-of-{shards}"
            with claim_run(shard_dir, "attack", **owned):
                atomic_write_text(shard_dir / EXAMPLES_FILE,
                                  "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in mine))
                write_json(shard_dir / RUN_FILE, {**meta, "config": shard_cfg.to_dict()})
                write_json(shard_dir / SUMMARY_FILE, build_summary(
                    mine, shard_cfg, num_selected=num_selected, model_info=model_info,
                    seeding=recorded_seeding(meta)))
            out.append(shard_dir)
        for name in (SUMMARY_FILE, EXAMPLES_FILE, RUN_FILE):  # run.json last: the run's evidence
            (run_dir / name).unlink(missing_ok=True)
    return out


def recompute_summary(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Metrics of a run directory recomputed from its ``examples.jsonl``."""
    return compute_metrics(read_records(Path(run_dir) / EXAMPLES_FILE))


__all__ = ["merge_runs", "recompute_summary", "split_run"]
