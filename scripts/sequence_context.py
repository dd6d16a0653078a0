"""Measure, on dev and out of fold, how the context head reads a contact's earlier turns: their mean
embedding (what ships) against a GRU over them in order, or attention from the turn to each of them.

    .venv/bin/python scripts/sequence_context.py --reader gru [--seeds 3] [--seed-offset 0]

A measurement, not part of the release (models/HISTORY.md, The detector: "an ordered reading of the
earlier turns"). It runs scripts/train_detector.py's own steps with the shipped settings: the `mot` head's
five fold fits and its neighbours (cached in .cache/sequence_context.pkl after the first run, since they do
not depend on the reader), then one context reader per fold fitted on the other folds' context rows (the
conversations' turns and the composed rows, over that fold's head, lift floored at 0 when applied), then the
detector's choice of C and threshold on dev. It prints each backend's dev conversations (on time, early,
missed, routine flagged), single-turn F1 and the release rule's objective. The test split is never read.

Every reader ends in the shipped head's hidden layer (256 units, ReLU, dropout 0.2) over
[this turn's embedding, what it reads of the earlier turns]:
- ``mean``: the mean of up to four earlier customer turns' embeddings and its product with the turn (the
  shipped ``mot_context`` head, refitted here: the replica's figures are the baseline);
- ``gru``: a GRU (``--hidden`` units) over the same turns in order, each its embedding and its `mot` logit
  (/5), and the product of its last state with a tanh projection of the turn;
- ``attn``: one attention head from the turn to each earlier turn (same inputs), and the product likewise;
- ``both``: the mean and the GRU together.
``--seeds N`` averages N readers (seeds offset by 0..N-1) before the floor.
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import train_detector as td  # noqa: E402
from handwritten import junk_lines  # noqa: E402

from router.scoring.corpus import (  # noqa: E402
    ContextRow,
    Corpus,
    TrainingRow,
    load_corpus,
    training_rows,
    turn_context_rows,
)
from router.scoring.evaluate import evaluation_index  # noqa: E402
from router.scoring.transformer import Encoder, TransformerScorer, context_lift, embed_cached  # noqa: E402

READERS = ("mean", "gru", "attn", "both")
DIM = 384


def build_reader(kind: str, hidden: int) -> Any:
    import torch

    class Reader(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            n = DIM
            if kind in ("mean", "both"):
                n += 2 * DIM
            if kind in ("gru", "both"):
                self.proj = torch.nn.Linear(DIM + 1, hidden)
                self.gru = torch.nn.GRU(hidden, hidden, batch_first=True)
                self.query = torch.nn.Linear(DIM, hidden)
                n += 2 * hidden
            if kind == "attn":
                self.aq, self.aq2 = torch.nn.Linear(DIM, hidden), torch.nn.Linear(DIM, hidden)
                self.ak, self.av = torch.nn.Linear(DIM + 1, hidden), torch.nn.Linear(DIM + 1, hidden)
                n += 2 * hidden
            self.mlp = torch.nn.Sequential(
                torch.nn.Linear(n, td.CONTEXT_HIDDEN),
                torch.nn.ReLU(),
                torch.nn.Dropout(td.CONTEXT_DROPOUT),
                torch.nn.Linear(td.CONTEXT_HIDDEN, 1),
            )

        def forward(self, e: Any, seq: Any, lengths: Any) -> Any:
            parts = [e]
            mask = torch.arange(seq.shape[1])[None, :] < lengths[:, None]
            if kind in ("mean", "both"):
                c = (seq[:, :, :DIM] * mask[:, :, None]).sum(1) / lengths[:, None].float()
                parts += [c, e * c]
            if kind in ("gru", "both"):
                u = torch.relu(self.proj(seq))
                packed = torch.nn.utils.rnn.pack_padded_sequence(
                    u, lengths, batch_first=True, enforce_sorted=False
                )
                s = self.gru(packed)[1][0]
                parts += [s, torch.tanh(self.query(e)) * s]
            if kind == "attn":
                score = (self.ak(seq) @ self.aq(e)[:, :, None])[:, :, 0] / hidden**0.5
                a = torch.softmax(score.masked_fill(~mask, -1e9), 1)
                ctx = (a[:, :, None] * self.av(seq)).sum(1)
                parts += [ctx, torch.tanh(self.aq2(e)) * ctx]
            return self.mlp(torch.cat(parts, 1))[:, 0]

    return Reader()


def tensors(pairs: list[tuple[str, tuple[str, ...]]], emb: td.Embeddings, head: td.NeighbourHead) -> tuple:
    """This turn's embeddings, the earlier turns (left-aligned: embedding and `mot` logit / 5), their
    counts, and the fold head's logit for the turn."""
    import torch

    turns = td.MOT_CONTEXT_TURNS
    e = np.stack([emb[t] for t, _ in pairs]).astype(np.float32)
    seq = np.zeros((len(pairs), turns, DIM + 1), np.float32)
    lengths = np.array([len(earlier[-turns:]) for _, earlier in pairs], np.int64)
    texts = sorted({x for _, earlier in pairs for x in earlier[-turns:]})
    z = dict(zip(texts, head.logits(np.stack([emb[x] for x in texts]))[:, 0], strict=True))
    for i, (_, earlier) in enumerate(pairs):
        for j, x in enumerate(earlier[-turns:]):
            seq[i, j, :DIM], seq[i, j, DIM] = emb[x], z[x] / 5.0
    base = head.logits(e)[:, 0].astype(np.float32)
    return tuple(torch.from_numpy(a) for a in (e, seq, lengths, base))


def fit(
    rows: list[ContextRow],
    embs: list[td.Embeddings],
    head: td.NeighbourHead,
    args: argparse.Namespace,
    seed: int,
) -> Any:
    """One reader, as scripts/train_detector.py fits the shipped head (AdamW, batches of 64, its epochs)."""
    import torch

    torch.manual_seed(seed)
    parts = [tensors([(r.text, r.earlier) for r in rows], emb, head) for emb in embs]
    e, seq, lengths, base = (torch.cat([p[i] for p in parts]) for i in range(4))
    y = torch.tensor([r.mot for r in rows] * len(embs), dtype=torch.float32)
    net = build_reader(args.reader, args.hidden)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=td.CONTEXT_WEIGHT_DECAY)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(args.epochs):
        net.train()
        perm = torch.randperm(len(y), generator=gen)
        for i in range(0, len(perm), 64):
            j = perm[i : i + 64]
            z = net(e[j], seq[j], lengths[j]) + base[j]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(z, y[j])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


def mot_folds(corpus: Corpus, scorers: list[TransformerScorer], cache: Path) -> tuple:
    """train_detector.py's `mot` fold heads, their out-of-fold probabilities and the corpus embeddings."""
    if cache.exists():
        return tuple(pickle.loads(cache.read_bytes()))
    held_out = evaluation_index(ROOT.parent / "shared" / "data")
    rows = held_out.drop(training_rows(corpus, "train") + training_rows(corpus, "dev"), lambda r: r.text)
    rows += [TrainingRow(t, 0.0, "none", 0.0, f"junk-{k}") for k, t in enumerate(junk_lines())]
    emb_dir = ROOT / ".cache" / "embeddings"
    x = embed_cached(scorers[0].encoder, [r.text for r in rows], emb_dir, "detector_rows")
    x_torch = embed_cached(Encoder(backend="torch"), [r.text for r in rows], emb_dir, "detector_rows")
    targets = td.near_miss_targets(rows, corpus, 0.0)
    ones = np.ones(len(rows), np.float32)
    oof, heads = td.out_of_fold(rows, x, x_torch, td.CONSISTENCY, ones, td.NeighbourSpec(), targets)
    train, dev = corpus.split("train"), corpus.split("dev")
    both = Corpus(train.turns + dev.turns, train.conversations + dev.conversations)
    embs = [td.embed_corpus(s.encoder, both, emb_dir) for s in scorers]
    cache.write_bytes(pickle.dumps((oof, heads, embs)))
    return oof, heads, embs


def in_context(
    both: Corpus,
    rows: list[ContextRow],
    embs: list[td.Embeddings],
    heads: list[Any],
    args: argparse.Namespace,
) -> list[dict[tuple[str, int], float]]:
    """As train_detector.in_context_out_of_fold, with the chosen reader (the mean of ``--seeds`` readers)."""
    import torch

    out: list[dict[tuple[str, int], float]] = [{} for _ in embs]
    for k in range(td.FOLDS):
        fit_rows = [r for r in rows if td.fold_of(r.scenario) != k]
        nets = [
            fit(fit_rows, embs, heads[k], args, td.SEED + args.seed_offset + i) for i in range(args.seeds)
        ]
        turns = [
            (c.id, j, (c.customer_texts[j], tuple(c.customer_texts[:j])))
            for c in both.conversations
            if td.fold_of(c.scenario) == k
            for j in range(1, len(c.customer_texts))
        ]
        for b, emb in enumerate(embs):
            e, seq, lengths, base = tensors([t for _, _, t in turns], emb, heads[k])
            with torch.no_grad():
                g = np.mean([net(e, seq, lengths).numpy() for net in nets], axis=0)
            p = 1.0 / (1.0 + np.exp(-np.clip(base.numpy() + context_lift(g), -40.0, 40.0)))
            out[b].update({(cid, j): float(q) for (cid, j, _), q in zip(turns, p, strict=True)})
        print(f"fold {k} read", flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reader", choices=READERS, default="gru")
    ap.add_argument("--seeds", type=int, default=1, help="readers averaged per fold")
    ap.add_argument("--seed-offset", type=int, default=0)
    ap.add_argument("--hidden", type=int, default=128, help="GRU / attention units")
    ap.add_argument("--epochs", type=int, default=td.CONTEXT_EPOCHS)
    ap.add_argument("--cache", type=Path, default=ROOT / ".cache" / "sequence_context.pkl")
    args = ap.parse_args()
    t0 = time.perf_counter()
    corpus = load_corpus()
    train, dev = corpus.split("train"), corpus.split("dev")
    both = Corpus(train.turns + dev.turns, train.conversations + dev.conversations)
    scorers = [TransformerScorer(cache_size=0, backend=b) for b in ("onnx", "torch")]
    oof, heads, embs = mot_folds(corpus, scorers, args.cache)
    held_out = evaluation_index(ROOT.parent / "shared" / "data")
    rows = [
        r
        for r in turn_context_rows(corpus, "train")
        + turn_context_rows(corpus, "dev")
        + td.composed_context_rows(corpus, td.COMPOSED_PER_TURN)
        if not any(t in held_out for t in (r.text, *r.earlier))
    ]
    read = in_context(both, rows, embs, heads, args)
    backends = [
        td.score_texts(s, both, emb, o, r) for s, emb, o, r in zip(scorers, embs, oof, read, strict=True)
    ]
    model, chosen = td.choose(train, dev, backends)
    gold = [t.mot for t in dev.turns]
    for name, scores in zip(("int8", "torch"), backends, strict=True):
        objective, conv, turn = td._judge(dev, scores, model, gold)
        print(
            f"{args.reader} seeds {args.seeds}+{args.seed_offset} {name}: C {chosen['C']} threshold "
            f"{model.threshold}; on time {conv['on_time']}/{conv['mot_conversations']} "
            f"(early {conv['early']}, missed {conv['missed']}), routine flagged {conv['routine_flagged']}/"
            f"{conv['routine_conversations']}, turn F1 {turn['f1']:.4f}, objective {objective:.4f}"
        )
    print(f"{time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
