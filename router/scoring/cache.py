"""A small thread-safe LRU cache with hit/miss counters, for repeated short customer turns."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class LRUCache(Generic[K, V]):
    """Least-recently-used mapping bounded to ``maxsize`` entries (``maxsize <= 0`` disables it)."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self.hits = 0
        self.misses = 0
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        if self.maxsize <= 0:
            return None
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: K, value: V) -> None:
        if self.maxsize <= 0:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.hits = 0
            self.misses = 0

    def __len__(self) -> int:
        return len(self._data)


def embedding_cache_key(model_id: str, max_tokens: int, texts: list[str]) -> str:
    import hashlib

    h = hashlib.sha256(f"{model_id}\x00{max_tokens}\x00".encode())
    for t in texts:
        h.update(t.encode("utf-8", "replace"))
        h.update(b"\x00")
    return h.hexdigest()[:24]


def cached(cache: LRUCache[K, V], keys: Sequence[K], compute: Callable[[list[K]], Sequence[V]]) -> dict[K, V]:
    """key -> value for ``keys``: from ``cache`` where it holds one, the rest from one ``compute`` call over
    the missing keys in order, which the cache then keeps."""
    out: dict[K, V] = {}
    missing: list[K] = []
    for key in keys:
        value = cache.get(key)
        if value is None:
            missing.append(key)
        else:
            out[key] = value
    if missing:
        for key, value in zip(missing, compute(missing), strict=True):
            out[key] = value
            cache.put(key, value)
    return out
