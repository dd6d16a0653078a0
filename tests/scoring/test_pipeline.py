from __future__ import annotations

from pathlib import Path

import pytest

from router.scoring.pipeline import PipelineScorer

WORDS = ["my", "card", "was", "stolen", "what", "are", "your", "opening", "hours", "i", "am", "angry", "help"]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    path = tmp_path_factory.mktemp("tiny-bert")
    vocab = path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    tok = BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=5 + len(WORDS),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        num_labels=3,
        id2label={0: "negative", 1: "neutral", 2: "positive"},
        label2id={"negative": 0, "neutral": 1, "positive": 2},
    )
    BertForSequenceClassification(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_pipeline_scorer_on_tiny_local_model(tiny_model: Path) -> None:
    scorer = PipelineScorer(str(tiny_model))
    texts = ["my card was stolen", "what are your opening hours", "i am angry help " * 40]
    out = scorer.score(texts)
    assert len(out) == 3
    for s in out:
        assert s.source == "pipeline"
        assert set(s.emotions) == {"negative", "neutral", "positive"}
        assert abs(sum(s.emotions.values()) - 1.0) < 1e-3
        assert 0.0 <= s.intensity <= 1.0
        assert abs(s.intensity - s.emotions["negative"]) < 1e-3
    assert out[0].topic == "lost_card"
    assert scorer.score([]) == []


def test_pipeline_scorer_custom_label_map(tiny_model: Path) -> None:
    scorer = PipelineScorer(str(tiny_model), label_map={"positive": 1.0})
    s = scorer.score(["my card was stolen"])[0]
    assert abs(s.intensity - s.emotions["positive"]) < 1e-3
