"""Speculative decoding: a draft model or prompt lookup proposes tokens, the target checks them
in one forward pass, and the caches (and any grammar) roll back what it rejects."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import mlx.core as mx
import numpy as np

from ..attention import Blocks
from ..errors import GemmaError
from .constraints import Constraint, apply_bitmask
from .prefill import prefill
from .sampling import LogitsProcessor, Sampler

NGRAM_MAX = 3  # prompt lookup matches the last 3, then 2, then 1 tokens


def lookup_draft(tokens: list[int], k: int, ngram_max: int = NGRAM_MAX) -> list[int]:
    """Prompt lookup: the k tokens that followed the latest earlier occurrence of the longest
    suffix (ngram_max tokens down to 1) of `tokens`, or none."""
    arr = np.asarray(tokens)
    for n in range(min(ngram_max, len(tokens) - 1), 0, -1):
        windows = np.lib.stride_tricks.sliding_window_view(arr[:-1], n)
        hits = np.flatnonzero((windows == arr[-n:]).all(axis=1))
        if hits.size:
            # copy on from the match; past the end, the copy continues from its own output,
            # so a match a few tokens back (a repeating run) still gives k tokens
            start, out = int(hits[-1]) + n, []
            for i in range(start, start + k):
                out.append(tokens[i] if i < len(tokens) else out[i - len(tokens)])
            return out
    return []


def check_draft_model(model: Any, tokenizer: Any, draft: Any, draft_tokenizer: Any) -> None:
    """Refuse a draft whose tokens mean something else than the target's (GemmaError).

    Gemma 3 4B-27B have 64 image tokens after the 262,144 that the 270M and 1B share, so the
    vocabularies must agree on their common prefix (and differ in size by under 1%)."""
    sizes = model.config.vocab_size, draft.config.vocab_size
    if min(sizes) < 0.99 * max(sizes):
        raise GemmaError(f"the draft model's vocabulary ({sizes[1]} tokens) differs from the "
                         f"model's ({sizes[0]}): a draft must share Gemma 3's tokenizer")
    if tokenizer is None or draft_tokenizer is None:
        return
    ours, theirs = tokenizer.pieces, draft_tokenizer.pieces
    n = min(len(ours), len(theirs))
    if ours[:n] != theirs[:n]:
        first = next(i for i in range(n) if ours[i] != theirs[i])
        raise GemmaError(f"the draft model's vocabulary differs from the model's (token "
                         f"{first} is {theirs[first]!r} in the draft, {ours[first]!r} here): "
                         "a draft must share Gemma 3's tokenizer")


def _fit(logits: mx.array, n: int, pad: float = -mx.inf) -> mx.array:
    """logits [..., V'] cut or padded (with `pad`) to [..., n]."""
    v = logits.shape[-1]
    if v >= n:
        return logits[..., :n]
    return mx.concatenate([logits, mx.full((*logits.shape[:-1], n - v), pad, logits.dtype)], -1)


class _Scorer:
    """Turns a model's last hidden states into the logits the sampler sees: float32, cut to
    the target's vocabulary, through the logits processors and the grammar mask."""

    def __init__(self, model: Any, n_vocab: int, processors: list[LogitsProcessor]):
        self.model, self.n_vocab, self.processors = model, n_vocab, processors

    def __call__(self, h: mx.array, histories: list[list[int]], masks: list) -> mx.array:
        logits = _fit(self.model.logits(h).astype(mx.float32), self.n_vocab)  # [n, V]
        if not self.processors and all(m is None for m in masks):
            return logits
        rows = []
        for i, (history, mask) in enumerate(zip(histories, masks, strict=True)):
            row = logits[i : i + 1]
            for p in self.processors:
                row = p(history, row)
            rows.append(row if mask is None else apply_bitmask(row, mask))
        return mx.concatenate(rows, axis=0)


def _log_softmax(x: mx.array) -> mx.array:
    return x - mx.logsumexp(x, axis=-1, keepdims=True)


def speculative_generate_step(
    prompt: mx.array,
    model: Any,
    *,
    draft_model: Any = None,
    prompt_lookup: bool = False,
    num_draft_tokens: int = 4,
    max_tokens: int = 256,
    sampler: Sampler,
    logits_processors: list[LogitsProcessor] | None = None,
    prefill_step_size: int = 512,
    cache: list,
    draft_cache: list | None = None,
    input_embeddings: mx.array | None = None,
    image_blocks: Blocks = (),
    constraint: Constraint | None = None,
    cached: int = 0,
) -> Iterator[tuple[int, bool]]:
    """Yield (token, from_draft) pairs: the tokens plain decoding gives, several per target
    forward pass when the drafts are right.

    Each round proposes up to `num_draft_tokens` tokens (from `draft_model`, or by prompt
    lookup), scores the newest token plus the proposal in one pass of `model`, keeps the
    longest agreeing prefix and adds the target's own next token. Greedy keeps a draft token
    when it is the target's argmax; sampling keeps it with probability min(1, p/q) and
    otherwise draws from max(p - q, 0), so the output follows the target's distribution.
    `cache` and `draft_cache` need at least `num_draft_tokens` slack slots in their rings;
    `cache` may already hold the first `cached` prompt tokens (a prompt cache's prefix).
    """
    if (draft_model is None) == (not prompt_lookup):
        raise GemmaError("speculative decoding needs a draft model or prompt lookup (one)")
    greedy = getattr(sampler, "greedy", False)
    if not greedy and not hasattr(sampler, "transform"):
        raise GemmaError("speculative sampling needs a sampler from make_sampler")
    processors = logits_processors or []
    n_vocab = model.config.vocab_size
    target = _Scorer(model, n_vocab, processors)
    k_max = max(1, num_draft_tokens)
    for c in cache:
        if hasattr(c, "reserve"):
            c.reserve(prompt.size + max_tokens + k_max)
    tokens = prompt.tolist()

    def mask() -> mx.array | None:
        return None if constraint is None else mx.array(constraint.mask_words())

    def distribution(logits: mx.array) -> mx.array:  # what the sampler draws from
        return mx.softmax(sampler.transform(_log_softmax(logits)), axis=-1)

    drafter = None
    if draft_model is not None:
        drafter = _Drafter(draft_model, _Scorer(draft_model, n_vocab, processors), draft_cache,
                           tokens, prefill_step_size, greedy, distribution)
    h = prefill(model, prompt[cached:], cache, prefill_step_size, input_embeddings,
                image_blocks)
    logits = target(h, [tokens], [mask()])
    y = (mx.argmax(logits, -1) if greedy else sampler(_log_softmax(logits))).item()

    def commit(token: int) -> None:
        tokens.append(token)
        if constraint is not None:
            constraint.consume(token)

    commit(y)
    generated = 1
    yield y, False
    while generated < max_tokens and not (constraint is not None and constraint.is_finished):
        # the target's cache holds tokens[:-1]; drafts + a bonus token must fit max_tokens
        k = min(k_max, max_tokens - generated - 1)
        if drafter is not None:
            drafts, masks, qs = drafter.propose(tokens, k, constraint, mask)
        else:
            drafts, masks, qs = _lookup_proposal(tokens, k, constraint, mask)
        finished = constraint is not None and constraint.is_finished
        if constraint is not None:
            constraint.rollback(len(drafts))
        n = len(drafts) + (0 if finished else 1)  # no row after a draft that ends the grammar
        h = model.model(mx.array(tokens[-1:] + drafts)[None], cache)[0, :n]
        logits = target(h, [tokens + drafts[:i] for i in range(n)], masks[:n])
        if greedy:
            accepted, bonus = _accept_greedy(logits, drafts)
        else:
            accepted, bonus = _accept_sampled(distribution(logits), drafts, qs)
        rejected = len(drafts) - accepted
        for c in cache:
            if c.trim(rejected) != rejected:
                raise GemmaError("the cache cannot roll back the rejected draft tokens "
                                 "(make it with slack >= num_draft_tokens)")
        for d in drafts[:accepted]:
            commit(d)
            generated += 1
            yield d, True
        if bonus is None:
            return
        commit(bonus)
        generated += 1
        yield bonus, False


def _accept_greedy(logits: mx.array, drafts: list[int]) -> tuple[int, int | None]:
    """The number of drafts equal to the target's argmax, and the target's next token."""
    best = mx.argmax(logits, axis=-1).tolist()
    a = 0
    while a < len(drafts) and best[a] == drafts[a]:
        a += 1
    return a, best[a] if a < len(best) else None


def _accept_sampled(p: mx.array, drafts: list[int], qs: list[mx.array] | None
                    ) -> tuple[int, int | None]:
    """Speculative sampling (Leviathan et al. 2023): keep draft i with probability
    min(1, p_i(d)/q_i(d)); at the first rejection draw from max(p_i - q_i, 0). `qs` are the
    draft's distributions, or None for deterministic drafts (q = one-hot)."""
    a = 0
    if drafts:
        rows, idx = mx.arange(len(drafts)), mx.array(drafts)
        ratio = p[rows, idx] if qs is None else p[rows, idx] / mx.stack(qs)[rows, idx]
        keep = (mx.random.uniform(shape=(len(drafts),)) < ratio).tolist()
        a = keep.index(False) if False in keep else len(drafts)
        if a < len(drafts):
            if qs is None:
                residual = mx.where(mx.arange(p.shape[-1]) == drafts[a], 0.0, p[a])
            else:
                residual = mx.maximum(p[a] - qs[a], 0.0)
            return a, mx.random.categorical(mx.log(residual)).item()
    if a < p.shape[0]:
        return a, mx.random.categorical(mx.log(p[a])).item()
    return a, None


def _lookup_proposal(tokens: list[int], k: int, constraint: Constraint | None, mask
                     ) -> tuple[list[int], list, None]:
    """Prompt-lookup drafts, cut where the grammar refuses one; the masks before each draft
    (and after the last) with the drafts consumed by the grammar."""
    drafts = lookup_draft(tokens, k) if k > 0 else []
    if constraint is None:
        return drafts, [None] * (len(drafts) + 1), None
    masks, kept = [], []
    for d in drafts:
        words = constraint.mask_words()
        if not (words[d >> 5] >> (d & 31)) & 1:
            break
        masks.append(mx.array(words))
        constraint.consume(d)
        kept.append(d)
        if constraint.is_finished:
            return kept, masks, None
    masks.append(mask())
    return kept, masks, None


class _Drafter:
    """The draft model with its cache, kept in step with the target's tokens."""

    def __init__(self, model: Any, scorer: _Scorer, cache: list, prompt: list[int], step: int,
                 greedy: bool, distribution) -> None:
        self.model, self.scorer, self.cache = model, scorer, cache
        self.greedy, self.distribution = greedy, distribution
        ids = np.asarray(prompt)
        ids[ids >= model.config.vocab_size] = 0  # image tokens: the draft sees placeholders
        prefill(model, mx.array(ids), cache, step)
        self.seq = list(prompt)  # the tokens in the draft's cache

    def _rewind(self, tokens: list[int]) -> list[int]:
        """Trim the draft's cache to its common prefix with `tokens`; the tokens to feed."""
        limit = min(len(self.seq), len(tokens))
        start = max(0, limit - 64)  # rejected drafts are recent: the prefix before agrees
        c = start + next((i for i, (a, b) in enumerate(zip(self.seq[start:limit],
                                                         tokens[start:limit], strict=True))
                          if a != b), limit - start)
        extra = len(self.seq) - c
        for layer in self.cache:
            if layer.trim(extra) != extra:
                raise GemmaError("the draft cache cannot roll back (slack too small)")
        self.seq = self.seq[:c]
        return tokens[c:]

    def propose(self, tokens: list[int], k: int, constraint: Constraint | None, mask
                ) -> tuple[list[int], list, list | None]:
        """Up to k draft tokens (consumed by the grammar), the masks before each and after
        the last, and the draft's distributions when sampling."""
        feed = self._rewind(tokens)
        lazy = constraint is None and not self.scorer.processors and self.greedy
        drafts, masks, qs, pending = [], [], [], []
        x = mx.array(feed)[None]
        for _ in range(k):
            m = mask()
            h = self.model.model(x, self.cache)[:, -1]
            logits = self.scorer(h, [tokens + drafts], [m])
            masks.append(m)
            if lazy:  # no host round trip per draft token: the graph chains on device
                d = mx.argmax(logits, axis=-1)
                mx.async_eval(d)
                pending.append(d)
                x = d[None]
                continue
            if self.greedy:
                d = mx.argmax(logits, axis=-1).item()
            else:
                q = self.distribution(logits)[0]
                d = mx.random.categorical(mx.log(q)).item()
                qs.append(q)
            drafts.append(d)
            x = mx.array([[d]])
            if constraint is not None:
                constraint.consume(d)
                if constraint.is_finished:
                    break
        if lazy and pending:
            drafts = mx.concatenate(pending).tolist()
        if drafts:  # the last draft was not fed
            self.seq = tokens + drafts[:-1]
        if not (constraint is not None and constraint.is_finished):
            masks.append(mask())
        return drafts, masks, None if self.greedy else qs
