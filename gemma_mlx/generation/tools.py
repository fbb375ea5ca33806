"""Tool calls in generation: the grammar for a tool_choice, extra stops, and the reply parser."""

from __future__ import annotations

import json
from typing import Any

from ..text import functiongemma
from ..text.tool_calls import gemma3_call_schema, gemma3_parse
from .constraints import JSON_WHITESPACE, Constraint, lark_grammar

# A text reply in the JSON call format: anything that does not open with { or [ (after
# optional whitespace), so a call can only start at the beginning of the reply.
_GEMMA3_TEXT = r"/\s*[^\s\[{](?s:.)*/"


def tool_format(tokenizer: Any) -> str:
    """'functiongemma' for a vocabulary with FunctionGemma's call tokens, else 'gemma3'."""
    found = tokenizer is not None and tokenizer.special_id(functiongemma.START_CALL) is not None
    return "functiongemma" if found else "gemma3"


def stop_ids(tokenizer: Any) -> set[int]:
    """End-of-sequence ids, plus <start_function_response> for FunctionGemma (the model stops
    there and waits for the result)."""
    stops = set(getattr(tokenizer, "eos_token_ids", set()))
    if tool_format(tokenizer) == "functiongemma":
        stops.add(tokenizer.special_id(functiongemma.START_RESPONSE))
    return stops


def tool_lark(tokenizer: Any, functions: list[dict], mode: str, parallel: bool = True) -> str:
    """The Lark grammar of a reply: with 'required' only calls; with 'auto' text or calls.
    Without `parallel`, exactly one call."""
    if tool_format(tokenizer) == "functiongemma":
        return functiongemma.call_lark(functions, mode, parallel)
    schema = gemma3_call_schema(functions, single=not parallel)
    schema["x-guidance"] = {"whitespace_flexible": True, "whitespace_pattern": JSON_WHITESPACE}
    call = f"call: %json {json.dumps(schema)}\n"
    if mode == "required":
        return "start: call\n" + call
    return f"start: TEXT | call\nTEXT: {_GEMMA3_TEXT}\n" + call


def tool_constraint(
    tokenizer: Any, n_vocab: int, functions: list[dict], mode: str, parallel: bool = True
) -> Constraint:
    """The constraint of a reply to a tool-enabled prompt, for mode 'auto' or 'required'."""
    lark = tool_lark(tokenizer, functions, mode, parallel)
    return Constraint(tokenizer, lark_grammar(lark), n_vocab, "tool call grammar")


def parse_tool_calls(tokenizer: Any, text: str, functions: list[dict]) -> list[dict] | None:
    """OpenAI-shaped calls in a finished reply, or None when the reply is text (a reply that
    fails to parse is text, never a call)."""
    if tool_format(tokenizer) == "functiongemma":
        return functiongemma.parse_calls(text, functions)
    return gemma3_parse(text, functions)
