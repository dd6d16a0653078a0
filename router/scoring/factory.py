"""Build the configured scorer: transformer/pipeline wrapped in the lexicon fallback, or the lexicon."""

from __future__ import annotations

import logging
from pathlib import Path

from router.scoring.fallback import DegradedScorer, FallbackScorer
from router.scoring.lexicon import LexiconScorer
from router.scoring.protocol import EmotionScorer
from router.settings import Settings

_log = logging.getLogger(__name__)

# A batch that takes longer than this on the model is answered by the lexicon instead.
DEFAULT_STALL_TIMEOUT_S = 10.0


def _split_model_dir(model_dir: str) -> tuple[str | None, str | None]:
    """``settings.model_dir`` may name the heads folder (has heads.json) or an encoder folder (has
    config.json); returns (encoder_dir, heads_dir)."""
    if not model_dir:
        return None, None
    p = Path(model_dir)
    if (p / "heads.json").exists():
        return None, str(p)
    if (p / "config.json").exists():
        return str(p), None
    return None, str(p)


def heads_dir_of(settings: Settings) -> str | None:
    """The heads folder ``settings`` name (None: the repository's models/)."""
    return _split_model_dir(settings.model_dir)[1]


def build_scorer(settings: Settings, logger: logging.Logger | None = None) -> EmotionScorer:
    log = logger or _log
    lexicon = LexiconScorer()
    if settings.scorer == "lexicon":
        return lexicon
    try:
        primary: EmotionScorer
        if settings.scorer == "transformer":
            from router.scoring.transformer import TransformerScorer

            encoder_dir, heads_dir = _split_model_dir(settings.model_dir)
            primary = TransformerScorer(
                model_dir=encoder_dir,
                heads_dir=heads_dir,
                threads=settings.torch_threads,
                backend=settings.encoder_backend,
            )
        else:
            from router.scoring.pipeline import PipelineScorer

            if not settings.hf_model:
                raise ValueError("scorer=pipeline needs ROUTER_HF_MODEL (a model id or a local path)")
            primary = PipelineScorer(settings.hf_model)
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"
        log.warning(
            "scorer %s could not load (%s); using the lexicon scorer instead", settings.scorer, reason
        )
        return DegradedScorer(lexicon, reason)
    return FallbackScorer(primary, lexicon, logger=log, stall_timeout_s=DEFAULT_STALL_TIMEOUT_S)
