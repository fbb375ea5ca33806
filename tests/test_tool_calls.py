"""Tool calls: rendering, constrained calls and parsing, Gemma 3's JSON format and FunctionGemma."""

from __future__ import annotations

import json
import subprocess
import sys

import jsonschema
import mlx.core as mx
import pytest

from gemma_mlx.errors import GemmaError
from gemma_mlx.generation.generate import stream_generate
from gemma_mlx.generation.tools import parse_tool_calls, tool_constraint, tool_lark
from gemma_mlx.text import functiongemma as fg
from gemma_mlx.text.tool_calls import check_tools, choose_functions, gemma3_parse

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    }, "required": ["city"]}}}
ORDER = {"type": "function", "function": {
    "name": "place_order", "description": "Order items",
    "parameters": {"type": "object", "properties": {
        "items": {"type": "array", "minItems": 1, "maxItems": 3, "items": {
            "type": "object", "properties": {
            "sku": {"type": "string"}, "qty": {"type": "integer"}}, "required": ["sku", "qty"]}},
        "express": {"type": "boolean"}, "note": {"type": ["string", "null"]}},
        "required": ["items", "express"]}}}
TOOLS = [WEATHER, ORDER]


def _args_valid(call: dict, tools=TOOLS) -> dict:
    spec = {t["function"]["name"]: t["function"]["parameters"] for t in tools}
    args = json.loads(call["function"]["arguments"])
    jsonschema.validate(args, spec[call["function"]["name"]])
    assert call["type"] == "function" and call["id"].startswith("call_")
    return args


def test_tool_specs_are_checked():
    with pytest.raises(GemmaError, match=r"tools\[0\].function.name"):
        check_tools([{"type": "function", "function": {"description": "x"}}])
    with pytest.raises(GemmaError, match=r"tools\[1\].type"):
        check_tools([WEATHER, {"type": "retrieval"}])
    with pytest.raises(GemmaError, match="defined twice"):
        check_tools([WEATHER, WEATHER])
    fns = check_tools(TOOLS)
    assert choose_functions(fns, {"type": "function", "function": {"name": "place_order"}}
                            ) == ("named", [fns[1]])
    with pytest.raises(GemmaError, match="no tool is named 'nope'"):
        choose_functions(fns, {"type": "function", "function": {"name": "nope"}})
    with pytest.raises(GemmaError, match="not one of"):
        choose_functions(fns, "sometimes")


def test_gemma3_rendering_with_tool_turns(model_270m):
    _, tok = model_270m
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "c1", "type": "function", "function": {
                "name": "get_weather", "arguments": '{"city": "Paris"}'}},
            {"id": "c2", "type": "function", "function": {
                "name": "get_weather", "arguments": {"city": "Rome"}}}]},
        {"role": "tool", "tool_call_id": "c1", "content": '{"temp": 18}'},
        {"role": "tool", "tool_call_id": "c2", "content": '{"temp": 24}'},
        {"role": "user", "content": "Which is warmer?"},
    ]
    text = tok.apply_chat_template(messages, tools=TOOLS, tokenize=False)
    assert text.startswith("<bos><start_of_turn>user\nYou have access to functions.")
    assert '"name": "place_order"' in text and "Be brief.\n\nWeather in Paris and Rome?" in text
    assert ('<start_of_turn>model\n[{"name": "get_weather", "parameters": {"city": "Paris"}}, '
            '{"name": "get_weather", "parameters": {"city": "Rome"}}]<end_of_turn>') in text
    assert ('<start_of_turn>user\n```tool_output\n{"temp": 18}\n```\n```tool_output\n'
            '{"temp": 24}\n```\nWhich is warmer?<end_of_turn>\n<start_of_turn>model\n') in text
    # without tools the template is the stock one, and tool turns still render
    plain = tok.apply_chat_template(messages[1:2], tokenize=False)
    assert plain == "<bos><start_of_turn>user\nWeather in Paris and Rome?<end_of_turn>\n" \
                    "<start_of_turn>model\n"


def test_gemma3_parser():
    fns = check_tools(TOOLS)
    calls = gemma3_parse(' {"name": "get_weather", "parameters": {"city": "Oslo"}}\n', fns)
    assert [c["function"]["name"] for c in calls] == ["get_weather"]
    assert json.loads(calls[0]["function"]["arguments"]) == {"city": "Oslo"}
    two = gemma3_parse('[{"name": "get_weather", "parameters": {"city": "A"}}, '
                       '{"name": "place_order", "parameters": {"items": [], "express": true}}]',
                       fns)
    assert len(two) == 2 and two[0]["id"] != two[1]["id"]
    for text in ["It is sunny.", '{"name": "nope", "parameters": {}}', '{"name": "get_weather"}',
                 '{"name": "get_weather", "parameters": {"city": "A"}', "[]"]:
        assert gemma3_parse(text, fns) is None, text


@pytest.mark.slow
@pytest.mark.parametrize("choice", ["required", "get_weather", "place_order"])
def test_gemma3_constrained_calls_validate(model_270m, choice):
    model, tok = model_270m
    tool_choice = choice if choice == "required" else {"type": "function",
                                                       "function": {"name": choice}}
    messages = [{"role": "user", "content": "I need an umbrella in Paris? Also order 2 tea."}]
    rs = list(stream_generate(model, tok, messages, tools=TOOLS, tool_choice=tool_choice,
                              max_tokens=80, parallel_tool_calls=False))
    last = rs[-1]
    if choice == "place_order" and last.finish_reason == "length":
        # the base 270M may list order items past max_tokens: then it is not a call
        assert last.tool_calls is None
        return
    assert last.finish_reason == "tool_calls", "".join(r.text for r in rs)
    assert len(last.tool_calls) == 1
    for call in last.tool_calls:
        _args_valid(call)
        assert choice == "required" or call["function"]["name"] == choice


def test_auto_grammar_allows_text_or_a_call_from_the_start(model_270m):
    _, tok = model_270m
    fns = check_tools(TOOLS)
    for text, ok in [("Sure, it is sunny {today}.", True),
                     ('{"name": "get_weather", "parameters": {"city": "Oslo"}}', True),
                     ('{"name": "get_weather", "parameters": {"town": "Oslo"}}', False),
                     ('{"answer": 42}', False)]:
        c = tool_constraint(tok, 262144, fns, "auto")
        try:
            for t in tok.encode(text, add_special_tokens=False):
                c.consume(t)
            accepted = c.is_accepting
        except GemmaError:
            accepted = False
        assert accepted == ok, text
    assert "TEXT" not in tool_lark(tok, fns, "required")


@pytest.mark.slow
def test_multi_turn_with_tool_results_and_auto(model_270m):
    """A full loop: a forced call, its result as a tool turn, then an auto answer."""
    model, tok = model_270m
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = list(stream_generate(model, tok, messages, tools=[WEATHER], tool_choice="required",
                                 parallel_tool_calls=False, max_tokens=40))[-1]
    call = first.tool_calls[0]
    assert _args_valid(call, [WEATHER])["city"]
    messages += [{"role": "assistant", "tool_calls": [call]},
                 {"role": "tool", "tool_call_id": call["id"], "content": "18 C, clear"}]
    rs = list(stream_generate(model, tok, messages, tools=[WEATHER], max_tokens=24))
    text = "".join(r.text for r in rs)
    if rs[-1].tool_calls is None:
        assert not text.lstrip().startswith(("{", "["))
    else:
        assert rs[-1].finish_reason == "tool_calls"
        [_args_valid(c, [WEATHER]) for c in rs[-1].tool_calls]


def test_tools_with_another_constraint_is_refused(model_270m):
    model, tok = model_270m
    with pytest.raises(GemmaError, match="cannot be combined"):
        next(stream_generate(model, tok, "x", tools=TOOLS, json_schema={"type": "object"}))


# -- FunctionGemma ------------------------------------------------------------------------------

TRICKY = {"location": 'São Paulo, "SP" {zone: 3}, [north]\nline two', "days": 3,
          "nested": {"a": {"b": [1, 2.5, "x,y"], "c": True}, "empty": {}, "none": None},
          "tags": ["}", "{", ":", "<", ""], "negative": -4e-3, "num_str": "42"}


def test_functiongemma_values_round_trip():
    text = fg.dump_call("get_weather", TRICKY) + fg.dump_call("noop", {})
    calls = fg.parse_calls("Let me check." + text)
    assert [c["function"]["name"] for c in calls] == ["get_weather", "noop"]
    assert json.loads(calls[0]["function"]["arguments"]) == TRICKY
    assert json.loads(calls[1]["function"]["arguments"]) == {}


def test_functiongemma_parser_rejects_broken_calls():
    for bad in ["<start_function_call>call:f{a:<escape>x}<end_function_call>",
                "<start_function_call>call:f{a:1",
                "<start_function_call>call:f{a:1}",
                "<start_function_call>call:f{:1}<end_function_call>"]:
        assert fg.parse_calls(bad) is None, bad
    assert fg.parse_calls("no call here") is None
    known = check_tools([WEATHER])
    assert fg.parse_calls(fg.dump_call("other", {}), known) is None


def test_functiongemma_grammar_refuses_unsupported_keywords():
    fns = check_tools([{"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"n": {"type": "integer", "minimum": 3}}}}}])
    with pytest.raises(GemmaError, match=r"tool 'f' parameters.n: .*minimum"):
        fg.call_lark(fns, "required")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gemma_mlx.cli", *args], capture_output=True,
                          text=True, timeout=600)


@pytest.mark.slow
def test_cli_tools_prints_parsed_calls(tmp_path):
    tools = tmp_path / "tools.json"
    tools.write_text(json.dumps([WEATHER]))
    r = _cli("generate", "--prompt", "Weather in Rome?", "--tools", str(tools),
             "--tool-choice", "get_weather", "--max-tokens", "40")
    assert r.returncode == 0, r.stderr
    body = r.stdout.split("\n==========\n")[0]
    calls = json.loads(body[body.index('{\n  "tool_calls"'):])["tool_calls"]
    assert calls[0]["function"]["name"] == "get_weather"
    _args_valid(calls[0], [WEATHER])


def test_parse_tool_calls_dispatches_on_the_vocabulary(model_270m):
    _, tok = model_270m
    fns = check_tools([WEATHER])
    assert parse_tool_calls(tok, fg.dump_call("get_weather", {"city": "x"}), fns) is None
    assert parse_tool_calls(tok, '{"name": "get_weather", "parameters": {"city": "x"}}', fns)
    assert mx.array([1]).item() == 1
