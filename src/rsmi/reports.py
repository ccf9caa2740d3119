"""Results as a table, a Markdown report and a plot, from the JSON files runs write.

Reads attack runs (``summary.json``: PROTOCOL.md's fields; with several attack seeds each
metric may be ``{"mean": .., "std": ..}``) and clean evaluations (``evaluation.json`` from
``rsmi evaluate``). Only this module and the CLI know how results look on screen.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

COLUMNS: tuple[tuple[str, str, str], ...] = (
    # key, header, format
    ("clean_accuracy", "clean %", "pct"),
    ("accuracy_under_attack", "AUA %", "pct"),
    ("attack_success_rate", "ASR %", "pct"),
    ("avg_queries", "queries", "num"),
    ("avg_forward_passes", "fwd passes", "num"),
    ("avg_perturbed_word_pct", "perturbed %", "pct"),
    ("num_examples", "N", "int"),
)


@dataclass
class ResultRow:
    """One line of the results table: a model evaluated clean or under one attack."""

    model: str
    method: str
    attack: str
    metrics: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    def value(self, key: str) -> tuple[float | None, float | None]:
        """``(mean, std)`` of a metric (std ``None`` for a single run)."""
        raw = self.metrics.get(key)
        if isinstance(raw, dict):
            return raw.get("mean"), raw.get("std")
        return (None if raw is None else float(raw)), None


def _format(value: float | None, std: float | None, kind: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    text = f"{value:.0f}" if kind == "int" else f"{value:.1f}"
    if std is not None and kind != "int":
        text += f" ± {std:.1f}"
    return text


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read results file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return data


def attack_label(config: dict[str, Any]) -> str:
    """``textfooler``, ``textfooler (EOT m=8)``, ``textfooler (transfer)`` ..."""
    name = str(config.get("recipe", "?"))
    if config.get("transfer"):
        name += " (transfer)"
    if int(config.get("eot", 1) or 1) > 1:
        name += f" (EOT m={config['eot']})"
    if config.get("cache"):
        name += " (cached)"
    return name


def load_row(path: str | Path) -> ResultRow:
    """A table row from a run directory or a ``summary.json`` / ``evaluation.json`` file."""
    path = Path(path)
    if path.is_dir():
        for name in ("summary.json", "evaluation.json"):
            if (path / name).exists():
                path = path / name
                break
        else:
            raise ValueError(f"{path} holds neither summary.json nor evaluation.json")
    data = _read_json(path)
    if "accuracy_under_attack" in data or "aggregate" in data:
        config = data.get("config", {})
        metrics = data.get("aggregate") or data
        model = config.get("model") or data.get("model") or "?"
        if isinstance(model, dict):  # the runner's model description
            model = model.get("path") or model.get("metadata", {}).get("backbone") or "?"
        model = str(model)
        return ResultRow(
            model=Path(model).name or model,
            method=str(data.get("model_method") or data.get("method") or "?"),
            attack=attack_label(config),
            metrics=dict(metrics),
            source=str(path),
        )
    if "accuracy" in data or "clean_accuracy" in data:
        accuracy = data.get("clean_accuracy", data.get("accuracy"))
        if accuracy is not None and accuracy <= 1.0:
            accuracy = 100.0 * accuracy
        model = str(data.get("model", "?"))
        return ResultRow(
            model=Path(model).name or model,
            method=str(data.get("method", "?")),
            attack="none (clean)",
            metrics={
                "clean_accuracy": accuracy,
                "avg_forward_passes": data.get(
                    "avg_forward_passes", data.get("forward_passes_per_example")
                ),
                "num_examples": data.get("num_examples"),
            },
            source=str(path),
        )
    raise ValueError(f"{path} is neither an attack summary nor an evaluation result")


def rich_table(rows: Sequence[ResultRow], title: str = "Robustness results"):
    """A ``rich.table.Table`` of the rows."""
    from rich.table import Table

    table = Table(title=title)
    for header in ("model", "method", "attack"):
        table.add_column(header)
    for _, header, _ in COLUMNS:
        table.add_column(header, justify="right")
    for row in rows:
        cells = [_format(*row.value(key), kind) for key, _, kind in COLUMNS]
        table.add_row(row.model, row.method, row.attack, *cells)
    return table


def markdown_table(rows: Sequence[ResultRow]) -> str:
    """The rows as a GitHub Markdown table."""
    headers = ["model", "method", "attack"] + [h for _, h, _ in COLUMNS]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * 3 + "---:|" * len(COLUMNS)]
    for row in rows:
        cells = [_format(*row.value(key), kind) for key, _, kind in COLUMNS]
        lines.append("| " + " | ".join([row.model, row.method, row.attack, *cells]) + " |")
    return "\n".join(lines) + "\n"


def plot(
    rows: Sequence[ResultRow],
    path: str | Path,
    title: str = "Clean accuracy and accuracy under attack",
) -> Path:
    """A bar chart: clean accuracy and AUA (with std error bars) per model and attack."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r.model}\n{r.attack}" for r in rows]
    clean = [r.value("clean_accuracy") for r in rows]
    aua = [r.value("accuracy_under_attack") for r in rows]
    xs = range(len(rows))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(rows)), 4.0))
    width = 0.38
    ax.bar(
        [x - width / 2 for x in xs],
        [c[0] or 0 for c in clean],
        width,
        label="clean accuracy",
        yerr=[c[1] or 0 for c in clean],
        capsize=3,
    )
    ax.bar(
        [x + width / 2 for x in xs],
        [a[0] or 0 for a in aua],
        width,
        label="accuracy under attack",
        yerr=[a[1] or 0 for a in aua],
        capsize=3,
    )
    ax.set_xticks(list(xs))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylabel("%")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def markdown_report(
    rows: Sequence[ResultRow],
    *,
    title: str = "rsmi results",
    notes: str = "",
    plot_file: str | None = None,
) -> str:
    """A small Markdown report: the table, the plot, where each number came from."""
    parts = [f"# {title}\n", markdown_table(rows)]
    if plot_file:
        parts.append(f"\n![results]({plot_file})\n")
    if notes:
        parts.append("\n" + notes.strip() + "\n")
    parts.append("\nSources:\n" + "".join(f"- `{r.source}`\n" for r in rows))
    return "\n".join(parts)
