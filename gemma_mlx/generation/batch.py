"""Continuous batching: sequences join and leave a running batch; batch_generate on top."""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import mlx.core as mx

from ..cache import copy_cache
from ..errors import GemmaError
from .batch_cache import batch_caches
from .constraints import Constraint, apply_bitmask, make_constraint
from .generate import StreamingDetokenizer, prompt_ids, room_after
from .sampling import (
    LogitsProcessor,
    Sampler,
    greedy,
    make_repetition_penalty,
    make_sampler,
    normalize_and_sample,
)
from .tools import stop_ids


@dataclass
class Request:
    """One sequence to generate: prompt ids and its own settings."""

    prompt: list[int]
    max_tokens: int = 256
    sampler: Sampler | None = None  # greedy if None
    logits_processors: list[LogitsProcessor] = field(default_factory=list)
    constraint: Constraint | None = None
    stops: set[int] | None = None  # None: the tokenizer's end-of-sequence ids
    id: Any = None
    logprobs: int | None = None  # report the sampled token's log-probability and this many top
    cache: list | None = None  # caches already holding prompt[:cached] (a prefix-cache hit)
    cached: int = 0
    keep_cache: bool = False  # hand the caches back on the last event (for a prefix cache)


@dataclass
class Event:
    """A token for one request; `finish_reason` is set on its last event."""

    id: Any
    token: int
    text: str
    finish_reason: str | None = None
    prompt_tokens: int = 0
    generation_tokens: int = 0  # so far
    logprob: float | None = None
    top_logprobs: list[tuple[int, float]] | None = None
    # with keep_cache, on the last event: caches of every position but the last token, and
    # the sliding layers' rings as they were at the end of the prompt (None for the others)
    caches: list | None = None
    checkpoint: list | None = None


@dataclass
class _Sequence:
    request: Request
    cache: list | None  # its own caches, until it moves into a row of the batch buffers
    detok: StreamingDetokenizer | None
    tokens: list[int]  # prompt, then the generated tokens
    prefilled: int = 0
    generated: int = 0
    row: int | None = None
    checkpoint: list | None = None

    @property
    def prefilling(self) -> bool:
        return self.prefilled < len(self.request.prompt)


def kv_bytes(model: Any, n_tokens: int, kv_bits: int | None = None) -> int:
    """The KV memory of one sequence of n_tokens: global layers hold all of them, sliding
    layers at most their window."""
    cfg = model.config
    per_token = 2 * cfg.num_key_value_heads * cfg.head_dim
    per_token *= 4 if kv_bits is None else kv_bits / 8 + 2 * 4 / 64  # + scales and biases
    layers = [n_tokens if not cfg.is_sliding(i) else min(n_tokens, cfg.sliding_window)
              for i in range(cfg.num_hidden_layers)]
    return int(sum(layers) * per_token)


class BatchEngine:
    """Runs many requests in one batch: each step decodes one token for every running
    sequence and prefills a chunk of the next joining one, in a single forward pass.

    `max_batch` bounds the running sequences, `kv_budget` (bytes) their KV memory (a request
    waits until it fits); finished sequences leave at once. `step()` returns the step's
    events, so a server can drive it; `run()` drains the queue.
    """

    def __init__(self, model: Any, tokenizer: Any = None, max_batch: int = 16,
                 prefill_step_size: int = 512, kv_budget: int | None = None,
                 kv_bits: int | None = None, slack: int = 0):
        self.model, self.tokenizer = model, tokenizer
        self.max_batch, self.prefill_step_size = max_batch, prefill_step_size
        self.kv_budget, self.kv_bits, self.slack = kv_budget, kv_bits, slack
        self.queue: deque[Request] = deque()
        self.running: list[_Sequence] = []
        self.stats = {"prompt_tokens": 0, "generation_tokens": 0, "prompt_time": 0.0,
                      "generation_time": 0.0, "steps": 0}
        self._ids = itertools.count()
        self._stops = stop_ids(tokenizer) if tokenizer is not None else set()
        self.batch = batch_caches(self._make_cache())
        self._free_rows = list(range(max_batch))
        self._ahead: tuple[list[_Sequence], mx.array] | None = None  # a step queued ahead

    def submit(self, request: Request) -> Any:
        request.max_tokens = min(request.max_tokens, room_after(self.model, request.prompt))
        if not 0 <= request.cached < len(request.prompt) or (request.cache is None) != (
                request.cached == 0):
            raise GemmaError("a cached prefix must leave at least one prompt token to prefill")
        need = self._kv(request)
        if self.kv_budget is not None and need > self.kv_budget:
            raise GemmaError(f"a request of {len(request.prompt)} + {request.max_tokens} "
                             f"tokens needs {need / 1e9:.2f} GB of KV cache; the budget is "
                             f"{self.kv_budget / 1e9:.2f} GB")
        if request.id is None:
            request.id = next(self._ids)
        self.queue.append(request)
        return request.id

    def cancel(self, request_id: Any) -> None:
        """Drop a queued or running request (its KV memory is freed at once)."""
        self.queue = deque(r for r in self.queue if r.id != request_id)
        for s in [s for s in self.running if s.request.id == request_id]:
            self._leave(s)

    def _leave(self, s: _Sequence) -> None:
        self.running.remove(s)
        if s.row is not None:
            self._free_rows.append(s.row)
        s.cache = s.checkpoint = None

    def _make_cache(self) -> list:
        return self.model.make_cache(kv_bits=self.kv_bits, slack=self.slack)

    def _kept(self, s: _Sequence) -> tuple[list, list | None]:
        """The caches of a finishing sequence (moved out of its row) and its checkpoint."""
        offset = len(s.tokens) - 1  # the last token was sampled, never run through the model
        if s.row is None:
            return s.cache, s.checkpoint
        return [layer.extract(s.row, offset) for layer in self.batch], s.checkpoint

    @property
    def has_work(self) -> bool:
        return bool(self.queue or self.running)

    def _kv(self, request: Request) -> int:
        return kv_bytes(self.model, len(request.prompt) + request.max_tokens, self.kv_bits)

    def _admit(self) -> None:
        used = sum(self._kv(s.request) for s in self.running)
        while self.queue and len(self.running) < self.max_batch:
            need = self._kv(self.queue[0])
            if self.kv_budget is not None and self.running and used + need > self.kv_budget:
                return
            r = self.queue.popleft()
            cache = r.cache if r.cache is not None else self._make_cache()
            r.cache = None  # moved into the sequence
            for c in cache:
                if hasattr(c, "reserve"):
                    c.reserve(len(r.prompt) + min(r.max_tokens, 1024))  # then it doubles
            detok = StreamingDetokenizer(self.tokenizer) if self.tokenizer is not None else None
            self.running.append(_Sequence(r, cache, detok, list(r.prompt), r.cached))
            used += need

    def _plan(self) -> list[tuple[_Sequence, int]]:
        """(sequence, new tokens) for this step: 1 per decoding sequence (those in batch rows
        first), and prefill chunks (oldest first) within prefill_step_size tokens."""
        plan = [(s, 1) for s in self.running if s.row is not None]
        plan += [(s, 1) for s in self.running if s.row is None and not s.prefilling]
        budget = self.prefill_step_size
        for s in self.running:
            if s.prefilling and budget > 0:
                n = min(budget, len(s.request.prompt) - s.prefilled)
                plan.append((s, n))
                budget -= n
        return plan

    def _end_prefill(self, s: _Sequence) -> None:
        """Keep the rings at the end of the prompt (a turn boundary) for the prefix cache, then
        move the sequence into a batch row if one is free."""
        if s.request.keep_cache:
            moving = self.batch is not None and self._free_rows  # then the rings are not reused
            s.checkpoint = [(c if moving else copy_cache(c)) if hasattr(c, "window") else None
                            for c in s.cache]
        self._to_row(s)

    def _to_row(self, s: _Sequence) -> None:
        """Move a prefilled sequence's caches into a free row of the batch buffers."""
        if self.batch is None or not self._free_rows:
            return
        s.row = self._free_rows.pop(0)
        need = len(s.tokens) + min(s.request.max_tokens, 256)  # global layers grow past it
        for layer, c in zip(self.batch, s.cache, strict=True):
            layer.load(s.row, c, need, self.max_batch, expect=len(self.running))
        s.cache = None

    def step(self) -> list[Event]:
        """One forward pass over the running batch; the events of the tokens it produced."""
        if self._ahead is not None:
            seqs, y = self._ahead
            return self._decode_step([s for s in seqs if s in self.running], y, seqs)
        self._admit()
        plan = self._plan()
        if not plan:
            return []
        if all(n == 1 and s.row is not None for s, n in plan) and self._simple(plan):
            seqs = [s for s, _ in plan]
            return self._decode_step(seqs, mx.array([s.tokens[-1] for s in seqs]))
        start = time.perf_counter()
        ids, lengths, caches, last, rows, positions = [], [], [], [], [], []
        for s, n in plan:
            if s.prefilling:
                ids += s.request.prompt[s.prefilled : s.prefilled + n]
            else:
                ids.append(s.tokens[-1])
            if s.row is not None:
                rows.append(s.row)
                positions.append(len(s.tokens) - 1)
            else:
                caches.append(s.cache)
            lengths.append(n)
            last.append(sum(lengths) - 1)
        h = self.model.model.rows(mx.array(ids), lengths, caches, self.batch, rows, positions)
        finishing = [i for i, (s, n) in enumerate(plan) if not s.prefilling or
                     s.prefilled + n == len(s.request.prompt)]
        prefill = sum(n for s, n in plan if s.prefilling)
        prefilled = [plan[i][0] for i in finishing if plan[i][0].prefilling]
        for s, n in plan:
            if s.prefilling:
                s.prefilled += n
        if finishing:
            logits = self.model.logits(h[0, mx.array([last[i] for i in finishing])])
            logits = logits.astype(mx.float32)
            mx.async_eval(logits)  # masks are computed while the forward pass runs
            tokens, logprobs = self._sample([plan[i][0] for i in finishing], logits)
        else:
            mx.eval([c.state for seq, _ in plan for c in seq.cache or []])
            tokens, logprobs = [], []
        elapsed = time.perf_counter() - start
        self.stats["steps"] += 1
        self.stats["prompt_tokens"] += prefill
        self.stats["generation_tokens"] += len(tokens)
        self.stats["prompt_time" if prefill else "generation_time"] += elapsed
        events = [self._emit(plan[i][0], t, lp) for i, t, lp in
                  zip(finishing, tokens, logprobs, strict=True)]
        for s in prefilled:
            if s in self.running:
                self._end_prefill(s)
        for s in self.running:
            if s.row is None and not s.prefilling:
                self._to_row(s)
        return events

    def _simple(self, plan: list) -> bool:
        """Every sequence decodes in a batch row with the same sampler and nothing that needs
        its last token on the host: such steps can be queued one ahead."""
        first = plan[0][0].request.sampler
        return all(not s.request.logits_processors and s.request.constraint is None
                   and s.request.logprobs is None and s.request.sampler is first
                   for s, _ in plan)

    def _forward(self, seqs: list[_Sequence], ids: mx.array, ahead: int = 0) -> mx.array:
        """Next tokens [n] (lazy) of sequences decoding in batch rows from ids [n], `ahead`
        tokens past their last known one."""
        positions = [len(s.tokens) - 1 + ahead for s in seqs]
        h = self.model.model.rows(ids, [1] * len(seqs), [], self.batch,
                                  [s.row for s in seqs], positions)
        logits = self.model.logits(h[0]).astype(mx.float32)
        return normalize_and_sample(seqs[0].request.sampler or greedy, logits)

    def _decode_step(self, live: list[_Sequence], ids: mx.array,
                     scheduled: list[_Sequence] | None = None) -> list[Event]:
        """Decode `live`, pipelined: the next step is queued on the sampled tokens (still on
        the device) before they are read, so building its graph overlaps this computation.
        With `scheduled`, `ids` are tokens already computed for those sequences (an ahead
        step); the ones that finished since are dropped."""
        start = time.perf_counter()
        self._ahead = None
        if scheduled is None:
            y = self._forward(live, ids)
        else:
            y = ids
            if len(live) < len(scheduled):  # someone finished: keep the others' tokens
                keep = mx.array([scheduled.index(s) for s in live])
                y = y[keep] if live else y[:0]
        mx.async_eval(y)
        if live and not self.queue and len(live) == len(scheduled or live):
            self._ahead = (live, self._forward(live, y, ahead=1))
            mx.async_eval(self._ahead[1])
        tokens = y.tolist() if live else []
        self.stats["steps"] += 1
        self.stats["generation_tokens"] += len(tokens)
        self.stats["generation_time"] += time.perf_counter() - start
        return [self._emit(s, t) for s, t in zip(live, tokens, strict=True)]

    def _sample(self, seqs: list[_Sequence], logits: mx.array) -> tuple[list[int], list]:
        """Next tokens from logits [n, V]: each row's processors and constraint, then one
        sampler call for all rows when they share it (one argmax over the batch). With them,
        each row's (log-probability, top log-probabilities) of the distribution sampled."""
        samplers = [s.request.sampler or greedy for s in seqs]
        if all(not s.request.logits_processors and s.request.constraint is None
               for s in seqs) and all(f is samplers[0] for f in samplers):
            tokens = normalize_and_sample(samplers[0], logits)
        else:
            rows, out = [], []
            for j, (s, sampler) in enumerate(zip(seqs, samplers, strict=True)):
                row, r = logits[j : j + 1], s.request
                if r.constraint is not None:
                    allowed = mx.array(r.constraint.mask_words())
                for p in r.logits_processors:
                    row = p(s.tokens, row)
                if r.constraint is not None:
                    row = apply_bitmask(row, allowed)
                rows.append(row)
                out.append(normalize_and_sample(sampler, row))
            tokens, logits = mx.concatenate(out), mx.concatenate(rows)
        tokens = tokens.tolist()
        return tokens, [_logprobs(logits[j], t, s.request.logprobs)
                        if s.request.logprobs is not None else None
                        for j, (s, t) in enumerate(zip(seqs, tokens, strict=True))]

    def _emit(self, s: _Sequence, token: int, logprobs: tuple | None = None) -> Event:
        r = s.request
        s.tokens.append(token)
        s.generated += 1
        stops = self._stops if r.stops is None else r.stops
        if r.constraint is not None:
            r.constraint.consume(token)
        finished = token in stops or (r.constraint is not None and r.constraint.is_finished)
        reason = "stop" if finished else ("length" if s.generated >= r.max_tokens else None)
        text = "" if token in stops or s.detok is None else s.detok.add(token)
        event = Event(r.id, token, text, reason, len(r.prompt), s.generated,
                      *(logprobs or (None, None)))
        if reason:
            if r.keep_cache:
                event.caches, event.checkpoint = self._kept(s)
            self._leave(s)
        return event

    def finish(self, request_id: Any) -> Event | None:
        """End a running request now (a stop string matched): its last event, with its caches
        when it keeps them; None if it is not running."""
        for s in self.running:
            if s.request.id == request_id:
                event = Event(request_id, -1, "", "stop", len(s.request.prompt), s.generated)
                if s.request.keep_cache and not s.prefilling:
                    event.caches, event.checkpoint = self._kept(s)
                self._leave(s)
                return event
        return None

    def run(self) -> Iterator[Event]:
        while self.has_work:
            yield from self.step()


def _logprobs(logits: mx.array, token: int, top: int) -> tuple[float, list[tuple[int, float]]]:
    """The log-probability of `token` under logits [V], and the `top` most likely tokens."""
    lp = logits - mx.logsumexp(logits)
    best = mx.argpartition(-lp, top)[:top] if top else mx.array([], mx.int32)
    best = best[mx.argsort(-lp[best])]
    return lp[token].item(), list(zip(best.tolist(), lp[best].tolist(), strict=True))


@dataclass
class BatchResult:
    texts: list[str]
    finish_reasons: list[str]
    tokens: list[list[int]]
    stats: dict[str, float]


def batch_generate(
    model: Any,
    tokenizer: Any,
    prompts: list[str | list[int]],
    max_tokens: int = 256,
    temperature: float = 0.0,
    top_p: float = 1.0,
    top_k: int = 0,
    min_p: float = 0.0,
    repetition_penalty: float | None = None,
    seed: int | None = None,
    json_schema: dict | str | bool | None = None,
    batch_size: int = 16,
    prefill_step_size: int = 512,
    kv_bits: int | None = None,
    kv_budget: int | None = None,
    verbose: bool = False,
    on_event: Callable[[Event], None] | None = None,
) -> BatchResult:
    """Generate for every prompt (text or ids), `batch_size` at a time with continuous
    batching; texts come back in prompt order. Sampling options are stream_generate's."""
    if seed is not None:
        mx.random.seed(seed)
    engine = BatchEngine(model, tokenizer, batch_size, prefill_step_size, kv_budget, kv_bits)
    for i, prompt in enumerate(prompts):
        processors = [make_repetition_penalty(repetition_penalty)] if repetition_penalty else []
        constraint = make_constraint(tokenizer, model.config.vocab_size, json_schema)
        engine.submit(Request(prompt_ids(tokenizer, prompt), max_tokens,
                              make_sampler(temperature, top_p, top_k, min_p), processors,
                              constraint, id=i))
    texts, reasons = [""] * len(prompts), [""] * len(prompts)
    tokens: list[list[int]] = [[] for _ in prompts]
    mx.reset_peak_memory()
    start = time.perf_counter()
    for event in engine.run():
        texts[event.id] += event.text
        tokens[event.id].append(event.token)
        if event.finish_reason:
            reasons[event.id] = event.finish_reason
        if on_event is not None:
            on_event(event)
    st = dict(engine.stats)
    st["total_time"] = time.perf_counter() - start
    st["prompt_tps"] = st["prompt_tokens"] / max(st["prompt_time"], 1e-9)
    st["generation_tps"] = st["generation_tokens"] / max(st["total_time"], 1e-9)
    st["peak_memory"] = mx.get_peak_memory() / 1e9
    if verbose:
        print(f"[batch_generate] {len(prompts)} prompts: prompt {st['prompt_tps']:.1f} tok/s, "
              f"generation {st['generation_tps']:.1f} tok/s, peak {st['peak_memory']:.3f} GB")
    return BatchResult(texts, reasons, tokens, st)
