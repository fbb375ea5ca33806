"""The server through the official openai client: chat, completions, streaming, JSON, tools."""

from __future__ import annotations

import json

import jsonschema
import openai
import pytest

from .conftest import random_vocab_model
from .serving import running_server

HI = [{"role": "user", "content": "Hi there"}]


@pytest.fixture(scope="module")
def tiny(model_270m):
    """A random 2-layer model (a sliding layer with window 8, a global one) and the real
    tokenizer: real token ids, fast steps, prompts that wrap the ring."""
    return random_vocab_model(0, layer_types=["sliding_attention", "full_attention"]), \
        model_270m[1]


@pytest.fixture(scope="module")
def server(tiny):
    with running_server(*tiny, model_id="tiny") as (url, app):
        yield url, app


@pytest.fixture
def client(server):
    return openai.OpenAI(base_url=server[0] + "/v1", api_key="unused", max_retries=0)


def _joined(stream) -> tuple[str, list]:
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return text, chunks


def test_models_lists_the_served_model(client):
    assert [m.id for m in client.models.list()] == ["tiny"]


def test_chat_streamed_deltas_equal_the_whole_reply(client):
    whole = client.chat.completions.create(model="tiny", messages=HI, max_tokens=12,
                                           temperature=0)
    text, chunks = _joined(client.chat.completions.create(
        model="tiny", messages=HI, max_tokens=12, temperature=0, stream=True,
        stream_options={"include_usage": True}))
    assert text == whole.choices[0].message.content and len(text) > 0
    assert whole.choices[0].finish_reason == "length"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    usage = chunks[-1].usage  # the usage chunk has no choices
    assert chunks[-1].choices == [] and usage.completion_tokens == 12
    assert usage.prompt_tokens == whole.usage.prompt_tokens


def test_completions_streamed_equal_whole_with_logprobs(client):
    kw = dict(model="tiny", prompt="The capital of France is", max_tokens=8, temperature=0)
    whole = client.completions.create(**kw, logprobs=3)
    chunks = list(client.completions.create(**kw, stream=True))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == whole.choices[0].text
    lp = whole.choices[0].logprobs
    assert len(lp.tokens) == 8 and "".join(lp.tokens) == whole.choices[0].text
    for token, value, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs, strict=True):
        assert len(top) == 3 and value <= 0
        assert max(top.values()) == pytest.approx(value, abs=1e-5)  # greedy: the best token
        assert token in top


def test_chat_logprobs_and_n(client):
    r = client.chat.completions.create(model="tiny", messages=HI, max_tokens=5, temperature=0,
                                       logprobs=True, top_logprobs=2, n=2)
    assert [c.index for c in r.choices] == [0, 1]
    assert r.choices[0].message.content == r.choices[1].message.content  # greedy twice
    content = r.choices[0].logprobs.content
    assert len(content) == 5 and all(len(t.top_logprobs) == 2 for t in content)
    assert r.usage.completion_tokens == 10


def test_seeded_sampling_repeats(client):
    kw = dict(model="tiny", messages=HI, max_tokens=8, temperature=1.0, seed=7)
    a = client.chat.completions.create(**kw).choices[0].message.content
    b = client.chat.completions.create(**kw).choices[0].message.content
    assert a == b


def test_stop_strings_cut_the_text(client):
    whole = client.completions.create(model="tiny", prompt="Hello", max_tokens=10,
                                      temperature=0).choices[0].text
    stop = whole[len(whole) // 2 : len(whole) // 2 + 3]
    cut = client.completions.create(model="tiny", prompt="Hello", max_tokens=10,
                                    temperature=0, stop=[stop])
    assert cut.choices[0].text == whole[: whole.index(stop)]
    assert cut.choices[0].finish_reason == "stop"
    text = "".join(c.choices[0].text for c in client.completions.create(
        model="tiny", prompt="Hello", max_tokens=10, temperature=0, stop=[stop], stream=True))
    assert text == cut.choices[0].text


SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"},
                                           "size": {"enum": ["S", "M", "L"]}},
          "required": ["ok", "size"], "additionalProperties": False}


@pytest.mark.parametrize("fmt", [
    {"type": "json_schema", "json_schema": {"name": "answer", "schema": SCHEMA}},
    {"type": "json_object", "schema": SCHEMA},  # the older spelling
])
def test_response_format_output_validates(client, fmt):
    r = client.chat.completions.create(model="tiny", messages=HI, max_tokens=64,
                                       temperature=0, response_format=fmt)
    assert r.choices[0].finish_reason == "stop"
    jsonschema.validate(json.loads(r.choices[0].message.content), SCHEMA)


def test_json_object_is_an_object(client):
    r = client.chat.completions.create(model="tiny", messages=HI, max_tokens=48,
                                       temperature=0, response_format={"type": "json_object"})
    if r.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(r.choices[0].message.content), dict)
    else:
        assert r.choices[0].message.content.lstrip().startswith("{")


TOOLS = [{"type": "function", "function": {
    "name": "set_light", "description": "Switch a light",
    "parameters": {"type": "object", "properties": {
        "room": {"enum": ["kitchen", "hall"]}, "on": {"type": "boolean"}},
        "required": ["room", "on"]}}}]


@pytest.mark.parametrize("stream", [False, True])
def test_required_tool_call_then_the_result_turn(client, stream):
    kw = dict(model="tiny", messages=HI, max_tokens=256, temperature=0, tools=TOOLS,
              tool_choice="required")
    if stream:
        chunks = list(client.chat.completions.create(**kw, stream=True))
        deltas = [d for c in chunks for d in (c.choices[0].delta.tool_calls or [])]
        assert [c.choices[0].finish_reason for c in chunks][-1] == "tool_calls"
        assert not "".join(c.choices[0].delta.content or "" for c in chunks)
        calls = [{"id": d.id, "type": "function", "function": {
            "name": d.function.name, "arguments": d.function.arguments}} for d in deltas]
    else:
        r = client.chat.completions.create(**kw)
        assert r.choices[0].finish_reason == "tool_calls"
        assert r.choices[0].message.content is None
        calls = [c.model_dump() for c in r.choices[0].message.tool_calls]
    assert calls and all(c["function"]["name"] == "set_light" for c in calls)
    for c in calls:
        jsonschema.validate(json.loads(c["function"]["arguments"]),
                            TOOLS[0]["function"]["parameters"])
    follow = HI + [{"role": "assistant", "content": None, "tool_calls": calls}] + [
        {"role": "tool", "tool_call_id": c["id"], "content": '{"done": true}'} for c in calls]
    r = client.chat.completions.create(model="tiny", messages=follow, max_tokens=4,
                                       temperature=0, tools=TOOLS, tool_choice="none")
    assert r.choices[0].finish_reason == "length" and r.choices[0].message.content


def test_prefix_cache_hits_across_turns_with_the_same_text(tiny, client):
    """Three turns on a server with the prefix cache and on one without: the same greedy
    texts; with the cache each new turn prefills only its new tokens."""
    def talk(c: openai.OpenAI) -> tuple[list[str], list[int]]:
        messages, texts, cached = [], [], []
        for turn in ["Hello!", "Tell me more.", "And then?"]:
            messages.append({"role": "user", "content": turn})
            r = c.chat.completions.create(model="tiny", messages=messages, max_tokens=10,
                                          temperature=0)
            texts.append(r.choices[0].message.content)
            cached.append(r.usage.prompt_tokens_details.cached_tokens)
            messages.append({"role": "assistant", "content": texts[-1]})
        return texts, cached

    with running_server(*tiny, model_id="tiny", cache_gb=0) as (url, _):
        plain, none = talk(openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0))
    fresh = random_vocab_model(0, layer_types=["sliding_attention", "full_attention"])
    with running_server(fresh, tiny[1], model_id="tiny") as (url, app):
        texts, cached = talk(openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0))
        assert app.state.worker.prefix_cache.hits >= 2
    assert texts == plain and none == [0, 0, 0]
    assert cached[0] == 0 and cached[1] > 10 and cached[2] > cached[1]


@pytest.mark.slow
def test_real_270m_multi_turn_chat_reuses_the_cache(model_270m):
    """The embedded 270M: a 3-turn chat gives the same greedy replies with and without the
    prefix cache, and later turns prefill only their new tokens."""
    def talk(url: str) -> tuple[list[str], list[int], list[int]]:
        c = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
        messages, texts, cached, prompt = [], [], [], []
        for turn in ["Name a fruit.", "What colour is it?", "Name another."]:
            messages.append({"role": "user", "content": turn})
            r = c.chat.completions.create(model="m", messages=messages, max_tokens=8,
                                          temperature=0)
            texts.append(r.choices[0].message.content)
            cached.append(r.usage.prompt_tokens_details.cached_tokens)
            prompt.append(r.usage.prompt_tokens)
            messages.append({"role": "assistant", "content": texts[-1]})
        return texts, cached, prompt

    with running_server(*model_270m, model_id="m", cache_gb=0) as (url, _):
        plain, _, _ = talk(url)
    with running_server(*model_270m, model_id="m") as (url, _):
        texts, cached, prompt = talk(url)
    assert texts == plain
    assert cached[0] == 0 and all(prompt[i] - cached[i] < 20 for i in (1, 2)), (cached, prompt)


@pytest.mark.slow
def test_images_as_data_urls_run_beside_the_batch():
    """The vision demo model (the 270M with a random vision tower): an image request answers
    while a text request decodes beside it; URLs are refused."""
    import base64
    import io
    import threading

    from PIL import Image

    from gemma_mlx.formats.default_model import ensure_vision_demo_model
    from gemma_mlx.formats.loading import load

    model, tokenizer = load(ensure_vision_demo_model(progress=False))
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buf, "PNG")
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    image_msg = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}},
                                              {"type": "text", "text": "What is this?"}]}]
    with running_server(model, tokenizer, model_id="v") as (base, app):
        c = openai.OpenAI(base_url=base + "/v1", api_key="x", max_retries=0)
        text: list = []
        t = threading.Thread(target=lambda: text.append(c.chat.completions.create(
            model="v", messages=HI, max_tokens=24, temperature=0)))
        t.start()
        r = c.chat.completions.create(model="v", messages=image_msg, max_tokens=3,
                                      temperature=0)
        t.join()
        assert r.choices[0].finish_reason in ("length", "stop")
        assert r.usage.prompt_tokens > 256  # the image's 256 soft tokens
        assert text[0].usage.completion_tokens == 24
        bad = [{"role": "user", "content": [{"type": "image_url", "image_url": {
            "url": "https://example.com/x.png"}}]}]
        with pytest.raises(openai.BadRequestError, match="does not fetch"):
            c.chat.completions.create(model="v", messages=bad, max_tokens=3)
