"""Token samplers (temperature, top-k, top-p, min-p) and the repetition penalty."""

from __future__ import annotations

from collections.abc import Callable

import mlx.core as mx

Sampler = Callable[[mx.array], mx.array]
LogitsProcessor = Callable[[list[int], mx.array], mx.array]


def greedy(logits: mx.array) -> mx.array:
    return mx.argmax(logits, axis=-1)


greedy.greedy = True  # type: ignore[attr-defined]


def normalize_and_sample(sampler: Sampler, logits: mx.array) -> mx.array:
    """Sample from logits [B, V]: log-softmax first, unless the sampler is greedy."""
    if getattr(sampler, "greedy", False):
        return sampler(logits)
    return sampler(logits - mx.logsumexp(logits, axis=-1, keepdims=True))


def make_sampler(
    temperature: float = 0.0, top_p: float = 1.0, top_k: int = 0, min_p: float = 0.0,
    seed: int | None = None,
) -> Sampler:
    """A function from log-probabilities [B, V] to token ids [B]; greedy at temperature 0
    (marked `greedy`: it needs no normalization, which costs an exp per vocabulary entry).
    With `seed`, the sampler draws from its own random key: the same seed gives the same
    tokens whatever else runs (in a batch, or in other threads). A sampler's `transform`
    maps log-probabilities to the logits it draws from (softmax gives its distribution)."""
    if temperature <= 0:
        return greedy
    key = [mx.random.key(seed)] if seed is not None else None

    def keep_top_p(logprobs: mx.array) -> mx.array:
        """-inf outside the smallest set, by descending probability, whose mass reaches
        top_p (always the first token; entries tied with its last one stay too). One sort
        and a threshold: unsorting took a second sort of the vocabulary."""
        sorted_lp = -mx.sort(-logprobs, axis=-1)
        probs = mx.softmax(sorted_lp, axis=-1)
        before = mx.cumsum(probs, axis=-1) - probs
        last = mx.min(mx.where(before < top_p, sorted_lp, mx.inf), axis=-1, keepdims=True)
        return mx.where(logprobs < last, -mx.inf, logprobs)

    def filtered(logprobs: mx.array) -> mx.array:
        """min-p, then top-p, as logits to draw from."""
        if min_p > 0:
            floor = mx.max(logprobs, axis=-1, keepdims=True) + mx.log(mx.array(min_p))
            logprobs = mx.where(logprobs < floor, -mx.inf, logprobs)
        if 0 < top_p < 1:
            logprobs = keep_top_p(logprobs)
        return logprobs / temperature

    def candidates(logprobs: mx.array) -> tuple[mx.array, mx.array]:
        """The top_k token ids [B, k] (ties at the k-th value broken arbitrarily, as
        torch.topk does) and their filtered logits: a partition and k-wide sorts, where
        sorting the 262K-entry vocabulary twice cost ~40 ms a token on the CPU."""
        ids = mx.argpartition(-logprobs, top_k - 1, axis=-1)[..., :top_k]
        return ids, filtered(mx.take_along_axis(logprobs, ids, axis=-1))

    def transform(logprobs: mx.array) -> mx.array:
        if not 0 < top_k < logprobs.shape[-1]:
            return filtered(logprobs)
        ids, kept = candidates(logprobs)
        return mx.put_along_axis(mx.full(logprobs.shape, -mx.inf, logprobs.dtype), ids, kept,
                                 axis=-1)

    def sample(logprobs: mx.array) -> mx.array:
        sub = None
        if key is not None:
            key[0], sub = mx.random.split(key[0])
        if 0 < top_k < logprobs.shape[-1]:  # a draw among the k: the same distribution
            ids, kept = candidates(logprobs)
            pick = mx.random.categorical(kept, axis=-1, key=sub)
            return mx.take_along_axis(ids, pick[..., None], axis=-1)[..., 0]
        return mx.random.categorical(transform(logprobs), axis=-1, key=sub)

    sample.transform = transform  # type: ignore[attr-defined]  (speculative acceptance)
    return sample


def make_repetition_penalty(penalty: float, context_size: int = 20) -> LogitsProcessor:
    """CTRL-style penalty on the last `context_size` tokens (divide positive logits, multiply
    negative ones), as in transformers and mlx-lm."""

    def process(tokens: list[int], logits: mx.array) -> mx.array:
        recent = tokens[-context_size:]
        if not recent:
            return logits
        idx = mx.array(sorted(set(recent)))
        picked = logits[..., idx]
        logits[..., idx] = mx.where(picked < 0, picked * penalty, picked / penalty)
        return logits

    return process


def make_presence_penalty(presence: float = 0.0, frequency: float = 0.0,
                          prompt_length: int = 0) -> LogitsProcessor:
    """OpenAI's penalties on the generated tokens (after the first `prompt_length`): minus
    `presence` once per distinct token, minus `frequency` per occurrence."""

    def process(tokens: list[int], logits: mx.array) -> mx.array:
        counts: dict[int, int] = {}
        for t in tokens[prompt_length:]:
            counts[t] = counts.get(t, 0) + 1
        if not counts:
            return logits
        idx = mx.array(list(counts))
        n = mx.array(list(counts.values()), mx.float32)
        logits[..., idx] = logits[..., idx] - presence - frequency * n
        return logits

    return process


def make_logit_bias(bias: dict[int, float]) -> LogitsProcessor:
    """Add a fixed bias to some token ids (OpenAI's logit_bias)."""
    idx = list(bias)
    values = list(bias.values())

    def process(tokens: list[int], logits: mx.array) -> mx.array:
        i = mx.array(idx)
        logits[..., i] = logits[..., i] + mx.array(values, logits.dtype)
        return logits

    return process
