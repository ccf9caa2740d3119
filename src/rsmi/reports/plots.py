"""Plots of the results (matplotlib): a PNG bar chart, and SVG figures for the HTML report.

Every figure function takes rows and returns a matplotlib ``Figure`` or ``None`` when the rows
hold nothing to plot (e.g. no two RSMI settings); :func:`svg` turns a figure into an inline
``<svg>`` element. Labels go through :func:`_text`, so a ``$`` in a model name is printed, not
parsed as mathtext.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rsmi.errors import ConfigError
from rsmi.reports.outputs import PNG_METADATA
from rsmi.reports.rows import INCOMPLETE, RSMI_SETTINGS, ResultRow
from rsmi.store.atomic import atomic_write_bytes, check_output_file


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _text(s: Any) -> str:
    return str(s).replace("$", r"\$")


def _write_png(fig: Any, path: str | Path, **savefig: Any) -> Path:
    """Render ``fig`` as PNG in memory (rsmi's generator mark in its metadata), close it, and
    write the bytes to ``path`` atomically: a kill or a full disk never leaves half a PNG."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", metadata=dict(PNG_METADATA), **savefig)
    finally:
        _pyplot().close(fig)
    path = Path(path)
    atomic_write_bytes(path.resolve(), buf.getvalue())
    return path


def plot(
    rows: Sequence[ResultRow],
    path: str | Path,
    title: str = "Clean accuracy and accuracy under attack",
) -> Path:
    """A bar chart: clean accuracy and AUA (with std error bars) per model and attack (PNG)."""
    check_output_file(path, "plot")
    plt = _pyplot()
    labels = [_text(f"{r.shown_model}\n{r.attack}") for r in rows]
    clean = [r.value("clean_accuracy") for r in rows]
    aua = [r.value("accuracy_under_attack") for r in rows]
    xs = range(len(rows))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(rows)), 4.0))
    width = 0.38
    ax.bar([x - width / 2 for x in xs], [c[0] or 0 for c in clean], width,
           label="clean accuracy", yerr=[c[1] or 0 for c in clean], capsize=3)
    ax.bar([x + width / 2 for x in xs], [a[0] or 0 for a in aua], width,
           label="accuracy under attack", yerr=[a[1] or 0 for a in aua], capsize=3)
    ax.set_xticks(list(xs))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylabel("%")
    ax.set_ylim(0, 100)
    ax.set_title(_text(title))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _write_png(fig, path, dpi=120)


def svg(fig: Any, salt: str) -> str:
    """The figure as an ``<svg>`` element (text as text; ids salted so figures can share a page)."""
    import matplotlib

    plt = _pyplot()
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}):
        fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, flags=re.DOTALL)  # RDF, no use here
    return text[text.index("<svg"):]


def _horizontal() -> dict[str, Any]:
    """Horizontal boxes: ``orientation=`` from matplotlib 3.10, ``vert=`` before."""
    import matplotlib

    major, minor = (int(x) for x in matplotlib.__version__.split(".")[:2])
    return {"orientation": "horizontal"} if (major, minor) >= (3, 10) else {"vert": False}


def _attack_rows(rows: Sequence[ResultRow]) -> list[ResultRow]:
    return [r for r in rows if r.kind == "attack" and r.value("accuracy_under_attack")[0] is not None]


def _aua_error(r: ResultRow) -> tuple[float, float]:
    """Below/above error of a row's AUA: ± std over attack seeds, else its 95 % Wilson interval."""
    mean, std = r.value("accuracy_under_attack")
    if std is not None:
        return std, std
    interval = r.interval("accuracy_under_attack")
    if mean is None or interval is None:
        return 0.0, 0.0
    return max(mean - interval[0], 0.0), max(interval[1] - mean, 0.0)


def _scatter(ax: Any, rows: Sequence[ResultRow], xs: Sequence[float], xerr: Sequence[float]) -> None:
    """One colour and marker per attack; a run stopped early ("(incomplete)") keeps its attack's
    colour, is drawn hollow and says how many examples it covers."""
    groups: dict[tuple[str, bool], list[tuple[float, float, ResultRow]]] = {}
    for x, xe, r in zip(xs, xerr, rows, strict=True):  # (attack, stopped early) -> points
        attack = r.attack.removesuffix(INCOMPLETE)
        groups.setdefault((attack, attack != r.attack), []).append((x, xe, r))
    markers = "osD^v<>ph*"
    labels: dict[tuple[float, float], list[str]] = {}
    for i, attack in enumerate(sorted({a for a, _ in groups})):
        colour = f"C{i % 10}"
        for partial in (False, True):
            pts = groups.get((attack, partial))
            if not pts:
                continue
            errors = [_aua_error(p[2]) for p in pts]
            ax.errorbar([p[0] for p in pts], [p[2].value("accuracy_under_attack")[0] for p in pts],
                        xerr=[p[1] for p in pts],
                        yerr=[[e[0] for e in errors], [e[1] for e in errors]],
                        fmt=markers[i % len(markers)], color=colour, capsize=3, alpha=0.85,
                        markerfacecolor="white" if partial else colour,
                        label=_text(attack + (INCOMPLETE if partial else "")))
            for x, _, r in pts:
                name = f"{r.shown_model} ({r.dataset})" + (f", N = {r.num_examples}" if partial else "")
                labels.setdefault((x, r.value("accuracy_under_attack")[0]), []).append(name)
    ys = [y for _, y in labels] or [0.0]
    close = 0.04 * ((max(ys) - min(ys)) or 1.0)  # labels nearer than this would overprint
    placed: list[tuple[float, float]] = []
    for (x, y), names in sorted(labels.items(), key=lambda kv: (kv[0][0], -kv[0][1])):
        # points that coincide share one label; a point just below another at the same x has
        # its label below it
        below = any(px == x and 0 <= py - y < close for px, py in placed)
        ax.annotate(_text(" = ".join(names)), (x, y), textcoords="offset points",
                    xytext=(5, -10 if below else 4), fontsize=7)
        placed.append((x, y))
    ax.set_ylabel("accuracy under attack %\n(bars: ± std over attack seeds, else 95 % Wilson)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, title="attack", title_fontsize=7)


def aua_vs_clean(rows: Sequence[ResultRow]) -> Any | None:
    """AUA against clean accuracy (on the attacked sample), one point per model and attack."""
    pts = [r for r in _attack_rows(rows) if r.value("clean_accuracy")[0] is not None]
    if not pts:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    _scatter(ax, pts, [r.value("clean_accuracy")[0] for r in pts],
             [r.value("clean_accuracy")[1] or 0 for r in pts])
    ax.set_xlabel("clean accuracy % (attacked sample)")
    ax.set_title("Robustness against accuracy")
    return fig


def aua_vs_cost(rows: Sequence[ResultRow]) -> Any | None:
    """AUA against inference cost: encoder forward passes per model query."""
    pts = [r for r in _attack_rows(rows)
           if r.value("avg_forward_passes")[0] and r.value("avg_queries")[0]]
    if not pts:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    _scatter(ax, pts, [r.value("avg_forward_passes")[0] / r.value("avg_queries")[0] for r in pts],
             [0.0] * len(pts))
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")  # ticks 1, 2, 5, 10, 20 ... as plain numbers, also within one decade
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("forward passes per query (log)")
    ax.set_title("Robustness against inference cost")
    return fig


def aua_vs_settings(rows: Sequence[ResultRow]) -> Any | None:
    """AUA across RSMI settings (noise_std, noise_every, num_masks) that vary among the runs."""
    rsmi = [r for r in _attack_rows(rows) if r.settings and r.method == "rsmi"]
    varying = [k for k in RSMI_SETTINGS if len({r.settings.get(k) for r in rsmi}) >= 2]
    if not varying:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(varying), figsize=(4.2 * len(varying), 3.6), squeeze=False)
    for ax, key in zip(axes[0], varying, strict=True):
        series: dict[tuple[str, str], list[ResultRow]] = {}
        for r in rsmi:
            series.setdefault((r.dataset, r.attack), []).append(r)
        for (dataset, attack), members in sorted(series.items()):
            members = sorted((m for m in members if m.settings.get(key) is not None),
                             key=lambda m: float(m.settings[key]))
            ax.errorbar([float(m.settings[key]) for m in members],
                        [m.value("accuracy_under_attack")[0] for m in members],
                        yerr=[m.value("accuracy_under_attack")[1] or 0 for m in members],
                        fmt="o-", capsize=3, label=_text(f"{dataset} · {attack}"))
        if all(float(r.settings[key]).is_integer() for r in rsmi if r.settings.get(key) is not None):
            from matplotlib.ticker import MaxNLocator

            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(key)
        ax.set_ylabel("accuracy under attack %")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("RSMI settings")
    fig.tight_layout()
    return fig


def distributions(rows: Sequence[ResultRow]) -> Any | None:
    """Per run: share of words perturbed (successful attacks) and queries (attacked examples)."""
    runs = [r for r in _attack_rows(rows) if r.records]
    if not runs:
        return None
    pct, queries, labels = [], [], []
    for r in runs:
        recs = [x for seed_recs in r.records.values() for x in seed_recs]
        pct.append([float(x.get("perturbed_word_pct") or 0) for x in recs
                    if x.get("result_type") == "successful"] or [float("nan")])
        queries.append([float(x.get("queries") or 0) for x in recs
                        if x.get("result_type") in ("successful", "failed")] or [float("nan")])
        labels.append(_text(f"{r.shown_model} · {r.attack} ({r.dataset})"))
    plt = _pyplot()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10.0, 0.55 * len(runs) + 1.6), sharey=True)
    horizontal = _horizontal()
    a1.boxplot(pct, showmeans=True, **horizontal)
    a1.set_xlabel("words perturbed % (successful attacks)")
    a2.boxplot(queries, showmeans=True, **horizontal)
    a1.set_yticks(range(1, len(runs) + 1))
    a1.set_yticklabels(labels, fontsize=7)
    a2.set_xscale("log")
    a2.set_xlabel("queries per attacked example (log)")
    for ax in (a1, a2):
        ax.grid(alpha=0.3, axis="x")
    fig.suptitle("Distributions over examples (all attack seeds)")
    fig.tight_layout()
    return fig


FIGURES = (
    ("aua-vs-clean", "AUA vs clean accuracy", aua_vs_clean,
     "Each point is a model under one attack; error bars: ± std over attack seeds, or the 95 % "
     "Wilson interval of a single run."),
    ("aua-vs-cost", "AUA vs inference cost", aua_vs_cost,
     "Forward passes per query: 1 for a plain model; RSMI pays k0 (+ k1) samples and a backward."),
    ("aua-vs-settings", "AUA across RSMI settings", aua_vs_settings,
     "Only settings that vary among the RSMI runs are shown."),
    ("distributions", "Perturbed words and queries", distributions,
     "Boxes: quartiles; triangles: means; over every attacked example of every attack seed."),
)


def report_figures(rows: Sequence[ResultRow]) -> list[dict[str, str]]:
    """The HTML report's figures that apply to ``rows``: ``{id, title, caption, svg}``."""
    out = []
    for fig_id, title, make, caption in FIGURES:
        fig = make(rows)
        if fig is not None:
            out.append({"id": fig_id, "title": title, "caption": caption, "svg": svg(fig, fig_id)})
    return out


def save_figure(rows: Sequence[ResultRow], kind: str, path: str | Path, dpi: int = 120,
                title: str | None = None) -> Path:
    """One of :data:`FIGURES` (by id) as a PNG; ConfigError when the rows hold nothing for it.

    ``title`` replaces the figure's own title (that of its single axes, else the figure's).
    """
    check_output_file(path, "plot")
    makers = {fig_id: (make, name) for fig_id, name, make, _ in FIGURES}
    if kind not in makers:
        raise ConfigError(f"unknown figure {kind!r}: choose from {', '.join(makers)}")
    make, name = makers[kind]
    fig = make(rows)
    if fig is None:
        raise ConfigError(
            f"nothing to plot for {kind!r} ({name}) in these results: it needs attack runs"
            + (" of RSMI models whose settings differ" if kind == "aua-vs-settings" else "")
        )
    if title:
        axes = fig.get_axes()
        if len(axes) == 1:
            axes[0].set_title(_text(title))
        else:
            fig.suptitle(_text(title))
    return _write_png(fig, path, dpi=dpi, bbox_inches="tight")
