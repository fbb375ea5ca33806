"""The generation thread: owns the model and the batch engine; HTTP handlers talk to it by queue."""

from __future__ import annotations

import asyncio
import itertools
import queue
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import GemmaError
from ..generation.batch import BatchEngine, Event, Request
from .prefix_cache import PrefixCache
from .stops import StopMatcher


class Busy(Exception):
    """The queue is full: the client should retry later."""


class Unavailable(Exception):
    """The generation thread is dead: requests fail at once rather than wait forever."""


@dataclass
class Job:
    """One generation (one choice of one HTTP request).

    `build` runs on the generation thread (MLX work stays on one thread) and returns the
    engine Request, or, for `solo` jobs (images), an iterator of GenerationResponses that runs
    beside the batch. Events go to `sink` on the event loop as (index, kind, payload).
    """

    index: int
    prompt: list[int]
    build: Callable[[], Request | Iterator[Any]]
    sink: Callable[[tuple], None]
    stop: list[str] = field(default_factory=list)
    deadline: float = float("inf")
    solo: bool = False
    id: int = 0
    matcher: StopMatcher | None = None
    iterator: Iterator[Any] | None = None
    tokens: list[int] = field(default_factory=list)  # generated so far
    cached: int = 0  # prompt tokens found in the prefix cache


class Worker:
    """Runs the batch engine in a thread: submit jobs, cancel them, watch its health."""

    def __init__(self, model: Any, tokenizer: Any, max_concurrency: int = 8,
                 max_queue: int = 64, cache_bytes: int = 2 << 30, prefill_step_size: int = 512,
                 kv_bits: int | None = None, watchdog_s: float = 120.0):
        self.model, self.tokenizer = model, tokenizer
        self.prefix_cache = PrefixCache(cache_bytes) if cache_bytes > 0 else None
        slack = self.prefix_cache.slack if self.prefix_cache else 0
        self.engine = BatchEngine(model, tokenizer, max_concurrency, prefill_step_size,
                                  kv_bits=kv_bits, slack=slack)
        self.max_queue, self.watchdog_s = max_queue, watchdog_s
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()
        self.jobs: dict[int, Job] = {}
        self.solos: list[Job] = []
        self.pending = 0  # jobs submitted, not yet running
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.heartbeat = time.monotonic()
        self.error: str | None = None
        self.metrics = {"requests": 0, "prompt_tokens": 0, "generation_tokens": 0,
                        "cached_tokens": 0, "rejected": 0}
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="gemma-mlx-worker", daemon=True)
        self.thread.start()

    # --- called from the event loop -------------------------------------------------

    def submit(self, jobs: list[Job]) -> None:
        """Queue the jobs of one request, or raise Busy when the queue is full."""
        if not self.thread.is_alive() or self.stopped.is_set():
            raise Unavailable(self.health()[1])
        with self._lock:
            waiting = self.waiting
            if waiting + len(jobs) > self.max_queue + max(0, self.engine.max_batch -
                                                          self.running):
                self.metrics["rejected"] += 1
                raise Busy(f"{waiting} requests are waiting (--max-queue {self.max_queue})")
            self.pending += len(jobs)
        for job in jobs:
            job.id = next(self._ids)
            self.inbox.put(("submit", job))
        self.metrics["requests"] += 1

    def close(self) -> None:
        """Stop the thread after its current step (running jobs end without a reply)."""
        self.inbox.put(("stop", None))
        if self.thread.is_alive():
            self.stopped.wait(30)

    def cancel(self, jobs: list[Job]) -> None:
        for job in jobs:
            self.inbox.put(("cancel", job.id))

    @property
    def waiting(self) -> int:
        return self.pending + len(self.engine.queue)

    @property
    def running(self) -> int:
        return len(self.engine.running) + len(self.solos)

    def health(self) -> tuple[bool, str]:
        if self.stopped.is_set():
            return False, "the server is shutting down"
        if not self.thread.is_alive():
            return False, f"the generation thread died: {self.error or 'unknown error'}"
        stalled = time.monotonic() - self.heartbeat
        if self.jobs and stalled > self.watchdog_s:
            return False, f"the generation thread made no progress for {stalled:.0f} s"
        return True, "ok"

    # --- the generation thread ------------------------------------------------------

    def _run(self) -> None:
        try:
            while self._drain(block=not self.jobs):
                self.heartbeat = time.monotonic()
                self._expire()
                if self.engine.has_work:
                    for event in self.engine.step():
                        self._deliver(event)
                for job in list(self.solos):
                    self._step_solo(job)
                self.heartbeat = time.monotonic()
        except BaseException as e:  # noqa: BLE001 - the health check reports it
            self.error = f"{type(e).__name__}: {e}"
            traceback.print_exc()
            queued = []
            while not self.inbox.empty():
                kind, payload = self.inbox.get_nowait()
                queued += [payload] if kind == "submit" else []
            for job in list(self.jobs.values()) + queued:  # nobody waits forever
                job.sink((job.index, "error", (500, f"the generation thread died: {e}")))
            return
        # Told to stop: park here until the process ends. A thread that ran mx.compile'd
        # functions frees MLX's thread-local compile cache as it exits, which takes the GIL;
        # when that comes after the interpreter began finalizing (this stop is the server's
        # last step), the process aborts: "terminate called without an active exception".
        self.jobs.clear()
        self.solos.clear()
        self.stopped.set()
        threading.Event().wait()

    def _drain(self, block: bool) -> bool:
        """Take what the handlers sent; False when told to stop."""
        while True:
            try:
                kind, payload = self.inbox.get(timeout=0.5) if block else self.inbox.get_nowait()
            except queue.Empty:
                return True
            block = False
            if kind == "stop":
                return False
            if kind == "submit":
                self._start(payload)
            elif kind == "cancel":
                self._cancel(payload)

    def _start(self, job: Job) -> None:
        with self._lock:
            self.pending -= 1
        try:
            built = job.build()
        except GemmaError as e:
            job.sink((job.index, "error", (400, str(e))))
            return
        except Exception as e:  # a bug met by one request must not end the thread for all
            traceback.print_exc()
            job.sink((job.index, "error", (500, f"internal error: {type(e).__name__}: {e}")))
            return
        job.matcher = StopMatcher(job.stop)
        self.jobs[job.id] = job
        if job.solo:
            job.iterator = built
            self.solos.append(job)
            return
        request: Request = built
        request.id = job.id
        if self.prefix_cache is not None:
            request.keep_cache = True
            request.cache, request.cached = self.prefix_cache.take(request.prompt)
            self.metrics["cached_tokens"] += request.cached
            job.cached = request.cached
        try:
            self.engine.submit(request)
        except GemmaError as e:
            self.jobs.pop(job.id)
            job.sink((job.index, "error", (400, str(e))))

    def _cancel(self, job_id: int) -> None:
        job = self.jobs.pop(job_id, None)
        if job is None:
            return
        if job in self.solos:
            self.solos.remove(job)
            job.iterator.close()
        else:
            self.engine.cancel(job_id)

    def _expire(self) -> None:
        now = time.monotonic()
        for job in [j for j in self.jobs.values() if now > j.deadline]:
            self._cancel(job.id)
            job.sink((job.index, "error", (504, "the request ran past the server's time limit "
                                                "(--request-timeout)")))

    def _deliver(self, event: Event) -> None:
        job = self.jobs.get(event.id)
        if job is None:
            return
        self.metrics["generation_tokens"] += 1
        job.tokens.append(event.token)
        if event.generation_tokens == 1:
            self.metrics["prompt_tokens"] += event.prompt_tokens
        text, hit = job.matcher.add(event.text)
        if event.finish_reason is None and hit:
            finished = self.engine.finish(job.id)
            event.caches, event.checkpoint = finished.caches, finished.checkpoint
            event.finish_reason = "stop"
        if event.finish_reason is not None:
            text += job.matcher.flush() if not hit else ""
            self.jobs.pop(job.id, None)
            self._keep(job, event)
        job.sink((job.index, "token", (event, text, hit)))

    def _keep(self, job: Job, event: Event) -> None:
        if self.prefix_cache is None or event.caches is None:
            return
        tokens = (job.prompt + job.tokens)[: event.caches[0].offset]
        self.prefix_cache.put(tokens, event.caches, event.checkpoint, len(job.prompt))

    def _step_solo(self, job: Job) -> None:
        try:
            r = next(job.iterator)
        except StopIteration:
            r = None
        except Exception as e:  # GemmaError: the request's fault; anything else: ours
            self.solos.remove(job)
            self.jobs.pop(job.id, None)
            if not isinstance(e, GemmaError):
                traceback.print_exc()
            status, message = (400, str(e)) if isinstance(e, GemmaError) else (
                500, f"internal error: {type(e).__name__}: {e}")
            job.sink((job.index, "error", (status, message)))
            return
        if r is None:
            self.solos.remove(job)
            self.jobs.pop(job.id, None)
            return
        event = Event(job.id, r.token, r.text, r.finish_reason, r.prompt_tokens,
                      r.generation_tokens)
        text, hit = job.matcher.add(r.text)
        if hit and event.finish_reason is None:
            event.finish_reason = "stop"
            job.iterator.close()
        if event.finish_reason is not None:
            text += job.matcher.flush() if not hit else ""
            self.solos.remove(job)
            self.jobs.pop(job.id, None)
        job.sink((job.index, "token", (event, text, hit)))


def loop_sink(loop: asyncio.AbstractEventLoop, q: asyncio.Queue) -> Callable[[tuple], None]:
    """A thread-safe callback that puts an item on an asyncio queue."""
    return lambda item: loop.call_soon_threadsafe(q.put_nowait, item)
