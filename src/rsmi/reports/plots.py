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
from rsmi.reports import threat_models as tm
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
    """A bar chart: clean accuracy and AUA (with std error bars) per model and attack (PNG).

    When any row has fresh draws, each deployed threat model is a bar of its own beside the
    protocol AUA (:mod:`rsmi.reports.threat_models`); a row without them has no such bar."""
    check_output_file(path, "plot")
    plt = _pyplot()
    labels = [_text(f"{r.shown_model}\n{r.attack}") for r in rows]
    clean = [r.value("clean_accuracy") for r in rows]
    aua = [r.value("accuracy_under_attack") for r in rows]
    xs = range(len(rows))
    if tm.has_deployed(rows):
        fig = _threat_model_bars(plt, rows, labels)
        fig.axes[0].set_title(_text(title))
        return _write_png(fig, path, dpi=120, bbox_inches="tight")
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


def _threat_model_bars(plt: Any, rows: Sequence[ResultRow], labels: Sequence[str]) -> Any:
    """Clean accuracy, then the AUA of each threat model, per row (grouped vertical bars); a
    row without a figure has no bar for it."""
    series = [("clean accuracy", "clean_accuracy")] + [
        (f"AUA, {t.name}", t.metric) for t in tm.THREAT_MODELS]
    fig, ax = plt.subplots(figsize=(max(6.0, 2.2 * len(rows)), 4.2))
    width = 0.8 / len(series)
    for j, (name, key) in enumerate(series):
        pts = [(i, r.value(key)) for i, r in enumerate(rows) if r.value(key)[0] is not None]
        if not pts:
            continue
        ax.bar([i - 0.4 + width * (j + 0.5) for i, _ in pts], [v[0] for _, v in pts], width,
               label=_text(name), color=f"C{j}", **_std_bars("yerr", [v for _, v in pts]))
    ax.set_xticks(list(range(len(rows))))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylabel("%")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def _std_bars(kind: str, values: Sequence[tuple[float | None, float | None]]) -> dict[str, Any]:
    """``{kind: stds}`` error bars (± std over seeds) when any value has one, else none."""
    if not any(v[1] for v in values):
        return {}
    return {kind: [v[1] or 0 for v in values], "capsize": 2}


def threat_models(rows: Sequence[ResultRow]) -> Any | None:
    """Per attack run with fresh draws: AUA under each threat model (protocol, deployed for 1,
    5 and 25 submissions, majority), as grouped horizontal bars."""
    runs = [r for r in _attack_rows(rows) if r.value(tm.DEPLOYED.metric)[0] is not None]
    if not runs:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.0, 0.5 * len(runs) * len(tm.THREAT_MODELS) / 2 + 1.6))
    height = 0.8 / len(tm.THREAT_MODELS)
    for j, t in enumerate(tm.THREAT_MODELS):
        pts = [(i, r.value(t.metric)) for i, r in enumerate(runs) if r.value(t.metric)[0] is not None]
        ax.barh([i - 0.4 + height * (j + 0.5) for i, _ in pts], [v[0] for _, v in pts], height,
                label=_text(t.name), color=f"C{j}", **_std_bars("xerr", [v for _, v in pts]))
    ax.set_yticks(list(range(len(runs))))
    ax.set_yticklabels([_text(f"{r.shown_model} · {r.attack} ({r.dataset})") for r in runs],
                       fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("accuracy under attack % (bars: ± std over attack seeds)")
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize=7, title="threat model", title_fontsize=7, loc="upper left",
              bbox_to_anchor=(1.01, 1.0))
    ax.set_title("AUA by threat model")
    return fig


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
    _deployed_points(ax, groups)
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


def _deployed_points(ax: Any, groups: dict[tuple[str, bool], list[Any]]) -> None:
    """Beside each protocol point with fresh draws, the deployed AUA (1 submission) at the
    same x: a star in the attack's colour, joined to its protocol point by a dotted line."""
    attacks = sorted({a for a, _ in groups})
    drawn = False
    for (attack, _), pts in groups.items():
        colour = f"C{attacks.index(attack) % 10}"
        for x, _, r in pts:
            deployed = r.value(tm.DEPLOYED.metric)[0]
            if deployed is None:
                continue
            ax.plot([x, x], [r.value("accuracy_under_attack")[0], deployed], ":", color=colour,
                    linewidth=1)
            ax.plot([x], [deployed], "*", color=colour, markersize=9,
                    label=None if drawn else _text(tm.DEPLOYED.name))
            drawn = True


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
            line = ax.errorbar([float(m.settings[key]) for m in members],
                               [m.value("accuracy_under_attack")[0] for m in members],
                               yerr=[m.value("accuracy_under_attack")[1] or 0 for m in members],
                               fmt="o-", capsize=3, label=_text(f"{dataset} · {attack}"))
            deployed = [m for m in members if m.value(tm.DEPLOYED.metric)[0] is not None]
            if deployed:  # the deployed threat model (1 submission) as a dashed twin series
                ax.plot([float(m.settings[key]) for m in deployed],
                        [m.value(tm.DEPLOYED.metric)[0] for m in deployed], "*--",
                        color=line.lines[0].get_color(),
                        label=_text(f"{dataset} · {attack}, {tm.DEPLOYED.name}"))
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
    log = any(q > 0 for qs in queries for q in qs)  # no attacked example (all skipped): linear
    if log:
        a2.set_xscale("log")
    a2.set_xlabel("queries per attacked example" + (" (log)" if log else ""))
    for ax in (a1, a2):
        ax.grid(alpha=0.3, axis="x")
    fig.suptitle("Distributions over examples (all attack seeds)")
    fig.tight_layout()
    return fig


FIGURES = (
    ("aua-vs-clean", "AUA vs clean accuracy", aua_vs_clean,
     "Each point is a model under one attack (protocol AUA); error bars: ± std over attack "
     "seeds, or the 95 % Wilson interval of a single run. A star above a point: the deployed "
     "classifier's AUA for one submission (runs with fresh draws)."),
    ("aua-vs-cost", "AUA vs inference cost", aua_vs_cost,
     "Forward passes per query: 1 for a plain model; RSMI pays k0 (+ k1) samples and a backward."),
    ("aua-vs-settings", "AUA across RSMI settings", aua_vs_settings,
     "Only settings that vary among the RSMI runs are shown."),
    ("distributions", "Perturbed words and queries", distributions,
     "Boxes: quartiles; triangles: means; over every attacked example of every attack seed."),
    ("threat-models", "AUA by threat model", threat_models,
     "Runs with fresh draws: the protocol AUA (single draws) beside the deployed classifier's "
     "AUA for 1, 5 and 25 submissions and the majority verdict (see the legend above)."),
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
            + (" with fresh draws (rsmi attack --fresh-draws R, or rsmi attack rescore)"
               if kind == "threat-models" else "")
        )
    if title:
        axes = fig.get_axes()
        if len(axes) == 1:
            axes[0].set_title(_text(title))
        else:
            fig.suptitle(_text(title))
    return _write_png(fig, path, dpi=dpi, bbox_inches="tight")
