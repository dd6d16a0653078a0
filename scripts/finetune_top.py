#!/usr/bin/env python
"""Fine-tune MiniLM's last transformer layer for the router's two judgements, before the heads are trained.

    .venv/bin/python scripts/finetune_top.py [--data ../shared/data] [--out models]

The encoder's first five layers stay frozen (their outputs are computed once and kept in memory); the last
layer learns, together with an intensity head and a topic head, from the sets whose licences allow shipped
weights: GoEmotions (graded negative intensity), BRIGHTER EN track B (intensity), Banking77 / CLINC150
intents (moment-of-truth topics; problem reports as mild intensity) and the hand-written topic sentences.
The heads of this step are a scaffold (they start from linear heads fitted on the frozen encoder) and are
thrown away: ``scripts/train_heads.py`` trains the shipped heads on the fine-tuned encoder.

Every batch comes twice: as the fp32 states of the lower layers and as the int8 ONNX graph's (``--onnx``,
default: the exported file), so that the layer learns to answer the same on both backends.

Writes ``models/encoder_top.safetensors`` (the layer, fp32) and ``models/encoder_top.json`` (recipe and the
dev-set figures before and after). The learning rate and epochs were chosen on the dev sets only.

The whole pipeline from a clean clone (about 11 min on 2 cores): this script, ``scripts/export_onnx.py``
(the int8 graph of the new layer), ``scripts/train_heads.py`` (the heads, on torch and int8 embeddings),
``scripts/export_onnx.py`` again (the quality stamp for the new heads).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from handwritten import handwritten_human, handwritten_topics  # noqa: E402
from train_heads import (  # noqa: E402
    PROBLEM_TARGET,
    SEED,
    auroc,
    go_intensity,
    load_brighter_en,
    load_goemotions,
    load_intents,
    train_head,
)

from router.scoring.heads import TOP_LAYER_FILE  # noqa: E402
from router.scoring.topics import MOT_TOPICS, PROBLEM_INTENTS  # noqa: E402
from router.scoring.transformer import ENCODER_ID, default_encoder_dir, find_onnx_model  # noqa: E402

LABELS = [*MOT_TOPICS, "none"]
Batch = tuple[list[int], torch.Tensor, torch.Tensor]


def _rows(data: Path, rng: random.Random, go_limit: int) -> list[tuple[str, float, float, int]]:
    """(text, intensity target or nan, its weight, topic index or -1): train_heads.py's targets."""
    go = load_goemotions(data, "train", go_limit, rng)
    rows = [
        (r["text"], go_intensity(r["fine"]), 1.0, LABELS.index("none") if i < 3000 else -1)
        for i, r in enumerate(go)
    ]
    rows += [(t, v, 4.0, -1) for t, v in load_brighter_en(data, "train")]
    for t, intent, tp in load_intents(data, rng, 40, "train"):
        problem = intent.split(":", 1)[1] in PROBLEM_INTENTS
        rows.append((t, PROBLEM_TARGET if problem else 0.0, 0.5 if problem else 0.3, LABELS.index(tp)))
    rows += [(t, float("nan"), 0.0, LABELS.index(k)) for k, ts in handwritten_topics().items() for t in ts]
    rows += [(t, 0.0, 0.3, -1) for t in handwritten_human()[1]]
    return rows


def _int8_lower(path: Path) -> Any:
    """An ONNX Runtime session on the int8 graph that also answers the last layer's input (the output of
    the layer below it, quantisation noise included). It does not depend on the last layer's weights, so
    the graph exported with an earlier tuned layer serves as well as the packaged encoder's."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path))
    layers = {int(m.group(1)) for n in model.graph.node if (m := re.search(r"/layer\.(\d+)/", n.name))}
    name = f"/inner/encoder/layer.{max(layers) - 1}/output/LayerNorm/LayerNormalization_output_0"
    model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    so = ort.SessionOptions()
    so.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return session, name


class Frozen:
    """The encoder below its last layer, run once per text; batches sorted by length. With an int8 graph,
    each batch comes twice: the fp32 states and the int8 graph's, so that the layer learns to give the same
    answer on both (quantisation noise in its input is what broke the export's quality gate)."""

    def __init__(self, model: Any, tokenizer: Any, int8: Path | None = None) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.int8 = _int8_lower(int8) if int8 is not None else None

    @torch.no_grad()
    def states(self, texts: list[str], batch: int = 64, both: bool = False) -> list[Batch]:
        enc = self.tokenizer(texts, truncation=True, max_length=128)
        order = sorted(range(len(texts)), key=lambda i: len(enc["input_ids"][i]))
        out: list[Batch] = []
        for s in range(0, len(order), batch):
            idx = order[s : s + batch]
            b = self.tokenizer.pad(
                {k: [enc[k][i] for i in idx] for k in ("input_ids", "attention_mask")}, return_tensors="pt"
            )
            hidden = self.model(**b, output_hidden_states=True).hidden_states[-2]
            out.append((idx, hidden.clone(), b["attention_mask"]))
            if both and self.int8 is not None:
                session, name = self.int8
                feeds = {"input_ids": b["input_ids"].numpy(), "attention_mask": b["attention_mask"].numpy()}
                if "token_type_ids" in {i.name for i in session.get_inputs()}:
                    feeds["token_type_ids"] = np.zeros_like(feeds["input_ids"])
                (q,) = session.run([name], feeds)
                out.append((idx, torch.from_numpy(q), b["attention_mask"]))
        return out


def _top(layer: Any, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    ext = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
    out = layer(hidden, attention_mask=ext)
    return out if torch.is_tensor(out) else out[0]


def _pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).float()
    return torch.nn.functional.normalize((hidden * m).sum(1) / m.sum(1).clamp(min=1e-9), dim=-1)


@torch.no_grad()
def _embed(layer: Any, batches: list[Batch], n: int) -> np.ndarray:
    out = np.zeros((n, 384), np.float32)
    for idx, hidden, mask in batches:
        out[idx] = _pool(_top(layer, hidden, mask), mask).numpy()
    return out


def _fit(x: np.ndarray, y_int: np.ndarray, w_int: np.ndarray, y_top: np.ndarray, w_top: np.ndarray) -> Any:
    ok = ~np.isnan(y_int)
    hi = train_head(x[ok], y_int[ok][:, None], w_int[ok], "sigmoid", l2=1e-5)
    okt = y_top >= 0
    onehot = np.zeros((int(okt.sum()), len(LABELS)), np.float32)
    onehot[np.arange(onehot.shape[0]), y_top[okt]] = 1.0
    ht = train_head(x[okt], onehot, w_top[okt], "softmax", l2=1e-5, steps=500)
    return hi, ht


def _dev(layer: Any, heads: Any, dev: dict[str, tuple[list[Batch], np.ndarray]]) -> dict[str, float]:
    hi, _ = heads
    go_b, go_y = dev["goemotions"]
    br_b, br_y = dev["brighter"]
    go_s = hi(_embed(layer, go_b, len(go_y)))[:, 0]
    br_s = hi(_embed(layer, br_b, len(br_y)))[:, 0]
    return {
        "goemotions_dev_intensity_auroc": round(auroc(go_y > 0.5, go_s), 4),
        "brighter_en_dev_pearson": round(float(np.corrcoef(br_s, br_y)[0, 1]), 4),
    }


def _train(layer: Any, batches: list[Batch], targets: dict[str, torch.Tensor], heads: Any, args: Any) -> None:
    """Mini-batch AdamW on the layer and the scaffold heads (started from the frozen-encoder fit)."""
    h_int, h_top = torch.nn.Linear(384, 1), torch.nn.Linear(384, len(LABELS))
    with torch.no_grad():
        for lin, head in ((h_int, heads[0]), (h_top, heads[1])):
            lin.weight.copy_(torch.from_numpy(head.weight))
            lin.bias.copy_(torch.from_numpy(head.bias))
    opt = torch.optim.AdamW(
        [
            {"params": [*h_int.parameters(), *h_top.parameters()], "lr": 1e-3},
            {"params": list(layer.parameters()), "lr": args.lr},
        ],
        weight_decay=1e-4,
    )
    bce, ce = torch.nn.functional.binary_cross_entropy_with_logits, torch.nn.functional.cross_entropy
    layer.train()
    for epoch in range(args.epochs):
        order = list(range(len(batches)))
        random.Random(SEED + epoch).shuffle(order)
        total = 0.0
        for bi in order:
            idx, hidden, mask = batches[bi]
            it = torch.tensor(idx)
            emb = _pool(_top(layer, hidden, mask), mask)
            yi, wi, yt, wt = (targets[k][it] for k in ("y_int", "w_int", "y_top", "w_top"))
            ok, okt = ~torch.isnan(yi), yt >= 0
            loss = (bce(h_int(emb)[:, 0][ok], yi[ok], reduction="none") * wi[ok]).sum() / wi[ok].sum().clamp(
                min=1.0
            )
            if bool(okt.any()):
                lt = ce(h_top(emb)[okt], yt[okt], reduction="none")
                loss = loss + (lt * wt[okt]).sum() / wt[okt].sum().clamp(min=1.0)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach())
        print(f"  epoch {epoch}: mean loss {total / len(order):.4f}", flush=True)
    layer.eval()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=ROOT / "models")
    ap.add_argument("--go-limit", type=int, default=14_000)
    ap.add_argument("--lr", type=float, default=1e-4, help="learning rate of the layer (chosen on dev)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument(
        "--onnx",
        type=Path,
        default=None,
        help="int8 graph of the encoder (default: the exported one): the layer also learns from its layer-4 "
        "states, which do not depend on the last layer's weights",
    )
    ap.add_argument("--torch-only", action="store_true", help="learn from fp32 lower-layer states alone")
    args = ap.parse_args()
    if not args.torch_only and args.onnx is None:
        args.onnx = find_onnx_model()
        if args.onnx is None:
            ap.error("no ONNX encoder: run scripts/export_onnx.py first, or pass --torch-only")
    if args.torch_only:
        args.onnx = None
    t0 = time.perf_counter()
    torch.manual_seed(SEED)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    from safetensors.torch import save_file
    from transformers import AutoModel, AutoTokenizer

    model_dir = default_encoder_dir()
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModel.from_pretrained(model_dir, local_files_only=True).eval()
    rng = random.Random(SEED)
    rows = _rows(args.data, rng, args.go_limit)
    go_dev = load_goemotions(args.data, "dev", 2_000, rng)
    br_dev = load_brighter_en(args.data, "dev")
    frozen = Frozen(model, tokenizer, args.onnx)
    batches = frozen.states([r[0] for r in rows], both=True)
    dev = {
        "goemotions": (
            frozen.states([r["text"] for r in go_dev]),
            np.array([go_intensity(r["fine"]) for r in go_dev]),
        ),
        "brighter": (frozen.states([t for t, _ in br_dev]), np.array([v for _, v in br_dev])),
    }
    print(f"lower layers run on {len(rows)} texts in {time.perf_counter() - t0:.0f} s", flush=True)
    counts = Counter(r[3] for r in rows if r[3] >= 0)
    n_top = sum(counts.values())
    weight = {k: min(8.0, (n_top / len(LABELS)) / c) ** 0.5 for k, c in counts.items()}
    arrays = {
        "y_int": np.array([r[1] for r in rows], np.float32),
        "w_int": np.array([r[2] for r in rows], np.float32),
        "y_top": np.array([r[3] for r in rows], np.int64),
        "w_top": np.array([weight.get(r[3], 0.0) for r in rows], np.float32),
    }
    layer = model.encoder.layer[-1]
    fp32_batches = batches[::2] if args.onnx is not None else batches  # (fp32, int8) pairs
    before_heads = _fit(_embed(layer, fp32_batches, len(rows)), *arrays.values())
    before = _dev(layer, before_heads, dev)
    print(f"frozen encoder, dev: {before}", flush=True)
    _train(layer, batches, {k: torch.from_numpy(v) for k, v in arrays.items()}, before_heads, args)
    after = _dev(layer, _fit(_embed(layer, fp32_batches, len(rows)), *arrays.values()), dev)
    print(f"fine-tuned last layer, dev: {after}", flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in layer.state_dict().items()}, str(args.out / TOP_LAYER_FILE))
    meta = {
        "base_encoder": ENCODER_ID,
        "layer_index": len(model.encoder.layer) - 1,
        "recipe": f"AdamW, layer lr {args.lr}, scaffold heads lr 1e-3, weight decay 1e-4, {args.epochs} "
        "epochs of length-sorted batches of 64, intensity BCE (soft targets) + topic cross-entropy, "
        + ("on fp32 and int8 ONNX layer-4 states" if args.onnx is not None else "on fp32 states"),
        "trained_on": [
            "goemotions",
            "brighter_semeval2025_task11 (eng track B)",
            "banking77",
            "clinc150",
            "handwritten",
        ],
        "rows": len(rows),
        "dev_before": before,
        "dev_after": after,
        "train_seconds": round(time.perf_counter() - t0, 1),
    }
    (args.out / TOP_LAYER_FILE.replace(".safetensors", ".json")).write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {args.out / TOP_LAYER_FILE} in {meta['train_seconds']} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
