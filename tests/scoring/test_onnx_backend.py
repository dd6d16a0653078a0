"""The ONNX Runtime int8 encoder (``scripts/export_onnx.py``) against torch fp32. Skipped when the exported
file is absent.

The strict bar ("equal quality": cosine >= 0.98 on every text, intensity within 0.05 and the same topic on
the acceptance texts) is the export's quality gate, stamped into the file; ``backend="auto"`` picks ONNX only
when the stamp says it passed. These tests check the gate is honoured and what any sane int8 export keeps.
"""

from __future__ import annotations

import numpy as np
import pytest

from router.scoring.bench import ACCEPTANCE_TEXTS, QUALITY_TEXTS, onnx_quality
from router.scoring.heads import DEFAULT_MODELS_DIR
from router.scoring.transformer import find_onnx_model

pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(find_onnx_model() is None, reason="no ONNX encoder: run scripts/export_onnx.py"),
    pytest.mark.skipif(
        not (DEFAULT_MODELS_DIR / "heads.json").exists(), reason="models/heads.json not trained"
    ),
]

EMOTIONAL = "my card was stolen and someone emptied my account, I am panicking"
ROUTINE = "what are your opening hours"


@pytest.fixture(scope="module")
def scorers():  # type: ignore[no-untyped-def]
    from router.scoring.transformer import TransformerScorer

    return (
        TransformerScorer(cache_size=0, backend="torch"),
        TransformerScorer(cache_size=0, backend="onnx"),
    )


def test_auto_follows_the_quality_stamp() -> None:
    from router.scoring.transformer import Encoder, onnx_gate_passed

    enc = Encoder(backend="auto")
    path = find_onnx_model()
    assert path is not None
    if onnx_gate_passed(path):
        assert enc.backend == "onnx"
        assert enc.onnx_path == path
    else:
        assert enc.backend == "torch"
    forced = Encoder(backend="onnx")
    assert forced.backend == "onnx"
    assert forced.session.get_session_options().intra_op_num_threads == forced.threads


def test_env_and_bad_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    from router.scoring.transformer import Encoder

    monkeypatch.setenv("ROUTER_ENCODER_BACKEND", "torch")
    assert Encoder().backend == "torch"
    with pytest.raises(ValueError, match="encoder backend"):
        Encoder(backend="tensorrt")


def test_embedding_cosine_vs_torch(scorers) -> None:  # type: ignore[no-untyped-def]
    torch_scorer, onnx_scorer = scorers
    assert (torch_scorer.backend, onnx_scorer.backend) == ("torch", "onnx")
    a = torch_scorer.encoder.embed(QUALITY_TEXTS)
    b = onnx_scorer.encoder.embed(QUALITY_TEXTS)
    assert len(QUALITY_TEXTS) >= 50
    assert a.shape == b.shape == (len(QUALITY_TEXTS), 384)
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-4)
    cos = (a * b).sum(axis=1)
    assert cos.mean() >= 0.99
    assert cos.min() >= 0.95, f"cosine {cos.min():.4f} on {QUALITY_TEXTS[int(cos.argmin())]!r}"


def test_heads_agree_with_torch(scorers) -> None:  # type: ignore[no-untyped-def]
    torch_scorer, onnx_scorer = scorers
    pairs = zip(torch_scorer.score(ACCEPTANCE_TEXTS), onnx_scorer.score(ACCEPTANCE_TEXTS), strict=True)
    for t, o in pairs:
        assert o.source == "transformer"
        assert abs(t.intensity - o.intensity) <= 0.05
        assert abs(t.wants_human - o.wants_human) <= 0.1
    emo, routine = onnx_scorer.score([EMOTIONAL, ROUTINE])
    assert emo.intensity > routine.intensity + 0.2
    assert emo.topic == "lost_card"
    assert routine.topic is None
    human = onnx_scorer.score(["I want to talk to a real person, not a bot"])[0]
    assert human.wants_human > 0.5


def test_gate_report(scorers) -> None:  # type: ignore[no-untyped-def]
    q = onnx_quality(*scorers)
    assert q["passed"] == (
        q["cosine_min"] >= 0.98 and q["intensity_absdiff_max"] <= 0.05 and not q["topic_changed"]
    )


def test_bench_reports_both_backends(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from router.scoring.bench import run_bench_scorer

    res = run_bench_scorer(tmp_path / "b.json", n_messages=64, n_naive=4, n_compare=16)
    assert json.loads((tmp_path / "b.json").read_text()) == res
    assert res["backend"] in ("torch", "onnx")
    assert res["scorer_msgs_per_s"] == res[f"{res['backend']}_scorer_msgs_per_s"]
    assert res["batch32_p99_ms"] == res[f"{res['backend']}_batch32_p99_ms"]
    assert res["torch_scorer_msgs_per_s"] > 0 and res["onnx_scorer_msgs_per_s"] > 0
    assert res["onnx_vs_torch"] > 0
    assert res["compare_messages"] == 16 and 0.9 <= res["onnx_cosine_min"] <= 1.0001
    assert res["torch_cache_hits"] == res["onnx_cache_hits"] == 0
