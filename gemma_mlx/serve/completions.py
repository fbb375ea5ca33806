"""From an OpenAI request to generation jobs, and from their events to OpenAI's replies."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import GemmaError
from ..generation.batch import Event, Request
from ..generation.generate import (
    check_token_ids,
    output_constraint,
    prompt_ids,
    room_after,
    stream_generate,
)
from ..generation.sampling import (
    make_logit_bias,
    make_presence_penalty,
    make_repetition_penalty,
    make_sampler,
)
from ..generation.tools import parse_tool_calls, tool_format
from ..text.functiongemma import START_CALL
from ..text.tool_calls import check_tools, choose_functions
from .media import decode_image
from .schemas import ChatCompletionRequest, CompletionRequest, Sampling


@dataclass
class Plan:
    """A validated request, ready to become one job per choice."""

    prompt: list[int]
    body: Sampling
    max_tokens: int
    logprobs: int | None = None
    json_schema: Any = None
    mode: str = "none"  # tool mode: none, auto, required, named
    functions: list[dict] = field(default_factory=list)
    images: list = field(default_factory=list)
    echo: str = ""


def _limit(model: Any, prompt: list[int], limit: int | None) -> int:
    room = room_after(model, prompt)
    return min(limit or room, room)  # no limit: the rest of the context


def _messages(req: ChatCompletionRequest, media_dir: str | None, vision: bool
              ) -> tuple[list[dict], list]:
    """Messages for the chat template (image parts as placeholders) and the images."""
    out, images = [], []
    for i, m in enumerate(req.messages):
        d = m.model_dump(exclude_none=True)
        if isinstance(m.content, list):
            parts = []
            for j, part in enumerate(m.content):
                where = f"messages[{i}].content[{j}]"
                if part.type == "text":
                    parts.append({"type": "text", "text": part.text or ""})
                elif not vision:
                    raise GemmaError(f"{where}: this model has no vision tower: images need "
                                     "a Gemma 3 4B/12B/27B checkpoint")
                elif part.image_url is None:
                    raise GemmaError(f"{where}: an image part needs image_url.url")
                else:
                    images.append(decode_image(part.image_url.url, media_dir, where))
                    parts.append({"type": "image"})
            d["content"] = parts
        if d["role"] == "developer":
            d["role"] = "system"
        out.append(d)
    return out, images


def chat_plan(req: ChatCompletionRequest, model: Any, tokenizer: Any,
              media_dir: str | None = None) -> Plan:
    functions = check_tools(req.tools)
    mode, called = choose_functions(functions, req.tool_choice) if req.tools else ("none", [])
    schema = req.response_format.schema() if req.response_format else None
    if schema is not None and mode != "none":
        raise GemmaError("response_format cannot be combined with tools (use tool_choice "
                         "'none' for a JSON answer)")
    messages, images = _messages(req, media_dir, hasattr(model, "get_image_features"))
    text = tokenizer.apply_chat_template(messages, tools=req.tools if mode != "none" else None,
                                         add_generation_prompt=True, tokenize=False,
                                         **(req.chat_template_kwargs or {}))
    prompt = prompt_ids(tokenizer, text)
    top = req.top_logprobs or 0
    return Plan(prompt, req, _limit(model, prompt, req.limit()), top if req.logprobs else None,
                schema, mode, called, images, echo=text)


def completion_plans(req: CompletionRequest, model: Any, tokenizer: Any) -> list[Plan]:
    plans = []
    schema = req.response_format.schema() if req.response_format else None
    for p in req.prompts():
        if isinstance(p, str) and tokenizer is None:
            raise GemmaError("this checkpoint has no tokenizer: send the prompt as token ids")
        prompt = prompt_ids(tokenizer, p) if isinstance(p, str) else check_token_ids(
            p, model.config.vocab_size)
        echo = p if isinstance(p, str) else tokenizer.decode(prompt)
        plans.append(Plan(prompt, req, _limit(model, prompt, req.limit()), req.logprobs,
                          schema, echo=echo))
    return plans


def _processors(plan: Plan) -> list:
    b = plan.body
    out = []
    if b.repetition_penalty:
        out.append(make_repetition_penalty(b.repetition_penalty))
    if b.presence_penalty or b.frequency_penalty:
        out.append(make_presence_penalty(b.presence_penalty, b.frequency_penalty,
                                         len(plan.prompt)))
    if b.logit_bias:
        out.append(make_logit_bias({int(k): v for k, v in b.logit_bias.items()}))
    return out


def constraint_for(plan: Plan, model: Any, tokenizer: Any) -> Any:
    """A fresh grammar state for one choice (raises GemmaError for a bad schema)."""
    return output_constraint(model, tokenizer, plan.json_schema, None, None, plan.mode,
                             plan.functions, plan.body.parallel_tool_calls
                             if isinstance(plan.body, ChatCompletionRequest) else True)


def build(plan: Plan, index: int, model: Any, tokenizer: Any, constraint: Any) -> Any:
    """What the generation thread runs for choice `index`: a batch Request, or for images a
    stream_generate iterator (its own caches, beside the batch)."""
    b = plan.body
    # any JSON integer: MLX's random keys take uint64
    seed = None if b.seed is None else (b.seed + index) % 2**64
    if plan.images:
        if plan.logprobs is not None:
            raise GemmaError("logprobs are not available for requests with images")
        return stream_generate(model, tokenizer, plan.echo, plan.max_tokens, b.temperature,
                               b.top_p, b.top_k, b.min_p, b.repetition_penalty, seed,
                               images=plan.images, json_schema=plan.json_schema)
    sampler = make_sampler(b.temperature, b.top_p, b.top_k, b.min_p, seed)
    return Request(list(plan.prompt), plan.max_tokens, sampler, _processors(plan), constraint,
                   logprobs=plan.logprobs)


@dataclass
class Choice:
    """One choice as it streams: text, tokens, logprobs, finish_reason, tool calls."""

    index: int
    text: str = ""
    tokens: list[int] = field(default_factory=list)
    logprobs: list[dict] = field(default_factory=list)
    finish_reason: str | None = None
    tool_calls: list[dict] | None = None
    sent: int = 0  # characters of text already streamed
    cached: int = 0
    prompt_tokens: int = 0  # as the model saw it (with an image's soft tokens)

    def add(self, event: Event, text: str, tokenizer: Any) -> None:
        self.text += text
        self.prompt_tokens = event.prompt_tokens
        if event.token >= 0:
            self.tokens.append(event.token)
            if event.logprob is not None:
                self.logprobs.append(_token_logprob(tokenizer, event))
        if event.finish_reason is not None:
            self.finish_reason = event.finish_reason


def _piece(tokenizer: Any, token: int) -> str:
    return tokenizer.decode([token])


def _token_logprob(tokenizer: Any, event: Event) -> dict:
    def one(t: int, lp: float) -> dict:
        s = _piece(tokenizer, t)
        return {"token": s, "logprob": lp, "bytes": list(s.encode("utf-8"))}

    out = one(event.token, event.logprob)
    out["top_logprobs"] = [one(t, lp) for t, lp in event.top_logprobs or []]
    return out


def finish_tools(choice: Choice, plan: Plan, tokenizer: Any) -> None:
    """Parse a finished choice's calls; a reply that is not a call stays text."""
    if plan.mode == "none" or choice.finish_reason != "stop":
        return
    calls = parse_tool_calls(tokenizer, choice.text, plan.functions)
    if calls:
        choice.tool_calls = [dict(c, index=i) for i, c in enumerate(calls)]
        choice.finish_reason = "tool_calls"


def may_be_call(text: str, plan: Plan, tokenizer: Any) -> bool:
    """Whether streamed text must be held back: it is, or may become, a tool call (calls can
    only open a reply: Gemma 3's JSON format with { or [, FunctionGemma's call token)."""
    if plan.mode == "none":
        return False
    if plan.mode != "auto":
        return True
    head = text.lstrip()
    if tool_format(tokenizer) == "functiongemma":
        return START_CALL.startswith(head) or head.startswith(START_CALL)
    return head == "" or head[0] in "[{"


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(12)}"


def usage(prompt_tokens: int, choices: list[Choice]) -> dict:
    completion = sum(len(c.tokens) for c in choices)
    prompt_tokens = max([prompt_tokens] + [c.prompt_tokens for c in choices])
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion,
            "total_tokens": prompt_tokens + completion,
            "prompt_tokens_details": {"cached_tokens": max((c.cached for c in choices),
                                                           default=0)}}


def chat_message(c: Choice) -> dict:
    if c.tool_calls:
        calls = [{k: v for k, v in call.items() if k != "index"} for call in c.tool_calls]
        return {"role": "assistant", "content": None, "tool_calls": calls}
    return {"role": "assistant", "content": c.text}


def chat_body(rid: str, model_id: str, plan: Plan, choices: list[Choice]) -> dict:
    return {"id": rid, "object": "chat.completion", "created": int(time.time()),
            "model": model_id, "system_fingerprint": None,
            "choices": [{"index": c.index, "message": chat_message(c),
                         "logprobs": {"content": c.logprobs} if plan.logprobs is not None
                         else None, "finish_reason": c.finish_reason} for c in choices],
            "usage": usage(len(plan.prompt), choices)}


def completion_logprobs(c: Choice, offset: int = 0) -> dict:
    tokens = [lp["token"] for lp in c.logprobs]
    offsets, at = [], offset
    for t in tokens:
        offsets.append(at)
        at += len(t)
    return {"tokens": tokens, "token_logprobs": [lp["logprob"] for lp in c.logprobs],
            "top_logprobs": [{t["token"]: t["logprob"] for t in lp["top_logprobs"]}
                             for lp in c.logprobs], "text_offset": offsets}


def completion_body(rid: str, model_id: str, plans: list[Plan], choices: list[Choice],
                    n: int) -> dict:
    out = []
    for c in choices:
        plan = plans[c.index // n]
        echo = plan.echo if plan.body.echo else ""
        out.append({"index": c.index, "text": echo + c.text, "finish_reason": c.finish_reason,
                    "logprobs": completion_logprobs(c, len(echo))
                    if plan.logprobs is not None else None})
    u = usage(sum(len(p.prompt) for p in plans), choices)
    return {"id": rid, "object": "text_completion", "created": int(time.time()),
            "model": model_id, "system_fingerprint": None, "choices": out, "usage": u}
