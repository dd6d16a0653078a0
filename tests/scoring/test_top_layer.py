"""The fine-tuned last encoder layer: loaded by the torch encoder and the ONNX export alike, named in the
embedding cache ids, and covered by the digest the ONNX quality stamp is checked against."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from router.scoring.heads import DEFAULT_MODELS_DIR, TOP_LAYER_FILE, heads_digest, top_layer_path

pytestmark = pytest.mark.model


def test_the_torch_encoder_carries_the_fine_tuned_layer() -> None:
    from transformers import AutoModel

    from router.scoring.transformer import ENCODER_ID, Encoder, default_encoder_dir

    enc = Encoder(backend="torch")
    assert enc.top_layer_sha256 is not None and enc.cache_id != ENCODER_ID
    base = AutoModel.from_pretrained(default_encoder_dir(), local_files_only=True).eval()
    tuned, packaged = enc.model.encoder.layer[-1], base.encoder.layer[-1]
    # only the last layer differs from the package
    for a, b in zip(enc.model.encoder.layer[:-1], base.encoder.layer[:-1], strict=True):
        pairs = zip(a.parameters(), b.parameters(), strict=True)
        assert all(np.array_equal(x.detach(), y.detach()) for x, y in pairs)
    assert any(
        not np.array_equal(x.detach(), y.detach())
        for x, y in zip(tuned.parameters(), packaged.parameters(), strict=True)
    )


def test_other_encoders_are_left_alone(tmp_path: Path) -> None:
    from transformers import BertConfig, BertModel

    from router.scoring.transformer import apply_top_layer

    config = BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    model = BertModel(config)
    model.save_pretrained(tmp_path / "tiny")
    assert apply_top_layer(model, str(tmp_path / "tiny")) is None  # not the packaged MiniLM


def test_the_digest_covers_the_layer(tmp_path: Path) -> None:
    for name in ("heads.safetensors", "heads.json", TOP_LAYER_FILE):
        shutil.copy(DEFAULT_MODELS_DIR / name, tmp_path / name)
    with_layer = heads_digest(tmp_path)
    assert with_layer == heads_digest()
    (tmp_path / TOP_LAYER_FILE).unlink()
    assert top_layer_path(tmp_path) is None
    assert heads_digest(tmp_path) != with_layer  # a stamp made with the layer is not trusted without it


def test_the_int8_export_carries_the_fine_tuned_layer() -> None:
    """The exported graph answers like the tuned torch encoder, not like the packaged one."""
    from transformers import AutoModel

    from router.scoring.transformer import Encoder, default_encoder_dir, find_onnx_model

    path = find_onnx_model()
    if path is None:
        pytest.skip("no ONNX encoder: run scripts/export_onnx.py")
    texts = ["my card was stolen and there are payments I didn't make", "what are your opening hours"]
    tuned = Encoder(backend="torch")
    int8 = Encoder(backend="onnx", onnx_path=path).embed(texts)
    packaged = Encoder(backend="torch")
    packaged.model = AutoModel.from_pretrained(default_encoder_dir(), local_files_only=True).eval()
    to_tuned = (int8 * tuned.embed(texts)).sum(axis=1)
    to_packaged = (int8 * packaged.embed(texts)).sum(axis=1)
    assert (to_tuned > 0.95).all() and (to_tuned > to_packaged + 0.02).all(), (to_tuned, to_packaged)


def test_pair_rows_matches_the_layout_of_the_training_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """scripts/train_heads.py lays rows out per data block, one run per backend; each pair is one text."""
    import importlib.util
    import sys

    monkeypatch.setattr(sys, "path", list(sys.path))  # the script puts scripts/ on the path

    spec = importlib.util.spec_from_file_location(
        "train_heads", DEFAULT_MODELS_DIR.parent / "scripts/train_heads.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    texts = [["a", "b", "c"], ["d", "e"]]
    rows = [t for block in texts for t in block * 2]  # a b c a b c d e d e
    first, other = mod.pair_rows([3, 2], 2)
    assert [rows[i] for i in first] == [rows[j] for j in other] == ["a", "b", "c", "d", "e"]
    assert set(first).isdisjoint(other) and all(i < 3 or 6 <= i < 8 for i in first)
    assert len(mod.pair_rows([3, 2], 1)[0]) == 0  # one backend: nothing to pair


def test_heads_from_another_folder_bring_their_own_encoder_layer(tmp_path: Path) -> None:
    """Heads and the tuned layer are trained together: heads without a layer get the packaged encoder."""
    from router.scoring.transformer import TransformerScorer

    for name in ("heads.safetensors", "heads.json", "multilingual.safetensors"):
        shutil.copy(DEFAULT_MODELS_DIR / name, tmp_path / name)
    alone = TransformerScorer(heads_dir=str(tmp_path), backend="torch", cache_size=0)
    assert alone.encoder.top_layer_sha256 is None
    shutil.copy(DEFAULT_MODELS_DIR / TOP_LAYER_FILE, tmp_path / TOP_LAYER_FILE)
    paired = TransformerScorer(heads_dir=str(tmp_path), backend="torch", cache_size=0)
    assert paired.encoder.top_layer_sha256 is not None
