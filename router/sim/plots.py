"""PNG plots of a simulation (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from router.sim.report import get_path

DPI = 110
COLORS = {"mot": "#c0392b", "general": "#2471a3", "routine": "#2471a3"}
MODE_COLORS = {"emotion_routing": "#1e8449", "fixed_ladder": "#d4ac0d", "skills_only": "#7f8c8d"}
MODE_LABELS = {
    "emotion_routing": "emotion +\noutcomes",
    "fixed_ladder": "fixed\nladder",
    "skills_only": "skills\nonly",
}


def _hours(t_s: float, open_h: int) -> float:
    return open_h + t_s / 3600.0


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _legend(ax: Any, **kw: Any) -> None:
    """A legend only where something is labelled (an empty chart of a quiet day draws none)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kw)


def latency_cdf(latencies_ms: Sequence[float], path: Path, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    xs = sorted(latencies_ms)
    if xs:
        ys = [(i + 1) / len(xs) for i in range(len(xs))]
        ax.plot(xs, ys, color="#1e8449", lw=2)
        for p, style in ((0.5, ":"), (0.95, "--"), (0.99, "-.")):
            v = xs[min(len(xs) - 1, int(p * (len(xs) - 1)))]
            ax.axvline(v, color="#555555", ls=style, lw=1, label=f"p{int(p * 100)} = {v:.1f} ms")
        ax.set_xscale("log")
        ax.legend(loc="lower right")
    ax.set_xlabel("decision latency, event written to decision written (ms, log scale)")
    ax.set_ylabel("share of decisions")
    ax.set_ylim(0, 1.01)
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(title)
    return _save(fig, path)


def queues_over_time(samples: Sequence[Mapping[str, Any]], open_h: int, path: Path, title: str) -> Path:
    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    ts = [_hours(float(s["t_s"]), open_h) for s in samples]
    for q in ("mot", "general"):
        ax1.plot(
            ts, [s["queue_depth"].get(q, 0) for s in samples], label=f"queue {q}", color=COLORS[q], lw=1.6
        )
        pts = [
            (t, s["ewt_s"].get(q)) for t, s in zip(ts, samples, strict=True) if s["ewt_s"].get(q) is not None
        ]
        if pts:
            ax2.plot(
                [p[0] for p in pts], [p[1] / 60.0 for p in pts], ".-", label=f"EWT {q}", color=COLORS[q], lw=1
            )
    ax3.plot(ts, [s["agents_busy"] for s in samples], label="agents with work", color="#7d3c98")
    ax3.plot(ts, [s["agents_present"] for s in samples], label="agents present", color="#aaaaaa", ls="--")
    ax1.set_ylabel("contacts waiting")
    ax2.set_ylabel("estimated wait\nannounced (min)")
    ax3.set_ylabel("agents")
    ax3.set_xlabel("time of day (h)")
    for ax in (ax1, ax2, ax3):
        ax.grid(True, alpha=0.3)
        _legend(ax, loc="upper right", fontsize=8)
    ax1.set_title(title)
    return _save(fig, path)


def wait_by_class(waits: Mapping[str, Sequence[float]], path: Path, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    labels = [k for k in ("mot", "routine") if waits.get(k)]
    data = [[w / 60.0 for w in waits[k]] for k in labels]
    if data:
        box = ax.boxplot(
            data,
            tick_labels=[f"{k}\n(n={len(waits[k])})" for k in labels],
            whis=(5, 95),
            showfliers=False,
            patch_artist=True,
        )
        for patch, k in zip(box["boxes"], labels, strict=True):
            patch.set_facecolor(COLORS[k])
            patch.set_alpha(0.5)
    ax.set_ylabel("wait for an agent (min), from the moment a human was needed")
    ax.grid(True, axis="y", alpha=0.3)
    ax.set_title(title + "\nbox: p25-p75, line: median, whiskers: p5-p95")
    return _save(fig, path)


def occupancy_by_eq(occupancy: Mapping[str, float], path: Path, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    eqs = sorted(occupancy)
    vals = [occupancy[e] * 100 for e in eqs]
    bars = ax.bar(
        [f"eq {e}" for e in eqs],
        vals,
        color=["#a9cce3", "#7fb3d5", "#5499c7", "#2471a3", "#1a5276"][: len(eqs)],
    )
    for b, v in zip(bars, vals, strict=True):
        ax.text(b.get_x() + b.get_width() / 2, v + 1, f"{v:.0f}%", ha="center")
    ax.set_ylabel("occupancy: share of logged-in time with work (%)")
    ax.set_ylim(0, 105)
    ax.grid(True, axis="y", alpha=0.3)
    ax.set_title(title)
    return _save(fig, path)


def compare_chart(reports: Mapping[str, Mapping[str, Any]], path: Path, title: str) -> Path:
    panels = (
        ("mot_high_eq_share", "moments of truth handled\nby eq>=4 (%)", 100.0, "{:.1f}"),
        ("wait_s.mot.p50", "moment-of-truth wait\np50 (s)", 1.0, "{:.1f}"),
        ("wait_s.mot.p90", "moment-of-truth wait\np90 (s)", 1.0, "{:.1f}"),
        ("abandonment.mot", "moments of truth\nabandoned (%)", 100.0, "{:.1f}"),
        ("csat_by_class.mot", "simulated CSAT,\nmoments of truth (1-5)", 1.0, "{:.2f}"),
        ("csat_mean", "simulated CSAT,\nall contacts (1-5)", 1.0, "{:.2f}"),
    )
    names = list(reports)
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 4.4))
    for ax, (key, label, scale, fmt) in zip(axes, panels, strict=True):
        vals = []
        for name in names:
            v = get_path(reports[name], key)
            vals.append(float(v) * scale if isinstance(v, int | float) else 0.0)
        bars = ax.bar(
            [MODE_LABELS.get(n, n) for n in names], vals, color=[MODE_COLORS.get(n, "#999999") for n in names]
        )
        for b, v in zip(bars, vals, strict=True):
            ax.text(b.get_x() + b.get_width() / 2, v, fmt.format(v), ha="center", va="bottom", fontsize=9)
        ax.set_title(label, fontsize=10)
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(True, axis="y", alpha=0.3)
        ax.margins(y=0.15)
    fig.suptitle(title)
    return _save(fig, path)


# ---- supervisor charts ----------------------------------------------------------------------------------


INTERVAL_S = 900.0  # 15-minute intervals, as floor reports usually count


def _bucket(t_s: float) -> int:
    return int(t_s // INTERVAL_S)


def waits_over_time(series: Mapping[str, Any], path: Path, title: str) -> Path:
    """Median wait per class per interval (by when the agent accepted), over the queue depths."""
    open_h = int(series.get("open_h", 8))
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)
    for is_mot, label, color in (
        (True, "moments of truth", COLORS["mot"]),
        (False, "routine", COLORS["routine"]),
    ):
        buckets: dict[int, list[float]] = {}
        for t_s, wait_s, mot in series.get("accepted", []):
            if mot == is_mot:
                buckets.setdefault(_bucket(t_s), []).append(wait_s)
        xs = sorted(buckets)
        ax1.plot(
            [_hours((b + 0.5) * INTERVAL_S, open_h) for b in xs],
            [sorted(buckets[b])[len(buckets[b]) // 2] for b in xs],
            ".-",
            color=color,
            label=f"{label}: median wait",
        )
    samples = series.get("samples", [])
    ts = [_hours(float(s["t_s"]), open_h) for s in samples]
    for q in ("mot", "general"):
        ax2.plot(ts, [s["queue_depth"].get(q, 0) for s in samples], color=COLORS[q], label=f"queue {q}")
    ax1.set_ylabel("wait for an agent (s)\nmedian per 15 min")
    ax2.set_ylabel("contacts waiting")
    ax2.set_xlabel("time of day (h)")
    for ax in (ax1, ax2):
        ax.grid(True, alpha=0.3)
        _legend(ax, loc="upper right", fontsize=8)
    ax1.set_title(title)
    return _save(fig, path)


def mot_per_interval(series: Mapping[str, Any], path: Path, title: str) -> Path:
    open_h = int(series.get("open_h", 8))
    truth: dict[int, int] = {}
    flagged: dict[int, int] = {}
    for t_s, mot, detected in series.get("arrivals", []):
        if mot:
            truth[_bucket(t_s)] = truth.get(_bucket(t_s), 0) + 1
        if detected:
            flagged[_bucket(t_s)] = flagged.get(_bucket(t_s), 0) + 1
    xs = sorted(set(truth) | set(flagged))
    fig, ax = plt.subplots(figsize=(9, 4))
    width = INTERVAL_S / 3600.0 * 0.4
    hours = [_hours(b * INTERVAL_S, open_h) for b in xs]
    ax.bar(
        [h + width / 2 for h in hours], [truth.get(b, 0) for b in xs], width, color="#c0392b", label="arrived"
    )
    ax.bar(
        [h + 1.5 * width for h in hours],
        [flagged.get(b, 0) for b in xs],
        width,
        color="#f1948a",
        label="flagged by the router",
    )
    ax.set_ylabel("moments of truth per 15 min")
    ax.set_xlabel("time of day (h)")
    ax.grid(True, axis="y", alpha=0.3)
    _legend(ax, loc="upper right", fontsize=8)
    ax.set_title(title)
    return _save(fig, path)


EQ_COLORS = {1: "#d6eaf8", 2: "#aed6f1", 3: "#5dade2", 4: "#2471a3", 5: "#154360"}


def agent_csat(rows: Sequence[Mapping[str, Any]], path: Path, title: str) -> Path:
    """Each agent: CSAT on routine contacts (x) against moments of truth (y), 95% intervals, coloured by
    the EQ tag; an arrow where the outcomes suggest another EQ."""
    fig, ax = plt.subplots(figsize=(8, 6.5))
    for row in rows:
        mot, routine = row["mot"], row["routine"]
        if mot["csat"] is None or routine["csat"] is None:
            continue
        x, y = routine["csat"], mot["csat"]
        xerr = [[x - routine["ci95"][0]], [routine["ci95"][1] - x]] if routine["ci95"] else None
        yerr = [[y - mot["ci95"][0]], [mot["ci95"][1] - y]] if mot["ci95"] else None
        color = EQ_COLORS.get(int(row["eq"]), "#999999")
        ax.errorbar(
            x, y, xerr=xerr, yerr=yerr, fmt="o", color=color, ecolor=color, alpha=0.8, ms=7, capsize=2
        )
        change = int(row["suggested_eq"]) - int(row["eq"])
        mark = {1: " \u2191", -1: " \u2193"}.get(change, "")
        ax.annotate(
            f"{row['agent_id']}{mark} (n={mot['n']})",
            (x, y),
            fontsize=7,
            xytext=(4, 3),
            textcoords="offset points",
        )
    for eq, color in EQ_COLORS.items():
        ax.scatter([], [], color=color, label=f"eq {eq} (tag)")
    ax.set_xlabel("mean CSAT on routine contacts (95% CI)")
    ax.set_ylabel("mean CSAT on moments of truth (95% CI)")
    ax.set_xlim(1, 5.2)
    ax.set_ylim(1, 5.2)
    ax.grid(True, alpha=0.3)
    _legend(ax, loc="lower right", fontsize=8, title="\u2191\u2193 EQ suggestion", title_fontsize=8)
    ax.set_title(title)
    return _save(fig, path)


def announced_vs_actual(series: Mapping[str, Any], report: Mapping[str, Any], path: Path, title: str) -> Path:
    pairs = series.get("announced", [])
    fig, ax = plt.subplots(figsize=(7, 6))
    for is_mot, label in ((True, "moments of truth"), (False, "routine")):
        pts = [(ewt, actual) for ewt, _, _, actual, mot in pairs if mot == is_mot]
        if pts:
            ax.scatter(
                [p[0] for p in pts],
                [p[1] for p in pts],
                s=12,
                alpha=0.6,
                color=COLORS["mot" if is_mot else "routine"],
                label=label,
            )
    top = max([1.0] + [max(high, actual) for _, _, high, actual, _ in pairs])
    ax.plot([0, top], [0, top], color="#555555", lw=1, label="actual = announced")
    acc = report.get("ewt_accuracy", {})
    if acc.get("n"):
        ax.text(
            0.02,
            0.97,
            f"n={acc['n']}, mean absolute error {acc['mae_s']} s "
            f"({(acc['mae_share_of_mean'] or 0):.0%} of the mean wait {acc['mean_actual_s']} s)\n"
            f"inside the announced band (its 10th-90th percentiles): "
            f"{(acc['inside_band'] or 0):.0%}",
            transform=ax.transAxes,
            va="top",
            fontsize=8,
        )
    ax.set_xlabel("announced wait (s)")
    ax.set_ylabel("actual wait until an agent accepted (s)")
    ax.grid(True, alpha=0.3)
    _legend(ax, loc="lower right", fontsize=8)
    ax.set_title(title)
    return _save(fig, path)


def kpis_by_class(report: Mapping[str, Any], path: Path, title: str) -> Path:
    kpis = report.get("kpis_by_class", {})
    panels = (
        ("csat", "CSAT (1-5)", 1.0, "{:.2f}"),
        ("first_contact_resolution", "first-contact\nresolution (%)", 100.0, "{:.0f}"),
        ("repeat_contact_rate", "repeat contacts\nsame day (%)", 100.0, "{:.1f}"),
        ("handoffs_per_contact", "hand-offs\nper contact", 1.0, "{:.2f}"),
        ("abandonment", "abandonment (%)", 100.0, "{:.1f}"),
    )
    fig, axes = plt.subplots(1, len(panels), figsize=(3.0 * len(panels), 4))
    for ax, (key, label, scale, fmt) in zip(axes, panels, strict=True):
        vals = [float(kpis.get(c, {}).get(key) or 0.0) * scale for c in ("mot", "routine")]
        bars = ax.bar(["moments\nof truth", "routine"], vals, color=[COLORS["mot"], COLORS["routine"]])
        for b, v in zip(bars, vals, strict=True):
            ax.text(b.get_x() + b.get_width() / 2, v, fmt.format(v), ha="center", va="bottom", fontsize=9)
        ax.set_title(label, fontsize=10)
        ax.grid(True, axis="y", alpha=0.3)
        ax.margins(y=0.15)
    fig.suptitle(title)
    return _save(fig, path)


def write_plots(
    plots_dir: Path, series: Mapping[str, Any], report: Mapping[str, Any], prefix: str = ""
) -> list[Path]:
    plots_dir.mkdir(parents=True, exist_ok=True)
    mode = str(report.get("mode", ""))
    tag = (
        f"{report.get('scenario', '')} scenario, {report.get('contacts', '')} contacts, "
        f"seed {report.get('seed', '')}, {mode}"
    )
    open_h = int(series.get("open_h", 8))
    return [
        latency_cdf(
            series["latencies_ms"], plots_dir / f"{prefix}latency_cdf.png", f"Decision latency ({tag})"
        ),
        queues_over_time(
            series["samples"],
            open_h,
            plots_dir / f"{prefix}queues_ewt.png",
            f"Queues, wait estimates, agents ({tag})",
        ),
        wait_by_class(series["waits"], plots_dir / f"{prefix}wait_by_class.png", f"Wait by class ({tag})"),
        occupancy_by_eq(
            report["occupancy_by_eq"], plots_dir / f"{prefix}occupancy_by_eq.png", f"Occupancy by EQ ({tag})"
        ),
        waits_over_time(series, plots_dir / f"{prefix}waits_over_time.png", f"Waits and queues ({tag})"),
        mot_per_interval(series, plots_dir / f"{prefix}mot_per_interval.png", f"Moments of truth ({tag})"),
        agent_csat(
            report.get("agent_outcomes", []),
            plots_dir / f"{prefix}agent_csat.png",
            f"Agents' posted outcomes ({tag})",
        ),
        announced_vs_actual(
            series, report, plots_dir / f"{prefix}ewt_accuracy.png", f"Announced vs actual wait ({tag})"
        ),
        kpis_by_class(report, plots_dir / f"{prefix}kpis_by_class.png", f"KPIs by class ({tag})"),
    ]
