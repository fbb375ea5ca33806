"""Prefill and decode: generate_step, stream_generate and generate, in mlx-lm's shape."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import mlx.core as mx
import numpy as np

from ..attention import Blocks, image_blocks
from ..errors import GemmaError
from ..media.image_processing import ImageInput
from ..prompt import VideoInput, build_inputs, build_video_inputs, with_video_markers
from ..text.tool_calls import check_tools, choose_functions
from .constraints import Constraint, apply_bitmask, make_constraint
from .prefill import prefill
from .sampling import (
    LogitsProcessor,
    Sampler,
    make_repetition_penalty,
    make_sampler,
    normalize_and_sample,
)
from .speculative import check_draft_model, speculative_generate_step
from .tools import parse_tool_calls, stop_ids, tool_constraint


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
    tool_calls: list[dict] | None = None  # on the last response, when the reply is a call
    from_draft: bool = False  # speculative decoding: the token was a draft the model accepted


def generate_step(
    prompt: mx.array,
    model: Any,
    *,
    max_tokens: int = 256,
    sampler: Sampler | None = None,
    logits_processors: list[LogitsProcessor] | None = None,
    prefill_step_size: int = 512,
    cache: list | None = None,
    input_embeddings: mx.array | None = None,
    image_blocks: Blocks = (),
    constraint: Constraint | None = None,
) -> Iterator[int]:
    """Yield generated token ids for a 1-D prompt; the prompt is prefilled in chunks.

    Logits are computed for the last position only: the 262K-row head over a whole
    prompt would cost more than the rest of the prefill. With images, `input_embeddings`
    [L, hidden] carry the merged image rows and `image_blocks` their spans; a chunk never
    splits an image. A `constraint` masks each step's logits and consumes each token; the
    steps end when it is finished (nothing but an end of sequence could follow).
    """
    sampler = sampler or make_sampler()
    processors = logits_processors or []
    cache = cache if cache is not None else model.make_cache()
    for c in cache:
        if hasattr(c, "reserve"):
            c.reserve(prompt.size + max_tokens)
    tokens = prompt.tolist()

    def sampler_step(h: mx.array) -> mx.array:
        logits = model.logits(h).astype(mx.float32)
        if constraint is not None:
            mx.async_eval(logits)  # the forward pass runs while the grammar computes the mask
            allowed = mx.array(constraint.mask_words())
        for p in processors:
            logits = p(tokens, logits)
        if constraint is not None:
            logits = apply_bitmask(logits, allowed)
        y = normalize_and_sample(sampler, logits)
        # a pipeline stage (generation.pipeline) takes rank 0's token: only rank 0 has logits
        return model.agree(y) if hasattr(model, "agree") else y

    def step(ids: mx.array) -> mx.array:
        return sampler_step(model.model(ids[None], cache)[:, -1, :])

    # Unless a step needs the previous token in Python (a grammar's mask, a repetition
    # penalty, a pipeline's exchange), step n+1 is built on step n's lazy token and queued
    # before that token is read: the graph building in Python (~4-5 ms of a ~35 ms 270M token
    # on the CPU) overlaps the computation. The cache then holds one token past the last one
    # read, which is that token's own KV (stream_generate keeps or trims it).
    ahead = constraint is None and not processors and not hasattr(model, "agree")
    h = prefill(model, prompt, cache, prefill_step_size, input_embeddings, image_blocks)
    y = sampler_step(h)
    mx.async_eval(y)
    for n in range(max_tokens):
        more = n + 1 < max_tokens
        if ahead and more:
            following = step(y)
            mx.async_eval(following)
        token = y.item()
        tokens.append(token)
        if constraint is not None:
            constraint.consume(token)
            if constraint.is_finished:
                yield token
                return
        if more and not ahead:
            following = step(mx.array([token]))
            mx.async_eval(following)
        if more:
            y = following
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


def room_after(model: Any, ids: list[int]) -> int:
    """How many tokens fit after the prompt `ids` in the model's context (GemmaError if none
    do, or the prompt is empty)."""
    context = model.config.max_position_embeddings
    if not ids:
        raise GemmaError("the prompt is empty")
    if len(ids) >= context:
        raise GemmaError(f"the prompt has {len(ids)} tokens; this model's context is {context}")
    return context - len(ids)


def check_token_ids(ids: list[Any], vocab_size: int, what: str = "prompt") -> list[int]:
    """`ids` when each is an integer id of the model, else one GemmaError naming the first
    that is not (an id past the embedding would index out of bounds)."""
    for t in ids:
        if not isinstance(t, (int, np.integer)) or isinstance(t, bool) or not 0 <= t < vocab_size:
            raise GemmaError(f"{what}: {t!r} is not a token id of this model "
                             f"(0..{vocab_size - 1})")
    return [int(t) for t in ids]


def prompt_ids(tokenizer: Any, prompt: str | list[int]) -> list[int]:
    if isinstance(prompt, str):
        if tokenizer is None:
            raise GemmaError("this checkpoint has no tokenizer: pass the prompt as token ids")
        return tokenizer.encode(prompt, add_special_tokens=not prompt.startswith("<bos>"))
    return [int(t) for t in prompt]


def _multimodal_prompt(
    model: Any, tokenizer: Any, prompt: str | list[int], images: list[ImageInput],
    pan_and_scan: bool, videos: list[VideoInput] = (), fps: float = 1.0, max_frames: int = 8,
) -> tuple[list[int], mx.array, Blocks]:
    """Token ids, embeddings [L, hidden] with the image (and frame) rows merged, and the
    image blocks. Videos: the prompt's length is checked before any frame is decoded."""
    if not hasattr(model, "get_image_features"):
        raise GemmaError("this model has no vision tower: images need a Gemma 3 4B/12B/27B "
                         "(Gemma3ForConditionalGeneration) checkpoint")
    if tokenizer is None or not isinstance(prompt, str):
        raise GemmaError("a prompt with images must be text (with a tokenizer), not token ids")
    vision = model.vision_config
    sizes = dict(image_size=vision.image_size, tokens_per_image=model.mm_tokens_per_image)
    if videos:
        ids, pixels = build_video_inputs(
            tokenizer, prompt, list(images), list(videos), **sizes, fps=fps,
            max_frames=max_frames, context=model.config.max_position_embeddings,
            pan_and_scan=pan_and_scan)
    else:
        ids, pixels = build_inputs(tokenizer, prompt, list(images), **sizes,
                                   pan_and_scan=pan_and_scan)
    features = model.encode_images(mx.array(pixels))
    embeddings = model.embed(mx.array(ids)[None], image_features=features)[0]
    mx.eval(embeddings)
    return ids, embeddings, image_blocks(np.array(ids), model.image_token_index)


def stream_generate(
    model: Any,
    tokenizer: Any,
    prompt: str | list[int] | list[dict],
    max_tokens: int = 256,
    temperature: float = 0.0,
    top_p: float = 1.0,
    top_k: int = 0,
    min_p: float = 0.0,
    repetition_penalty: float | None = None,
    seed: int | None = None,
    prefill_step_size: int = 512,
    kv_bits: int | None = None,
    images: list[ImageInput] | None = None,
    pan_and_scan: bool = False,
    videos: list[VideoInput] | None = None,
    video_fps: float = 1.0,
    max_frames: int = 8,
    json_schema: dict | str | bool | None = None,
    regex: str | None = None,
    grammar: str | None = None,
    tools: list[dict] | None = None,
    tool_choice: str | dict | None = None,
    parallel_tool_calls: bool = True,
    prompt_cache: Any = None,
    draft_model: Any = None,
    num_draft_tokens: int | None = None,
    prompt_lookup: bool = False,
    **kwargs: Any,
) -> Iterator[GenerationResponse]:
    """Generate from `prompt` (text, ids, or chat messages), yielding a response per token.

    `kv_bits` (8 or 4) keeps the KV caches quantized. `images` (paths or PIL images) go to
    the `<start_of_image>` placeholders of a text prompt, in order (before the text if it has
    none); `pan_and_scan` adds crops of wide or tall images. `videos` (mp4/mov/webm, GIF,
    a folder of numbered frames, or a media.video.Video) go to `<video>` markers or
    {"type": "video"} message parts (else first): `max_frames` frames sampled evenly at
    `video_fps`, each an image after its timestamp ("Frame at 00:03:"). `json_schema`, `regex` or
    `grammar` (Lark, llguidance's dialect) constrain the output; generation stops when it is
    complete, and a finish_reason "length" means it is not. `tools` (OpenAI function specs)
    with `tool_choice` (auto, none, required, or a named function: exactly one call of it)
    constrain and parse function calls; `parallel_tool_calls=False` allows one call. The last
    response then carries `tool_calls` and finish_reason "tool_calls". Messages are rendered
    with the tools. `prompt_cache` (a gemma_mlx.serve.prefix_cache.PrefixCache) reuses the
    KV of an earlier prompt this one continues, and keeps this one's (text prompts only).

    Speculative decoding: `draft_model` (a smaller Gemma 3 with the same tokenizer) or
    `prompt_lookup=True` (drafts copied from the prompt and output so far) propose up to
    `num_draft_tokens` tokens that the model checks in one pass; the output is the same as
    without them (greedy: token for token), and each response's `from_draft` says whether
    its token was an accepted draft.
    """
    if kwargs:
        raise TypeError(f"stream_generate() got unexpected arguments: {', '.join(kwargs)}")
    mx.reset_peak_memory()
    functions = check_tools(tools)
    mode, called = choose_functions(functions, tool_choice) if tools else ("none", [])
    if _is_messages(prompt):
        prompt = tokenizer.apply_chat_template(with_video_markers(prompt) if videos else prompt,
                                               tools=tools, tokenize=False)
    constraint = output_constraint(model, tokenizer, json_schema, regex, grammar, mode, called,
                             parallel_tool_calls and mode != "named")
    start = time.perf_counter()
    embeddings, blocks = None, ()
    if images or videos:
        ids, embeddings, blocks = _multimodal_prompt(model, tokenizer, prompt, images or [],
                                                     pan_and_scan, videos or [], video_fps,
                                                     max_frames)
    else:
        ids = prompt_ids(tokenizer, prompt)
        if not isinstance(prompt, str):
            ids = check_token_ids(ids, model.config.vocab_size)
    max_tokens = min(max_tokens, room_after(model, ids))
    if seed is not None:
        mx.random.seed(seed)
    processors = [make_repetition_penalty(repetition_penalty)] if repetition_penalty else []
    stops = stop_ids(tokenizer) if tokenizer is not None else set()
    detok = StreamingDetokenizer(tokenizer) if tokenizer is not None else None
    speculative = draft_model is not None or prompt_lookup
    k = draft_length(num_draft_tokens, draft_model is not None) if speculative else 0
    use_cache = prompt_cache is not None and embeddings is None
    slack = max(k, prompt_cache.slack if use_cache else 0)
    cache = model.make_cache(kv_bits=kv_bits, slack=slack)
    cached = 0
    if use_cache:
        taken, cached = prompt_cache.take(ids)
        cache = taken if taken is not None else cache
    options = dict(max_tokens=max_tokens, sampler=make_sampler(temperature, top_p, top_k, min_p),
                   logits_processors=processors, prefill_step_size=prefill_step_size,
                   cache=cache, input_embeddings=embeddings, image_blocks=blocks,
                   constraint=constraint)
    if speculative:
        if draft_model is not None:
            check_draft_model(model, None, draft_model, None)
            options["draft_cache"] = draft_model.make_cache(kv_bits=kv_bits, slack=k)
        steps = speculative_generate_step(mx.array(ids), model, draft_model=draft_model,
                                          prompt_lookup=prompt_lookup, num_draft_tokens=k,
                                          cached=cached, **options)
    else:
        steps = ((t, False) for t in generate_step(mx.array(ids[cached:]), model, **options))
    prompt_tps, gen_start, pieces, generated = 0.0, start, [], []
    for n, (token, drafted) in enumerate(steps, start=1):
        generated.append(token)
        if n == 1:
            gen_start = time.perf_counter()
            prompt_tps = len(ids) / (gen_start - start)
        done = token in stops or (constraint is not None and constraint.is_finished)
        finish = "stop" if done else ("length" if n == max_tokens else None)
        text = "" if token in stops or detok is None else detok.add(token)
        pieces.append(text)
        calls = None
        if finish == "stop" and mode != "none":
            calls = parse_tool_calls(tokenizer, "".join(pieces), called)
            finish = "tool_calls" if calls else finish
        elapsed = time.perf_counter() - gen_start
        yield GenerationResponse(
            text, token, len(ids), prompt_tps, n, (n - 1) / elapsed if n > 1 else 0.0,
            mx.get_peak_memory() / 1e9, finish, calls, drafted,
        )
        if finish:
            break
    if use_cache:
        # a speculative pass may have run past a stop token: the cache keeps what was emitted
        extra = cache[0].offset - len(ids) - len(generated)
        if extra > 0:
            for c in cache:
                c.trim(extra)
        mx.eval([c.state for c in cache])
        prompt_cache.put((ids + generated)[: cache[0].offset], cache, None, len(ids))


MAX_DRAFT_TOKENS = 32


def draft_length(num_draft_tokens: int | None, with_model: bool) -> int:
    """The draft length: the measured default (3 for a draft model, 8 for prompt lookup)
    unless given, within 1..MAX_DRAFT_TOKENS."""
    if num_draft_tokens is None:
        return 3 if with_model else 8
    if not 1 <= num_draft_tokens <= MAX_DRAFT_TOKENS:
        raise GemmaError(f"num_draft_tokens must be 1 to {MAX_DRAFT_TOKENS}, "
                         f"not {num_draft_tokens}")
    return num_draft_tokens


def _is_messages(prompt: Any) -> bool:
    return isinstance(prompt, list) and bool(prompt) and isinstance(prompt[0], dict)


def output_constraint(
    model: Any, tokenizer: Any, json_schema: Any, regex: str | None, grammar: str | None,
    mode: str, functions: list[dict], parallel: bool,
) -> Constraint | None:
    """The output constraint: a JSON schema, regex or grammar, or the tool-call grammar."""
    n_vocab = model.config.vocab_size
    if mode == "none":
        return make_constraint(tokenizer, n_vocab, json_schema, regex, grammar)
    if any(v is not None for v in (json_schema, regex, grammar)):
        raise GemmaError("tools cannot be combined with json_schema, regex or grammar "
                         "(use tool_choice='none' for a constrained text answer)")
    return tool_constraint(tokenizer, n_vocab, functions, "auto" if mode == "auto" else
                           "required", parallel)


def generate(model: Any, tokenizer: Any, prompt: str | list[int], **kwargs: Any) -> str:
    """The generated text for `prompt` (see stream_generate for the options)."""
    return "".join(r.text for r in stream_generate(model, tokenizer, prompt, **kwargs))
