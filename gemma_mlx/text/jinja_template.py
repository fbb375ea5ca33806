"""Checkpoint chat templates: jinja2 in an immutable sandbox, with transformers' globals."""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import GemmaError

MAX_OUTPUT_CHARS = 16 << 20  # far above any context (128K tokens are about 0.5M characters)
MAX_SECONDS = 10.0
MAX_SOURCE_CHARS = 1 << 20  # real templates are 1-20 KB
MAX_ARGUMENT = 1 << 16  # widths, counts and repeats a template may ask of a filter or operator
_render = threading.local()  # the running render's deadline, per thread
_FORMAT_NUMBER = re.compile(r"\d+")


def _tick() -> None:
    if time.monotonic() > getattr(_render, "deadline", float("inf")):
        raise GemmaError(f"chat template: rendering took over {MAX_SECONDS:.0f} s")


def _too_big(what: str) -> GemmaError:
    return GemmaError(f"chat template: {what} is over the sandbox's limits")


def _check_size(value: Any, what: str) -> Any:
    if isinstance(value, (str, list, tuple, dict)) and len(value) > MAX_OUTPUT_CHARS:
        raise _too_big(what)
    return value


def _check_numbers(text: str, what: str) -> None:
    """Format strings may not ask for widths or precisions over MAX_ARGUMENT."""
    if any(int(n) > MAX_ARGUMENT for n in _FORMAT_NUMBER.findall(text)):
        raise _too_big(what)


def _bounded_filter(name: str, fn: Any) -> Any:
    """A filter that refuses huge numeric arguments and results (center(10**9), indent, ...)."""
    import functools

    @functools.wraps(fn)  # keeps jinja's pass_context/pass_eval_ctx markers
    def bounded(*args: Any, **kwargs: Any) -> Any:
        for a in (*args, *kwargs.values()):
            if isinstance(a, int) and not isinstance(a, bool) and abs(a) > MAX_ARGUMENT:
                raise _too_big(f"filter {name}({a})")
        if name == "replace" and len(args) >= 3 and isinstance(args[0], str):
            if len(args[0]) * max(1, len(str(args[2]))) > MAX_OUTPUT_CHARS:
                raise _too_big("filter replace")
        if name == "format" and args and isinstance(args[0], str):
            _check_numbers(args[0], "filter format")
        return _check_size(fn(*args, **kwargs), f"the result of filter {name}")

    return bounded


def _binop(op: str, left: Any, right: Any) -> Any:
    """`*`, `**`, `%` and `+` with results bounded before they are computed."""
    import operator

    ints = all(isinstance(x, int) for x in (left, right))
    if op == "**" and ints and abs(left) > 1 and right * max(1, abs(left).bit_length()) > 4096:
        raise _too_big("a power")
    if op == "*":
        if ints and left.bit_length() + right.bit_length() > 1 << 16:
            raise _too_big("a product")
        for seq, n in ((left, right), (right, left)):
            if isinstance(seq, (str, list, tuple)) and isinstance(n, int) and \
                    len(seq) * n > MAX_OUTPUT_CHARS:
                raise _too_big("a repeated sequence")
    if op == "%" and isinstance(left, str):
        _check_numbers(left, "a % format")
    if op == "+" and all(isinstance(x, (str, list, tuple)) for x in (left, right)) and \
            len(left) + len(right) > MAX_OUTPUT_CHARS:
        raise _too_big("a concatenation")
    table = {"*": operator.mul, "**": operator.pow, "%": operator.mod, "+": operator.add}
    return table[op](left, right)


def _trace(frame: Any, event: str, arg: Any) -> Any:
    """Checks the deadline on every line of template code, so loops that call nothing
    (nested ranges over an empty body) stop too."""
    if frame.f_code.co_filename != "<template>":
        return None
    _tick()
    return _trace_lines


def _trace_lines(frame: Any, event: str, arg: Any) -> Any:
    if event == "line":
        _tick()
    return _trace_lines


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
    from jinja2.utils import Namespace

    class Bounded(ImmutableSandboxedEnvironment):
        """Stops a template that runs too long or grows too big: every call, attribute read
        and line checks a deadline, and operators, filters and formats that could allocate
        without limit are checked first (the sandbox already blocks file access and
        attribute escapes)."""

        intercepted_binops = frozenset(["*", "**", "%", "+"])

        def call(self, context, obj, *args, **kwargs):  # noqa: ANN001
            _tick()
            for a in (*args, *kwargs.values()):
                if isinstance(a, int) and not isinstance(a, bool) and abs(a) > MAX_OUTPUT_CHARS:
                    raise _too_big(f"an argument of {a}")
            return _check_size(super().call(context, obj, *args, **kwargs), "a call's result")

        def call_binop(self, context, operator, left, right):  # noqa: ANN001
            _tick()
            return _binop(operator, left, right)

        def getattr(self, obj, attribute):  # noqa: ANN001
            _tick()
            return super().getattr(obj, attribute)

        def getitem(self, obj, argument):  # noqa: ANN001
            _tick()
            return super().getitem(obj, argument)

        def wrap_str_format(self, value):  # noqa: ANN001
            wrapped = super().wrap_str_format(value)
            if wrapped is None:
                return None
            _check_numbers(value.__self__, "a format string")

            def checked(*args, **kwargs):  # noqa: ANN002, ANN003
                if "{" in value.__self__.replace("{{", ""):  # nested widths come from args
                    for a in (*args, *kwargs.values()):
                        if isinstance(a, int) and abs(a) > MAX_ARGUMENT:
                            raise _too_big("a format width")
                return _check_size(wrapped(*args, **kwargs), "a formatted string")

            return checked

    class BoundedNamespace(Namespace):
        """namespace() whose attributes cannot grow past the limits (`ns.x = ns.x ~ ns.x`
        in a loop doubles a string each turn)."""

        def __setitem__(self, key, value):  # noqa: ANN001
            super().__setitem__(key, _check_size(value, f"namespace attribute {key!r}"))

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
    env.filters = {name: _bounded_filter(name, fn) for name, fn in env.filters.items()}
    env.globals.pop("lipsum", None)  # lipsum(n=10**9): text of any size, and no template needs it
    env.globals["namespace"] = BoundedNamespace
    env.globals["raise_exception"] = _raise
    env.globals["strftime_now"] = _strftime_now
    return env


@lru_cache(maxsize=16)
def _compile(source: str) -> Any:
    from jinja2 import TemplateError

    if len(source) > MAX_SOURCE_CHARS:
        raise GemmaError(f"chat template: {len(source):,} characters, over the "
                         f"{MAX_SOURCE_CHARS:,} limit")
    try:
        return _environment().from_string(source)
    except TemplateError as e:
        raise GemmaError(f"chat template: cannot be compiled ({e})") from None
    except Exception as e:  # jinja's parser and Python's compiler on hostile source
        raise GemmaError(f"chat template: cannot be compiled ({type(e).__name__}: "
                         f"{str(e)[:200]})") from None


def render_template(source: str, **variables: Any) -> str:
    """Render a chat template as transformers does (messages, tools, add_generation_prompt,
    the special tokens' names), bounded in time and output size."""
    from jinja2 import TemplateError
    from jinja2.exceptions import SecurityError

    template = _compile(source)
    _render.deadline = time.monotonic() + MAX_SECONDS
    out, size = [], 0
    traced = sys.gettrace() is None  # leave a debugger's or coverage's tracer alone
    if traced:
        sys.settrace(_trace)
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
    except GemmaError:
        raise
    except Exception as e:  # the template's own bug (1/0, a bad key...): report, not crash
        raise GemmaError(f"chat template: failed on these messages ({type(e).__name__}: "
                         f"{str(e)[:200]})") from None
    finally:
        if traced:
            sys.settrace(None)
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
    file = path / "chat_template.jinja"
    if file.is_file():
        try:
            return file.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise GemmaError(f"{file}: not UTF-8 text ({e})") from None
    for name in ("chat_template.json", "tokenizer_config.json"):
        file = path / name
        if not file.is_file():
            continue
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (ValueError, RecursionError) as e:  # bad JSON or UTF-8, deep nesting
            raise GemmaError(f"{file}: not valid JSON ({str(e)[:200]})") from None
        if isinstance(data, dict) and data.get("chat_template") is not None:
            return _named(data["chat_template"], str(file))
    return None
