#!/usr/bin/env python
"""Check the moment-of-truth corpus (models/corpus/): format, counts, near-duplicates; optionally drop them.

    .venv/bin/python scripts/corpus_check.py [--fix] [--json stats.json]

- every line is parsed by router.scoring.corpus.load_corpus (the format in models/corpus/README.md);
- counts per language and split, categories, style tags, conversations that turn late;
- near-duplicates: two single turns of one language whose embeddings (the shipped encoder) have cosine
  above 0.95 are the same line said twice; ``--fix`` removes the newer one (the higher id) from its file.
Exits 1 when the corpus is below the sizes the issue asks for or still has near-duplicates.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from router.scoring.corpus import DEFAULT_CORPUS_DIR, Corpus, CorpusTurn, load_corpus  # noqa: E402

NEAR_DUPLICATE_COSINE = 0.95
MIN_TURNS, MIN_CONVERSATIONS = 3000, 400
MIN_TURNS_PER_LANGUAGE, MIN_CONVERSATIONS_PER_LANGUAGE = 150, 25


def packaged_encoder() -> Any:
    """The packaged e5, not the scorer's tuned one: tuning on the corpus pulls its paraphrases together on
    purpose, so "near-duplicate" is measured where text is embedded as a general encoder sees it (torch,
    as the int8 graph is the tuned encoder's)."""
    from router.scoring.e5 import ensure_e5
    from router.scoring.transformer import Encoder

    return Encoder(model_dir=str(ensure_e5()), backend="torch")


def near_duplicates(turns: list[CorpusTurn], emb: np.ndarray) -> list[tuple[CorpusTurn, CorpusTurn, float]]:
    """(kept, duplicate, cosine) pairs within each language; the earlier line of a pair is kept."""
    pairs: list[tuple[CorpusTurn, CorpusTurn, float]] = []
    langs = sorted({t.lang for t in turns})
    for lang in langs:
        idx = [i for i, t in enumerate(turns) if t.lang == lang]
        sims = emb[idx] @ emb[idx].T
        np.fill_diagonal(sims, 0.0)
        dropped: set[int] = set()
        for a, b in zip(*np.nonzero(np.triu(sims) > NEAR_DUPLICATE_COSINE), strict=True):
            if a in dropped:
                continue
            dropped.add(int(b))
            pairs.append((turns[idx[a]], turns[idx[b]], float(sims[a, b])))
    return pairs


def stats(corpus: Corpus) -> dict[str, object]:
    per_lang: dict[str, object] = {}
    for lang in corpus.languages():
        turns = [t for t in corpus.turns if t.lang == lang]
        convs = [c for c in corpus.conversations if c.lang == lang]
        per_lang[lang] = {
            "turns": len(turns),
            "mot_turns": sum(t.mot for t in turns),
            "conversations": len(convs),
            "mot_conversations": sum(c.mot_turn is not None for c in convs),
            "late_mot_conversations": sum((c.mot_turn or 0) >= 3 for c in convs),
            "customer_turns_in_conversations": sum(len(c.customer_texts) for c in convs),
        }
    return {
        "turns": len(corpus.turns),
        "conversations": len(corpus.conversations),
        "languages": per_lang,
        "splits": {
            "turns": dict(Counter(t.split for t in corpus.turns)),
            "conversations": dict(Counter(c.split for c in corpus.conversations)),
        },
        "categories": dict(sorted(Counter(t.category for t in corpus.turns).items())),
        "styles": dict(sorted(Counter(s for t in corpus.turns for s in t.styles).items())),
        "styled_share": round(sum(bool(t.styles) for t in corpus.turns) / max(1, len(corpus.turns)), 3),
    }


def _drop_lines(dups: list[CorpusTurn], root: Path) -> None:
    ids = {t.id for t in dups}
    for path in root.glob("*/turns*.jsonl"):
        lines = path.read_text(encoding="utf-8").splitlines()
        kept = [line for line in lines if json.loads(line)["id"] not in ids]
        if len(kept) != len(lines):
            path.write_text("\n".join(kept) + "\n", encoding="utf-8")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS_DIR)
    ap.add_argument(
        "--fix", action="store_true", help="remove the newer line (higher id) of each near-duplicate pair"
    )
    ap.add_argument("--json", type=Path, default=None, help="write the counts here")
    args = ap.parse_args()

    corpus = load_corpus(args.corpus)
    # in writing order (ids count up across rounds; files do not sort that way: turns_r14 before turns_r6),
    # so that the line a pair loses is the newer one
    turns = sorted(corpus.turns, key=lambda t: (t.lang, int(t.id.rsplit("-", 1)[1])))
    emb = packaged_encoder().embed([t.text for t in turns])
    pairs = near_duplicates(turns, emb)
    for kept, dup, cos in pairs:
        print(f"near-duplicate ({cos:.3f}): {dup.id} {dup.text!r} ~ {kept.id} {kept.text!r}")
    if args.fix and pairs:
        _drop_lines([d for _, d, _ in pairs], args.corpus)
        corpus = load_corpus(args.corpus)
        print(f"removed {len(pairs)} lines")
    summary = stats(corpus)
    summary["near_duplicates"] = 0 if args.fix else len(pairs)
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    if args.json is not None:
        args.json.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    langs = summary["languages"]
    assert isinstance(langs, dict)
    small = [
        lang
        for lang, n in langs.items()
        if lang != "en"
        and (n["turns"] < MIN_TURNS_PER_LANGUAGE or n["conversations"] < MIN_CONVERSATIONS_PER_LANGUAGE)
    ]
    ok = (
        len(corpus.turns) >= MIN_TURNS
        and len(corpus.conversations) >= MIN_CONVERSATIONS
        and not small
        and (args.fix or not pairs)
    )
    if not ok:
        print(
            f"corpus below the required sizes or with near-duplicates (small languages: {small})",
            file=sys.stderr,
        )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
