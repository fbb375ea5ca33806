"""The ASGI app: OpenAI routes, health, tokenize, metrics and the chat page."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import GemmaError
from ..generation.generate import check_token_ids
from .completions import (
    Plan,
    build,
    chat_body,
    chat_plan,
    completion_body,
    completion_plans,
    constraint_for,
    new_id,
)
from .events import ReplyError, chat_stream, collect, completion_stream
from .schemas import ChatCompletionRequest, CompletionRequest, DetokenizeRequest, TokenizeRequest
from .security import BodyTooLarge, Guard, error_body
from .worker import Busy, Job, Unavailable, Worker, loop_sink


@dataclass
class Settings:
    model_id: str = "gemma-3"
    api_key: str | None = None
    host: str = "127.0.0.1"
    allowed_hosts: list[str] = field(default_factory=list)
    cors_origins: list[str] = field(default_factory=list)
    max_concurrency: int = 8
    max_queue: int = 64
    max_body_mb: float = 32.0
    request_timeout: float = 600.0
    keepalive_s: float = 10.0
    watchdog_s: float = 120.0
    cache_gb: float = 2.0
    prefill_step_size: int = 512
    kv_bits: int | None = None
    metrics: bool = False
    media_dir: str | None = None


class HTTPError(Exception):
    def __init__(self, status: int, message: str, type_: str = "invalid_request_error",
                 code: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.type, self.code, self.headers = status, type_, code, headers


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    err = exc.errors()[0]
    if err.get("type") == "json_invalid":
        return f"the request body is not valid JSON: {err.get('msg')}", None
    loc = [str(p) for p in err.get("loc", ()) if p != "body"]
    param = ".".join(loc) or None
    msg = err.get("msg", "invalid value")
    if err.get("type") == "extra_forbidden":
        msg = "this field is not supported (unknown fields are rejected, not ignored)"
    return (f"{param}: {msg}" if param else msg), param


def create_app(model: Any, tokenizer: Any, settings: Settings | None = None) -> FastAPI:
    """The server's app; its generation thread starts now and runs until the process ends."""
    s = settings or Settings()
    worker = Worker(model, tokenizer, s.max_concurrency, s.max_queue, int(s.cache_gb * 1e9),
                    s.prefill_step_size, s.kv_bits, s.watchdog_s)
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(worker.close)

    app = FastAPI(title="gemma-mlx", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)
    app.state.worker, app.state.settings = worker, s
    started = int(time.time())

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(exc)
        return JSONResponse(error_body(message, param=param), status_code=400)

    @app.exception_handler(GemmaError)
    async def _gemma(_: Request, exc: GemmaError) -> JSONResponse:
        return JSONResponse(error_body(str(exc)), status_code=400)

    @app.exception_handler(HTTPError)
    async def _http(_: Request, exc: HTTPError) -> JSONResponse:
        return JSONResponse(error_body(str(exc), exc.type, code=exc.code),
                            status_code=exc.status, headers=exc.headers)

    @app.exception_handler(ReplyError)
    async def _reply(_: Request, exc: ReplyError) -> JSONResponse:
        kind = "server_error" if exc.status >= 500 else "invalid_request_error"
        return JSONResponse(error_body(str(exc), kind), status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def _starlette(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Starlette's own errors (an unparsable body, an unknown route) in OpenAI's shape
        message = exc.detail if exc.status_code != 400 else (
            f"the request body is not valid JSON ({exc.detail})")
        kind = "server_error" if exc.status_code >= 500 else "invalid_request_error"
        return JSONResponse(error_body(str(message), kind), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(BodyTooLarge)
    async def _large(_: Request, exc: BodyTooLarge) -> JSONResponse:
        return JSONResponse(error_body(str(exc)), status_code=413)

    def check_model(name: str | None) -> None:
        if name is not None and name != s.model_id:
            raise HTTPError(404, f"the model {name!r} is not served here; this server serves "
                            f"{s.model_id!r} (GET /v1/models)", code="model_not_found")

    async def run(request: Request, plans: list[Plan], body: Any, chat: bool) -> Any:
        loop, q = asyncio.get_running_loop(), asyncio.Queue()
        deadline = time.monotonic() + s.request_timeout
        jobs = []
        for p, plan in enumerate(plans):
            for k in range(body.n):
                index = p * body.n + k
                constraint = constraint_for(plan, model, tokenizer)
                jobs.append(Job(index, plan.prompt,
                                partial(build, plan, index, model, tokenizer, constraint),
                                loop_sink(loop, q), plan.body.stops(), deadline,
                                solo=bool(plan.images)))
        try:
            worker.submit(jobs)
        except Busy as e:
            raise HTTPError(429, f"the server is busy: {e}; retry later", "rate_limit_error",
                            "server_busy", {"Retry-After": "1"}) from None
        except Unavailable as e:
            raise HTTPError(503, str(e), "server_error", "worker_dead") from None
        rid = new_id("chatcmpl" if chat else "cmpl")
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            events = (chat_stream if chat else completion_stream)(
                request, worker, jobs, q, plans, rid, s.model_id, tokenizer, include_usage,
                s.keepalive_s)
            return StreamingResponse(events, media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache",
                                              "X-Accel-Buffering": "no"})
        choices = await collect(request, worker, jobs, q, plans, body.n, tokenizer)
        if chat:
            return chat_body(rid, s.model_id, plans[0], choices)
        return completion_body(rid, s.model_id, plans, choices, body.n)

    @app.post("/v1/chat/completions")
    @app.post("/chat/completions", include_in_schema=False)
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Any:
        check_model(body.model)
        plan = await run_in_threadpool(chat_plan, body, model, tokenizer, s.media_dir)
        return await run(request, [plan], body, chat=True)

    @app.post("/v1/completions")
    @app.post("/completions", include_in_schema=False)
    async def completions(body: CompletionRequest, request: Request) -> Any:
        check_model(body.model)
        try:
            plans = await run_in_threadpool(completion_plans, body, model, tokenizer)
        except ValueError as e:
            raise GemmaError(str(e)) from None
        return await run(request, plans, body, chat=False)

    @app.get("/v1/models")
    @app.get("/models", include_in_schema=False)
    async def models() -> dict:
        card = {"id": s.model_id, "object": "model", "created": started, "owned_by": "gemma-mlx",
                "context_length": model.config.max_position_embeddings}
        return {"object": "list", "data": [card]}

    @app.get("/health")
    async def health() -> JSONResponse:
        ok, reason = worker.health()
        return JSONResponse({"status": "ok" if ok else "error", "reason": reason,
                             "running": worker.running, "waiting": worker.waiting},
                            status_code=200 if ok else 503)

    @app.post("/tokenize")
    async def tokenize(body: TokenizeRequest) -> dict:
        ids = tokenizer.encode(body.content, add_special_tokens=body.add_special)
        if body.with_pieces:
            return {"tokens": [{"id": t, "piece": tokenizer.decode([t])} for t in ids]}
        return {"tokens": ids}

    @app.post("/detokenize")
    async def detokenize(body: DetokenizeRequest) -> dict:
        tokens = check_token_ids(body.tokens, model.config.vocab_size, "tokens")
        return {"content": tokenizer.decode(tokens)}

    if s.metrics:
        @app.get("/metrics")
        async def metrics() -> PlainTextResponse:
            return PlainTextResponse(_prometheus(worker))

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        html = resources.files("gemma_mlx.serve").joinpath("static/chat.html").read_text()
        # "<" escaped: an id holding "</script>" cannot leave the script block
        model_id = json.dumps(s.model_id).replace("<", "\\u003c")
        return HTMLResponse(html.replace("{{MODEL_ID}}", model_id))

    if s.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=s.cors_origins, allow_methods=["*"],
                           allow_headers=["*"])
    loopback = s.host in ("127.0.0.1", "localhost", "::1")
    app.add_middleware(Guard, api_key=s.api_key, max_body=int(s.max_body_mb * 2**20),
                       loopback=loopback, allowed_hosts=s.allowed_hosts)
    return app


def _prometheus(worker: Worker) -> str:
    m = dict(worker.metrics)
    stats = worker.engine.stats
    cache = worker.prefix_cache
    rows = [
        ("requests_total", "counter", m["requests"]),
        ("requests_rejected_total", "counter", m["rejected"]),
        ("prompt_tokens_total", "counter", m["prompt_tokens"]),
        ("tokens_predicted_total", "counter", m["generation_tokens"]),
        ("prompt_tokens_cached_total", "counter", m["cached_tokens"]),
        ("requests_processing", "gauge", worker.running),
        ("requests_deferred", "gauge", worker.waiting),
        ("engine_steps_total", "counter", stats["steps"]),
        ("prefix_cache_bytes", "gauge", cache.nbytes if cache else 0),
        ("prefix_cache_entries", "gauge", len(cache.entries) if cache else 0),
    ]
    lines = []
    for name, kind, value in rows:
        lines += [f"# TYPE gemma_mlx:{name} {kind}", f"gemma_mlx:{name} {value}"]
    return "\n".join(lines) + "\n"
