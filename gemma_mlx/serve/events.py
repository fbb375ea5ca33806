"""A request's job events: collected into one reply, or streamed as OpenAI's SSE chunks."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request

from .completions import (
    Choice,
    Plan,
    completion_logprobs,
    finish_tools,
    may_be_call,
    usage,
)
from .security import error_body
from .worker import Job, Worker

POLL_S = 0.25  # how often a waiting handler checks that its client is still there


class ReplyError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Waiter:
    """Takes a request's job events; checks every POLL_S that its client is still there,
    whether the events flow or not."""

    def __init__(self, request: Request, q: asyncio.Queue):
        self.request, self.q = request, q
        self.checked = time.monotonic()

    async def _gone(self) -> bool:
        self.checked = time.monotonic()
        return await self.request.is_disconnected()

    async def next(self, timeout: float) -> Any:
        """The next event, "keepalive" after `timeout` s without one, None if the client
        left."""
        waited = 0.0
        while True:
            if time.monotonic() - self.checked > POLL_S and await self._gone():
                return None
            try:
                return await asyncio.wait_for(self.q.get(), POLL_S)
            except asyncio.TimeoutError:
                waited += POLL_S
                if await self._gone():
                    return None
                if waited >= timeout:
                    return "keepalive"


def _add(choices: list[Choice], jobs: list[Job], plans: list[Plan], n: int, item: tuple,
         tokenizer: Any) -> Choice:
    index, kind, payload = item
    if kind == "error":
        raise ReplyError(*payload)
    event, text, _ = payload
    c = choices[index]
    c.add(event, text, tokenizer)
    if event.finish_reason is not None:
        c.cached = jobs[index].cached
        finish_tools(c, plans[index // n], tokenizer)
    return c


async def collect(request: Request, worker: Worker, jobs: list[Job], q: asyncio.Queue,
                  plans: list[Plan], n: int, tokenizer: Any) -> list[Choice]:
    """Wait for every choice to finish; a client that leaves cancels its jobs at once."""
    choices = [Choice(j.index) for j in jobs]
    left, waiter = len(jobs), Waiter(request, q)
    try:
        while left:
            item = await waiter.next(float("inf"))
            if item is None:
                return choices
            if _add(choices, jobs, plans, n, item, tokenizer).finish_reason is not None:
                left -= 1
    finally:
        if left:
            worker.cancel(jobs)
    return choices


def _sse(data: dict) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


async def _events(request: Request, worker: Worker, jobs: list[Job], q: asyncio.Queue,
                  plans: list[Plan], n: int, tokenizer: Any, keepalive_s: float
                  ) -> AsyncIterator[tuple[Choice | None, str | None]]:
    """(choice, None) per event, (None, sse text) for keep-alives and errors; cancels the jobs
    if the client leaves or the stream stops early."""
    choices = [Choice(j.index) for j in jobs]
    left, waiter = len(jobs), Waiter(request, q)
    try:
        while left:
            item = await waiter.next(keepalive_s)
            if item is None:
                return
            if item == "keepalive":
                yield None, f": keepalive {time.strftime('%H:%M:%S')}\n\n"
                continue
            try:
                c = _add(choices, jobs, plans, n, item, tokenizer)
            except ReplyError as e:
                kind = "server_error" if e.status >= 500 else "invalid_request_error"
                yield None, _sse(error_body(str(e), kind))
                return
            if c.finish_reason is not None:
                left -= 1
            yield c, None
    finally:
        if left:
            worker.cancel(jobs)


async def chat_stream(request: Request, worker: Worker, jobs: list[Job], q: asyncio.Queue,
                      plans: list[Plan], rid: str, model_id: str, tokenizer: Any,
                      include_usage: bool, keepalive_s: float) -> AsyncIterator[str]:
    plan, created = plans[0], int(time.time())
    n = len(jobs)

    def chunk(index: int, delta: dict, finish: str | None = None, logprobs: Any = None) -> str:
        choice = {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
        return _sse({"id": rid, "object": "chat.completion.chunk", "created": created,
                     "model": model_id, "system_fingerprint": None, "choices": [choice]})

    for j in jobs:
        yield chunk(j.index, {"role": "assistant", "content": ""})
    sent_lp = [0] * n
    finished: list[Choice] = []
    async for c, raw in _events(request, worker, jobs, q, plans, n, tokenizer, keepalive_s):
        if raw is not None:
            yield raw
            if raw.startswith("data:"):
                break
            continue
        held = may_be_call(c.text, plan, tokenizer) and not (c.finish_reason and
                                                            not c.tool_calls)
        if not held and (len(c.text) > c.sent or len(c.logprobs) > sent_lp[c.index]):
            lps = None
            if plan.logprobs is not None:
                lps = {"content": c.logprobs[sent_lp[c.index]:]}
                sent_lp[c.index] = len(c.logprobs)
            yield chunk(c.index, {"content": c.text[c.sent:]}, logprobs=lps)
            c.sent = len(c.text)
        if c.finish_reason is not None:
            if c.tool_calls:
                yield chunk(c.index, {"tool_calls": c.tool_calls})
            yield chunk(c.index, {}, c.finish_reason)
            finished.append(c)
    else:
        if include_usage:
            yield _sse({"id": rid, "object": "chat.completion.chunk", "created": created,
                        "model": model_id, "system_fingerprint": None, "choices": [],
                        "usage": usage(len(plan.prompt), finished)})
    yield "data: [DONE]\n\n"


async def completion_stream(request: Request, worker: Worker, jobs: list[Job],
                            q: asyncio.Queue, plans: list[Plan], rid: str, model_id: str,
                            tokenizer: Any, include_usage: bool, keepalive_s: float
                            ) -> AsyncIterator[str]:
    created, n = int(time.time()), len(jobs) // len(plans)

    def chunk(index: int, text: str, finish: str | None = None, logprobs: Any = None) -> str:
        choice = {"index": index, "text": text, "logprobs": logprobs, "finish_reason": finish}
        return _sse({"id": rid, "object": "text_completion", "created": created,
                     "model": model_id, "system_fingerprint": None, "choices": [choice]})

    for j in jobs:
        plan = plans[j.index // n]
        if plan.body.echo:
            yield chunk(j.index, plan.echo)
    sent_lp = [0] * len(jobs)
    finished: list[Choice] = []
    async for c, raw in _events(request, worker, jobs, q, plans, n, tokenizer, keepalive_s):
        if raw is not None:
            yield raw
            if raw.startswith("data:"):
                break
            continue
        plan = plans[c.index // n]
        lps = None
        if plan.logprobs is not None:
            tail = Choice(c.index, logprobs=c.logprobs[sent_lp[c.index]:])
            lps = completion_logprobs(tail, len(plan.echo if plan.body.echo else "") + c.sent)
            sent_lp[c.index] = len(c.logprobs)
        if len(c.text) > c.sent or lps and lps["tokens"] or c.finish_reason:
            yield chunk(c.index, c.text[c.sent:], c.finish_reason, lps)
            c.sent = len(c.text)
        if c.finish_reason is not None:
            finished.append(c)
    else:
        if include_usage:
            yield _sse({"id": rid, "object": "text_completion", "created": created,
                        "model": model_id, "choices": [],
                        "usage": usage(sum(len(p.prompt) for p in plans), finished)})
    yield "data: [DONE]\n\n"
