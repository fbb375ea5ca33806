"""The chat page (GET /) in a real headless Chromium against a real server: the streamed
reply equals the API's, its stats, the whole conversation every turn, Stop, errors, the
API-key prompt."""

from __future__ import annotations

import io
import re
from pathlib import Path

import openai
import pytest

from .conftest import random_vocab_model
from .serving import running_server

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
if not CHROMIUM.exists():
    pytest.skip(f"no Chromium at {CHROMIUM}", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api",
                               reason="the playwright package is not installed")

MESSAGE = "Hi there, who are you?"
DONE = '.msg.assistant[data-streaming="false"]'
TIMEOUT_MS = 20_000

# Counts the text nodes the page appends to assistant bubbles: one per streamed delta.
OBSERVE = """() => {
  window.__chunks = 0;
  new MutationObserver((records) => {
    for (const r of records) {
      const t = r.target;
      if (t.nodeType !== 1 || !t.matches('.msg.assistant')) continue;
      for (const n of r.addedNodes) if (n.nodeType === 3) window.__chunks += 1;
    }
  }).observe(document.getElementById('messages'), {childList: true, subtree: true});
}"""


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def tiny(model_270m):
    """A random 2-layer model with the real tokenizer: garbage text, but fast and
    deterministic at temperature 0."""
    return random_vocab_model(0, layer_types=["sliding_attention", "full_attention"]), \
        model_270m[1]


@pytest.fixture(scope="module")
def server(tiny):
    with running_server(*tiny, model_id="tiny") as (url, _):
        yield url


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1180, "height": 780})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list = []
    page.on("pageerror", lambda e: errors.append(e))
    yield page
    context.close()
    assert not errors, f"the page raised: {errors}"


def _open(page, url: str, max_tokens: int = 12) -> None:
    page.goto(url + "/")
    page.fill("#temperature", "0")
    page.fill("#max-tokens", str(max_tokens))
    page.evaluate(OBSERVE)


def _say(page, text: str) -> dict:
    """Types `text`, sends it with Enter, waits for the reply; the request body sent."""
    before = page.locator(DONE).count()
    page.fill("#input", text)
    with page.expect_request("**/v1/chat/completions") as request:
        page.press("#input", "Enter")
    page.locator(DONE).nth(before).wait_for()
    return request.value.post_data_json


def _reply(url: str, messages: list, key: str = "x") -> str:
    client = openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)
    out = client.chat.completions.create(model="tiny", messages=messages, temperature=0,
                                         max_tokens=12)
    return out.choices[0].message.content


def test_streamed_reply_equals_the_api_and_shows_stats(page, server):
    _open(page, server)
    assert page.text_content("#model") == "tiny"
    sent = _say(page, MESSAGE)
    first = [{"role": "user", "content": MESSAGE}]
    assert sent["messages"] == first  # no empty system message
    assert sent["model"] == "tiny" and sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    assert sent["temperature"] == 0 and sent["max_tokens"] == 12

    text = page.locator(".msg.assistant").first.text_content()
    assert text and text == _reply(server, first)
    assert page.evaluate("window.__chunks") >= 2  # streamed as deltas, not in one piece
    status = page.text_content("#status")
    assert re.search(r"12 tokens.*\d+(\.\d+)? tok/s.*first token \d.*\(\d+ cached\)", status), \
        status

    # the next turn sends the whole conversation; its prompt is partly cached
    sent = _say(page, "And then?")
    second = first + [{"role": "assistant", "content": text},
                      {"role": "user", "content": "And then?"}]
    assert sent["messages"] == second
    assert page.locator(".msg.assistant").nth(1).text_content() == _reply(server, second)
    cached = re.search(r"\((\d+) cached\)", page.text_content("#status"))
    assert cached and int(cached[1]) > 0

    page.click("#new-chat")
    assert page.locator("#messages > *").count() == 0
    sent = _say(page, MESSAGE)
    assert sent["messages"] == first


def test_stop_aborts_the_stream_and_keeps_the_partial_reply(page, server):
    _open(page, server, max_tokens=400)
    page.fill("#input", MESSAGE)
    page.click("#send")
    page.wait_for_function("window.__chunks >= 1")
    page.click("#stop")
    page.locator(DONE).wait_for()
    assert "Stopped" in page.text_content("#status")
    partial = page.locator(".msg.assistant").first.text_content()
    assert partial and page.is_visible("#send") and not page.is_visible("#stop")
    page.fill("#max-tokens", "12")
    sent = _say(page, "Go on")  # the stopped turn stays in the conversation
    assert sent["messages"][1] == {"role": "assistant", "content": partial}


def test_an_image_for_a_text_only_model_shows_the_server_error(page, server):
    from PIL import Image

    png = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 90)).save(png, "PNG")
    _open(page, server)
    page.set_input_files("#file", {"name": "dot.png", "mimeType": "image/png",
                                   "buffer": png.getvalue()})
    page.locator("#attachments img").wait_for()
    page.fill("#input", "What is this?")
    with page.expect_request("**/v1/chat/completions") as request:
        page.click("#send")
    error = page.locator(".msg.error")
    error.wait_for()
    assert "Error 400" in error.text_content() and "no vision tower" in error.text_content()
    parts = request.value.post_data_json["messages"][0]["content"]
    assert parts[0]["type"] == "image_url"
    assert parts[0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert parts[1] == {"type": "text", "text": "What is this?"}
    # nothing was sent after all: the message and its image are back in the composer
    assert page.locator(".msg.assistant").count() == 0
    assert page.input_value("#input") == "What is this?"
    assert page.locator("#attachments img").count() == 1


def test_a_401_asks_for_the_api_key_then_the_reply_arrives(page, tiny):
    with running_server(*tiny, model_id="tiny", api_key="k") as (url, _):
        _open(page, url)
        page.fill("#input", MESSAGE)
        page.click("#send")
        error = page.locator(".msg.error")
        error.wait_for()
        assert "API key" in error.text_content()
        assert "attention" in page.get_attribute("#api-key-field", "class")
        assert page.evaluate("document.activeElement.id") == "api-key"
        assert page.locator(".msg.assistant").count() == 0
        assert page.input_value("#input") == MESSAGE

        page.fill("#api-key", "k")
        with page.expect_request("**/v1/chat/completions") as request:
            page.click("#send")
        page.locator(DONE).wait_for()
        assert request.value.headers["authorization"] == "Bearer k"
        text = page.locator(".msg.assistant").first.text_content()
        assert text and text == _reply(url, [{"role": "user", "content": MESSAGE}], key="k")
        assert page.evaluate("localStorage.getItem('gemma-mlx.api-key')") == "k"
        assert page.locator(".msg.error").count() == 0  # the key prompt is gone
