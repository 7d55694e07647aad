"""A memory cache bounded by bytes. Plain Python and NumPy."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Sequence

import numpy as np


def _nbytes(value: np.ndarray | Sequence[np.ndarray]) -> int:
    return value.nbytes if isinstance(value, np.ndarray) else sum(v.nbytes for v in value)


class LRUCache:
    """A dict bounded by the total bytes of its values (arrays or lists of arrays); least recently used out."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = int(max_bytes)
        self.bytes = 0
        self._data: OrderedDict[Hashable, object] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable):
        value = self._data.get(key)
        if value is None:
            self.misses += 1
            return None
        self._data.move_to_end(key)
        self.hits += 1
        return value

    def put(self, key: Hashable, value) -> None:
        if key in self._data:
            self.bytes -= _nbytes(self._data.pop(key))
        size = _nbytes(value)
        if size > self.max_bytes:
            return
        self._data[key] = value
        self.bytes += size
        while self.bytes > self.max_bytes and self._data:
            _, old = self._data.popitem(last=False)
            self.bytes -= _nbytes(old)

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        self._data.clear()
        self.bytes = 0
