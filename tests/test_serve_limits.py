"""The server's guards and limits: errors, API key, Host check, body size, disconnects,
the queue limit, the health watchdog, tokenize and metrics."""

from __future__ import annotations

import threading
import time

import httpx
import openai
import pytest

from .conftest import random_vocab_model
from .serving import running_server

CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4,
        "temperature": 0}


@pytest.fixture(scope="module")
def tiny(model_270m):
    return random_vocab_model(1, layer_types=["sliding_attention", "full_attention"]), \
        model_270m[1]


@pytest.fixture(scope="module")
def server(tiny):
    with running_server(*tiny, model_id="tiny", api_key="s3cret", max_body_mb=0.01,
                        metrics=True) as (url, app):
        yield url, app


def _post(url: str, body=None, key: str | None = "s3cret", timeout: float = 30,
          **kw) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    headers.update(kw.pop("headers", {}))
    return httpx.post(url, json=body, headers=headers, timeout=timeout, **kw)


def _error(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) >= {"message", "type", "param", "code"}
    return err["message"]


@pytest.mark.parametrize("body, words", [
    ({**CHAT, "temperature": 5}, "temperature"),
    ({**CHAT, "max_tokens": 0}, "max_tokens"),
    ({**CHAT, "frobnicate": 1}, "not supported"),
    ({**CHAT, "messages": []}, "messages"),
    ({**CHAT, "messages": [{"role": "robot", "content": "x"}]}, "role"),
    ({**CHAT, "response_format": {"type": "json_schema"}}, "json_schema"),
    ({**CHAT, "response_format": {"type": "json_schema", "json_schema": {
        "name": "x", "schema": {"type": "object", "properties": {"a": {"type": "wat"}}}}}},
     "schema"),
    ({**CHAT, "tool_choice": "required"}, "tool_choice"),
    ({**CHAT, "top_logprobs": 3}, "logprobs"),
    ({**CHAT, "model": "gpt-4o"}, "not served"),
    ({**CHAT, "stream_options": {"include_usage": True}}, "stream"),
    ({**CHAT, "logit_bias": {"abc": 1}}, "logit_bias"),
    ({**CHAT, "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {
        "url": "http://example.com/cat.png"}}]}]}, "vision"),
])
def test_bad_fields_get_400_naming_them(server, body, words):
    r = _post(server[0] + "/v1/chat/completions", body)
    status = 404 if body.get("model") == "gpt-4o" else 400
    assert words in _error(r, status)


def test_bad_json_and_completions_fields(server):
    r = httpx.post(server[0] + "/v1/chat/completions", content=b"{not json",
                   headers={"Authorization": "Bearer s3cret",
                            "Content-Type": "application/json"})
    assert "not valid JSON" in _error(r, 400)
    r = _post(server[0] + "/v1/completions", {"model": "tiny", "prompt": "x", "suffix": "y"})
    assert "suffix" in _error(r, 400)
    r = _post(server[0] + "/v1/completions", {"model": "tiny", "prompt": "x", "best_of": 3})
    assert "best_of" in _error(r, 400)


def test_api_key_is_required_but_health_is_public(server):
    url = server[0]
    assert "API key" in _error(_post(url + "/v1/chat/completions", CHAT, key="wrong"), 401)
    assert _post(url + "/v1/chat/completions", CHAT, key=None).status_code == 401
    assert httpx.get(url + "/v1/models").status_code == 401
    assert httpx.get(url + "/health").json()["status"] == "ok"
    c = openai.OpenAI(base_url=url + "/v1", api_key="s3cret", max_retries=0)
    assert c.chat.completions.create(**CHAT).choices[0].finish_reason == "length"


def test_host_header_and_body_limit(server):
    url = server[0]
    r = _post(url + "/v1/chat/completions", CHAT, headers={"Host": "evil.example:8080"})
    assert "Host" in _error(r, 403)
    big = {**CHAT, "messages": [{"role": "user", "content": "x" * 20000}]}
    assert "larger than" in _error(_post(url + "/v1/chat/completions", big), 413)


def test_tokenize_detokenize_metrics(server, tiny):
    url, tokenizer = server[0], tiny[1]
    ids = _post(url + "/tokenize", {"content": "Hello world"}).json()["tokens"]
    assert ids == tokenizer.encode("Hello world")
    assert _post(url + "/detokenize", {"tokens": ids}).json()["content"] == "<bos>Hello world"
    assert "not a token id" in _error(_post(url + "/detokenize", {"tokens": [10**9]}), 400)
    text = httpx.get(url + "/metrics", headers={"Authorization": "Bearer s3cret"}).text
    assert "gemma_mlx:requests_total" in text and "gemma_mlx:tokens_predicted_total" in text


def _wait(predicate, seconds: float = 10.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_client_that_disconnects_frees_its_slot(tiny):
    long = random_vocab_model(1, layer_types=["sliding_attention", "full_attention"],
                              max_position_embeddings=16384)
    with running_server(long, tiny[1], model_id="tiny") as (url, app):
        worker = app.state.worker
        body = {**CHAT, "max_tokens": 8000, "stream": True}
        with httpx.stream("POST", url + "/v1/chat/completions", json=body) as r:
            lines = r.iter_lines()
            assert next(lines).startswith("data:")
            assert _wait(lambda: worker.running == 1)
        assert _wait(lambda: worker.running == 0, 5.0)  # gone long before 8000 tokens
        with pytest.raises(httpx.ReadTimeout):
            _post(url + "/v1/chat/completions", {**CHAT, "max_tokens": 8000}, key=None,
                  timeout=1)
        assert _wait(lambda: worker.running == 0, 5.0)  # a non-streamed request too
        assert worker.engine.stats["generation_tokens"] < 8000


def test_queue_limit_answers_429_with_retry_after(tiny):
    with running_server(*tiny, model_id="tiny", max_concurrency=1, max_queue=1) as (url, app):
        results: list[httpx.Response] = []
        body = {**CHAT, "max_tokens": 150}
        threads = [threading.Thread(target=lambda: results.append(
            _post(url + "/v1/chat/completions", body, key=None))) for _ in range(4)]
        for t in threads:
            t.start()
            time.sleep(0.05)
        for t in threads:
            t.join()
        codes = sorted(r.status_code for r in results)
        assert codes.count(200) >= 2 and 429 in codes, codes
        busy = next(r for r in results if r.status_code == 429)
        assert busy.headers["Retry-After"] == "1" and "busy" in _error(busy, 429)


def test_health_turns_503_when_the_worker_is_stuck_or_dead(tiny):
    with running_server(*tiny, model_id="tiny", watchdog_s=0.5) as (url, app):
        worker = app.state.worker
        release = threading.Event()
        step = worker.engine.step
        worker.engine.step = lambda: (release.wait(20), step())[1]
        t = threading.Thread(target=lambda: _post(url + "/v1/chat/completions", CHAT, key=None))
        t.start()
        assert _wait(lambda: httpx.get(url + "/health").status_code == 503)
        assert "no progress" in httpx.get(url + "/health").json()["reason"]
        release.set()
        t.join()
        assert httpx.get(url + "/health").status_code == 200

        def boom():
            raise RuntimeError("boom")

        worker.engine.step = boom
        r = _post(url + "/v1/chat/completions", CHAT, key=None)
        assert r.status_code == 500 and "died" in r.json()["error"]["message"]
        assert "boom" in httpx.get(url + "/health").json()["reason"]
        # a dead worker fails new requests at once instead of hanging them
        assert _post(url + "/v1/chat/completions", CHAT, key=None).status_code == 503


@pytest.mark.slow
def test_gemma_mlx_serve_command(gguf_270m, model_270m):
    """The command a user runs: it loads the model, serves, and stops on SIGINT."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from .serving import free_port

    port = free_port()
    exe = Path(sys.executable).with_name("gemma-mlx")
    proc = subprocess.Popen([str(exe), "serve", "--model", str(gguf_270m), "--port", str(port),
                             "--log-level", "warning"], stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        url = f"http://127.0.0.1:{port}"
        assert _wait(lambda: _up(url), 120), proc.stderr.read() if proc.poll() else "no start"
        r = httpx.get(url + "/v1/models").json()
        assert r["data"][0]["id"] == gguf_270m.stem
        c = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
        out = c.completions.create(model=gguf_270m.stem, prompt="The capital of France is",
                                   max_tokens=4, temperature=0)
        from gemma_mlx import generate

        assert out.choices[0].text == generate(*model_270m, "The capital of France is",
                                               max_tokens=4)
        assert "<!doctype html>" in httpx.get(url + "/").text.lower()
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0


def _up(url: str) -> bool:
    try:
        return httpx.get(url + "/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_keepalive_comments_while_the_first_token_is_slow(tiny):
    with running_server(*tiny, model_id="tiny", keepalive_s=0.3) as (url, app):
        engine = app.state.worker.engine
        step, calls = engine.step, []
        engine.step = lambda: (calls.append(1), time.sleep(1.2 if len(calls) == 1 else 0),
                               step())[2]  # a slow prefill
        body = {**CHAT, "max_tokens": 2, "stream": True}
        with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=30) as r:
            lines = [line for line in r.iter_lines() if line]
        engine.step = step
        assert lines[0].startswith("data:") and lines[-1] == "data: [DONE]"
        assert any(line.startswith(": keepalive") for line in lines[1:-1])


def test_cors_is_off_unless_origins_are_given(server, tiny):
    pre = {"Origin": "http://app.example", "Access-Control-Request-Method": "POST"}
    r = httpx.options(server[0] + "/v1/chat/completions", headers=pre)
    assert "access-control-allow-origin" not in r.headers
    with running_server(*tiny, model_id="tiny", cors_origins=["http://app.example"]) as (url, _):
        r = httpx.options(url + "/v1/chat/completions", headers=pre)
        assert r.headers["access-control-allow-origin"] == "http://app.example"
        r = httpx.options(url + "/v1/chat/completions",
                          headers={**pre, "Origin": "http://evil.example"})
        assert r.headers.get("access-control-allow-origin") != "http://evil.example"
