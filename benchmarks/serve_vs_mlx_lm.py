"""Loopback load test: `gemma-mlx serve` vs `mlx_lm.server`, same weights and requests."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TEMPLATE = ROOT / "tests" / "fixtures" / "templates" / "gemma3.jinja"  # HF's Gemma 3 template
REQUEST_TIMEOUT = 300.0  # seconds, per request
START_TIMEOUT = 300.0  # seconds, for a server to answer its readiness route
STOP_TIMEOUT = 20.0  # seconds between terminate and kill
WARM_UP = "Count from one to twenty:"
OURS, OURS_NC, THEIRS = "gemma-mlx", "gemma-mlx --cache-gb 0", "mlx-lm"

SUBJECTS = [
    "A lighthouse keeper on a stormy island", "The last bakery in a mountain village",
    "A robot that learns to paint", "Two rival chess players on a train",
    "A forgotten library under the city", "A beekeeper and a lost fox",
    "The first colony on a frozen moon", "A clockmaker who can pause time",
    "A shipwreck diver finding a sealed letter", "A street musician in old Vienna",
    "A gardener growing glass flowers", "A detective who only works at night",
    "A balloon crossing the Sahara", "A cartographer mapping an invisible country",
    "A chef cooking for a sleeping dragon", "An astronomer who hears the stars",
    "A child building a raft on the Mississippi", "A monastery of silent engineers",
    "A postman delivering letters between centuries", "A tailor sewing coats for ghosts",
    "A glacier that remembers everything", "A circus stranded in a snowstorm",
    "A violin maker in Cremona", "A weather station at the edge of the world",
]
TASKS = [
    "write a long, detailed story about them.", "describe their day hour by hour, at length.",
    "tell their history in many paragraphs.", "write the opening chapter of a novel about it.",
    "explain, step by step and in detail, what happens next.",
    "write a long letter from their point of view.", "describe the place and people in detail.",
    "narrate their greatest adventure from beginning to end.",
]
TURNS = [
    "Let's talk about the history of sailing ships. How did they begin?",
    "Interesting. What came next?", "How did navigation work back then?",
    "Tell me more about the crews.", "What about the food on board?",
    "Which voyages were the most famous?", "How did steam change everything?",
    "What happened to the old shipyards?", "Are tall ships still built today?",
    "What would you like to sail on, and why?", "Summarize what we discussed.",
    "Thank you. One last fact, please.",
]


@dataclass
class Result:
    """One streamed request as the client saw it (seconds)."""

    error: str = ""
    ttft: float | None = None
    e2el: float = 0.0
    itl: list[float] = field(default_factory=list)
    tokens: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    chunks: int = 0
    text: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and self.ttft is not None


def prompt(k: int) -> str:
    """The k-th distinct user message; the distinct part comes first (little shared prefix)."""
    s, t = k % len(SUBJECTS), (k // len(SUBJECTS)) % len(TASKS)
    variant = k // (len(SUBJECTS) * len(TASKS))
    return f"{SUBJECTS[s]}: {TASKS[t]}" + (f" (version {variant + 1})" if variant else "")


def percentile(xs: list[float], q: float) -> float | None:
    """Linear-interpolated q-th percentile (0..100) of xs, None if empty."""
    if not xs:
        return None
    s = sorted(xs)
    pos = (len(s) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def stats_ms(xs: list[float]) -> dict[str, float | None]:
    mean = sum(xs) / len(xs) * 1e3 if xs else None
    p50, p99 = percentile(xs, 50), percentile(xs, 99)
    return {"mean": mean, "p50": p50 and p50 * 1e3, "p99": p99 and p99 * 1e3, "n": len(xs)}


# --- the client ---------------------------------------------------------------------------


def chat_body(messages: list[dict], max_tokens: int) -> dict:
    return {"messages": messages, "max_tokens": max_tokens, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}}


def take_chunk(r: Result, obj: dict, now: float, start: float, last: float) -> float:
    """Fold one SSE data object into r; the time of the last content chunk."""
    if obj.get("usage"):
        u = obj["usage"]
        r.tokens, r.prompt_tokens = u.get("completion_tokens") or 0, u.get("prompt_tokens") or 0
        r.cached_tokens = (u.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    for choice in obj.get("choices") or []:
        content = (choice.get("delta") or {}).get("content")
        if content:
            if r.ttft is None:
                r.ttft = now - start
            else:
                r.itl.append(now - last)
            r.chunks, r.text, last = r.chunks + 1, r.text + content, now
    return last


async def read_sse(r: Result, resp: httpx.Response, start: float) -> bool:
    """Read the event stream into r; True if it ended with [DONE]."""
    last = start
    async for line in resp.aiter_lines():
        if not line.startswith("data:"):
            continue  # blank separators and ": keepalive" comments
        data = line[5:].strip()
        if data == "[DONE]":
            return True
        obj = json.loads(data)
        if "error" in obj:
            r.error = f"error event: {json.dumps(obj['error'])[:200]}"
            return True
        last = take_chunk(r, obj, time.perf_counter(), start, last)
    return False


async def stream_one(client: httpx.AsyncClient, url: str, body: dict) -> Result:
    r, start = Result(), time.perf_counter()
    try:
        async with client.stream("POST", url, json=body) as resp:
            if resp.status_code != 200:
                text = (await resp.aread()).decode(errors="replace")
                r.error = f"HTTP {resp.status_code}: {text[:200]}"
                return r
            done = await read_sse(r, resp, start)
    except (httpx.HTTPError, ValueError) as e:  # ValueError: bad JSON in an event
        r.error = f"{type(e).__name__}: {e}"
        return r
    r.e2el = time.perf_counter() - start
    if not r.error and not done:
        r.error = "the stream ended without [DONE]"
    elif not r.error and r.ttft is None:
        r.error = "no content delta"
    r.tokens = r.tokens or r.chunks
    return r


async def bounded(client: httpx.AsyncClient, url: str, body: dict) -> Result:
    try:
        return await asyncio.wait_for(stream_one(client, url, body), REQUEST_TIMEOUT)
    except asyncio.TimeoutError:
        return Result(error=f"request timeout ({REQUEST_TIMEOUT:.0f} s)")


def new_client(connections: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(timeout=httpx.Timeout(REQUEST_TIMEOUT, connect=10.0),
                             limits=limits, trust_env=False)


async def probe_health(url: str, out: list[tuple[int | str, float]]) -> None:
    """GET url once a second until cancelled: (status or exception name, seconds) each."""
    async with httpx.AsyncClient(timeout=5.0, trust_env=False) as client:
        while True:
            start = time.perf_counter()
            try:
                status: int | str = (await client.get(url)).status_code
            except httpx.HTTPError as e:
                status = type(e).__name__
            out.append((status, time.perf_counter() - start))
            await asyncio.sleep(1.0)


async def run_cell(base: str, conc: int, prompts: list[str], gen: int,
                   max_seconds: float) -> tuple[list[Result], float, list]:
    """All prompts, at most conc in flight; unfinished ones fail at max_seconds. /health is
    polled meanwhile."""
    sem, url, probes = asyncio.Semaphore(conc), f"{base}/v1/chat/completions", []
    async with new_client(conc + 2) as client:
        async def one(text: str) -> Result:
            async with sem:
                return await bounded(client, url, chat_body([{"role": "user", "content": text}],
                                                            gen))

        prober = asyncio.create_task(probe_health(f"{base}/health", probes))
        start = time.perf_counter()
        tasks = [asyncio.create_task(one(p)) for p in prompts]
        _, pending = await asyncio.wait(tasks, timeout=max_seconds)
        wall = time.perf_counter() - start
        for t in [*pending, prober]:
            t.cancel()
        await asyncio.gather(*pending, prober, return_exceptions=True)
    return [Result(error=f"cell time bound ({max_seconds:g} s)") if t in pending
            else t.result() for t in tasks], wall, probes


def health_summary(probes: list[tuple[int | str, float]]) -> dict[str, Any]:
    bad = sorted({str(status) for status, _ in probes if status != 200})
    return {"probes": len(probes), "not_200": sum(status != 200 for status, _ in probes),
            "bad_samples": bad[:3], "max_ms": max((t for _, t in probes), default=0.0) * 1e3}


def summarize(results: list[Result], wall: float, probes: list) -> dict[str, Any]:
    ok = [r for r in results if r.ok]
    tokens = sum(r.tokens for r in ok)
    errors = [r.error for r in results if not r.ok]
    return {
        "requests": len(results), "errors": len(errors), "error_samples": sorted(set(errors))[:3],
        "wall_s": wall, "output_tok_s": tokens / wall if wall else 0.0,
        "req_s": len(ok) / wall if wall else 0.0,
        "mean_prompt_tokens": sum(r.prompt_tokens for r in ok) / len(ok) if ok else None,
        "mean_completion_tokens": tokens / len(ok) if ok else None,
        "ttft_ms": stats_ms([r.ttft for r in ok]),
        "tpot_ms": stats_ms([(r.e2el - r.ttft) / (r.tokens - 1) for r in ok if r.tokens > 1]),
        "itl_ms": stats_ms([x for r in ok for x in r.itl]),
        "e2el_ms": stats_ms([r.e2el for r in ok]),
        "health": health_summary(probes),
    }


async def conversation(base: str, turns: int, gen: int) -> list[dict[str, Any]]:
    """One chat of `turns` turns, the whole history sent each time; per-turn numbers."""
    url, messages, out = f"{base}/v1/chat/completions", [], []
    async with new_client(2) as client:
        for t in range(turns):
            messages.append({"role": "user", "content": TURNS[t % len(TURNS)]})
            r = await bounded(client, url, chat_body(messages, gen))
            out.append({"turn": t + 1, "seconds": r.e2el, "ttft_s": r.ttft, "error": r.error,
                        "prompt_tokens": r.prompt_tokens, "cached_tokens": r.cached_tokens,
                        "completion_tokens": r.tokens})
            log(f"    turn {t + 1}: {r.e2el:.2f} s, prompt {r.prompt_tokens}, "
                f"cached {r.cached_tokens}{', ' + r.error if r.error else ''}")
            if r.error:
                break
            messages.append({"role": "assistant", "content": r.text})
    return out


# --- the servers --------------------------------------------------------------------------


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_tail(path: Path, n: int = 20) -> str:
    lines = path.read_text(errors="replace").splitlines()
    return "\n".join(lines[-n:])


def wait_ready(proc: subprocess.Popen, url: str, log_path: Path) -> float:
    """Seconds until GET url answers 200; raises if the process exits or time runs out."""
    start = time.perf_counter()
    while time.perf_counter() - start < START_TIMEOUT:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}:\n{log_tail(log_path)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2.0, trust_env=False).status_code == 200:
                return time.perf_counter() - start
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer in {START_TIMEOUT:.0f} s:\n{log_tail(log_path)}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            log(f"  pid {proc.pid} ignored SIGTERM for {STOP_TIMEOUT:.0f} s; killing it")
            proc.kill()
            proc.wait()


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM (peak resident set) of a live process, from /proc."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def maps_openblas(pid: int) -> bool | None:
    """Whether a live process has OpenBLAS mapped (/proc/PID/maps)."""
    with contextlib.suppress(OSError):
        return "libopenblas" in Path(f"/proc/{pid}/maps").read_text()
    return None


@contextlib.contextmanager
def running(name: str, cmd: list[str], ready: str, port: int, log_dir: Path,
            env: dict[str, str] | None) -> Iterator[subprocess.Popen]:
    """The server, started and ready; always stopped afterwards."""
    log_path = log_dir / f"{name.replace(' ', '_')}.log"
    log(f"[{name}] starting: {' '.join(cmd[:12])}{' ...' if len(cmd) > 12 else ''}")
    with open(log_path, "wb") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, env=env)
        try:
            took = wait_ready(proc, f"http://127.0.0.1:{port}{ready}", log_path)
            log(f"[{name}] ready in {took:.1f} s (pid {proc.pid}, log {log_path})")
            yield proc
        finally:
            stop(proc)
            log(f"[{name}] stopped")


def ours_cmd(path: Path, port: int, args: argparse.Namespace, cache_gb: float | None) -> list[str]:
    cmd = [str(BIN / "gemma-mlx"), "serve", "--model", str(path), "--port", str(port),
           "--max-concurrency", str(args.server_concurrency),
           "--max-queue", str(max(64, args.max_requests)), "--log-level", "warning"]
    return cmd + (["--cache-gb", str(cache_gb)] if cache_gb is not None else [])


def theirs_cmd(path: Path, port: int, args: argparse.Namespace) -> list[str]:
    return [sys.executable, "-m", "mlx_lm", "server", "--model", str(path), "--port", str(port),
            "--decode-concurrency", str(args.server_concurrency), "--temp", "0",
            "--max-tokens", str(args.gen_tokens), "--log-level", "WARNING",
            "--chat-template", TEMPLATE.read_text(encoding="utf-8")]


# --- the phases ---------------------------------------------------------------------------


def load_phase(base: str, name: str, args: argparse.Namespace) -> dict[int, dict]:
    cells, offset = {}, 0
    for c in args.concurrency:
        n = args.requests or max(4, 2 * c)
        prompts = [prompt(offset + i) for i in range(n)]
        offset += n
        log(f"[{name}] concurrency {c}: {n} requests x {args.gen_tokens} tokens")
        s = cells[c] = summarize(*asyncio.run(run_cell(base, c, prompts, args.gen_tokens,
                                                       args.max_seconds)))
        h = s["health"]
        log(f"[{name}] concurrency {c}: {s['output_tok_s']:.1f} tok/s in {s['wall_s']:.1f} s, "
            f"{s['errors']} errors" + (f" {s['error_samples']}" if s["errors"] else "")
            + f"; /health {h['probes'] - h['not_200']}/{h['probes']} ok, "
            f"slowest {h['max_ms']:.0f} ms")
    return cells


def serve_and_measure(name: str, cmd: list[str], ready: str, port: int, load: bool,
                      args: argparse.Namespace, log_dir: Path,
                      env: dict[str, str] | None = None) -> dict[str, Any]:
    """Start, warm up, run the load cells and/or the conversation, read peak RSS, stop."""
    out: dict[str, Any] = {"command": cmd[:-1] + ["<gemma3.jinja>"] if name == THEIRS else cmd,
                           "ld_preload": (env or {}).get("LD_PRELOAD")}
    base = f"http://127.0.0.1:{port}"
    try:
        with running(name, cmd, ready, port, log_dir, env) as proc:
            warm = asyncio.run(run_cell(base, 1, [WARM_UP], 4, args.max_seconds))[0][0]
            if warm.error:
                raise RuntimeError(f"warm-up request failed: {warm.error}")
            if load:
                out["cells"] = load_phase(base, name, args)
            if args.turns:
                log(f"[{name}] conversation of {args.turns} turns")
                out["turns"] = asyncio.run(conversation(base, args.turns, args.gen_tokens))
            out["peak_rss_mb"], out["openblas"] = peak_rss_mb(proc.pid), maps_openblas(proc.pid)
    except (RuntimeError, OSError) as e:
        log(f"[{name}] FAILED: {e}")
        out["error"] = str(e)
    return out


# --- the report ---------------------------------------------------------------------------


def fmt(x: float | None, spec: str = ".0f") -> str:
    return "-" if x is None else format(x, spec)


def cell_table(runs: dict[str, dict]) -> None:
    print("| server | conc | req | err | tok/s | req/s | TTFT p50 / p99 ms | TPOT p50 / p99 ms "
          "| ITL p50 / p99 ms | E2EL p50 / p99 ms | prompt / compl tok |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, run in runs.items():
        for c, s in (run.get("cells") or {}).items():
            pair = [f"{fmt(s[k]['p50'])} / {fmt(s[k]['p99'])}"
                    for k in ("ttft_ms", "tpot_ms", "itl_ms", "e2el_ms")]
            print(f"| {name} | {c} | {s['requests']} | {s['errors']} | {s['output_tok_s']:.1f} | "
                  f"{s['req_s']:.2f} | {' | '.join(pair)} | {fmt(s['mean_prompt_tokens'], '.1f')}"
                  f" / {fmt(s['mean_completion_tokens'], '.1f')} |")


def ratio_table(runs: dict[str, dict], concurrency: list[int]) -> None:
    ours, theirs = runs.get(OURS, {}).get("cells", {}), runs.get(THEIRS, {}).get("cells", {})
    print("\n| conc | ours tok/s | mlx-lm tok/s | ratio (ours/mlx-lm) | ours p99 TTFT ms "
          "| mlx-lm p99 TTFT ms | p99 TTFT ratio |")
    print("|---|---|---|---|---|---|---|")
    for c in concurrency:
        a, t = ours.get(c), theirs.get(c)
        ta, tt = a and a["output_tok_s"], t and t["output_tok_s"]
        pa, pt = a and a["ttft_ms"]["p99"], t and t["ttft_ms"]["p99"]
        print(f"| {c} | {fmt(ta, '.1f')} | {fmt(tt, '.1f')} | "
              f"{fmt(ta / tt if ta and tt else None, '.2f')} | {fmt(pa)} | {fmt(pt)} | "
              f"{fmt(pa / pt if pa and pt else None, '.2f')} |")


def turns_table(runs: dict[str, dict]) -> None:
    names = [n for n in (OURS, OURS_NC, THEIRS) if runs.get(n, {}).get("turns")]
    if not names:
        return
    print("\n| turn | " + " | ".join(f"{n}: s (TTFT s, prompt / cached)" for n in names) + " |")
    print("|---|" + "---|" * len(names))
    for t in range(max(len(runs[n]["turns"]) for n in names)):
        row = []
        for n in names:
            d = runs[n]["turns"][t] if t < len(runs[n]["turns"]) else None
            row.append("-" if d is None else f"{d['seconds']:.2f} ({fmt(d['ttft_s'], '.2f')}, "
                       f"{d['prompt_tokens']} / {d['cached_tokens']})")
        print(f"| {t + 1} | " + " | ".join(row) + " |")


def turns_summary(runs: dict[str, dict]) -> dict[str, Any] | None:
    on, off = runs.get(OURS, {}).get("turns"), runs.get(OURS_NC, {}).get("turns")
    if not on or not off:
        return None
    a, b = on[-1], off[-1]
    out = {"turn": a["turn"], "cache_s": a["seconds"], "no_cache_s": b["seconds"],
           "speedup": b["seconds"] / a["seconds"] if a["seconds"] else None,
           "cache_ttft_s": a["ttft_s"], "no_cache_ttft_s": b["ttft_s"],
           "cached_tokens": a["cached_tokens"], "prompt_tokens": a["prompt_tokens"]}
    print(f"\nturn {a['turn']}: {a['seconds']:.2f} s with the prefix cache vs {b['seconds']:.2f} s"
          f" without ({fmt(out['speedup'], '.2f')}x); TTFT {fmt(a['ttft_s'], '.3f')} vs "
          f"{fmt(b['ttft_s'], '.3f')} s; cached {a['cached_tokens']} of {a['prompt_tokens']} "
          f"prompt tokens (without: {b['cached_tokens']})")
    return out


def report(runs: dict[str, dict], args: argparse.Namespace) -> dict[str, Any]:
    blas = (runs.get(THEIRS) or {}).get("ld_preload") or "MLX's bundled BLAS"
    print(f"\nweights {args.weights}, {args.gen_tokens} tokens per request, greedy, "
          f"server concurrency {args.server_concurrency}; mlx-lm BLAS: {blas}\n")
    cell_table(runs)
    ratio_table(runs, args.concurrency)
    turns_table(runs)
    summary = turns_summary(runs)
    print("\npeak RSS (VmHWM): " + ", ".join(
        f"{n} {fmt(r.get('peak_rss_mb'))} MB" for n, r in runs.items()))
    print("OpenBLAS mapped: " + ", ".join(f"{n} {r.get('openblas')}" for n, r in runs.items()))
    for n, r in runs.items():
        for c, cell in (r.get("cells") or {}).items():
            if cell["health"]["not_200"]:
                print(f"{n} concurrency {c}: /health not 200 in {cell['health']['not_200']} of "
                      f"{cell['health']['probes']} probes: {cell['health']['bad_samples']}")
        if r.get("error"):
            print(f"{n} FAILED: {r['error'].splitlines()[0]}")
    return summary


# --- main ---------------------------------------------------------------------------------


def weights(name: str) -> Path:
    """batch_vs_mlx_lm.py's weights: the 270M in float32, or mlx-lm's 4-bit conversion."""
    import gemma_mlx  # noqa: F401  (first: OpenBLAS for MLX on Linux)

    sys.path.insert(0, str(Path(__file__).parent))
    from generate_vs_mlx_lm import float32_270m, mlx_lm_4bit

    return float32_270m() if name == "float32" else mlx_lm_4bit()


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--concurrency", default="1,4,16", help="comma-separated client concurrencies")
    ap.add_argument("--requests", type=int, help="requests per cell (default: max(4, 2 x conc))")
    ap.add_argument("--gen-tokens", type=int, default=32, help="max_tokens of every request")
    ap.add_argument("--turns", type=int, default=10, help="multi-turn chat length (0: skip)")
    ap.add_argument("--weights", choices=["float32", "4bit"], default="float32")
    ap.add_argument("--max-seconds", type=float, default=600.0, help="time bound of one cell")
    ap.add_argument("--server-concurrency", type=int,
                    help="ours --max-concurrency and mlx-lm --decode-concurrency "
                         "(default: the largest --concurrency)")
    ap.add_argument("--skip-mlx-lm", action="store_true")
    ap.add_argument("--mlx-lm-blas", choices=["openblas", "bundled"], default="openblas",
                    help="LD_PRELOAD OpenBLAS into mlx_lm.server, as our server loads it itself "
                         "(bundled: MLX's slow reference BLAS)")
    ap.add_argument("--json", metavar="OUT", help="also write every number to this JSON file")
    args = ap.parse_args()
    args.concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    args.server_concurrency = args.server_concurrency or max(args.concurrency)
    args.max_requests = args.requests or max(4, 2 * max(args.concurrency))
    return args


def theirs_env(blas: str) -> dict[str, str] | None:
    """mlx_lm.server's environment: with OpenBLAS preloaded, as `import gemma_mlx` does for our
    server and for the in-process benchmarks (MLX's bundled CPU BLAS is 10-30x slower)."""
    from gemma_mlx.blas import find_openblas

    path = find_openblas() if blas == "openblas" else None
    if blas == "openblas" and path is None:
        log("warning: no OpenBLAS found; mlx-lm runs on MLX's bundled BLAS")
    if path is None:
        return None
    old = os.environ.get("LD_PRELOAD")
    return {**os.environ, "LD_PRELOAD": f"{path}:{old}" if old else path}


def run_all(path: Path, args: argparse.Namespace, log_dir: Path) -> dict[str, dict]:
    """Ours with the prefix cache, ours without it (conversation only), then mlx-lm."""
    plan = [(OURS, True, None, lambda p: ours_cmd(path, p, args, None))]
    if args.turns:
        plan.append((OURS_NC, False, None, lambda p: ours_cmd(path, p, args, 0.0)))
    if not args.skip_mlx_lm:
        plan.append((THEIRS, True, theirs_env(args.mlx_lm_blas),
                     lambda p: theirs_cmd(path, p, args)))
    runs = {}
    for name, load, env, cmd in plan:  # one at a time: never two servers on the cores
        port = free_port()
        runs[name] = serve_and_measure(name, cmd(port), "/health", port, load, args, log_dir, env)
    return runs


def main() -> None:
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the servers get stopped
    path = weights(args.weights)
    log_dir = Path(tempfile.mkdtemp(prefix="serve-bench-"))  # the servers' logs, kept
    log(f"weights: {path}; server logs in {log_dir}")
    runs = run_all(path, args, log_dir)
    summary = report(runs, args)
    if args.json:
        settings = {k: v for k, v in vars(args).items() if k != "json"}
        Path(args.json).write_text(json.dumps(
            {"settings": settings, "weights_path": str(path), "runs": runs,
             "turns_summary": summary}, indent=1, default=str))
        log(f"wrote {args.json}")


if __name__ == "__main__":
    main()
