"""FunctionGemma end to end: its vocabulary and template, constrained calls, stops, parsing."""

from __future__ import annotations

import json

import jsonschema
import mlx.core as mx
import numpy as np
import pytest

from gemma_mlx.generation.generate import generate_step
from gemma_mlx.generation.tools import parse_tool_calls, stop_ids, tool_constraint, tool_format
from gemma_mlx.text import functiongemma as fg
from gemma_mlx.text.tokenizer import Tokenizer
from gemma_mlx.text.tool_calls import check_tools

from .conftest import FIXTURES, random_vocab_model
from .test_tool_calls import ORDER, TOOLS, WEATHER

# FunctionGemma renames Gemma 3's <unused40>..<unused46> (tests/fixtures/templates/README.md)
CONTROL = {46: "<start_function_declaration>", 47: "<end_function_declaration>",
           48: fg.START_CALL, 49: fg.END_CALL, 50: fg.START_RESPONSE, 51: fg.END_RESPONSE,
           52: fg.ESCAPE}


@pytest.fixture(scope="module")
def fg_tokenizer(model_270m):
    from sentencepiece import sentencepiece_model_pb2 as pb

    proto = pb.ModelProto()
    proto.ParseFromString(model_270m[1]._proto)
    for i, name in CONTROL.items():
        assert proto.pieces[i].piece == f"<unused{i - 6}>"
        proto.pieces[i].piece = name
    tok = Tokenizer.from_spm_bytes(proto.SerializeToString())
    tok.chat_template = (FIXTURES / "templates" / "functiongemma.jinja").read_text()
    return tok


@pytest.fixture(scope="module")
def tiny_model():
    """A random 2-layer Gemma 3 with the real 262,144-token vocabulary."""
    return random_vocab_model(3)


def test_vocabulary_format_and_stops(fg_tokenizer, model_270m):
    assert tool_format(fg_tokenizer) == "functiongemma"
    assert tool_format(model_270m[1]) == "gemma3"
    assert stop_ids(fg_tokenizer) == {1, 106, 50}
    text = fg_tokenizer.apply_chat_template(
        [{"role": "developer", "content": "You are a model that can do function calling with "
                                          "the following functions"},
         {"role": "user", "content": "Weather in London?"}], tools=TOOLS, tokenize=False)
    assert "<start_function_declaration>declaration:get_weather{" in text
    ids = fg_tokenizer.encode(text, add_special_tokens=False)
    assert ids.count(46) == 2 and 52 in ids


@pytest.mark.parametrize("parallel", [False, True])
def test_constrained_calls_parse_and_validate(fg_tokenizer, tiny_model, parallel):
    """A random model under the call grammar: every reply parses into calls whose arguments
    validate; the reply ends at <start_function_response>, FunctionGemma's extra stop."""
    lengths = np.array([len(p.encode()) for p in fg_tokenizer.pieces], dtype=np.float32)
    bias = -3.0 * lengths
    for tid in (49, 50, 52) + tuple(fg_tokenizer.convert_tokens_to_ids(p) for p in "},]"):
        bias[tid] = 3.0
    bias = mx.array(bias)
    fns = check_tools(TOOLS)
    prompt = mx.array(fg_tokenizer.apply_chat_template(
        [{"role": "user", "content": "Order tea"}], tools=TOOLS))
    for seed in range(3):
        mx.random.seed(seed)
        c = tool_constraint(fg_tokenizer, 262144, fns, "required", parallel)
        ids = list(generate_step(prompt, tiny_model, max_tokens=200, constraint=c,
                                 sampler=lambda lp: mx.random.categorical(lp, axis=-1),
                                 logits_processors=[lambda _, x: 0.1 * x + bias]))
        text = fg_tokenizer.decode([t for t in ids if t not in stop_ids(fg_tokenizer)])
        assert c.is_accepting, text
        calls = parse_tool_calls(fg_tokenizer, text, fns)
        assert calls, text
        assert parallel or len(calls) == 1
        specs = {t["function"]["name"]: t["function"]["parameters"] for t in (WEATHER, ORDER)}
        for call in calls:
            jsonschema.validate(json.loads(call["function"]["arguments"]),
                                specs[call["function"]["name"]])


def test_auto_text_cannot_contain_the_call_token(fg_tokenizer):
    c = tool_constraint(fg_tokenizer, 262144, check_tools(TOOLS), "auto")
    assert 48 in c.allowed()
    for t in fg_tokenizer.encode("Hello", add_special_tokens=False):
        c.consume(t)
    assert 48 not in c.allowed() and 106 in c.allowed()


def test_rendered_calls_round_trip_through_the_template(fg_tokenizer):
    """What the template writes for an assistant's tool_calls, our parser reads back."""
    args = {"items": [{"qty": 2, "sku": "tea, {green}"}], "express": False, "note": "a\nb"}
    text = fg_tokenizer.apply_chat_template(
        [{"role": "user", "content": "x"},
         {"role": "assistant", "tool_calls": [{"type": "function", "function": {
             "name": "place_order", "arguments": args}}]}],
        tools=[ORDER], tokenize=False, add_generation_prompt=False)
    calls = fg.parse_calls(text, check_tools([ORDER]))
    assert json.loads(calls[0]["function"]["arguments"]) == args
