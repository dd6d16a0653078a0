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
MODE_COLORS = {"emotion_routing": "#1e8449", "skills_only": "#7f8c8d"}


def _hours(t_s: float, open_h: int) -> float:
    return open_h + t_s / 3600.0


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


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
        ax.legend(loc="upper right", fontsize=8)
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


def compare_chart(emotion: Mapping[str, Any], skills: Mapping[str, Any], path: Path, title: str) -> Path:
    panels = (
        ("mot_high_eq_share", "moments of truth handled\nby eq>=4 (%)", 100.0, "{:.1f}"),
        ("wait_s.mot.p50", "moment-of-truth wait\np50 (s)", 1.0, "{:.1f}"),
        ("wait_s.mot.p90", "moment-of-truth wait\np90 (s)", 1.0, "{:.1f}"),
        ("abandonment.mot", "moments of truth\nabandoned (%)", 100.0, "{:.1f}"),
        ("csat_by_class.mot", "simulated CSAT,\nmoments of truth (1-5)", 1.0, "{:.2f}"),
        ("csat_mean", "simulated CSAT,\nall contacts (1-5)", 1.0, "{:.2f}"),
    )
    fig, axes = plt.subplots(1, len(panels), figsize=(3.0 * len(panels), 4.2))
    for ax, (key, label, scale, fmt) in zip(axes, panels, strict=True):
        vals = []
        for rep in (emotion, skills):
            v = get_path(rep, key)
            vals.append(float(v) * scale if isinstance(v, int | float) else 0.0)
        bars = ax.bar(
            ["emotion", "skills\nonly"],
            vals,
            color=[MODE_COLORS["emotion_routing"], MODE_COLORS["skills_only"]],
        )
        for b, v in zip(bars, vals, strict=True):
            ax.text(
                b.get_x() + b.get_width() / 2,
                v,
                fmt.format(v),
                ha="center",
                va="bottom",
            )
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
    ]
