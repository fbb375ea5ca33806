"""Prefix cache: the KV of finished sequences, moved into prompts that continue them."""

from __future__ import annotations

import itertools
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from ..cache import copy_cache

MIN_SHARED = 64  # a shorter shared prefix (a chat template's header) is not worth a copy


@dataclass
class Entry:
    """Caches holding `tokens` (one position each), and the sliding layers' rings as they were
    at `boundary` tokens (the end of that request's prompt, a turn boundary), or None."""

    tokens: list[int]
    caches: list
    checkpoint: list | None
    boundary: int
    nbytes: int


def _nbytes(caches: list | None) -> int:
    return sum(a.nbytes for c in caches or [] if c is not None for a in c.k.data + c.v.data)


def _common(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def _rolls_back(c: Any, n: int) -> bool:
    """Whether trim(n) removes all n tokens: always for a global layer, for a ring only while
    it still holds the window before them (it has not wrapped, or n fits in its slack)."""
    if not hasattr(c, "window"):
        return True
    return c.offset <= c.size or n <= c.slack


class PrefixCache:
    """Finished sequences' caches, found by the longest common prefix with a new prompt.

    A hit moves the entry out (no copy): the caches are rolled back to the shared prefix
    (trim, within the rings' slack) or restored from the entry's turn-boundary checkpoint,
    and the request prefills only the rest; the finished request puts the longer sequence
    back. `max_bytes` bounds every entry's memory together; the least recently used go first.
    """

    def __init__(self, max_bytes: int, slack: int = 32):
        self.max_bytes = max_bytes
        self.slack = slack  # ring slots beyond the window the caches should have
        self.entries: OrderedDict[int, Entry] = OrderedDict()
        self._keys = itertools.count()
        self.hits = self.misses = 0

    @property
    def nbytes(self) -> int:
        return sum(e.nbytes for e in self.entries.values())

    def _reusable(self, e: Entry, shared: int) -> int:
        """The longest prefix of `e` up to `shared` tokens that its caches can return to:
        from its end within the rings' slack, or from the checkpoint (also within slack)."""
        if all(_rolls_back(c, len(e.tokens) - shared) for c in e.caches):
            return shared
        at = min(shared, e.boundary)
        if e.checkpoint is not None and all(_rolls_back(r, e.boundary - at)
                                            for r in e.checkpoint if r is not None):
            return at
        return 0

    def take(self, prompt: list[int]) -> tuple[list | None, int]:
        """Caches holding the longest reusable prefix of `prompt` (at most all but its last
        token, which must run to give logits), and that length.

        A prompt that continues an entry (a new turn of its conversation: it holds the
        entry's whole prompt) takes the entry's caches, moved out. A prompt that only
        shares a long prefix (a system prompt) gets a copy of that prefix, and the entry
        stays for the conversation it belongs to.
        """
        best, best_n, moving = None, 0, False
        for key, e in self.entries.items():
            shared = _common(e.tokens, prompt)
            n = self._reusable(e, min(shared, len(prompt) - 1))
            if n > best_n:
                best, best_n, moving = key, n, shared >= e.boundary
        if best is None or not (moving or best_n >= MIN_SHARED):
            self.misses += 1
            return None, 0
        e = self.entries[best]
        self.hits += 1
        if moving:
            del self.entries[best]
        if all(_rolls_back(c, len(e.tokens) - best_n) for c in e.caches):
            caches = e.caches
        else:  # the rings from the checkpoint, the global layers rolled back to it
            caches = [r if r is not None else c for c, r in zip(e.caches, e.checkpoint,
                                                                strict=True)]
        if not moving:
            caches = [copy_cache(c, best_n) for c in caches]
        for c in caches:
            c.trim(c.offset - best_n)
        return caches, best_n

    def put(self, tokens: list[int], caches: list, checkpoint: list | None = None,
            boundary: int = 0) -> None:
        """Keep caches holding `tokens`; evict the least recently used past the budget."""
        if not caches or not tokens or any(c.offset != len(tokens) for c in caches):
            return
        e = Entry(list(tokens), caches, checkpoint, boundary,
                  _nbytes(caches) + _nbytes(checkpoint))
        if e.nbytes > self.max_bytes:
            return
        for key in [k for k, old in self.entries.items() if old.tokens == e.tokens]:
            del self.entries[key]
        self.entries[next(self._keys)] = e
        while self.nbytes > self.max_bytes:
            self.entries.popitem(last=False)

    def clear(self) -> None:
        self.entries.clear()
