#!/usr/bin/env python
"""One-turn moment-of-truth detector on the airline and complaints sets, over pairs of thresholds: the table
in models/MODEL_CARD.md that the ``mot_*`` defaults were chosen from.

    .venv/bin/python scripts/detector_sweep.py [--data ../shared/data]

Each tweet is a one-turn contact scored by the default scorer and judged as ``router score`` judges it
(``router.scoring.score_cli._verdict``); all other thresholds stay at their defaults.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from router.scoring.evaluate import load_airline, load_complaints  # noqa: E402
from router.scoring.factory import build_scorer  # noqa: E402
from router.scoring.protocol import EmotionScore, EmotionScorer  # noqa: E402
from router.scoring.score_cli import _verdict  # noqa: E402
from router.settings import Settings  # noqa: E402

PAIRS = [
    (0.30, 0.75),
    (0.20, 0.60),
    (0.15, 0.50),
    *itertools.product((0.0, 0.05, 0.08, 0.10, 0.12), (0.40, 0.45, 0.50)),
]


def score_all(scorer: EmotionScorer, texts: list[str], batch: int = 64) -> list[EmotionScore]:
    # worker-sized batches: the scorer's per-batch timeout is meant for those, not for 7,000 texts at once
    return [s for i in range(0, len(texts), batch) for s in scorer.score(texts[i : i + batch])]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = ap.parse_args()
    scorer = build_scorer(Settings())
    tasks = [(t, score_all(scorer, t.texts)) for t in (load_airline(args.data), load_complaints(args.data))]
    print(f"scorer: {scorer.name}")
    print("| floor | peak | airline recall | airline FPR | complaints recall | complaints FPR |")
    for floor, peak in PAIRS:
        settings = Settings(mot_topic_intensity_floor=floor, mot_peak_threshold=peak)
        row = [f"{floor:.2f}", f"{peak:.2f}"]
        for task, scores in tasks:
            verdict = np.array([_verdict(s, None, settings)["moment_of_truth"] for s in scores])
            gold = np.array(task.gold)
            row += [f"{verdict[gold].mean():.3f}", f"{verdict[~gold].mean():.3f}"]
        print("| " + " | ".join(row) + " |")
    task, scores = tasks[0]
    gold, intensity = np.array(task.gold), np.array([s.intensity for s in scores])
    for name, part in (("moments of truth", intensity[gold]), ("neutral + positive", intensity[~gold])):
        print(f"airline {name}: intensity p10/p50/p90 {np.percentile(part, [10, 50, 90]).round(2).tolist()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
