"""Checkpoint chat templates: jinja2 in an immutable sandbox, with transformers' globals."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import GemmaError

MAX_OUTPUT_CHARS = 16 << 20  # far above any context (128K tokens are about 0.5M characters)
MAX_SECONDS = 10.0
_render = threading.local()  # the running render's deadline, per thread


def _tojson(x: Any, ensure_ascii: bool = False, indent: int | None = None,
            separators: tuple | None = None, sort_keys: bool = False) -> str:
    # transformers' tojson: jinja's own escapes HTML characters and sorts keys
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


def _raise(message: str) -> None:
    raise GemmaError(f"chat template: {message}")


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


@lru_cache(maxsize=1)
def _environment() -> Any:
    import jinja2.ext
    from jinja2 import nodes
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Bounded(ImmutableSandboxedEnvironment):
        """Stops a template that runs too long: every call and attribute read checks a
        deadline (the sandbox already blocks file access and attribute escapes)."""

        def _tick(self) -> None:
            if time.monotonic() > getattr(_render, "deadline", float("inf")):
                raise GemmaError(f"chat template: rendering took over {MAX_SECONDS:.0f} s")

        def call(self, context, obj, *args, **kwargs):  # noqa: ANN001
            self._tick()
            return super().call(context, obj, *args, **kwargs)

        def getattr(self, obj, attribute):  # noqa: ANN001
            self._tick()
            return super().getattr(obj, attribute)

        def getitem(self, obj, argument):  # noqa: ANN001
            self._tick()
            return super().getitem(obj, argument)

    class Generation(jinja2.ext.Extension):
        """`{% generation %}...{% endgeneration %}` (transformers' assistant-mask tag)."""

        tags = {"generation"}

        def parse(self, parser):  # noqa: ANN001
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return nodes.Scope(body, lineno=lineno)

    env = Bounded(trim_blocks=True, lstrip_blocks=True,
                  extensions=[Generation, jinja2.ext.loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise
    env.globals["strftime_now"] = _strftime_now
    return env


@lru_cache(maxsize=16)
def _compile(source: str) -> Any:
    from jinja2 import TemplateError

    try:
        return _environment().from_string(source)
    except TemplateError as e:
        raise GemmaError(f"chat template: cannot be compiled ({e})") from None


def render_template(source: str, **variables: Any) -> str:
    """Render a chat template as transformers does (messages, tools, add_generation_prompt,
    the special tokens' names), bounded in time and output size."""
    from jinja2 import TemplateError
    from jinja2.exceptions import SecurityError

    template = _compile(source)
    _render.deadline = time.monotonic() + MAX_SECONDS
    out, size = [], 0
    try:
        for piece in template.generate(**variables):
            size += len(piece)
            if size > MAX_OUTPUT_CHARS:
                raise GemmaError(f"chat template: output over {MAX_OUTPUT_CHARS} characters")
            out.append(piece)
    except SecurityError as e:
        raise GemmaError(f"chat template: blocked by the sandbox ({e})") from None
    except TemplateError as e:
        raise GemmaError(f"chat template: {e}") from None
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError,
            RecursionError) as e:
        raise GemmaError(f"chat template: failed on these messages ({e})") from None
    finally:
        _render.deadline = float("inf")
    return "".join(out)


def knows_tools(source: str) -> bool:
    """Whether a template renders tools or tool turns (the stock Gemma 3 one does neither)."""
    return "tools" in source or "tool_calls" in source


def _named(value: Any, where: str) -> str:
    """A template string, or the 'default' of a list of {name, template} (tokenizer_config)."""
    if isinstance(value, list):
        named = {t.get("name"): t.get("template") for t in value if isinstance(t, dict)}
        value = named.get("default", next(iter(named.values()), None))
    if not isinstance(value, str):
        raise GemmaError(f"{where}: chat_template must be a string or a list of "
                         "{name, template}")
    return value


def read_chat_template(path: Path) -> str | None:
    """A checkpoint directory's chat template: chat_template.jinja, chat_template.json, or
    tokenizer_config.json's chat_template (transformers' order); None if it has none."""
    if (path / "chat_template.jinja").is_file():
        return (path / "chat_template.jinja").read_text(encoding="utf-8")
    for name in ("chat_template.json", "tokenizer_config.json"):
        file = path / name
        if not file.is_file():
            continue
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise GemmaError(f"{file}: not valid JSON ({e})") from None
        if isinstance(data, dict) and data.get("chat_template") is not None:
            return _named(data["chat_template"], str(file))
    return None
