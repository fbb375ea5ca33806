"""Tool calls: OpenAI function specs, Gemma 3's JSON call format, OpenAI-shaped parsed calls."""

from __future__ import annotations

import json
import secrets
from typing import Any

from ..errors import GemmaError

# Google's documented prompt (ai.google.dev/gemma/docs/capabilities/function-calling), JSON
# variant: the arguments are JSON, so they validate against the function's JSON-schema
# `parameters` as they are, and one grammar (%json) constrains them exactly. The last sentence
# before the definitions is ours: several calls go in one JSON list.
GEMMA3_TOOL_PROMPT = """\
You have access to functions. If you decide to invoke any of the function(s),
you MUST put it in the format of
{"name": function name, "parameters": dictionary of argument name and its value}

You SHOULD NOT include any other text in the response if you call a function
To call several functions at once, put the calls in a JSON list.
"""
TOOL_CHOICES = ("auto", "none", "required")


def check_tools(tools: list[dict] | None) -> list[dict]:
    """The functions of OpenAI-style tool specs, as {name, description, parameters}."""
    out = []
    for i, tool in enumerate(tools or []):
        where = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise GemmaError(f"{where}: must be an object")
        if tool.get("type", "function") != "function":
            raise GemmaError(f"{where}.type: only 'function' tools are supported")
        fn = tool.get("function", tool)
        name = fn.get("name") if isinstance(fn, dict) else None
        if not isinstance(name, str) or not name or len(name) > 64:
            raise GemmaError(f"{where}.function.name: a name of 1-64 characters is required")
        params = fn.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(params, dict):
            raise GemmaError(f"{where}.function.parameters: must be a JSON schema object")
        if name in {f["name"] for f in out}:
            raise GemmaError(f"{where}.function.name: {name!r} is defined twice")
        out.append({"name": name, "description": fn.get("description", ""),
                    "parameters": params})
    return out


def choose_functions(functions: list[dict], tool_choice: Any) -> tuple[str, list[dict]]:
    """(mode, functions) for an OpenAI tool_choice: mode is auto, none or required; a named
    function is 'named': exactly one call of that function, as OpenAI forces."""
    if tool_choice is None:
        tool_choice = "auto"
    if isinstance(tool_choice, dict):
        name = (tool_choice.get("function") or {}).get("name")
        picked = [f for f in functions if f["name"] == name]
        if not picked:
            raise GemmaError(f"tool_choice: no tool is named {name!r}")
        return "named", picked
    if tool_choice not in TOOL_CHOICES:
        raise GemmaError(f"tool_choice: {tool_choice!r} is not one of {', '.join(TOOL_CHOICES)} "
                         "or {'type': 'function', 'function': {'name': ...}}")
    if tool_choice != "none" and not functions:
        raise GemmaError(f"tool_choice {tool_choice!r} needs tools")
    return tool_choice, functions


def openai_call(name: str, arguments: dict) -> dict:
    """An OpenAI-shaped tool call with a fresh id; `arguments` as a JSON string."""
    return {"id": "call_" + secrets.token_hex(12), "type": "function",
            "function": {"name": name, "arguments": json.dumps(arguments, ensure_ascii=False)}}


def call_arguments(call: dict) -> tuple[str, dict]:
    """(name, arguments dict) of an assistant message's tool call (OpenAI shape, or flat)."""
    fn = call.get("function", call)
    args = fn.get("arguments", {})
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError as e:
            name = fn.get("name")
            raise GemmaError(f"tool call {name!r}: arguments are not JSON ({e})") from None
    return fn["name"], args


# -- Gemma 3 (no tool tokens): the JSON call format ---------------------------------------------

def gemma3_tool_block(functions: list[dict]) -> str:
    """The instruction and the function definitions, put before the first user message."""
    specs = [{"name": f["name"], "description": f["description"], "parameters": f["parameters"]}
             for f in functions]
    return GEMMA3_TOOL_PROMPT + json.dumps(specs, indent=2, ensure_ascii=False)


def gemma3_render_calls(calls: list[dict]) -> str:
    """An assistant turn's calls as the model writes them: one object, or a list of them."""
    objs = [{"name": n, "parameters": a} for n, a in map(call_arguments, calls)]
    return json.dumps(objs[0] if len(objs) == 1 else objs, ensure_ascii=False)


def gemma3_render_result(content: Any) -> str:
    """A tool result, as Google's function-calling guide passes it back (in a user turn)."""
    text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    return f"```tool_output\n{text.strip()}\n```"


def gemma3_parse(text: str, functions: list[dict]) -> list[dict] | None:
    """The calls in a reply in the JSON call format, or None if the reply is not exactly that."""
    body = text.strip()
    if body[:1] not in ("{", "["):
        return None
    try:
        value = json.loads(body)
    except json.JSONDecodeError:
        return None
    items = value if isinstance(value, list) else [value]
    names = {f["name"] for f in functions}
    calls = []
    for item in items:
        if (not isinstance(item, dict) or set(item) != {"name", "parameters"}
                or item["name"] not in names or not isinstance(item["parameters"], dict)):
            return None
        calls.append(openai_call(item["name"], item["parameters"]))
    return calls or None


def closed_parameters(params: dict) -> dict:
    """A function's parameters without undeclared arguments (a function cannot take them):
    `additionalProperties: false` at the top level, unless the schema says otherwise."""
    if "properties" in params and "additionalProperties" not in params:
        return {**params, "additionalProperties": False}
    return params


def gemma3_call_schema(functions: list[dict], single: bool) -> dict:
    """The JSON schema of a reply that calls `functions` (one call, or a list of calls)."""
    one = [{"type": "object", "properties": {"name": {"const": f["name"]},
                                             "parameters": closed_parameters(f["parameters"])},
            "required": ["name", "parameters"], "additionalProperties": False}
           for f in functions]
    call = one[0] if len(one) == 1 else {"anyOf": one}
    return call if single else {"anyOf": [call, {"type": "array", "items": call, "minItems": 1}]}
