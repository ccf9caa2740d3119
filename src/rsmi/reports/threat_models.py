"""The threat models a robustness number belongs to: their names, what each means, which verdict.

One owner for what every renderer calls a threat model and how it explains it — the HTML page's
headers and legend, the plots' series, the Markdown report, the pairs tables and
``rsmi report --compare`` all read it from here (docs/attacks.md, "Threat models";
docs/protocol.md). The figures themselves are the row metrics of
:data:`rsmi.reports.rows.FRESH_METRICS` (made by :mod:`rsmi.attacks.fresh`) and the attack's
own ``accuracy_under_attack``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ThreatModel:
    """A threat model: its name (a header), the row metric of its AUA, the table column of its
    AUA (and of its clean accuracy, where it has one) and a one-line description."""

    name: str
    metric: str
    aua_column: str
    description: str
    clean_column: str | None = None


PROTOCOL = ThreatModel(
    "protocol (single draw)", "accuracy_under_attack", "aua",
    "the attack's own verdicts, each from one draw of a randomized model (an attacker who may "
    "resubmit until a draw errs; the field's standard, comparable to papers)",
    clean_column="clean",
)
DEPLOYED = ThreatModel(
    "deployed, 1 submission", "aua_deployed", "aua_deployed",
    "the attacker's final text sent once to the deployed classifier: mean over N of "
    "[attacked] × p(correct) over R fresh draws (attacked: the majority of R draws of the clean "
    "text is correct)",
    clean_column="clean_deployed",
)
DEPLOYED_K5 = ThreatModel(
    "deployed, k = 5", "aua_deployed_k5", "aua_deployed_k5",
    "the final text sent 5 times, the attacker wins on any wrong answer: mean of "
    "[attacked] × p(correct)^5",
)
DEPLOYED_K25 = ThreatModel(
    "deployed, k = 25", "aua_deployed_k25", "aua_deployed_k25",
    "the same with 25 submissions: mean of [attacked] × p(correct)^25",
)
MAJORITY = ThreatModel(
    "deployed, majority", "aua_majority", "aua_majority",
    "robust when the majority of the R fresh draws is correct on the clean text and on the "
    "final text (the verdict the deployed pairs and McNemar tests use)",
)

THREAT_MODELS = (PROTOCOL, DEPLOYED, DEPLOYED_K5, DEPLOYED_K25, MAJORITY)
DEPLOYED_MODELS = THREAT_MODELS[1:]
# the deployed columns of a results table, in display order (after the protocol AUA)
DEPLOYED_COLUMNS = ("clean_deployed", *(t.aua_column for t in DEPLOYED_MODELS))

NO_FRESH_DRAWS = ("–: the run has no fresh draws (rsmi attack --fresh-draws R, or rsmi attack "
                  "rescore); a deterministic model's deployed figures are its protocol ones "
                  "and are shown as such")

# Which verdict a paired test uses (pairs tables, --compare, the HTML page).
PROTOCOL_VERDICT = ("protocol verdicts (single draws): robust = the attack failed; skipped "
                    "and successful are not robust")
MAJORITY_VERDICT = ("majority verdicts (R fresh draws): robust = attacked (majority of the "
                    "clean text's draws correct) and the majority of the final text's draws "
                    "correct; the difference and ratio of the deployed AUA (1 submission) are "
                    "bootstrapped from each example's [attacked] × p(correct)")
DERIVED_NOTE = ("{side} deterministic, without fresh draws: its protocol verdicts are its "
                "deployed ones")


def of_column(name: str) -> ThreatModel | None:
    """The threat model of a results-table column (its AUA or clean accuracy), else None."""
    for tm in THREAT_MODELS:
        if name in (tm.aua_column, tm.clean_column):
            return tm
    return None


def has_deployed(rows: Iterable[Any]) -> bool:
    """Whether any row holds deployed threat-model figures of its own (fresh draws; a
    deterministic model's, equal to its protocol ones, do not count)."""
    return any(row.value(DEPLOYED.metric)[0] is not None for row in rows)


def with_deployed(names: Sequence[str], rows: Iterable[Any]) -> list[str]:
    """Column names with the deployed columns after the protocol AUA (and its interval), when
    any row has fresh draws; ``names`` unchanged otherwise (or when they name one already)."""
    names = list(names)
    if not has_deployed(rows) or any(n in DEPLOYED_COLUMNS for n in names) or "aua" not in names:
        return names
    at = names.index("aua") + 1
    if at < len(names) and names[at] == "aua_ci":
        at += 1
    return [*names[:at], *DEPLOYED_COLUMNS, *names[at:]]


def legend(columns: Iterable[str] | None = None) -> list[tuple[str, str]]:
    """``(name, description)`` of the threat models of ``columns`` (all for None)."""
    if columns is None:
        return [(tm.name, tm.description) for tm in THREAT_MODELS]
    shown = {of_column(c) for c in columns} - {None}
    return [(tm.name, tm.description) for tm in THREAT_MODELS if tm in shown]


def legend_line(columns: Iterable[str] | None = None) -> str:
    """The legend as one line of text (Markdown report, terminal)."""
    return "Threat models — " + "; ".join(f"**{n}**: {d}" for n, d in legend(columns)) + "."


__all__ = [
    "DEPLOYED",
    "DEPLOYED_COLUMNS",
    "DEPLOYED_K5",
    "DEPLOYED_K25",
    "DEPLOYED_MODELS",
    "MAJORITY",
    "PROTOCOL",
    "THREAT_MODELS",
    "ThreatModel",
    "has_deployed",
    "legend",
    "legend_line",
    "of_column",
    "with_deployed",
]
