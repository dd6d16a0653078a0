#!/usr/bin/env python
"""Tune multilingual-e5-small's top layers on the project's moment-of-truth corpus, before the heads learn.

    .venv/bin/python scripts/finetune_e5.py [--data ../shared/data] [--layers 4] [--epochs 3]

A linear probe on the frozen encoder ranks the corpus dev turns at AUROC 0.977; tuning the top four of its
twelve layers with a moment-of-truth head raised it to 0.995 (dev split, measured while choosing this recipe:
top 2 layers 0.987, top 4 0.993-0.995 after 3-6 epochs at 5e-5). The lower layers stay frozen (their output is
computed once). The train split of the corpus is the only labelled data; the dev split picks nothing but is
reported, and the test split is never read (``training_rows`` refuses it).

An anchor keeps the tuned encoder close to the packaged one on public text (GoEmotions, the multilingual
training sets, Banking77/CLINC150 intents: sets whose licences allow shipped weights, with every evaluation
overlap removed): the emotion, intensity and topic heads learn from such text and the public evaluations
measure it, so the tuning must not move it far (1 - cosine of the pooled embeddings, weighted ``--anchor``).

Writes ``models/encoder_top.safetensors`` (the tuned layers, fp16: the scorer's encoder is the packaged one
with these swapped in, ``router.scoring.e5.ensure_tuned_e5``) and ``models/encoder_top.json`` (recipe, dev
figures before and after, anchor cosine). Then: ``scripts/export_onnx.py``, ``scripts/train_heads.py``,
``scripts/train_detector.py``, ``scripts/export_onnx.py`` (the quality stamp), as README's model section says.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from multilingual_data import load_multilingual  # noqa: E402
from train_heads import SEED, load_goemotions, load_intents  # noqa: E402

from router.scoring.corpus import CONTEXT_SEP, context_rows, load_corpus, training_rows  # noqa: E402
from router.scoring.e5 import E5_PREFIX, TOP_LAYERS_FILE, ensure_e5  # noqa: E402
from router.scoring.evaluate import evaluation_index  # noqa: E402
from router.scoring.measures import auroc  # noqa: E402
from router.scoring.textnorm import unshout  # noqa: E402
from router.scoring.transformer import find_onnx_model  # noqa: E402

Batch = tuple[
    list[int], torch.Tensor, torch.Tensor, torch.Tensor
]  # indices, lower states, mask, final pooled


class Lower:
    """The packaged encoder below its top ``k`` layers, run once per text; batches sorted by length."""

    def __init__(self, model_dir: Path, k: int, int8: Path) -> None:
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        self.model = AutoModel.from_pretrained(str(model_dir), add_pooling_layer=False).eval()
        self.k = k
        self.int8 = _int8_lower(int8, self.n_layers - k - 1)

    @property
    def n_layers(self) -> int:
        return int(self.model.config.num_hidden_layers)

    @torch.no_grad()
    def states(
        self, texts: list[str], batch: int = 64, offset: int = 0, keep_end: bool = False
    ) -> list[Batch]:
        """Batches whose indices start at ``offset``; ``keep_end`` cuts a long text from the left (a context
        row keeps its current turn, the last one)."""
        if not texts:  # the tokenizer raises on an empty batch (no context rows without --context-rows)
            return []
        self.tokenizer.truncation_side = "left" if keep_end else "right"
        out: list[Batch] = []
        for idx, b in length_batches(self.tokenizer, texts, batch, 128):
            hidden = self.model(**b, output_hidden_states=True).hidden_states
            mask = b["attention_mask"]
            session, name = self.int8
            feeds = {"input_ids": b["input_ids"].numpy(), "attention_mask": mask.numpy()}
            if "token_type_ids" in {i.name for i in session.get_inputs()}:
                feeds["token_type_ids"] = np.zeros_like(feeds["input_ids"])
            (q,) = session.run([name], feeds)
            lower = hidden[self.n_layers - self.k].clone()
            out.append(([i + offset for i in idx], lower, mask, pool(hidden[-1], mask), torch.from_numpy(q)))
        return out


def length_batches(
    tokenizer: Any, texts: list[str], batch: int, max_tokens: int
) -> Iterator[tuple[list[int], Any]]:
    """The texts (with e5's query prefix) tokenised, sorted by length and padded in batches of ``batch``:
    each batch's indices into ``texts`` and its tensors. Each text is ``unshout``-ed, as the encoder reads it
    in service."""
    enc = tokenizer([E5_PREFIX + unshout(t) for t in texts], truncation=True, max_length=max_tokens)
    order = sorted(range(len(texts)), key=lambda i: len(enc["input_ids"][i]))
    for s in range(0, len(order), batch):
        idx = order[s : s + batch]
        yield (
            idx,
            tokenizer.pad(
                {k: [enc[k][i] for i in idx] for k in ("input_ids", "attention_mask")}, return_tensors="pt"
            ),
        )


def _int8_lower(path: Path, layer: int) -> Any:
    """An ONNX Runtime session on the int8 graph that answers the output of ``layer`` (the input of the
    first tuned layer, quantisation noise included): the tuned layers learn to answer the same on it as on
    the fp32 states, or the int8 export amplifies that noise past its quality gate. The layers below are
    the packaged ones in any exported graph, so the graph of earlier tuned layers serves as well."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path))
    name = f"/inner/encoder/layer.{layer}/output/LayerNorm/LayerNormalization_output_0"
    model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    so = ort.SessionOptions()
    so.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return session, name


def top(layers: torch.nn.ModuleList, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    ext = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
    for layer in layers:
        out = layer(hidden, attention_mask=ext)
        hidden = out if torch.is_tensor(out) else out[0]
    return hidden


def pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).float()
    return torch.nn.functional.normalize((hidden * m).sum(1) / m.sum(1).clamp(min=1e-9), dim=-1)


def split(batches: list[Batch], size: int) -> list[Batch]:
    """Minibatches of ``size`` (the states were computed in larger batches of similar length)."""
    return [
        (idx[s : s + size], h[s : s + size], m[s : s + size], p[s : s + size], q[s : s + size])
        for idx, h, m, p, q in batches
        for s in range(0, len(idx), size)
    ]


@torch.no_grad()
def probs(layers: torch.nn.ModuleList, head: torch.nn.Linear, batches: list[Batch], n: int) -> np.ndarray:
    out = np.zeros(n, np.float64)
    for idx, h, m, _, _ in batches:
        out[idx] = torch.sigmoid(head(pool(top(layers, h, m), m)).squeeze(-1)).numpy()
    return out


@torch.no_grad()
def int8_agreement(layers: torch.nn.ModuleList, batches: list[Batch]) -> float:
    """Mean cosine of the tuned layers' pooled output on the fp32 and on the int8 lower states."""
    cos = [(pool(top(layers, h, m), m) * pool(top(layers, q, m), m)).sum(-1) for _, h, m, _, q in batches]
    return float(torch.cat(cos).mean())


@torch.no_grad()
def anchor_cosine(layers: torch.nn.ModuleList, batches: list[Batch]) -> float:
    cos = [(pool(top(layers, h, m), m) * p).sum(-1) for _, h, m, p, _ in batches]
    return float(torch.cat(cos).mean())


def linear_probe(batches: list[Batch], y: np.ndarray, dev: list[Batch], n_dev: int) -> tuple[Any, np.ndarray]:
    """The starting head: a logistic regression on the frozen encoder's pooled output."""
    from sklearn.linear_model import LogisticRegression

    x = np.zeros((len(y), 384), np.float32)
    for idx, _, _, p, _ in batches:
        x[idx] = p.numpy()
    x_dev = np.zeros((n_dev, 384), np.float32)
    for idx, _, _, p, _ in dev:
        x_dev[idx] = p.numpy()
    lr = LogisticRegression(C=10.0, max_iter=3000).fit(x, y)
    return lr, lr.predict_proba(x_dev)[:, 1]


def best_f1(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import precision_recall_curve

    pr, rc, _ = precision_recall_curve(y, p)
    return float((2 * pr * rc / np.maximum(pr + rc, 1e-9)).max())


def anchor_texts(data: Path, n: int, rng: random.Random) -> list[str]:
    """Public training text, a third each from GoEmotions, the multilingual sets and the intent sets."""
    held_out = evaluation_index(data, None)
    go = [r["text"] for r in load_goemotions(data, "train", None, rng)]
    ml = [t for t, _, _ in load_multilingual(data, more_romanian=False)]
    it = [t for t, _, _ in load_intents(data, rng, 40, "train")]
    texts = [t for pool_ in (go, ml, it) for t in rng.sample(pool_, min(len(pool_), n // 3))]
    return held_out.drop(texts, lambda t: t)


class NegativeTask:
    """Negative vs not on the multilingual training sets (XED, BRIGHTER, RED), beside the moment-of-truth
    task: the non-English intensity head learns from such text, so the tuned layers learn it too. A tenth of
    the rows is held out for the report."""

    def __init__(self, train: list[Batch], y: np.ndarray, held: list[Batch], y_held: np.ndarray) -> None:
        self.train, self.y, self.held, self.y_held = split(train, 32), torch.tensor(y), held, y_held
        self.head = torch.nn.Linear(384, 1)
        probe, p = linear_probe(train, y, held, len(y_held))
        with torch.no_grad():
            self.head.weight[:] = torch.tensor(probe.coef_, dtype=torch.float32)
            self.head.bias[:] = torch.tensor(probe.intercept_, dtype=torch.float32)
        print(f"negative task: {len(y)} rows, frozen probe held-out AUROC {auroc(y_held, p):.4f}", flush=True)

    @classmethod
    def build(cls, lower: Lower, data: Path, per_source: int, rng: random.Random) -> NegativeTask:
        held_out = evaluation_index(data, None)
        by_source: dict[str, list[tuple[str, bool, str]]] = {}
        for row in held_out.drop(load_multilingual(data, more_romanian=False), lambda r: r[0]):
            by_source.setdefault(row[2], []).append(row)
        rows = [r for rs in by_source.values() for r in rng.sample(rs, min(len(rs), per_source))]
        rng.shuffle(rows)
        cut = len(rows) // 10
        held, train = rows[:cut], rows[cut:]
        y = np.array([float(r[1]) for r in train], np.float32)
        y_held = np.array([float(r[1]) for r in held], np.float64)
        return cls(lower.states([r[0] for r in train]), y, lower.states([r[0] for r in held]), y_held)

    def loss(self, layers: torch.nn.ModuleList, step: int) -> torch.Tensor:
        idx, h, m, _, _ = self.train[step % len(self.train)]
        logits = self.head(pool(top(layers, h, m), m)).squeeze(-1)
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, self.y[idx])

    def heldout_auroc(self, layers: torch.nn.ModuleList) -> float:
        return round(auroc(self.y_held, probs(layers, self.head, self.held, len(self.y_held))), 4)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--layers", type=int, default=4, help="top layers to tune")
    ap.add_argument("--epochs", type=int, default=4)  # chosen on the ten-round dev split (model card)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--anchor", type=float, default=1.0, help="weight of the anchor loss")
    ap.add_argument("--anchor-texts", type=int, default=3000)
    ap.add_argument(
        "--consistency",
        type=float,
        default=30.0,
        help="weight of 1 - cosine(fp32 path, int8 path) (10 let the ten-round mot head's int8 answer drift)",
    )
    ap.add_argument("--int8", type=Path, default=None, help="int8 ONNX graph (default: the exported one)")
    ap.add_argument(
        "--negative-per-source",
        type=int,
        default=0,
        help="a second task: negative vs not on this many rows per multilingual training set (0: off)",
    )
    ap.add_argument(
        "--context-rows",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="also learn from each conversation turn joined to the customer turns before it "
        "(router.scoring.corpus.context_rows; tried, not shipped: models/HISTORY.md)",
    )
    ap.add_argument("--out", type=Path, default=TOP_LAYERS_FILE)
    args = ap.parse_args()
    t0 = time.perf_counter()
    torch.manual_seed(SEED)
    rng = random.Random(SEED)

    corpus = load_corpus()
    held_out = evaluation_index(args.data, None)
    train = held_out.drop(training_rows(corpus, "train"), lambda r: r.text)
    dev = held_out.drop(training_rows(corpus, "dev"), lambda r: r.text)
    context = context_rows(corpus, "train") if args.context_rows else []
    # a context row holding a line of an evaluation set trains nothing, as a single row would not
    context = [(t, m) for t, m in context if not any(part in held_out for part in t.split(CONTEXT_SEP))]
    y = np.array([r.mot for r in train] + [m for _, m in context], np.float32)
    y_dev = np.array([r.mot for r in dev], np.float64)
    int8 = args.int8 or find_onnx_model()
    if int8 is None:
        ap.error("no int8 ONNX graph: run scripts/export_onnx.py first")
    lower = Lower(ensure_e5(), args.layers, int8)
    b_train = lower.states([r.text for r in train])
    b_train += lower.states([t for t, _ in context], offset=len(train), keep_end=True)
    b_dev = lower.states([r.text for r in dev])
    b_anchor = lower.states(anchor_texts(args.data, args.anchor_texts, rng))
    print(
        f"states: {len(train)} train + {len(context)} context rows, {len(dev)} dev, "
        f"{sum(len(b[0]) for b in b_anchor)} anchor "
        f"({time.perf_counter() - t0:.0f} s)",
        flush=True,
    )

    neg = (
        NegativeTask.build(lower, args.data, args.negative_per_source, rng)
        if args.negative_per_source
        else None
    )
    probe, p_probe = linear_probe(b_train, y, b_dev, len(dev))
    before = {"dev_auroc": round(auroc(y_dev, p_probe), 4), "dev_best_f1": round(best_f1(y_dev, p_probe), 4)}
    print(f"frozen encoder, linear probe: {before}", flush=True)

    n = lower.n_layers
    layers = torch.nn.ModuleList(
        [copy.deepcopy(lower.model.encoder.layer[i]) for i in range(n - args.layers, n)]
    )
    head = torch.nn.Linear(384, 1)
    with torch.no_grad():
        head.weight[:] = torch.tensor(probe.coef_, dtype=torch.float32)
        head.bias[:] = torch.tensor(probe.intercept_, dtype=torch.float32)
    heads = [*head.parameters(), *(neg.head.parameters() if neg else ())]
    opt = torch.optim.AdamW(
        [{"params": layers.parameters(), "lr": args.lr}, {"params": heads, "lr": 1e-3}], weight_decay=0.01
    )
    y_t = torch.tensor(y)
    mini, anchors = split(b_train, 32), split(b_anchor, 32)
    history = []
    for epoch in range(1, args.epochs + 1):
        layers.train()
        rng.shuffle(mini)
        rng.shuffle(anchors)
        te, total = time.perf_counter(), 0.0
        for step, (idx, h, m, _, q) in enumerate(mini):
            # the same texts through the fp32 and the int8 lower layers: both answer the label, and the
            # pooled outputs agree (the int8 export's quality gate)
            e32, e8 = pool(top(layers, h, m), m), pool(top(layers, q, m), m)
            bce = torch.nn.functional.binary_cross_entropy_with_logits
            loss = bce(head(e32).squeeze(-1), y_t[idx]) + bce(head(e8).squeeze(-1), y_t[idx])
            loss = loss + args.consistency * (1.0 - (e32 * e8).sum(-1)).mean()
            _, ha, ma, pa, _ = anchors[step % len(anchors)]
            loss = loss + args.anchor * (1.0 - (pool(top(layers, ha, ma), ma) * pa).sum(-1)).mean()
            if neg is not None:
                loss = loss + neg.loss(layers, step)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        layers.eval()
        p = probs(layers, head, b_dev, len(dev))
        row = {
            "epoch": epoch,
            "loss": round(total / len(mini), 4),
            "dev_auroc": round(auroc(y_dev, p), 4),
            "dev_best_f1": round(best_f1(y_dev, p), 4),
            "anchor_cosine": round(anchor_cosine(layers, b_anchor), 4),
            "int8_cosine_dev": round(int8_agreement(layers, b_dev), 5),
            **({"negative_heldout_auroc": neg.heldout_auroc(layers)} if neg else {}),
            "s": round(time.perf_counter() - te, 1),
        }
        history.append(row)
        print(row, flush=True)

    from safetensors.torch import save_file

    state = {
        f"encoder.layer.{n - args.layers + i}.{k}": v.detach().to(torch.float16).contiguous()
        for i, layer in enumerate(layers)
        for k, v in layer.state_dict().items()
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(args.out))
    report = {
        "recipe": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "out"},
        "trained_on": f"models/corpus train split: {len(train)} turns and {len(context)} context rows "
        f"({int(y.sum())} moments of truth)",
        "anchor_texts": sum(len(b[0]) for b in b_anchor),
        "before": before,
        "epochs": history,
        "wall_time_s": round(time.perf_counter() - t0, 1),
    }
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
