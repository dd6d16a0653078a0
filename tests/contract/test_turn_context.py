"""A customer turn is scored after its contact's earlier customer turns (the scorer's ``contexts``): from the
stored transcript, from this worker's own recent turns, and from earlier turns of the same batch."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from router.scoring.protocol import EmotionScore
from router.store.store import RoutingStore
from router.worker.consumer import Worker
from tests.contract.contract_helpers import ScriptedScorer, message, read_group, started, xadd

MakeWorker = Callable[..., Worker]


class ContextScorer(ScriptedScorer):
    """Records each text with the earlier turns it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, list[str]]] = []

    def score(  # type: ignore[override]
        self,
        texts: Sequence[str],
        languages: Sequence[str | None] | None = None,
        contexts: Sequence[Sequence[str]] | None = None,
    ) -> list[EmotionScore]:
        assert contexts is not None and len(contexts) == len(texts)
        self.seen.extend((t, list(c)) for t, c in zip(texts, contexts, strict=True))
        return super().score(texts)


@pytest.fixture
def scorer() -> ContextScorer:
    return ContextScorer()


def run(store: RoutingStore, w: Worker) -> None:
    w.process(read_group(store, w.group, w.consumer))


def test_earlier_turns_of_the_same_batch_and_of_the_transcript(
    store: RoutingStore, make_worker: MakeWorker, scorer: ContextScorer
) -> None:
    first = make_worker("w1")
    xadd(store, started("c1"))
    xadd(store, message("c1", 1, "what is this 45 pound charge"))
    xadd(store, message("c1", 2, "let me check", speaker="agent"))
    xadd(store, message("c1", 3, "I was told there would be no charge"))
    run(store, first)
    assert scorer.seen == [
        ("what is this 45 pound charge", []),
        ("I was told there would be no charge", ["what is this 45 pound charge"]),
    ]
    # another worker, which scored none of them: the stored transcript gives the earlier turns
    other = make_worker("w2")
    scorer.seen.clear()
    xadd(store, message("c1", 4, "Understood. I'll move banks."))
    run(store, other)
    assert scorer.seen == [
        (
            "Understood. I'll move banks.",
            ["what is this 45 pound charge", "I was told there would be no charge"],
        )
    ]


def test_a_resent_turn_is_not_its_own_context_and_contacts_do_not_mix(
    store: RoutingStore, make_worker: MakeWorker, scorer: ContextScorer
) -> None:
    w = make_worker()
    for cid in ("c1", "c2"):
        xadd(store, started(cid))
    xadd(store, message("c1", 1, "hello"))
    xadd(store, message("c2", 1, "my card was stolen"))
    xadd(store, message("c1", 2, "the app logged me out"))
    run(store, w)
    xadd(store, message("c1", 2, "the app logged me out"))  # the platform resends turn 2
    run(store, w)
    assert scorer.seen == [
        ("hello", []),
        ("my card was stolen", []),
        ("the app logged me out", ["hello"]),
        ("the app logged me out", ["hello"]),
    ]
