"""Prefill and decode: generate_step, stream_generate and generate, in mlx-lm's shape."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import mlx.core as mx

from .errors import GemmaError
from .sampling import LogitsProcessor, Sampler, make_repetition_penalty, make_sampler


@dataclass
class GenerationResponse:
    """One streamed step: the new text and token, with running statistics."""

    text: str
    token: int
    prompt_tokens: int
    prompt_tps: float
    generation_tokens: int
    generation_tps: float
    peak_memory: float  # GB
    finish_reason: str | None = None


def generate_step(
    prompt: mx.array,
    model: Any,
    *,
    max_tokens: int = 256,
    sampler: Sampler | None = None,
    logits_processors: list[LogitsProcessor] | None = None,
    prefill_step_size: int = 512,
    cache: list | None = None,
) -> Iterator[int]:
    """Yield generated token ids for a 1-D prompt; the prompt is prefilled in chunks.

    Logits are computed for the last position only: the 262K-row head over a whole
    prompt would cost more than the rest of the prefill.
    """
    sampler = sampler or make_sampler()
    processors = logits_processors or []
    cache = cache if cache is not None else model.make_cache()
    for c in cache:
        if hasattr(c, "reserve"):
            c.reserve(prompt.size + max_tokens)
    tokens = prompt.tolist()

    def step(ids: mx.array) -> mx.array:
        h = model.model(ids[None], cache)
        logits = model.logits(h[:, -1, :]).astype(mx.float32)
        for p in processors:
            logits = p(tokens, logits)
        return sampler(logits - mx.logsumexp(logits, axis=-1, keepdims=True))

    head, last = prompt[:-1], prompt[-1:]
    for start in range(0, head.size, prefill_step_size):
        model.model(head[start : start + prefill_step_size][None], cache)
        mx.eval([c.state for c in cache])
    y = step(last)
    mx.async_eval(y)
    for n in range(max_tokens):
        token = y.item()
        tokens.append(token)
        if n + 1 < max_tokens:
            y = step(mx.array([token]))
            mx.async_eval(y)
        yield token


class StreamingDetokenizer:
    """Turns a stream of ids into text pieces, holding back incomplete UTF-8 sequences."""

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.emitted = 0

    def add(self, token: int) -> str:
        self.ids.append(token)
        text = self.tokenizer.decode(self.ids)
        if text.endswith("\ufffd"):
            return ""
        piece = text[self.emitted :]
        self.emitted = len(text)
        if text.endswith("\n"):  # start a new segment: decoding stays linear in length
            self.ids, self.emitted = [], 0
        return piece


def _prompt_ids(tokenizer: Any, prompt: str | list[int]) -> list[int]:
    if isinstance(prompt, str):
        if tokenizer is None:
            raise GemmaError("this checkpoint has no tokenizer: pass the prompt as token ids")
        return tokenizer.encode(prompt, add_special_tokens=not prompt.startswith("<bos>"))
    return [int(t) for t in prompt]


def stream_generate(
    model: Any,
    tokenizer: Any,
    prompt: str | list[int],
    max_tokens: int = 256,
    temperature: float = 0.0,
    top_p: float = 1.0,
    top_k: int = 0,
    min_p: float = 0.0,
    repetition_penalty: float | None = None,
    seed: int | None = None,
    prefill_step_size: int = 512,
    kv_bits: int | None = None,
    **kwargs: Any,
) -> Iterator[GenerationResponse]:
    """Generate from `prompt` (text or ids), yielding a GenerationResponse per token.

    `kv_bits` (8 or 4) keeps the KV caches quantized.
    """
    if kwargs:
        raise TypeError(f"stream_generate() got unexpected arguments: {', '.join(kwargs)}")
    ids = _prompt_ids(tokenizer, prompt)
    context = model.config.max_position_embeddings
    if not ids:
        raise GemmaError("the prompt is empty")
    if len(ids) >= context:
        raise GemmaError(f"the prompt has {len(ids)} tokens; this model's context is {context}")
    max_tokens = min(max_tokens, context - len(ids))
    if seed is not None:
        mx.random.seed(seed)
    processors = [make_repetition_penalty(repetition_penalty)] if repetition_penalty else []
    stops = getattr(tokenizer, "eos_token_ids", set()) if tokenizer is not None else set()
    detok = StreamingDetokenizer(tokenizer) if tokenizer is not None else None
    mx.reset_peak_memory()
    start = time.perf_counter()
    steps = generate_step(
        mx.array(ids), model, max_tokens=max_tokens,
        sampler=make_sampler(temperature, top_p, top_k, min_p),
        logits_processors=processors, prefill_step_size=prefill_step_size,
        cache=model.make_cache(kv_bits=kv_bits),
    )
    prompt_tps, gen_start = 0.0, start
    for n, token in enumerate(steps, start=1):
        if n == 1:
            gen_start = time.perf_counter()
            prompt_tps = len(ids) / (gen_start - start)
        finish = "stop" if token in stops else ("length" if n == max_tokens else None)
        text = "" if finish == "stop" or detok is None else detok.add(token)
        elapsed = time.perf_counter() - gen_start
        yield GenerationResponse(
            text, token, len(ids), prompt_tps, n, (n - 1) / elapsed if n > 1 else 0.0,
            mx.get_peak_memory() / 1e9, finish,
        )
        if finish:
            break


def generate(model: Any, tokenizer: Any, prompt: str | list[int], **kwargs: Any) -> str:
    """The generated text for `prompt` (see stream_generate for the options)."""
    return "".join(r.text for r in stream_generate(model, tokenizer, prompt, **kwargs))
