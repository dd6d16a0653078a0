#!/usr/bin/env python
"""Fit the moment-of-truth head and the conversation-level detector on the corpus's train and dev splits.

    .venv/bin/python scripts/train_detector.py [--out models] [--cache .cache/embeddings]

Run after scripts/train_heads.py (the other heads) and before scripts/export_onnx.py (the quality stamp).

1. Per-turn rows of the train and dev splits (router.scoring.corpus.training_rows) are embedded by the
   default int8 encoder. The moment-of-truth head (linear, L2 as scripts/train_heads.py chose on dev) is
   fitted five times, each time leaving one fold of scenarios out: every row gets an out-of-fold
   probability, what the head says of text it has not seen. Half the logit of the vote of a text's five
   nearest labelled rows (router.scoring.neighbours; in a fold, the other folds' rows) is added to the
   head's: the linear head alone reads short, flat lines with stakes too low.
   The context head (``mot_context``: a logit added to the head's for a turn after the first, learned from
   the turn's embedding, up to four customer turns before it read in order by three GRUs (``--readers``;
   0: their mean embedding) and their product with the turn; one hidden layer; fitted unfloored, applied
   floored at 0: router.scoring.transformer.context_lift) is fitted
   in the same folds on the conversations' turns from the second up to the labelled
   one, over that fold's head: every conversation turn gets an out-of-fold probability read in context.
   It also reads composed rows (``composed_context_rows``): the calm labelled turn of a churn or
   vulnerable-customer conversation (a decision to leave, a veiled farewell) after the earlier turns of
   another conversation of the same category, fold and language, labelled 1, so that it learns the pattern
   rather than the wording of the few conversations that teach it, and their counterweight
   (``benign_change_context_rows``, ``--benign-change``, 2 per turn): a routine calm change of plan after
   one or two unrelated routine single turns of the same fold and language, labelled 0.
   ``--composed-earlier N`` (off by default) adds a counterweight inside the same conversations
   (``composed_earlier_context_rows``): each turn before the labelled one after another conversation's
   earlier turns, labelled 0, so that the decision, not its position after a grievance, carries the lift.
   The head also learns every row again in lower case (``--lower-copies``, weight 1) and again without its
   punctuation (``--bare-copies``, weight 1); its neighbours' bank keeps the rows as written: chat is often
   typed so, the corpus rarely.
   ``--near-miss T`` (off by default: tried, not shipped) makes T the head's target for a routine single
   turn of a hard-negative category (``near_miss_targets``).
2. Train and dev conversations are replayed turn by turn through the routing policy (router.domain.mot.
   observe_turn) with those probabilities and the shipped heads' intensity, topic and wants-a-human; the
   trajectory features after turn k (router.domain.mot.FEATURES) are one row, labelled 1 from the labelled
   moment-of-truth turn on (a verdict is sticky); each single turn is a one-turn contact.
3. The conversation model (logistic regression, C chosen with it) is fitted on the train split's rows and
   its threshold swept on the dev split's, each candidate judged on the int8 and on the torch backend's
   scores and counted as good as the worse of the two. The issue's conversation targets are constraints:
   among the pairs that flag >= 95% of dev moment-of-truth conversations on the labelled turn or the next
   and <= 2% of dev routine conversations ever, the one with the best dev single-turn F1 is kept. Only when
   no pair meets both does the objective decide: dev single-turn F1 + the on-time share - 2 x the routine
   flagged share (a routine contact sent to an empathetic agent costs less than a missed moment of truth,
   but a detector that flags mildly annoyed conversations is useless: a flag is sticky for the rest of the
   contact, and most contacts are routine). The routine flagged share is the mean of two kinds of routine
   contact, as the simulated day holds them in equal parts: dev's routine conversations, and contacts
   strung from two or three of dev's routine single turns of one language (``strung_routine``), read in
   context out of fold like every conversation.
4. The head is fitted once more on all train + dev rows, embedded by both backends (int8 and torch fp32)
   with a penalty on answering the two differently, the context head once more over it on all train + dev
   conversations, both written into models/heads.safetensors; the detector goes to models/detector.json.
   The test split is never read.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pickle
import random
import sys
import time
import unicodedata
from collections.abc import Callable, Container, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from handwritten import junk_lines  # noqa: E402
from train_heads import MOT_L2, length_weights, pair_rows, relabel, train_head  # noqa: E402

from router.domain.mot import FEATURES, MotModel, MotThresholds  # noqa: E402
from router.scoring.corpus import (  # noqa: E402
    ContextRow,
    ConvTurn,
    Corpus,
    CorpusConversation,
    CorpusTurn,
    Split,
    TrainingRow,
    held_out_lines,
    load_corpus,
    training_rows,
    turn_context_rows,
)
from router.scoring.detector import (  # noqa: E402
    ConversationOutcome,
    conversation_summary,
    prf,
    replay,
    save_mot_model,
)
from router.scoring.evaluate import evaluation_index  # noqa: E402
from router.scoring.heads import LinearHead, load_heads, save_heads  # noqa: E402
from router.scoring.measures import stable_fraction  # noqa: E402
from router.scoring.neighbours import NeighbourVote, unit_rows  # noqa: E402
from router.scoring.overlap import norm_text  # noqa: E402
from router.scoring.protocol import MOT_CONTEXT_TURNS, EmotionScore  # noqa: E402
from router.scoring.sequence import LOGIT_SCALE, TurnReader, padded  # noqa: E402
from router.scoring.transformer import (  # noqa: E402
    MOT_CONTEXT_HEAD,
    Encoder,
    TransformerScorer,
    context_features,
    context_lift,
    embed_cached,
)

FOLDS = 5
# the intensity and topic heads' weight (scripts/train_heads.py). On the all-int8 graph the head needed 1600
# to pass the export gate, which flattened it (dev AUROC 0.981 against 0.993, fitted on train); the export
# now keeps the two feed-forward outputs that carried the int8 error in fp32 (scripts/export_onnx.py), and
# at 100 the head's mean |int8 - torch| on the gate texts is 0.014 (gate: 0.02). On an encoder tuned four
# epochs one acceptance text kept a 0.15-0.17 gap at 100-400 (models/HISTORY.md), which the tuning's own
# int8 term fixed; on the twelve-round encoder the same text was 0.102 apart at 100 and 0.092 at 200, under
# tests/scoring/test_onnx_backend.py's 0.1, hence 200 (dev figures of the two fits: the model card). With
# --balance-length "what are your opening hours" was 0.111 apart at 200, 0.094 at 400, 0.064 at 800
CONSISTENCY = 200.0
FALSE_FLAG_COST = 2.0
# the conversation-level targets, met on dev before single-turn F1 counts
ON_TIME_TARGET, ROUTINE_FLAGGED_TARGET = 0.95, 0.02
# the detector's C, each fitted and judged at every threshold below
DETECTOR_C = (0.1, 0.3, 1.0, 3.0, 10.0)
# finer near the top, where a balanced logistic model's verdicts on confident heads crowd (the nine-round
# release chose 0.94, next to the old grid's end at 0.95)
THRESHOLDS = [round(x, 3) for x in (*np.arange(0.20, 0.951, 0.01), *np.arange(0.955, 0.991, 0.005))]

# the context head: one hidden layer, chosen on dev against the single-turn head (models/HISTORY.md);
# five seeds agreed within a conversation or two. 256 units since the composed rows: with 64 they took all
# the lift from a furious "third time" turn after three routine ones (0.73 alone and in context, 0.91 before)
CONTEXT_HIDDEN, CONTEXT_WEIGHT_DECAY, CONTEXT_EPOCHS, CONTEXT_DROPOUT = 256, 0.01, 60, 0.2
# --readers N: the context head reads the earlier turns through N GRUs (router.scoring.sequence), averaged;
# 0 reads their mean embedding. scripts/sequence_context.py measured both (models/HISTORY.md)
READER_HIDDEN, READERS = 128, 3
ContextReading = tuple[LinearHead, TurnReader | None]
SEED = 1234
# the context head's composed rows (--compose, composed_context_rows): the categories whose labelled turn is
# often calm and holds its stakes only with the turns before it, and rows per labelled turn. Out of fold on
# the nineteen-round dev split: churn alone, 4 -> +7 conversations on time, 8 -> +8 to +9 (three sampling
# seeds), 16 -> +8, but it took lift from veiled farewells; churn and vulnerable customers, 8 each -> +9 on
# time and 2 fewer flagged; every moment-of-truth category -> +7 and 2 fewer; benign openings before the
# same turns as negatives did not help (models/HISTORY.md)
COMPOSED_CATEGORIES = ("churn_threat", "vulnerable_customer")
COMPOSED_PER_TURN = 8
# ... and their counterweight inside the same conversations (--composed-earlier,
# composed_earlier_context_rows): a turn before the labelled one after another's earlier turns, labelled 0.
# At 4 the dev objective fell to 1.684 against 1.724, at 1 to 1.692: the head lifted the decisions less too
# (models/HISTORY.md, The detector)
COMPOSED_EARLIER_PER_TURN = 0
# and their counterweight (--benign-change, benign_change_context_rows): a calm change or cancellation after
# one or two unrelated routine turns, labelled 0. The composed rows above are the only ones whose earlier
# turns are another conversation's, all labelled 1, and the head lifts any later turn after a change of
# subject: a calm "close my account" after a sarcastic line (the simulator's strung routine contacts), and
# the routine tracking-number turn of tests/scoring/test_conversation_model.py (0.17 alone, 0.48 in context).
# Tried with the mean reading (2 rows per calm change: the simulated day's precision 0.727 against 0.651, but
# a furious "third time" turn of that test stayed under the threshold) and with the ordered readers (dev
# objective 1.635 against 1.640). Shipped 2 since the strung contacts joined the objective (_judge): 1.660
# against the recipe without it at 1.645, both chosen by the same rule (models/MODEL_CARD.md, The detector)
BENIGN_CHANGE_CATEGORIES = ("polite_change",)
BENIGN_CHANGE_PER_TURN = 2
# the mot head's rows again in lower case, at this weight (2026-12-07: dev objective 1.677 at 1.0, 1.675 at
# 0.5, 1.660 without; models/MODEL_CARD.md, The detector)
LOWER_COPIES = 1.0
# ... and without their punctuation (bare), at this weight: typed without it, dev's routine single turns
# read 0.17 on average against 0.06 as written, and 72 of 1,005 were flagged as one-turn contacts against
# 11 (in sample); with the copies 43 against 7, dev objective 1.684 against 1.677 (2026-12-07;
# models/MODEL_CARD.md, The detector)
BARE_COPIES = 1.0
# the simulator's strung routine contacts (router.sim.corpus_lines: two or three routine single turns of one
# language), built from dev single turns and judged beside dev's routine conversations (strung_routine)
STRUNG_PER_LANGUAGE = 60
# ... and such contacts strung from the train split's routine single turns, which the detector learns from
# as routine beside the train split's conversations and single turns (--strung-train)
STRUNG_TRAIN_PER_LANGUAGE = 0
# the mot head's neighbours (router.scoring.neighbours): k, temperature and the weight of their vote's logit.
# Chosen out of fold on the twenty-round train + dev rows and the dev objective (models/HISTORY.md, The
# detector): every setting tried (k 5-20, temperature 0.02-0.05, weight 0.5-1) raised dev single-turn F1
# (0.893 without, 0.903-0.931); weight 1 also flagged conversations' grievance openings a turn early. Dev
# objective: k 5, T 0.02, weight 0.5: 1.621; k 10, T 0.05: weight 0.5 1.609, 0.75 1.599, 1 1.594; k 20,
# T 0.05, weight 0.5: 1.613; none: 1.603. Centred on the rows' mean (--neighbour-centred, 2026-12-07, the
# release rule's objective, shipped 1.660): T 0.1 weight 0.75 1.638, T 0.02 weight 0.5 1.652, 0.35 1.659
NEIGHBOUR_K, NEIGHBOUR_TEMPERATURE, NEIGHBOUR_WEIGHT = 5, 0.02, 0.5

Embeddings = dict[str, np.ndarray]  # text -> embedding, one backend


@dataclasses.dataclass
class Scores:
    """One backend's scores of the corpus as the policy sees them: each single turn alone (text -> score)
    and each conversation's customer turns in order, each read after the ones before it."""

    alone: dict[str, EmotionScore]
    convs: dict[str, list[EmotionScore]]


@dataclasses.dataclass(frozen=True)
class NeighbourHead:
    """The mot head with its neighbours' vote added to its logit, as the scorer reads it
    (router.scoring.transformer.TransformerScorer.mot_logits)."""

    head: LinearHead
    neighbours: NeighbourVote | None

    def logits(self, x: np.ndarray) -> np.ndarray:
        z = self.head.logits(x)[:, 0]
        if self.neighbours is not None:
            z = z + self.neighbours.logits(x)
        return z[:, None]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        z = self.logits(x)
        return 1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0)))


@dataclasses.dataclass(frozen=True)
class NeighbourSpec:
    """How the neighbour vote is built: the weight of its logit (0: none), its temperature, and whether
    the embeddings are centred on the bank's mean before the cosine."""

    weight: float = NEIGHBOUR_WEIGHT
    temperature: float = NEIGHBOUR_TEMPERATURE
    centred: bool = False


def neighbours_of(
    x: np.ndarray, y: np.ndarray, spec: NeighbourSpec, topics: Sequence[str] | None = None
) -> NeighbourVote | None:
    """The neighbour vote over rows ``x`` (int8 embeddings) labelled ``y``, each row's topic kept for the
    reasons when ``topics`` is given; None when the spec's weight is 0."""
    if not spec.weight:
        return None
    center = x.mean(axis=0).astype(np.float32) if spec.centred else None
    # rounded as the heads file stores it (fp16), so the detector learns the scorer's very vote
    bank = unit_rows(x if center is None else x - center).astype(np.float16).astype(np.float32)
    names = tuple(sorted(set(topics))) if topics is not None else ()
    index = np.array([names.index(t) for t in topics], np.int64) if topics is not None else None
    y32 = y.astype(np.float32)
    return NeighbourVote(bank, y32, NEIGHBOUR_K, spec.temperature, spec.weight, index, names, center)


def fit_head(
    x: np.ndarray, x_torch: np.ndarray, y: np.ndarray, consistency: float, w: np.ndarray
) -> LinearHead:
    """The moment-of-truth head on the int8 and torch fp32 embeddings of the same rows, paying for answering
    the two differently: the probability must not depend on the backend (the export's gate checks it)."""
    n = len(y)
    return train_head(
        np.concatenate([x, x_torch]),
        np.concatenate([y, y]).astype(np.float32)[:, None],
        np.concatenate([w, w]).astype(np.float32),
        "sigmoid",
        l2=MOT_L2,
        steps=600,
        pairs=pair_rows([n], 2),
        consistency=consistency,
    )


def fold_of(scenario: str) -> int:
    return int(stable_fraction(scenario) * FOLDS)


def out_of_fold(
    rows: list[TrainingRow],
    x: np.ndarray,
    x_torch: np.ndarray,
    consistency: float,
    w: np.ndarray,
    neighbour: NeighbourSpec = NeighbourSpec(),
    targets: np.ndarray | None = None,
    bank: np.ndarray | None = None,
) -> tuple[list[dict[str, float]], list[NeighbourHead]]:
    """Per backend (int8, torch): text -> the head's probability when the text's scenario was left out of
    its fit and of its neighbours (each fit made exactly as the final one, so the detector learns the final
    head's scale); and the fold heads (fold k's was fitted without fold k, its neighbours are the others).
    ``bank``: the rows the neighbours may be (default every row; not the lower-case copies)."""
    fold = np.array([fold_of(r.scenario) for r in rows])
    y = np.array([r.mot for r in rows], np.float32)
    in_bank = np.ones(len(rows), bool) if bank is None else bank
    t = y if targets is None else targets.astype(np.float32)
    probs = [np.zeros(len(rows), np.float32), np.zeros(len(rows), np.float32)]
    heads: list[NeighbourHead] = []
    for k in range(FOLDS):
        fit = fold != k
        linear = fit_head(x[fit], x_torch[fit], t[fit], consistency, w[fit])
        head = NeighbourHead(linear, neighbours_of(x[fit & in_bank], y[fit & in_bank], neighbour))
        heads.append(head)
        probs[0][~fit], probs[1][~fit] = head(x[~fit])[:, 0], head(x_torch[~fit])[:, 0]
    out: list[dict[str, float]] = []
    for prob in probs:
        by_text: dict[str, list[float]] = {}
        for r, p in zip(rows, prob, strict=True):
            by_text.setdefault(r.text, []).append(float(p))
        out.append({t: float(np.mean(ps)) for t, ps in by_text.items()})
    return out, heads


NEAR_MISS_CATEGORIES = (
    "mild_annoyance",
    "short_delay",
    "billing_question",
    "calm_alarming_question",
    "polite_change",
)


def near_miss_targets(rows: list[TrainingRow], corpus: Corpus, near_miss: float) -> np.ndarray:
    """The mot head's targets: the label, except ``near_miss`` for a routine single turn of a hard-negative
    category (annoyed, delayed, a wrong bill, an alarming word said calmly, a polite cancellation), so that
    below the threshold such a turn ranks above thanks and plain requests. The neighbours keep the label."""
    near = {t.text for t in corpus.turns if not t.mot and t.category in NEAR_MISS_CATEGORIES}
    return np.array([near_miss if (not r.mot and r.text in near) else r.mot for r in rows], np.float32)


def context_inputs(
    rows: list[ContextRow] | list[tuple[str, tuple[str, ...]]], emb: Embeddings
) -> tuple[np.ndarray, np.ndarray]:
    """(this turn's embeddings, the context head's input) for (text, earlier turns) rows."""
    pairs = [(r.text, r.earlier) if isinstance(r, ContextRow) else r for r in rows]
    e = np.stack([emb[t] for t, _ in pairs])
    c = np.stack([np.mean([emb[x] for x in earlier[-MOT_CONTEXT_TURNS:]], axis=0) for _, earlier in pairs])
    return e, context_features(e, c)


def fit_context_head(
    rows: list[ContextRow], embs: list[Embeddings], head: LinearHead | NeighbourHead, readers: int = 0
) -> ContextReading:
    """The context head over ``head``: logit = head's logit + g(features), g fitted on the rows as embedded
    by each backend in ``embs`` (one copy of the rows per backend). With ``readers`` > 0 the features are
    the earlier turns read in order by that many GRUs, each with its own head, merged into one (their g
    averaged: ``merge_readings``); with 0 their mean embedding."""
    if readers:
        return merge_readings([_fit_ordered(rows, embs, head, SEED + i) for i in range(readers)])
    import torch

    torch.manual_seed(SEED)
    parts = [context_inputs(rows, emb) for emb in embs]
    net = _context_net(parts[0][1].shape[1])
    bases = [head.logits(e)[:, 0] for e, _ in parts]
    _train_context(net, [np.concatenate([f for _, f in parts])], np.concatenate(bases), rows, len(embs), SEED)
    return _linear(net[0], net[3]), None


def _context_net(n_in: int) -> Any:
    import torch

    return torch.nn.Sequential(
        torch.nn.Linear(n_in, CONTEXT_HIDDEN),
        torch.nn.ReLU(),
        torch.nn.Dropout(CONTEXT_DROPOUT),
        torch.nn.Linear(CONTEXT_HIDDEN, 1),
    )


def _linear(hidden: Any, out: Any) -> LinearHead:
    return LinearHead(
        weight=out.weight.detach().numpy().astype(np.float32),
        bias=out.bias.detach().numpy().astype(np.float32),
        activation="sigmoid",
        labels=("moment_of_truth_in_context",),
        hidden_weight=hidden.weight.detach().numpy().astype(np.float32),
        hidden_bias=hidden.bias.detach().numpy().astype(np.float32),
    )


def _train_context(
    net: Any, inputs: list[np.ndarray], base: np.ndarray, rows: list[ContextRow], copies: int, seed: int
) -> None:
    """AdamW on logit = base + net(*inputs), batches of 64, CONTEXT_EPOCHS epochs (torch's seed is set
    by the caller, before the net's weights are drawn)."""
    import torch

    xs = [torch.from_numpy(x) for x in inputs]
    b = torch.from_numpy(base.astype(np.float32))
    y = torch.from_numpy(np.array([r.mot for r in rows] * copies, np.float32))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=CONTEXT_WEIGHT_DECAY)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(CONTEXT_EPOCHS):
        net.train()
        perm = torch.randperm(len(y), generator=gen)
        for i in range(0, len(perm), 64):
            j = perm[i : i + 64]
            z = net(*(x[j] for x in xs))
            loss = torch.nn.functional.binary_cross_entropy_with_logits(z[:, 0] + b[j], y[j])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()


def ordered_inputs(
    pairs: list[tuple[str, tuple[str, ...]]], emb: Embeddings, head: LinearHead | NeighbourHead
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(this turn's embeddings, the earlier turns' embeddings, their ``head`` logits, their counts), the
    last MOT_CONTEXT_TURNS of each, as router.scoring.sequence.TurnReader reads them."""
    seen = sorted({t for _, earlier in pairs for t in earlier})
    z = dict(zip(seen, head.logits(np.stack([emb[t] for t in seen]))[:, 0].tolist(), strict=True))
    x, logits, lengths = padded(
        [[emb[t] for t in earlier] for _, earlier in pairs],
        [[z[t] for t in earlier] for _, earlier in pairs],
        MOT_CONTEXT_TURNS,
    )
    return np.stack([emb[t] for t, _ in pairs]), x, logits, lengths


def _fit_ordered(
    rows: list[ContextRow], embs: list[Embeddings], head: LinearHead | NeighbourHead, seed: int
) -> ContextReading:
    """One GRU reader and its head, trained in torch; returned as the numpy reader and head that serve."""
    import torch

    class Net(torch.nn.Module):
        def __init__(self, dim: int) -> None:
            super().__init__()
            self.proj = torch.nn.Linear(dim + 1, READER_HIDDEN)
            self.gru = torch.nn.GRU(READER_HIDDEN, READER_HIDDEN, batch_first=True)
            self.query = torch.nn.Linear(dim, READER_HIDDEN)
            self.head = _context_net(dim + 2 * READER_HIDDEN)

        def forward(self, e: Any, x: Any, z: Any, lengths: Any) -> Any:
            u = torch.relu(self.proj(torch.cat([x, z[:, :, None] / LOGIT_SCALE], 2)))
            packed = torch.nn.utils.rnn.pack_padded_sequence(
                u, lengths, batch_first=True, enforce_sorted=False
            )
            s = self.gru(packed)[1][0]
            return self.head(torch.cat([e, s, torch.tanh(self.query(e)) * s], 1))

    parts = [ordered_inputs([(r.text, r.earlier) for r in rows], emb, head) for emb in embs]
    inputs = [np.concatenate([p[i] for p in parts]) for i in range(4)]
    base = np.concatenate([head.logits(p[0])[:, 0] for p in parts])
    torch.manual_seed(seed)
    net = Net(inputs[0].shape[1])
    _train_context(net, inputs, base, rows, len(embs), seed)

    def a(t: Any) -> np.ndarray:
        return t.detach().numpy().astype(np.float32)

    gru = net.gru
    reader = TurnReader(
        a(net.proj.weight),
        a(net.proj.bias),
        a(gru.weight_ih_l0),
        a(gru.weight_hh_l0),
        a(gru.bias_ih_l0),
        a(gru.bias_hh_l0),
        a(net.query.weight),
        a(net.query.bias),
    )
    return _linear(net.head[0], net.head[3]), reader


def merge_readings(readings: list[ContextReading]) -> ContextReading:
    """N GRU readers and their heads as one reader (N independent GRUs are one GRU with block-diagonal
    weights, since its gates act element by element) and one head whose g is the mean of theirs."""
    readers = [r for _, r in readings if r is not None]
    assert len(readers) == len(readings)
    n, h = len(readers), readers[0].hidden
    dim = readers[0].query_weight.shape[1]

    def gates(name: str) -> np.ndarray:
        blocks = [getattr(r, name) for r in readers]
        if blocks[0].ndim == 1:
            return np.concatenate(
                [np.concatenate([b[g * h : (g + 1) * h] for b in blocks]) for g in range(3)]
            )
        out = np.zeros((3 * n * h, n * h), np.float32)
        for i, b in enumerate(blocks):
            for g in range(3):
                out[g * n * h + i * h : g * n * h + (i + 1) * h, i * h : (i + 1) * h] = b[g * h : (g + 1) * h]
        return out

    reader = TurnReader(
        np.concatenate([r.proj_weight for r in readers]),
        np.concatenate([r.proj_bias for r in readers]),
        gates("weight_ih"),
        gates("weight_hh"),
        gates("bias_ih"),
        gates("bias_hh"),
        np.concatenate([r.query_weight for r in readers]),
        np.concatenate([r.query_bias for r in readers]),
    )
    heads = [head for head, _ in readings]
    units = sum(CONTEXT_HIDDEN if hd.hidden_weight is None else hd.hidden_weight.shape[0] for hd in heads)
    hidden = np.zeros((units, dim + 2 * n * h), np.float32)
    row = 0
    for i, hd in enumerate(heads):
        assert hd.hidden_weight is not None
        w = hd.hidden_weight
        k = w.shape[0]
        hidden[row : row + k, :dim] = w[:, :dim]
        hidden[row : row + k, dim + i * h : dim + (i + 1) * h] = w[:, dim : dim + h]
        hidden[row : row + k, dim + n * h + i * h : dim + n * h + (i + 1) * h] = w[:, dim + h :]
        row += k
    merged = LinearHead(
        weight=np.concatenate([hd.weight for hd in heads], axis=1) / n,
        bias=np.mean([hd.bias for hd in heads], axis=0).astype(np.float32),
        activation="sigmoid",
        labels=heads[0].labels,
        hidden_weight=hidden,
        hidden_bias=np.concatenate([hd.hidden_bias for hd in heads if hd.hidden_bias is not None]),
    )
    return merged, reader


def context_reading_features(
    pairs: list[tuple[str, tuple[str, ...]]],
    emb: Embeddings,
    head: LinearHead | NeighbourHead,
    reader: TurnReader | None,
) -> tuple[np.ndarray, np.ndarray]:
    """(this turn's embeddings, what the context head reads), as the scorer computes them."""
    if reader is None:
        return context_inputs(pairs, emb)
    e, x, z, lengths = ordered_inputs(pairs, emb, head)
    return e, reader.features(e, reader.summary(x, z, lengths))


def _composable(
    corpus: Corpus,
) -> list[tuple[CorpusConversation, list[CorpusConversation]]]:
    """The train and dev conversations of a ``COMPOSED_CATEGORIES`` category whose labelled turn is not
    their first and holds no line of the test split up to it, in corpus order, each with the others of its
    category, fold and language."""
    held_out = held_out_lines(corpus)
    later = [
        c
        for c in corpus.conversations
        if c.split != "test"
        and c.category in COMPOSED_CATEGORIES
        and c.mot_turn is not None
        and c.mot_turn >= 2
        and not any(norm_text(t) in held_out for t in c.customer_texts[: c.mot_turn])
    ]
    by_group: dict[tuple[str, int, str], list[CorpusConversation]] = {}
    for c in later:
        by_group.setdefault((c.category, fold_of(c.scenario), c.lang), []).append(c)
    return [
        (c, [o for o in by_group[(c.category, fold_of(c.scenario), c.lang)] if o.id != c.id]) for c in later
    ]


def _before_label(c: CorpusConversation) -> tuple[str, ...]:
    assert c.mot_turn is not None
    return tuple(c.customer_texts[: c.mot_turn - 1])


def composed_context_rows(corpus: Corpus, per_turn: int, seed: int = SEED) -> list[ContextRow]:
    """For each train or dev conversation of a ``COMPOSED_CATEGORIES`` category whose labelled turn is not its
    first, up to ``per_turn`` rows: that turn after the earlier customer turns of another conversation of the
    same category, fold and language, labelled 1. A calm decision to leave after a grievance is the moment of
    truth whatever the grievance was, and a veiled farewell after any putting of affairs in order; the
    context head has only a few hundred real examples of each. Both conversations sit in one fold, so the
    out-of-fold probabilities stay out of fold; a row holding a line of the test split is left out, as
    ``turn_context_rows`` leaves it out."""
    rng = random.Random(seed)
    rows: list[ContextRow] = []
    for c, others in _composable(corpus):
        assert c.mot_turn is not None
        turn = c.customer_texts[c.mot_turn - 1]
        for o in rng.sample(others, min(per_turn, len(others))):
            rows.append(ContextRow(turn, _before_label(o), 1.0, c.scenario))
    return rows


def composed_earlier_context_rows(corpus: Corpus, per_turn: int, seed: int = SEED) -> list[ContextRow]:
    """The composed rows' counterweight inside the same conversations (``--composed-earlier``): for each
    conversation ``composed_context_rows`` draws from, each customer turn before its labelled one after the
    earlier customer turns of up to ``per_turn`` other conversations of the same category, fold and
    language, labelled 0. The composed rows put only decisions after those grievances, and the context head
    learned that any later turn after a grievance is the decision: one more complaint, or a question about
    a branch that closes (0.02 alone, 0.997 in context), flagged the conversation a turn or two early."""
    rng = random.Random(seed)
    rows: list[ContextRow] = []
    for c, others in _composable(corpus):
        for turn in _before_label(c):
            for o in rng.sample(others, min(per_turn, len(others))):
                rows.append(ContextRow(turn, _before_label(o), 0.0, c.scenario))
    return rows


def routine_single_turns(corpus: Corpus, splits: tuple[Split, ...]) -> list[CorpusTurn]:
    """The routine single turns of ``splits`` in corpus order, every category but a request for a person,
    and no line an evaluation set holds."""
    held_out = held_out_lines(corpus)
    return [
        t
        for t in corpus.turns
        if t.split in splits
        and not t.mot
        and t.category != "routine_human"
        and norm_text(t.text) not in held_out
    ]


def by_fold_and_language(turns: list[CorpusTurn]) -> dict[tuple[int, str], list[CorpusTurn]]:
    groups: dict[tuple[int, str], list[CorpusTurn]] = {}
    for t in turns:
        groups.setdefault((fold_of(t.scenario), t.lang), []).append(t)
    return groups


def benign_change_context_rows(corpus: Corpus, per_turn: int, seed: int = SEED) -> list[ContextRow]:
    """For each routine train or dev single turn of a ``BENIGN_CHANGE_CATEGORIES`` category, ``per_turn``
    rows: the turn after one or two other routine single turns (not a request for a person) of the same fold
    and language, labelled 0. Same fold, so the out-of-fold probabilities stay out of fold; test lines are
    left out as ``composed_context_rows`` leaves them out."""
    rng = random.Random(seed)
    routine = routine_single_turns(corpus, ("train", "dev"))
    by_group = by_fold_and_language(routine)
    rows: list[ContextRow] = []
    for t in routine:
        if t.category not in BENIGN_CHANGE_CATEGORIES:
            continue
        others = [o for o in by_group[(fold_of(t.scenario), t.lang)] if o.id != t.id]
        for _ in range(per_turn):
            earlier = rng.sample(others, min(rng.choice((1, 2)), len(others)))
            if earlier:
                rows.append(ContextRow(t.text, tuple(o.text for o in earlier), 0.0, t.scenario))
    return rows


def bare(text: str) -> str:
    """``text`` as chat often types it: punctuation gone, but for a mark between two letters or digits
    ("e-mail", "3.5", "don't"), and spaces collapsed. Emoji and other symbols stay."""
    kept = [
        ch
        for i, ch in enumerate(text)
        if not unicodedata.category(ch).startswith("P")
        or (0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum())
    ]
    return " ".join("".join(kept).split())


def copies_of(
    rows: Sequence[TrainingRow], held_out: Container[str], variant: Callable[[str], str], taken: set[str]
) -> list[int]:
    """The rows the ``mot`` head learns again as ``variant`` writes them (``--lower-copies``,
    ``--bare-copies``): those whose text changes, unless the new text is an evaluation line or a text the
    rows already hold (``taken``, which grows by each copy): the out-of-fold readings are keyed by text, so
    a copy must never share one with a row of another fold. A copy keeps its row's label and scenario, so it
    falls in its row's fold."""
    picked = []
    for i, r in enumerate(rows):
        text = variant(r.text)
        if text != r.text and text not in taken and text not in held_out:
            taken.add(text)
            picked.append(i)
    return picked


def strung_routine(
    corpus: Corpus, per_language: int = STRUNG_PER_LANGUAGE, seed: int = SEED, split: Split = "dev"
) -> Corpus:
    """Contacts strung, as the simulator strings its routine journeys, from two or three routine single
    turns of one language of ``split`` (every routine category but ``routine_human``), never a moment of
    truth. Each contact's turns come from one fold's scenarios, so the probabilities read for them in
    context stay out of fold; lines an evaluation set holds are left out."""
    rng = random.Random(seed)
    groups = by_fold_and_language(routine_single_turns(corpus, (split,)))
    contacts: list[CorpusConversation] = []
    for lang in sorted({lang for _, lang in groups}):
        keys = [k for k in sorted(groups) if k[1] == lang and len(groups[k]) >= 3]
        sizes = [len(groups[k]) for k in keys]
        for i in range(per_language if keys else 0):
            picked = rng.sample(groups[rng.choices(keys, sizes)[0]], rng.choice((2, 3)))
            contacts.append(
                CorpusConversation(
                    id=f"strung-{split}-{lang}-{i}",
                    scenario=picked[0].scenario,
                    lang=lang,
                    channel="chat",
                    category="strung_routine",
                    mot_turn=None,
                    styles=(),
                    turns=tuple(ConvTurn("customer", t.text) for t in picked),
                    split=split,
                )
            )
    return Corpus((), tuple(contacts))


def in_context_out_of_fold(
    corpus: Corpus,
    rows: list[ContextRow],
    embs: list[Embeddings],
    heads: list[NeighbourHead],
    readers: int = 0,
) -> list[dict[tuple[str, int], float]]:
    """Per backend: (conversation id, 0-based turn from 1 on) -> the probability read in context, from the
    fold's head and a context head fitted on the other folds' rows."""
    out: list[dict[tuple[str, int], float]] = [{} for _ in embs]
    for k in range(FOLDS):
        ctx_head, reader = fit_context_head(
            [r for r in rows if fold_of(r.scenario) != k], embs, heads[k], readers
        )
        turns = [
            (c.id, j, (c.customer_texts[j], tuple(c.customer_texts[:j])))
            for c in corpus.conversations
            if fold_of(c.scenario) == k
            for j in range(1, len(c.customer_texts))
        ]
        if not turns:
            continue
        for b, emb in enumerate(embs):
            e, f = context_reading_features([t for _, _, t in turns], emb, heads[k], reader)
            z = heads[k].logits(e)[:, 0] + context_lift(ctx_head.logits(f)[:, 0])
            p = 1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0)))
            out[b].update({(cid, j): float(q) for (cid, j, _), q in zip(turns, p, strict=True)})
    return out


def embed_corpus(encoder: Encoder, corpus: Corpus, cache: Path) -> Embeddings:
    texts = sorted(corpus.text_languages())
    return dict(zip(texts, embed_cached(encoder, texts, cache, "detector_scores"), strict=True))


def score_texts(
    scorer: TransformerScorer,
    corpus: Corpus,
    emb: Embeddings,
    oof: dict[str, float],
    oof_in_context: dict[tuple[str, int], float],
) -> Scores:
    """The shipped heads' scores, with the moment-of-truth probability replaced by the out-of-fold one (read
    in context for a conversation's turns after the first)."""
    # each text in the language its contact gives, as the worker scores it (not one detected from the text)
    langs = corpus.text_languages()
    texts = sorted(langs)
    alone: dict[str, EmotionScore] = {}
    scored = scorer.score_embeddings(np.stack([emb[t] for t in texts]), texts, [langs[t] for t in texts])
    for text, s in zip(texts, scored, strict=True):
        # a text left out of the training rows (said word for word in a test conversation) keeps the head's
        alone[text] = dataclasses.replace(s, mot_prob=oof.get(text, s.mot_prob))
    convs: dict[str, list[EmotionScore]] = {}
    for c in corpus.conversations:
        convs[c.id] = [
            dataclasses.replace(alone[t], mot_prob=oof_in_context.get((c.id, j), alone[t].mot_prob))
            for j, t in enumerate(c.customer_texts)
        ]
    return Scores(alone, convs)


def write_dump(path: Path, splits: dict[str, Corpus], backends: list[Scores]) -> None:
    """``--dump``: the splits and each backend's scores as plain containers, so that ``load_dump`` reads
    them back from any script (a dataclass pickled from ``__main__`` would not load elsewhere)."""
    with path.open("wb") as f:
        pickle.dump({**splits, "backends": [(s.alone, s.convs) for s in backends]}, f)


def load_dump(path: Path) -> dict[str, Any]:
    """What ``--dump`` wrote: the corpora by name, and ``backends`` as ``Scores`` (int8, torch)."""
    with path.open("rb") as f:
        dumped: dict[str, Any] = pickle.load(f)  # a file this script wrote
    return {**dumped, "backends": [Scores(alone, convs) for alone, convs in dumped["backends"]]}


def feature_rows(corpus: Corpus, scores: Scores) -> tuple[np.ndarray, np.ndarray]:
    plain = MotThresholds()  # the features do not depend on the model
    xs: list[list[float]] = []
    ys: list[float] = []
    for c in corpus.conversations:
        feats, _ = replay(scores.convs[c.id], plain)
        for k, f in enumerate(feats, 1):
            xs.append([f[n] for n in FEATURES])
            ys.append(float(c.mot_turn is not None and k >= c.mot_turn))
    for t in corpus.turns:
        feats, _ = replay([scores.alone[t.text]], plain)
        xs.append([feats[0][n] for n in FEATURES])
        ys.append(float(t.mot))
    return np.array(xs), np.array(ys)


def outcomes(
    convs: tuple[CorpusConversation, ...], scores: Scores, model: MotModel
) -> list[ConversationOutcome]:
    th = MotThresholds(model=model)
    return [ConversationOutcome(c.mot_turn, replay(scores.convs[c.id], th)[1]) for c in convs]


def detector_rows(train: Corpus, scores: Scores, strung_train: Corpus) -> tuple[np.ndarray, np.ndarray]:
    """The detector's training rows: the train split's, and ``strung_train``'s contacts as routine."""
    x, y = feature_rows(train, scores)
    if strung_train.conversations:
        xs, ys = feature_rows(strung_train, scores)
        x, y = np.concatenate([x, xs]), np.concatenate([y, ys])
    return x, y


def fit_detector(x: np.ndarray, y: np.ndarray, c: float) -> MotModel:
    """The conversation model fitted at ``C`` = ``c``, its threshold left at 0.5 for the caller to set."""
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=c, max_iter=2000, class_weight="balanced").fit(x, y)
    weights = dict(zip(FEATURES, (float(w) for w in lr.coef_[0]), strict=True))
    means = dict(zip(FEATURES, (float(m) for m in x.mean(axis=0)), strict=True))
    return MotModel(weights, float(lr.intercept_[0]), 0.5, means)


def choose(
    train: Corpus,
    dev: Corpus,
    backends: list[Scores],
    strung: Corpus,
    strung_train: Corpus = Corpus((), ()),
) -> tuple[MotModel, dict[str, object]]:
    """The model is fitted on the int8 backend's features (the train split's, and ``strung_train``'s
    contacts as routine); each threshold is judged on both backends and counts as good as its worse one, so
    that the verdict does not hang on which backend runs."""
    x, y = detector_rows(train, backends[0], strung_train)
    gold_dev = [t.mot for t in dev.turns]
    # key: (meets both conversation targets on both backends; then its F1 if it does, else the objective)
    best: tuple[tuple[bool, float], MotModel, dict[str, object]] | None = None
    for c in DETECTOR_C:
        fitted = fit_detector(x, y, c)
        for threshold in THRESHOLDS:
            model = dataclasses.replace(fitted, threshold=threshold)
            judged = [_judge(dev, scores, model, gold_dev, strung) for scores in backends]
            meets = all(_meets_targets(conv) for _, conv, _ in judged)
            f1 = min(float(turn["f1"] or 0.0) for _, _, turn in judged)
            key = (meets, f1 if meets else min(j[0] for j in judged))
            if best is None or key > best[0]:
                _, conv, turn = judged[0]
                chosen = {"C": c, "dev_conversations": conv, "dev_turns": turn, "dev_meets_targets": meets}
                best = (key, model, chosen)
    assert best is not None
    return best[1], {**best[2], "train_rows": len(y), "train_positive_rows": int(y.sum())}


def _meets_targets(conv: dict[str, Any]) -> bool:
    return (
        float(conv["on_time_share"] or 0.0) >= ON_TIME_TARGET
        and float(conv["routine_flagged_share"] or 0.0) <= ROUTINE_FLAGGED_TARGET
    )


def _judge(
    dev: Corpus, scores: Scores, model: MotModel, gold: list[bool], strung: Corpus
) -> tuple[float, dict[str, Any], dict[str, float | None]]:
    """The objective, the dev conversations' summary (with the strung contacts' count under
    ``strung_routine``) and the single turns' precision, recall and F1. A routine contact costs what the
    simulated day weighs it at: its routine journeys are half a routine conversation replayed, half single
    turns strung together, so the flagged share is the mean of the two kinds'."""
    conv = conversation_summary(outcomes(dev.conversations, scores, model))
    flagged = sum(o.flagged_turn is not None for o in outcomes(strung.conversations, scores, model))
    conv["strung_routine"] = {"contacts": len(strung.conversations), "flagged": flagged}
    th = MotThresholds(model=model)
    turn = prf(gold, [replay([scores.alone[t.text]], th)[1] is not None for t in dev.turns])
    routine_flagged = float(conv["routine_flagged_share"] or 0.0)
    if strung.conversations:
        routine_flagged = (routine_flagged + flagged / len(strung.conversations)) / 2
    on_time = float(conv["on_time_share"] or 0.0)
    objective = float(turn["f1"] or 0.0) + on_time - FALSE_FLAG_COST * routine_flagged
    return objective, conv, turn


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "models")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--cache", type=Path, default=ROOT / ".cache" / "embeddings")
    ap.add_argument(
        "--consistency",
        type=float,
        default=CONSISTENCY,
        help="weight of the int8-vs-torch difference in the moment-of-truth head's loss",
    )
    ap.add_argument(
        "--balance-length",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="weigh the moment-of-truth head's classes equally within each word-count band (tried, not "
        "shipped: models/HISTORY.md)",
    )
    ap.add_argument(
        "--compose",
        type=int,
        default=COMPOSED_PER_TURN,
        help="composed rows per labelled later turn of a churn or vulnerable-customer conversation, for the "
        "context head (0: none)",
    )
    ap.add_argument(
        "--composed-earlier",
        type=int,
        default=COMPOSED_EARLIER_PER_TURN,
        help="per turn before the labelled one of a conversation the composed rows draw from, rows of that "
        "turn after another such conversation's earlier turns, labelled 0, for the context head (0: none)",
    )
    ap.add_argument(
        "--benign-change",
        type=int,
        default=BENIGN_CHANGE_PER_TURN,
        help="composed rows per routine calm change or cancellation, after unrelated routine turns, "
        "labelled 0, for the context head (0: none)",
    )
    ap.add_argument(
        "--neighbour-weight",
        type=float,
        default=NEIGHBOUR_WEIGHT,
        help="weight of the nearest labelled rows' vote on the mot head's logit (0: the head alone)",
    )
    ap.add_argument(
        "--neighbour-temperature",
        type=float,
        default=NEIGHBOUR_TEMPERATURE,
        help="temperature of the neighbours' similarity weights (router.scoring.neighbours.vote_of)",
    )
    ap.add_argument(
        "--neighbour-centred",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="centre the embeddings on the bank's mean before the neighbours' cosine",
    )
    ap.add_argument(
        "--near-miss",
        type=float,
        default=0.0,
        help="the mot head's target for a routine single turn of a hard-negative category (0: plain 0/1; "
        "tried, not shipped: models/HISTORY.md)",
    )
    ap.add_argument(
        "--lower-copies",
        type=float,
        default=LOWER_COPIES,
        help="the mot head also learns each row in lower case, at this weight (0: not, the release before)",
    )
    ap.add_argument(
        "--bare-copies",
        type=float,
        default=BARE_COPIES,
        help="the mot head also learns each row without its punctuation (bare), at this weight (0: not, the "
        "release before)",
    )
    ap.add_argument(
        "--readers",
        type=int,
        default=READERS,
        help="GRU readers of the earlier turns for the context head, averaged (0: their mean embedding, the "
        "release before; 3 shipped: models/MODEL_CARD.md)",
    )
    ap.add_argument(
        "--strung-train",
        type=int,
        default=STRUNG_TRAIN_PER_LANGUAGE,
        help="per language, contacts strung from the train split's routine single turns that the detector "
        "also learns as routine (0: none, the release before)",
    )
    ap.add_argument(
        "--dump",
        type=Path,
        default=None,
        help="pickle the splits and the out-of-fold scores the detector is chosen on (for measurements)",
    )
    args = ap.parse_args()
    t0 = time.perf_counter()
    corpus = load_corpus()
    train, dev = corpus.split("train"), corpus.split("dev")
    scorer = TransformerScorer(heads_dir=str(args.out), cache_size=0, backend="onnx")
    # a corpus line that an evaluation set also holds ("Great, thank you.") trains nothing
    held_out = evaluation_index(args.data)
    rows = held_out.drop(training_rows(corpus, "train") + training_rows(corpus, "dev"), lambda r: r.text)
    rows += [TrainingRow(t, 0.0, "none", 0.0, f"junk-{k}") for k, t in enumerate(junk_lines())]
    targets = near_miss_targets(rows, corpus, args.near_miss)
    originals = len(rows)
    taken, copy_weights, copied = {r.text for r in rows}, [1.0] * originals, []
    for what, variant, weight in (
        ("in lower case", str.lower, args.lower_copies),
        ("without their punctuation", bare, args.bare_copies),
    ):
        copies = copies_of(rows[:originals], held_out, variant, taken) if weight else []
        rows += [dataclasses.replace(rows[i], text=variant(rows[i].text)) for i in copies]
        targets = np.concatenate([targets, targets[copies]])
        copy_weights += [weight] * len(copies)
        copied += [f"; and {len(copies)} of them {what} at weight {weight}"] if copies else []
    bank = np.arange(len(rows)) < originals
    x = embed_cached(scorer.encoder, [r.text for r in rows], args.cache, "detector_rows")
    x_torch = embed_cached(Encoder(backend="torch"), [r.text for r in rows], args.cache, "detector_rows")
    y_oof = np.array([r.mot for r in rows])
    w = (
        length_weights([r.text for r in rows], y_oof)
        if args.balance_length
        else np.ones(len(rows), np.float32)
    )
    w *= np.array(copy_weights, np.float32)
    neighbour = NeighbourSpec(args.neighbour_weight, args.neighbour_temperature, args.neighbour_centred)
    oof, fold_heads = out_of_fold(rows, x, x_torch, args.consistency, w, neighbour, targets, bank)
    oof_auroc = _auroc(y_oof[bank], np.array([oof[0][r.text] for r in rows[:originals]]))
    strung = strung_routine(corpus)
    strung_train = strung_routine(corpus, args.strung_train, split="train")
    both = Corpus(
        train.turns + dev.turns,
        train.conversations + dev.conversations + strung.conversations + strung_train.conversations,
    )
    torch_scorer = TransformerScorer(heads_dir=str(args.out), cache_size=0, backend="torch")
    embs = [
        embed_corpus(scorer.encoder, both, args.cache),
        embed_corpus(torch_scorer.encoder, both, args.cache),
    ]
    ctx_rows = [
        r
        for r in turn_context_rows(corpus, "train") + turn_context_rows(corpus, "dev")
        if not any(t in held_out for t in (r.text, *r.earlier))
    ]
    composed = [
        r
        for r in composed_context_rows(corpus, args.compose)
        + composed_earlier_context_rows(corpus, args.composed_earlier)
        + benign_change_context_rows(corpus, args.benign_change)
        if not any(t in held_out for t in (r.text, *r.earlier))
    ]
    real_ctx_rows, ctx_rows = len(ctx_rows), ctx_rows + composed
    oof_ctx = in_context_out_of_fold(both, ctx_rows, embs, fold_heads, args.readers)
    backends = [
        score_texts(scorer, both, embs[0], oof[0], oof_ctx[0]),
        score_texts(torch_scorer, both, embs[1], oof[1], oof_ctx[1]),
    ]
    if args.dump:
        write_dump(
            args.dump, {"train": train, "dev": dev, "strung": strung, "strung_train": strung_train}, backends
        )
    model, chosen = choose(train, dev, backends, strung, strung_train)

    heads = load_heads(args.out)
    final = fit_head(x, x_torch, targets, args.consistency, w)
    neighbours = neighbours_of(x[bank], y_oof[bank], neighbour, [r.topic for r in rows[:originals]])
    final_ctx, reader = fit_context_head(ctx_rows, embs, NeighbourHead(final, neighbours), args.readers)
    meta = dict(heads.meta)
    meta.setdefault("trained_on", {})["mot"] = (
        f"models/corpus train + dev splits ({originals} turns: single turns, conversation turns up to the "
        "labelled one" + "".join(copied) + "), scripts/train_detector.py"
    )
    meta.setdefault("dev_metrics", {})["mot_out_of_fold_auroc"] = round(oof_auroc, 4)
    meta["trained_on"][MOT_CONTEXT_HEAD] = (
        f"models/corpus train + dev conversations ({real_ctx_rows} turns from the second up to the labelled "
        f"one, each with up to {MOT_CONTEXT_TURNS} customer turns before it; {len(composed)} composed rows, "
        f"up to {args.compose} per labelled turn of a {' or '.join(COMPOSED_CATEGORIES)} conversation after "
        "another's earlier turns"
        + (
            f", labelled 1, and {args.benign_change} per routine {' or '.join(BENIGN_CHANGE_CATEGORIES)} "
            "single turn after one or two unrelated routine ones, labelled 0"
            if args.benign_change
            else ""
        )
        + (
            f"; and up to {args.composed_earlier} per turn before such a labelled turn after another such "
            "conversation's earlier turns, labelled 0"
            if args.composed_earlier
            else ""
        )
        + "), over the mot head, scripts/train_detector.py"
    )
    tuned = {"mot": relabel(final, ("moment_of_truth",)), MOT_CONTEXT_HEAD: final_ctx}
    if neighbours is not None:
        meta["trained_on"]["mot_neighbours"] = (
            f"the same {originals} rows' int8 embeddings and labels: the vote of the {NEIGHBOUR_K} nearest, "
            f"temperature {neighbour.temperature}, weight {neighbour.weight} on its logit"
            + (", cosines after centring on the rows' mean" if neighbour.centred else "")
        )
    if reader is not None:
        meta["trained_on"]["mot_context_reader"] = (
            f"{args.readers} GRUs ({READER_HIDDEN} units each, merged) over the same rows' earlier turns, "
            "each turn's embedding and mot logit, fitted with mot_context, train_detector.py --readers"
        )
    save_heads(args.out, {**heads.heads, **tuned}, meta, neighbours, reader)

    detector_meta = {
        "trained_on": "models/corpus: conversation prefixes and single turns of the train split"
        + (
            f", and {len(strung_train.conversations)} contacts strung from its routine single turns"
            if strung_train.conversations
            else ""
        )
        + f", with {FOLDS}-fold out-of-fold moment-of-truth probabilities; threshold chosen on the dev split",
        "scorer": f"{scorer.encoder.encoder_id}, {scorer.backend} backend",
        "selection": f"over C and threshold, each judged on both backends (int8, torch) as the worse: the "
        f"best dev turn F1 among pairs with dev on-time share >= {ON_TIME_TARGET} and dev routine flagged "
        f"share <= {ROUTINE_FLAGGED_TARGET}; when none meets both, the best dev turn F1 + on-time share - "
        f"{FALSE_FLAG_COST} x routine flagged share, the mean of dev's routine conversations' and "
        f"{len(strung.conversations)} contacts strung from dev's routine single turns' (strung_routine)",
        "mot_head_out_of_fold_auroc": round(oof_auroc, 4),
        **chosen,
        "wall_time_s": round(time.perf_counter() - t0, 1),
    }
    path = save_mot_model(model, detector_meta, args.out)
    print(json.dumps({"threshold": model.threshold, **detector_meta}, indent=2))
    print(f"wrote {path} and the mot head in {args.out}/heads.safetensors")
    return 0


def _auroc(y: np.ndarray, s: np.ndarray) -> float:
    from router.scoring.measures import auroc

    return auroc(y, s)


if __name__ == "__main__":
    raise SystemExit(main())
