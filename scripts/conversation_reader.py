#!/usr/bin/env python
"""Does e5 find the moment of truth better when it reads the conversation so far than when it reads the turn?

    .venv/bin/python scripts/conversation_reader.py --mode context [--layers 4] [--epochs 3] [--save c.npy]
    .venv/bin/python scripts/conversation_reader.py --mode alone --save a.npy
    .venv/bin/python scripts/conversation_reader.py --combine a.npy c.npy

A measurement, not a recipe: nothing it fits ships. Both modes tune the shipped encoder's top layers (those
the corpus tuning already moved, ``router.scoring.e5.ensure_tuned_e5``) with one linear head on the same
rows of the corpus **train** split: every single turn, and each conversation's customer turns up to the
labelled one (labelled 1 there, 0 before; every turn of a routine conversation), as
``router.scoring.corpus.training_rows`` takes them. ``context`` feeds each conversation turn joined after
every customer turn before it (``CONTEXT_SEP``, cut from the left at 256 tokens); ``alone`` feeds the turn
by itself. The **dev** conversations are then read turn by turn, flagged at the first turn whose probability
crosses a threshold, and counted as the detector is (``conversation_summary``): for each cap on routine dev
conversations flagged, the most flagged on time over thresholds. The threshold is swept on dev, so the
figures compare the two readings with each other, not with the shipped detector's out-of-fold ones. The
test split is never read; a line of an evaluation set trains nothing.
"""

from __future__ import annotations

import argparse
import copy
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from finetune_e5 import length_batches, pool, top  # noqa: E402

from router.scoring.corpus import CONTEXT_SEP, Corpus, held_out_lines, load_corpus  # noqa: E402
from router.scoring.detector import ConversationOutcome, conversation_summary  # noqa: E402
from router.scoring.e5 import ensure_tuned_e5  # noqa: E402
from router.scoring.evaluate import evaluation_index  # noqa: E402
from router.scoring.overlap import norm_text  # noqa: E402

MAX_TOKENS = 256
CAPS = (5, 10, 15)  # routine dev conversations flagged (of 235): 2%, 4%, 6%


def reading(turns: list[str], k: int, mode: str) -> str:
    """Customer turn ``k`` (1-based) as the mode reads it."""
    return CONTEXT_SEP.join(turns[:k]) if mode == "context" else turns[k - 1]


def train_rows(corpus: Corpus, mode: str) -> list[tuple[str, float]]:
    """A row holding a line said word for word in the test split ("Ok thanks") is left out, as
    ``training_rows`` leaves it out."""
    train, test = corpus.split("train"), held_out_lines(corpus)
    rows = [(t.text, float(t.mot)) for t in train.turns]
    for c in train.conversations:
        last = c.mot_turn or len(c.customer_texts)
        rows += [(reading(c.customer_texts, k, mode), float(k == c.mot_turn)) for k in range(1, last + 1)]
    return [r for r in rows if not any(norm_text(p) in test for p in r[0].split(CONTEXT_SEP))]


def dev_prefixes(corpus: Corpus, mode: str) -> list[tuple[str, int, int]]:
    """(reading, conversation index, turn) for every customer turn of every dev conversation."""
    convs = corpus.split("dev").conversations
    return [
        (reading(c.customer_texts, k, mode), i, k)
        for i, c in enumerate(convs)
        for k in range(1, len(c.customer_texts) + 1)
    ]


def curve(
    corpus: Corpus, prefixes: list[tuple[str, int, int]], p: np.ndarray
) -> dict[int, dict[str, object]]:
    """For each cap on routine dev conversations flagged, the threshold that puts the most on time."""
    convs = corpus.split("dev").conversations
    by_conv: dict[int, list[tuple[int, float]]] = {}
    for (_, i, k), pk in zip(prefixes, p, strict=True):
        by_conv.setdefault(i, []).append((k, float(pk)))
    best: dict[int, dict[str, object]] = {}
    for th in np.concatenate([np.arange(0.05, 0.5, 0.05), np.arange(0.5, 0.9995, 0.0025)]):
        outs = [
            ConversationOutcome(c.mot_turn, next((k for k, pk in sorted(by_conv[i]) if pk >= th), None))
            for i, c in enumerate(convs)
        ]
        s = conversation_summary(outs)
        for cap in CAPS:
            if s["routine_flagged"] <= cap and s["on_time"] > best.get(cap, {}).get("on_time", -1):
                best[cap] = {"threshold": round(float(th), 4), **s}
    return best


def show(tag: str, best: dict[int, dict[str, object]]) -> None:
    parts = [f"<= {cap}: {b['on_time']} on time, {b['early']} early" for cap, b in sorted(best.items())]
    print(f"{tag}: routine flagged " + "; ".join(parts), flush=True)


States = tuple[list[int], torch.Tensor, torch.Tensor, torch.Tensor]


class Reader:
    """The tuned encoder's top ``k`` layers over its lower layers' states (computed once per text)."""

    def __init__(self, k: int) -> None:
        from transformers import AutoModel, AutoTokenizer

        model_dir = ensure_tuned_e5()
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        self.tokenizer.truncation_side = "left"  # a long conversation keeps its latest turns
        self.model = AutoModel.from_pretrained(str(model_dir), add_pooling_layer=False).eval()
        n = int(self.model.config.num_hidden_layers)
        self.k, self.n = k, n
        self.layers = torch.nn.ModuleList(
            [copy.deepcopy(self.model.encoder.layer[i]) for i in range(n - k, n)]
        )
        self.head = torch.nn.Linear(384, 1)

    @torch.no_grad()
    def states(self, texts: list[str], batch: int = 64) -> list[States]:
        """Per length-sorted batch: indices, the lower layers' output, the mask, the pooled output."""
        out = []
        for idx, b in length_batches(self.tokenizer, texts, batch, MAX_TOKENS):
            hidden = self.model(**b, output_hidden_states=True).hidden_states
            mask = b["attention_mask"]
            out.append((idx, hidden[self.n - self.k].clone(), mask, pool(hidden[-1], mask)))
        return out

    def start_head(self, batches: list[States], y: np.ndarray) -> None:
        """From a logistic probe on the frozen encoder's pooled output, as scripts/finetune_e5.py starts."""
        from sklearn.linear_model import LogisticRegression

        x = np.zeros((len(y), 384), np.float32)
        for idx, _, _, pooled in batches:
            x[idx] = pooled.numpy()
        probe = LogisticRegression(C=10.0, max_iter=3000).fit(x, y)
        with torch.no_grad():
            self.head.weight[:] = torch.tensor(probe.coef_, dtype=torch.float32)
            self.head.bias[:] = torch.tensor(probe.intercept_, dtype=torch.float32)

    def logits(self, h: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        return self.head(pool(top(self.layers, h, m), m)).squeeze(-1)

    @torch.no_grad()
    def probs(self, batches: list[States], n: int) -> np.ndarray:
        out = np.zeros(n)
        for idx, h, m, _ in batches:
            out[idx] = torch.sigmoid(self.logits(h, m)).numpy()
        return out


def run(mode: str, layers: int, epochs: int, data: Path, save: Path | None) -> None:
    torch.manual_seed(0)
    rng = random.Random(0)
    corpus = load_corpus()
    held_out = evaluation_index(data, None)
    rows = [r for r in train_rows(corpus, mode) if not any(p in held_out for p in r[0].split(CONTEXT_SEP))]
    prefixes = dev_prefixes(corpus, mode)
    reader = Reader(layers)
    t0 = time.perf_counter()
    b_train, b_dev = reader.states([t for t, _ in rows]), reader.states([t for t, _, _ in prefixes])
    print(f"{mode}: {len(rows)} train rows, {len(prefixes)} dev turns ({time.perf_counter() - t0:.0f} s)")
    y = torch.tensor([m for _, m in rows])
    reader.start_head(b_train, y.numpy())
    opt = torch.optim.AdamW(
        [
            {"params": reader.layers.parameters(), "lr": 5e-5},
            {"params": reader.head.parameters(), "lr": 1e-3},
        ],
        weight_decay=0.01,
    )
    mini = [
        (i[s : s + 32], h[s : s + 32], m[s : s + 32]) for i, h, m, _ in b_train for s in range(0, len(i), 32)
    ]
    p = reader.probs(b_dev, len(prefixes))
    show(f"{mode}, the probe", curve(corpus, prefixes, p))
    for epoch in range(1, epochs + 1):
        reader.layers.train()
        rng.shuffle(mini)
        for idx, h, m in mini:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(reader.logits(h, m), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        reader.layers.eval()
        p = reader.probs(b_dev, len(prefixes))
        show(f"{mode}, epoch {epoch}", curve(corpus, prefixes, p))
    if save:
        np.save(save, p)


def combine(paths: list[Path]) -> None:
    corpus = load_corpus()
    prefixes = dev_prefixes(corpus, "alone")
    ps = [np.load(p) for p in paths]
    show("the larger", curve(corpus, prefixes, np.max(ps, axis=0)))
    show("the mean", curve(corpus, prefixes, np.mean(ps, axis=0)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mode", choices=("context", "alone"), default="context")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--save", type=Path, default=None, help="the last epoch's dev probabilities (.npy)")
    ap.add_argument("--combine", type=Path, nargs="+", default=None, help="saved runs: their larger and mean")
    args = ap.parse_args()
    if args.combine:
        combine(args.combine)
    else:
        run(args.mode, args.layers, args.epochs, args.data, args.save)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
