"""Gemma 3's chat template (the jinja template HF ships), written out in Python."""

from __future__ import annotations

from typing import Any

from ..errors import GemmaError

IMAGE_PLACEHOLDER = "<start_of_image>"


def _text(content: Any) -> str:
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


def render_chat(
    messages: list[dict[str, Any]], add_generation_prompt: bool = True, bos: str = "<bos>"
) -> str:
    """`<bos><start_of_turn>user\\n{system}\\n\\n{text}<end_of_turn>\\n<start_of_turn>model\\n`.

    A system message becomes a prefix of the first user turn; roles must alternate.
    """
    prefix = ""
    if messages and messages[0].get("role") == "system":
        content = messages[0]["content"]
        prefix = (content if isinstance(content, str) else content[0]["text"]) + "\n\n"
        messages = messages[1:]
    out = [bos]
    for i, message in enumerate(messages):
        role = message.get("role")
        if (role == "user") != (i % 2 == 0):
            raise GemmaError("conversation roles must alternate user/assistant/user/...")
        role = "model" if role == "assistant" else role
        first = prefix if i == 0 else ""
        out.append(f"<start_of_turn>{role}\n{first}{_text(message['content'])}<end_of_turn>\n")
    if add_generation_prompt:
        out.append("<start_of_turn>model\n")
    return "".join(out)
