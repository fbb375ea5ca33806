"""Gemma 3's chat template (the jinja template HF ships) in Python, plus tools and tool turns."""

from __future__ import annotations

from typing import Any

from ..errors import GemmaError
from .tool_calls import check_tools, gemma3_render_calls, gemma3_render_result, gemma3_tool_block

IMAGE_PLACEHOLDER = "<start_of_image>"


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content.strip()
    if isinstance(content, list):
        parts = []
        for item in content:
            kind = item.get("type")
            if kind == "image":
                parts.append(IMAGE_PLACEHOLDER)
            elif kind == "text":
                parts.append(item["text"].strip())
        return "".join(parts)
    raise GemmaError(f"message content must be a string or a list of parts, not {type(content)}")


def _turns(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(role, text) turns: tool results become user turns (merged with a following user
    message), assistant tool calls become the calls' text."""
    turns: list[tuple[str, str]] = []
    for i, message in enumerate(messages):
        role = message.get("role")
        if role == "tool":
            role, text = "user", gemma3_render_result(message.get("content", ""))
        elif role == "assistant" and message.get("tool_calls"):
            calls = gemma3_render_calls(message["tool_calls"])
            text = "\n".join(t for t in (_text(message.get("content")), calls) if t)
        elif isinstance(role, str) and role:  # as the stock template: other roles by name
            text = _text(message.get("content"))
        else:
            raise GemmaError(f"messages[{i}].role: missing")
        role = "model" if role == "assistant" else role
        if turns and turns[-1][0] == role == "user" and (messages[i - 1].get("role") == "tool"):
            turns[-1] = (role, turns[-1][1] + "\n" + text)
        else:
            turns.append((role, text))
    return turns


def render_chat(
    messages: list[dict[str, Any]], add_generation_prompt: bool = True, bos: str = "<bos>",
    tools: list[dict] | None = None,
) -> str:
    """`<bos><start_of_turn>user\\n{system}\\n\\n{text}<end_of_turn>\\n<start_of_turn>model\\n`.

    A system message becomes a prefix of the first user turn; roles must alternate. With
    `tools`, the function-calling instruction and definitions (serving.md §5.1, JSON form)
    come first in the first user turn; `role: "tool"` results are user turns.
    """
    prefix = ""
    if messages and messages[0].get("role") == "system":
        content = messages[0]["content"]
        if not isinstance(content, str):  # transformers' template takes the first part's text
            first = content[0] if isinstance(content, list) and content else None
            if not isinstance(first, dict) or not isinstance(first.get("text"), str):
                raise GemmaError("the system message needs text (a string, or a first part "
                                 "with text)")
            content = first["text"]
        prefix = content + "\n\n"
        messages = messages[1:]
    functions = check_tools(tools)
    if functions:
        prefix = gemma3_tool_block(functions) + "\n\n" + prefix
    out = [bos]
    for i, (role, text) in enumerate(_turns(messages)):
        if (role == "user") != (i % 2 == 0):
            raise GemmaError("conversation roles must alternate user/assistant/user/...")
        first = prefix if i == 0 else ""
        out.append(f"<start_of_turn>{role}\n{first}{text}<end_of_turn>\n")
    if add_generation_prompt:
        out.append("<start_of_turn>model\n")
    return "".join(out)
