"""Chat templates: the jinja sandbox and the built-in Gemma 3 template against transformers."""

from __future__ import annotations

import json

import pytest

from gemma_mlx.errors import GemmaError
from gemma_mlx.text import jinja_template
from gemma_mlx.text.chat_template import render_chat
from gemma_mlx.text.jinja_template import read_chat_template, render_template
from gemma_mlx.text.tokenizer import Tokenizer

from .conftest import FIXTURES

TEMPLATES = FIXTURES / "templates"
CASES = json.loads((TEMPLATES / "reference.json").read_text())


def _source(name: str) -> str:
    return (TEMPLATES / f"{name}.jinja").read_text(encoding="utf-8")


def _render(case: dict) -> str:
    messages = [{k: v for k, v in m.items() if v is not None} for m in case["messages"]]
    return render_template(_source(case["template"]), messages=messages, tools=case["tools"],
                           documents=None, add_generation_prompt=case["add_generation_prompt"],
                           **case["special_tokens"], **case["kwargs"])


def test_the_reference_covers_what_the_issue_asks():
    assert len(CASES) >= 20
    kinds = {c["template"] for c in CASES}
    assert kinds == {"gemma3", "functiongemma", "shieldgemma2"}
    assert any(c["tools"] for c in CASES) and any(
        m.get("role") == "tool" for c in CASES for m in c["messages"])
    assert any(isinstance(m.get("content"), list) and any(p.get("type") == "image"
               for p in m["content"]) for c in CASES for m in c["messages"])


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_jinja_sandbox_equals_transformers(case):
    if "error" in case:
        with pytest.raises(GemmaError):
            _render(case)
    else:
        assert _render(case) == case["text"]


# The stock template renders role "tool" as a turn named tool; ours, a tool result (by design).
GEMMA3 = [c for c in CASES if c["template"] == "gemma3"
          and all(m.get("role") != "tool" for m in c["messages"])]


@pytest.mark.parametrize("case", GEMMA3, ids=[c["id"] for c in GEMMA3])
def test_builtin_gemma3_template_equals_transformers(case):
    """Without a checkpoint template we render in Python: the same text, or an error."""
    if "error" in case:
        with pytest.raises(GemmaError):
            render_chat(case["messages"], case["add_generation_prompt"])
    else:
        assert render_chat(case["messages"], case["add_generation_prompt"]) == case["text"]


@pytest.mark.parametrize("source,message", [
    ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "sandbox"),
    ("{{ messages.append(1) }}", "sandbox"),
    ("{% for i in range(10**9) %}x{% endfor %}", "limits"),
    ("{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}", "over"),
    ("{% set x = range(9999)|list %}{% for a in x %}{% for b in x %}{% endfor %}{% endfor %}",
     "over"),
    ("{{ 10 ** (10 ** 8) }}", "limits"),
    ("{{ 'a' * 10**9 }}", "limits"),
    ("{{ [0] * 10**9 }}", "limits"),
    ("{{ 'x'|center(10**9) }}", "limits"),
    ("{{ 'x'.center(10**9) }}", "limits"),
    ("{{ '{:>999999999}'.format(1) }}", "limits"),
    ("{{ '%999999999s' % 1 }}", "limits"),
    ("{{ 'ab'|replace('', 'x' * 60000)|replace('', 'x' * 60000) }}", "limits"),
    ("{% set ns = namespace(x='ab') %}{% for i in range(99) %}{% set ns.x = ns.x ~ ns.x %}"
     "{% endfor %}", "limits"),
    ("{{ lipsum(n=10**9) }}", "limits|undefined"),
    ("{{ cycler.__init__.__globals__ }}", "sandbox|undefined"),
    ("{% for i in range(99999) %}{% for j in range(99999) %}{{ i }}{% endfor %}{% endfor %}",
     "over"),
    ("{% include 'x' %}", "chat template"),
    ("{{ raise_exception('nope') }}", "nope"),
    ("{% if %}", "cannot be compiled"),
])
def test_hostile_templates_get_one_clear_error(source, message, monkeypatch):
    monkeypatch.setattr(jinja_template, "MAX_SECONDS", 1.0)
    with pytest.raises(GemmaError, match=message):
        render_template(source, messages=[])


def test_templates_are_read_from_checkpoints(tmp_path):
    assert read_chat_template(tmp_path) is None
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": [
        {"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]}))
    assert read_chat_template(tmp_path) == "D"
    (tmp_path / "chat_template.json").write_text(json.dumps({"chat_template": "J"}))
    assert read_chat_template(tmp_path) == "J"
    (tmp_path / "chat_template.jinja").write_text("F")
    assert read_chat_template(tmp_path) == "F"
    (tmp_path / "chat_template.jinja").unlink()
    (tmp_path / "chat_template.json").write_text("{oops")
    with pytest.raises(GemmaError, match="chat_template.json: not valid JSON"):
        read_chat_template(tmp_path)


def test_tokenizer_uses_the_checkpoint_template_except_for_gemma3_tools(model_270m):
    _, base = model_270m
    tok = Tokenizer.from_spm_bytes(base._proto)
    tok.chat_template = _source("gemma3")
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "Hi"}]
    assert tok.apply_chat_template(msgs, tokenize=False) == render_chat(msgs)
    tok.chat_template = "{{ bos_token }}custom:{{ messages[0]['content'] }}"
    assert tok.apply_chat_template(msgs, tokenize=False) == "<bos>custom:S"
    tok.chat_template = _source("gemma3")
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    text = tok.apply_chat_template(msgs + [{"role": "assistant", "content": "x"},
                                           {"role": "tool", "content": "r"}],
                                   tools=tools, tokenize=False)
    assert "You have access to functions" in text and "```tool_output\nr\n```" in text
