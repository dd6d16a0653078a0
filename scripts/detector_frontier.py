#!/usr/bin/env python
"""How near any threshold of the detector comes to the issue's conversation targets, with the heads whose
out-of-fold scores a ``train_detector.py --dump`` holds.

    .venv/bin/python scripts/detector_frontier.py DUMP [--c C] [--json PATH]

The detector is fitted as ``train_detector.py`` fits it (its training rows, ``fit_detector``) at the C the
release rule chooses (``choose``, about 3 minutes on 2 cores) or at ``--c``; then every threshold of
``THRESHOLDS`` and a few past its end is judged on dev on both backends as ``choose`` judges it
(``_judge``): moment-of-truth conversations on time, early and missed, routine conversations and strung
contacts flagged, single-turn F1 and the objective. The summary says the most conversations on time
that any threshold reaches and the most among thresholds that flag no more routine conversations than
the target allows, each counted on the worse backend. A statement about the heads, not a choice: nothing
is fitted on dev, and the test split is not in a dump.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from train_detector import (  # noqa: E402
    ON_TIME_TARGET,
    ROUTINE_FLAGGED_TARGET,
    THRESHOLDS,
    Scores,
    _judge,
    choose,
    detector_rows,
    fit_detector,
    load_dump,
)

from router.scoring.corpus import Corpus  # noqa: E402

EMPTY = Corpus((), ())
# the release rule's grid, and past its end, where a detector this sharp first flags as few routine
# conversations as the target allows
FRONTIER_THRESHOLDS = [*THRESHOLDS, 0.993, 0.996, 0.998, 0.999]
OUTCOMES = (
    "on_time",
    "early",
    "late",
    "missed",
    "mot_conversations",
    "routine_flagged",
    "routine_conversations",
)


def frontier(
    train: Corpus,
    dev: Corpus,
    backends: list[Scores],
    strung: Corpus,
    c: float,
    strung_train: Corpus = EMPTY,
    thresholds: list[float] = FRONTIER_THRESHOLDS,
) -> list[dict[str, Any]]:
    """Per threshold, what the detector fitted at ``c`` does on dev, per backend (int8, torch)."""
    x, y = detector_rows(train, backends[0], strung_train)
    fitted = fit_detector(x, y, c)
    gold = [t.mot for t in dev.turns]
    rows = []
    for threshold in thresholds:
        model = dataclasses.replace(fitted, threshold=threshold)
        per_backend = []
        for scores in backends:
            objective, conv, turn = _judge(dev, scores, model, gold, strung)
            per_backend.append(
                {
                    "objective": round(objective, 4),
                    **{k: conv[k] for k in OUTCOMES},
                    "strung_flagged": conv["strung_routine"]["flagged"],
                    "strung_contacts": conv["strung_routine"]["contacts"],
                    "turn_f1": turn["f1"],
                }
            )
        rows.append({"threshold": threshold, "backends": per_backend})
    return rows


def _on_time(row: dict[str, Any]) -> int:
    """Moment-of-truth conversations on time on the worse backend."""
    return min(int(b["on_time"]) for b in row["backends"])


def _flagged(row: dict[str, Any], key: str = "routine_flagged") -> int:
    """Contacts of a routine kind flagged on the worse backend."""
    return max(int(b[key]) for b in row["backends"])


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The most moment-of-truth conversations on time at any threshold, and among the thresholds that flag
    at most the target's share of routine conversations, each on the worse backend."""

    def best(candidates: list[dict[str, Any]]) -> dict[str, Any] | None:
        if not candidates:
            return None
        row = max(candidates, key=lambda r: (_on_time(r), -_flagged(r)))
        return {
            "threshold": row["threshold"],
            "on_time": _on_time(row),
            "routine_flagged": _flagged(row),
            "strung_flagged": _flagged(row, "strung_flagged"),
        }

    first = rows[0]["backends"][0]
    cap = int(ROUTINE_FLAGGED_TARGET * first["routine_conversations"])
    return {
        "mot_conversations": first["mot_conversations"],
        "routine_conversations": first["routine_conversations"],
        "on_time_needed": math.ceil(ON_TIME_TARGET * first["mot_conversations"] - 1e-9),
        "routine_flagged_allowed": cap,
        "most_on_time": best(rows),
        "most_on_time_within_routine_cap": best([r for r in rows if _flagged(r) <= cap]),
    }


def _table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="dev, per threshold: int8 / torch")
    for name in ("threshold", "on time", "early", "missed", "routine flagged", "strung flagged", "turn F1"):
        table.add_column(name, justify="right")
    table.add_column("objective (worse)", justify="right")
    for row in rows:
        b = row["backends"]

        def pair(key: str, b: list[dict[str, Any]] = b) -> str:
            return " / ".join(str(x[key]) for x in b)

        cells = ("on_time", "early", "missed", "routine_flagged", "strung_flagged", "turn_f1")
        worse = min(x["objective"] for x in b)
        table.add_row(f"{row['threshold']:.3f}", *(pair(k) for k in cells), f"{worse:.4f}")
    return table


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dump", type=Path, help="what train_detector.py --dump wrote")
    ap.add_argument("--c", type=float, default=None, help="the detector's C (default: the release rule's)")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows and the summary here")
    args = ap.parse_args()
    d = load_dump(args.dump)
    strung_train = d.get("strung_train", EMPTY)
    c = args.c
    if c is None:
        _, chosen = choose(d["train"], d["dev"], d["backends"], d["strung"], strung_train)
        c = float(chosen["C"])  # type: ignore[arg-type]
    rows = frontier(d["train"], d["dev"], d["backends"], d["strung"], c, strung_train)
    result = {"C": c, "summary": summary(rows), "rows": rows}
    Console(width=120).print(_table(rows))
    print(json.dumps({"C": c, **result["summary"]}, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
