#!/usr/bin/env python
"""How well can a reader who sees the whole conversation find the moment of truth? A reference for the
detector's conversation figures, measured the way they are (`router.scoring.detector.conversation_summary`).

    .venv/bin/python scripts/blind_read.py prepare --split dev --chunks 3 --out /tmp/blind
    # each reader labels one chunk file: {"KEY": first moment-of-truth customer turn or null, ...}
    .venv/bin/python scripts/blind_read.py score /tmp/blind/key.json /tmp/blind/answers_*.json \
        [--save models/corpus/blind_read_dev.json]

`prepare` writes the split's conversations in a shuffled order under anonymous keys, with every turn
(customer turns numbered, bot and agent turns shown) and no label, category, style or scenario name, plus
`key.json` (key -> conversation id and label), which the readers must not see. `score` counts each answer
file against the labels as the detector is counted (on time: the labelled turn or the next; early;
missed; routine conversations flagged), per file and pooled, and reports where readers disagree.
The test split is refused: it is read once per release, by the model.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from router.scoring.corpus import CorpusConversation, load_corpus  # noqa: E402
from router.scoring.detector import ConversationOutcome, conversation_summary  # noqa: E402


def render(key: str, c: CorpusConversation) -> str:
    lines = [f"=== {key} (language {c.lang}, channel {c.channel})"]
    n = 0
    for t in c.turns:
        if t.speaker == "customer":
            n += 1
            lines.append(f"  [customer turn {n}] {t.text}")
        else:
            lines.append(f"  ({t.speaker}) {t.text}")
    return "\n".join(lines) + "\n"


def prepare(split: str, chunks: int, out: Path, seed: int) -> None:
    convs = list(load_corpus().split(split).conversations)  # type: ignore[arg-type]
    random.Random(seed).shuffle(convs)
    out.mkdir(parents=True, exist_ok=True)
    key: dict[str, dict[str, object]] = {}
    for ci in range(chunks):
        part = convs[ci::chunks]
        blocks = []
        for j, c in enumerate(part):
            k = f"k{ci}-{j:03d}"
            key[k] = {"id": c.id, "mot_turn": c.mot_turn, "lang": c.lang, "category": c.category}
            blocks.append(render(k, c) + "\n")
        (out / f"chunk{ci}.txt").write_text("".join(blocks), encoding="utf-8")
    (out / "key.json").write_text(json.dumps(key, indent=0) + "\n", encoding="utf-8")
    print(f"{len(convs)} {split} conversations in {chunks} chunks under {out}")


def outcomes(key: dict[str, dict[str, object]], answers: dict[str, int | None]) -> list[ConversationOutcome]:
    unknown = sorted(set(answers) - set(key))
    if unknown:
        raise SystemExit(f"answers for keys not in key.json: {unknown[:5]}")
    return [ConversationOutcome(key[k]["mot_turn"], a) for k, a in answers.items()]  # type: ignore[arg-type]


def score(key_path: Path, answer_paths: list[Path], save: Path | None) -> None:
    key = json.loads(key_path.read_text(encoding="utf-8"))
    files = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in answer_paths}
    for name, answers in files.items():
        print(name, json.dumps(conversation_summary(outcomes(key, answers))))
    by_key: dict[str, list[int | None]] = {}
    for answers in files.values():
        for k, a in answers.items():
            by_key.setdefault(k, []).append(a)
    split = [k for k, v in by_key.items() if len(set(v)) > 1]
    print(
        f"keys read: {len(by_key)} of {len(key)}; read twice or more: "
        f"{sum(len(v) > 1 for v in by_key.values())}; readers disagree on {len(split)}: {split[:20]}"
    )
    first = {k: v[0] for k, v in by_key.items()}
    print("pooled (first answer per key)", json.dumps(conversation_summary(outcomes(key, first))))
    if save:
        save.parent.mkdir(parents=True, exist_ok=True)
        rows = sorted((str(key[k]["id"]), key[k]["mot_turn"], v) for k, v in by_key.items())
        body = ",\n".join(f'"{i}": {json.dumps({"mot_turn": t, "read": v})}' for i, t, v in rows)
        save.write_text("{\n" + body + "\n}\n", encoding="utf-8")
        print(f"wrote {save}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--split", choices=("train", "dev"), default="dev")
    p.add_argument("--chunks", type=int, default=3)
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--out", type=Path, required=True)
    s = sub.add_parser("score")
    s.add_argument("key", type=Path)
    s.add_argument("answers", type=Path, nargs="+")
    s.add_argument("--save", type=Path, default=None, help="keep every reader's answer by conversation id")
    args = ap.parse_args()
    if args.cmd == "prepare":
        prepare(args.split, args.chunks, args.out, args.seed)
    else:
        score(args.key, args.answers, args.save)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
