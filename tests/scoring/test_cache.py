from __future__ import annotations

from router.scoring.cache import LRUCache, cached
from router.scoring.transformer import length_buckets


def test_lru_evicts_least_recent_and_counts() -> None:
    c: LRUCache[str, int] = LRUCache(2)
    c.put("a", 1)
    c.put("b", 2)
    assert c.get("a") == 1
    c.put("c", 3)
    assert c.get("b") is None
    assert c.get("a") == 1 and c.get("c") == 3
    assert (c.hits, c.misses) == (3, 1)
    assert len(c) == 2


def test_lru_disabled() -> None:
    c: LRUCache[str, int] = LRUCache(0)
    c.put("a", 1)
    assert c.get("a") is None


def test_length_buckets_cover_all_and_limit_padding() -> None:
    lengths = [5, 120, 7, 6, 30, 31, 8, 119, 5, 9] * 10
    buckets = length_buckets(lengths, max_bucket=16)
    flat = sorted(i for b in buckets for i in b)
    assert flat == list(range(len(lengths)))
    for b in buckets:
        assert len(b) <= 16
        ls = [lengths[i] for i in b]
        assert max(ls) * len(ls) <= 1.34 * sum(ls) + 16 + max(ls)


def test_cached_computes_only_the_missing_keys_once() -> None:
    c: LRUCache[str, int] = LRUCache(8)
    c.put("a", 1)
    calls: list[list[str]] = []

    def compute(keys: list[str]) -> list[int]:
        calls.append(keys)
        return [len(k) for k in keys]

    assert cached(c, ["a", "bb", "ccc"], compute) == {"a": 1, "bb": 2, "ccc": 3}
    assert cached(c, ["ccc", "bb"], compute) == {"ccc": 3, "bb": 2}
    assert calls == [["bb", "ccc"]]
    assert cached(LRUCache(0), ["x"], compute) == {"x": 1} and calls[-1] == ["x"]  # no cache: always computed
