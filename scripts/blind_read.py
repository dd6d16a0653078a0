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

The same for the airline tweets (`router evaluate`'s airline task, an evaluation-only set): how far does a
reader who follows the writing guide agree with that set's moment-of-truth label (a negative tweet whose
reason is a cancelled flight or lost or damaged luggage, against every neutral and positive tweet)?

    .venv/bin/python scripts/blind_read.py prepare-tweets --n 600 --chunks 4 --out /tmp/tweets
    # each reader scores one chunk file: {"KEY": 0-100, ...}, how surely a careful lead calls it a MoT
    .venv/bin/python scripts/blind_read.py score-tweets /tmp/tweets/key.json /tmp/tweets/answers_*.json \
        [--model] [--save models/airline_blind_read.json]

`prepare-tweets` draws a seeded random sample (the set's own mix of labels), shown as the scorer sees each
tweet (`clean_tweet`: mentions, links and the reason words leaked into the text removed), with no label or
sentiment. `score-tweets` gives each reader's AUROC against the set's label, the readers' mean per tweet,
and with `--model` the shipped detector's one-turn probability and the noisy-OR on the same sample, with
bootstrap 95% intervals. `reread-tweets` reads the saved sample (`models/airline_blind_read.json`) and gives
the readers' mean beside the model as it ships now, for a new release:

    .venv/bin/python scripts/blind_read.py reread-tweets
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from router.scoring.corpus import CorpusConversation, load_corpus  # noqa: E402
from router.scoring.detector import ConversationOutcome, conversation_summary  # noqa: E402
from router.scoring.measures import auroc  # noqa: E402


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


def prepare_tweets(n: int, chunks: int, out: Path, seed: int, data: Path) -> None:
    from router.scoring.evaluate import load_airline

    task = load_airline(data)
    rows = random.Random(seed).sample(range(len(task.texts)), n)
    out.mkdir(parents=True, exist_ok=True)
    key: dict[str, dict[str, object]] = {}
    for ci in range(chunks):
        lines = []
        for j, i in enumerate(rows[ci::chunks]):
            k = f"t{ci}-{j:03d}"
            key[k] = {"row": i, "mot": bool(task.gold[i]), "text": task.texts[i]}
            lines.append(f"{k}\t{task.texts[i]}\n")
        (out / f"tweets{ci}.txt").write_text("".join(lines), encoding="utf-8")
    (out / "key.json").write_text(json.dumps(key, indent=0, ensure_ascii=False) + "\n", encoding="utf-8")
    pos = sum(bool(task.gold[i]) for i in rows)
    print(f"{n} of {len(task.texts)} airline tweets ({pos} labelled MoT) in {chunks} chunks under {out}")


def _model_on_tweets(texts: list[str], y: np.ndarray) -> None:
    from router.scoring.evaluate import mot_score, verdict_probabilities
    from router.scoring.transformer import TransformerScorer

    scores = TransformerScorer(backend="onnx").score(texts)
    verdict = verdict_probabilities(scores)
    if verdict is not None:
        print(f"the detector's one-turn p: {_auroc_ci(y, np.array(verdict))}")
    print(f"the noisy-OR: {_auroc_ci(y, np.array([mot_score(s) for s in scores]))}")


def reread_tweets(record_path: Path, data: Path) -> None:
    """The saved readers' mean and the model as it ships now, on the same tweets: a new release is
    compared with the readers without reading the tweets again."""
    from router.scoring.evaluate import load_airline

    record = json.loads(record_path.read_text(encoding="utf-8"))
    task = load_airline(data)
    rows = sorted(int(i) for i in record)
    if any(task.gold[i] != record[str(i)]["mot"] for i in rows):
        raise SystemExit(f"{record_path}: its labels are not the airline set's in {data}")
    y = np.array([bool(record[str(i)]["mot"]) for i in rows])
    mean = np.array([float(np.mean(record[str(i)]["read"])) for i in rows])
    print(f"{len(rows)} tweets ({int(y.sum())} labelled MoT); the readers' mean: {_auroc_ci(y, mean)}")
    _model_on_tweets([task.texts[i] for i in rows], y)


def _auroc_ci(y: np.ndarray, s: np.ndarray, seed: int = 0, rounds: int = 2000) -> str:
    """AUROC with its bootstrap 95% interval, as printed."""
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(rounds):
        i = rng.integers(0, len(y), len(y))
        if 0 < y[i].sum() < len(i):
            boots.append(auroc(y[i], s[i]))
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return f"AUROC {auroc(y, s):.3f} [{lo:.3f}, {hi:.3f}]"


def score_tweets(key_path: Path, answer_paths: list[Path], model: bool, save: Path | None) -> None:
    key = json.loads(key_path.read_text(encoding="utf-8"))
    reads: dict[str, list[float]] = {}
    for p in answer_paths:
        answers = {k: float(v) for k, v in json.loads(p.read_text(encoding="utf-8")).items()}
        unknown = sorted(set(answers) - set(key))
        if unknown:
            raise SystemExit(f"{p.name}: keys not in key.json: {unknown[:5]}")
        ks = sorted(answers)
        a = auroc(np.array([key[k]["mot"] for k in ks]), np.array([answers[k] for k in ks]))
        print(f"{p.name}: {len(ks)} tweets, AUROC {a:.3f}")
        for k in ks:
            reads.setdefault(k, []).append(answers[k])
    ks = sorted(reads)
    y = np.array([key[k]["mot"] for k in ks])
    mean = np.array([float(np.mean(reads[k])) for k in ks])
    twice = [k for k in ks if len(reads[k]) > 1]
    if twice:
        r = np.corrcoef([reads[k][0] for k in twice], [reads[k][1] for k in twice])[0, 1]
        print(f"read twice: {len(twice)}; the two readers' correlation {r:.3f}")
    print(f"{len(ks)} tweets ({int(y.sum())} labelled MoT); the readers' mean: {_auroc_ci(y, mean)}")
    for cut in (25, 50, 75):
        flag = mean >= cut
        print(
            f"  read as MoT at >= {cut}: {int(flag.sum())}; of the labelled MoT {flag[y].mean():.2f}, "
            f"of the others {flag[~y].mean():.2f}"
        )
    if model:
        _model_on_tweets([key[k]["text"] for k in ks], y)
    if save:
        rows = sorted((int(key[k]["row"]), key[k]["mot"], [round(r) for r in reads[k]]) for k in ks)
        body = ",\n".join(f'"{i}": {json.dumps({"mot": m, "read": r})}' for i, m, r in rows)
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
    pt = sub.add_parser("prepare-tweets")
    pt.add_argument("--n", type=int, default=600)
    pt.add_argument("--chunks", type=int, default=4)
    pt.add_argument("--seed", type=int, default=2026)
    pt.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    pt.add_argument("--out", type=Path, required=True)
    st = sub.add_parser("score-tweets")
    st.add_argument("key", type=Path)
    st.add_argument("answers", type=Path, nargs="+")
    st.add_argument("--model", action="store_true", help="the shipped detector on the same tweets too")
    st.add_argument("--save", type=Path, default=None, help="keep every reader's score by the set's row")
    rt = sub.add_parser("reread-tweets", help="the saved readers against the model as it ships now")
    rt.add_argument("--record", type=Path, default=ROOT / "models" / "airline_blind_read.json")
    rt.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = ap.parse_args()
    if args.cmd == "reread-tweets":
        reread_tweets(args.record, args.data)
    elif args.cmd == "prepare-tweets":
        prepare_tweets(args.n, args.chunks, args.out, args.seed, args.data)
    elif args.cmd == "score-tweets":
        score_tweets(args.key, args.answers, args.model, args.save)
    elif args.cmd == "prepare":
        prepare(args.split, args.chunks, args.out, args.seed)
    else:
        score(args.key, args.answers, args.save)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
