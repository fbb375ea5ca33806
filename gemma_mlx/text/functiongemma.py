"""FunctionGemma's call format: <escape>-quoted values, a real parser, and the Lark grammar."""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import GemmaError
from .tool_calls import openai_call

START_CALL, END_CALL = "<start_function_call>", "<end_function_call>"
START_RESPONSE, END_RESPONSE = "<start_function_response>", "<end_function_response>"
ESCAPE = "<escape>"
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?\Z")
_CALL = re.compile(re.escape(START_CALL) + r"call:([^{<]+?)\{")


def dump_value(value: Any) -> str:
    """A value as FunctionGemma's template writes it: strings in <escape>, keys bare and
    sorted (its `dictsort`), JSON scalars."""
    if isinstance(value, str):
        return ESCAPE + value + ESCAPE
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{dump_value(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(dump_value(v) for v in value) + "]"
    return json.dumps(value)


def dump_call(name: str, arguments: dict) -> str:
    return f"{START_CALL}call:{name}{dump_value(arguments)}{END_CALL}"


class _Reader:
    """Recursive descent over one call's argument text."""

    def __init__(self, text: str, pos: int):
        self.text, self.pos = text, pos

    def fail(self, what: str) -> None:
        raise ValueError(f"{what} at offset {self.pos}")

    def value(self) -> Any:
        t, i = self.text, self.pos
        if t.startswith(ESCAPE, i):
            end = t.find(ESCAPE, i + len(ESCAPE))
            if end < 0:
                self.fail("unterminated <escape> string")
            self.pos = end + len(ESCAPE)
            return t[i + len(ESCAPE) : end]
        if t.startswith("{", i):
            return self.obj()
        if t.startswith("[", i):
            return self.array()
        m = re.compile(r"[^,\]}]*").match(t, i)
        word = m.group().strip()
        self.pos = m.end()
        scalars = {"true": True, "false": False, "null": None, "None": None}  # None: jinja's
        if word in scalars:
            return scalars[word]
        if _NUMBER.match(word):
            return json.loads(word)
        if not word:
            self.fail("missing value")
        return word  # a bare string: lenient, as the model sometimes omits <escape>

    def obj(self) -> dict:
        self.pos += 1
        out: dict[str, Any] = {}
        while not self.text.startswith("}", self.pos):
            if out:
                self.expect(",")
            colon = self.text.find(":", self.pos)
            if colon < 0:
                self.fail("missing ':' after a key")
            key = self.text[self.pos : colon].strip().replace(ESCAPE, "")
            if not key or any(c in key for c in "{}[],"):
                self.fail(f"bad key {key!r}")
            self.pos = colon + 1
            out[key] = self.value()
        self.pos += 1
        return out

    def array(self) -> list:
        self.pos += 1
        out: list[Any] = []
        while not self.text.startswith("]", self.pos):
            if out:
                self.expect(",")
            out.append(self.value())
        self.pos += 1
        return out

    def expect(self, s: str) -> None:
        if not self.text.startswith(s, self.pos):
            self.fail(f"expected {s!r}")
        self.pos += len(s)


def parse_calls(text: str, functions: list[dict] | None = None) -> list[dict] | None:
    """OpenAI-shaped calls from a reply's <start_function_call>... blocks (several allowed);
    None if there are none or any of them does not parse or names an unknown function."""
    names = None if functions is None else {f["name"] for f in functions}
    calls, pos = [], 0
    while (m := _CALL.search(text, pos)) is not None:
        name = m.group(1).strip()
        reader = _Reader(text, m.end() - 1)
        try:
            args = reader.obj()
            reader.expect(END_CALL)
        except (ValueError, IndexError):
            return None
        if names is not None and name not in names:
            return None
        calls.append(openai_call(name, args))
        pos = reader.pos
    return calls or None


# -- grammar --------------------------------------------------------------------------------------

_ANNOTATIONS = {"description", "title", "default", "examples", "$schema", "$comment"}
_KEYWORDS = {"type", "properties", "required", "items", "enum", "const", "anyOf", "oneOf",
             "additionalProperties", "minItems", "maxItems", "minLength", "maxLength", "pattern"}
_SCALARS = {"string": "string", "integer": "INT", "number": "NUM", "boolean": "BOOL",
            "null": '"null"'}
_LARK_HEAD = r"""
string: <escape> STR <escape>
STR: /(?s:.)*/
INT: /-?(0|[1-9][0-9]*)/
NUM: /-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/
BOOL: "true" | "false"
any: string | NUM | BOOL | "null" | anyobj | anyarr
anyobj: "{" (KEY ":" any ("," KEY ":" any)*)? "}"
anyarr: "[" (any ("," any)*)? "]"
KEY: /[A-Za-z_][A-Za-z0-9_.\-]*/
"""


class _Rules:
    """Lark rules for the values a JSON schema allows, in FunctionGemma's notation."""

    def __init__(self, where: str):
        self.where, self.rules, self.n = where, [], 0

    def add(self, body: str) -> str:
        self.n += 1
        self.rules.append(f"v{self.n}: {body}")
        return f"v{self.n}"

    def value(self, schema: Any, path: str) -> str:
        if schema is True or schema == {}:
            return "any"
        if not isinstance(schema, dict):
            raise GemmaError(f"{self.where}{path}: not a schema")
        extra = set(schema) - _ANNOTATIONS - _KEYWORDS
        if extra:
            raise GemmaError(f"{self.where}{path}: FunctionGemma calls cannot be constrained by "
                             f"{', '.join(sorted(extra))}")
        if "const" in schema or "enum" in schema:
            values = [schema["const"]] if "const" in schema else schema["enum"]
            return self.add(" | ".join(_literal(v) for v in values))
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return self.add(" | ".join(self.value(s, f"{path}.{key}[{i}]")
                                           for i, s in enumerate(schema[key])))
        kind = schema.get("type")
        if isinstance(kind, list):
            return self.add(" | ".join(self.value({**schema, "type": k}, path) for k in kind))
        if kind == "object" or "properties" in schema:
            return self.obj(schema, path)
        if kind == "array":
            return self.array(schema, path)
        if kind == "string" and {"minLength", "maxLength", "pattern"} & set(schema):
            return self.add(f"<escape> {_string_regex(schema)} <escape>")
        if kind in _SCALARS:
            return _SCALARS[kind]
        if kind is None:
            return "any"
        raise GemmaError(f"{self.where}{path}: unknown type {kind!r}")

    def array(self, schema: dict, path: str) -> str:
        """[v, ...] with minItems..maxItems values (the optional ones spelled out)."""
        item = self.value(schema.get("items", True), path + ".items")
        low, high = int(schema.get("minItems", 0)), schema.get("maxItems")
        if high is not None and int(high) < low:
            raise GemmaError(f"{self.where}{path}: maxItems < minItems")
        more, need = f'("," {item})', max(low - 1, 0)  # items after the first
        tail = [f"{more}*"] if high is None else [f"{more}?"] * (int(high) - max(low, 1))
        body = " ".join([item] + [more] * need + tail) if high is None or int(high) > 0 else ""
        if low == 0:
            body = f"({body})?" if body else ""
        return self.add(f'"[" {body} "]"')

    def obj(self, schema: dict, path: str) -> str:
        props = schema.get("properties", {})
        if not props:
            return "anyobj"
        required = set(schema.get("required", []))
        names = sorted(props)  # the order the template declares them in (dictsort)
        # tail(i, first): properties from i on, optional ones skippable
        memo: dict[tuple[int, bool], str] = {}

        def tail(i: int, first: bool) -> str:
            if i == len(names):
                return '""'
            if (i, first) not in memo:
                k = names[i]
                sep = "" if first else '"," '
                value = self.value(props[k], f"{path}.{k}")
                this = f'{sep}{json.dumps(k + ":")} {value} {tail(i + 1, False)}'
                body = this if k in required else f"{this} | {tail(i + 1, first)}"
                memo[(i, first)] = self.add(body)
            return memo[(i, first)]

        return self.add(f'"{{" {tail(0, True)} "}}"')


def _string_regex(schema: dict) -> str:
    if "pattern" in schema:  # JSON-schema patterns are unanchored; FunctionGemma strings whole
        body = schema["pattern"].removeprefix("^").removesuffix("$")
        if "minLength" in schema or "maxLength" in schema:
            raise GemmaError("FunctionGemma calls cannot combine pattern with a string length")
        return "/" + body.replace("/", "\\/") + "/"
    low, high = int(schema.get("minLength", 0)), schema.get("maxLength")
    return f"/(?s:.{{{low},{'' if high is None else int(high)}}})/"


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return f"<escape> {json.dumps(value)} <escape>"
    return json.dumps(dump_value(value))


def call_lark(functions: list[dict], mode: str, parallel: bool = True) -> str:
    """The Lark grammar of a reply: calls (several allowed), then <start_function_response> or
    the end; with mode 'auto' plain text is allowed instead (text cannot hold the call token)."""
    rules = _Rules("tools")
    calls = []
    for f in functions:
        rules.where = f"tool {f['name']!r} parameters"
        calls.append(f'"call:{f["name"]}" {rules.value(f["parameters"], "")}')
    head = f"call: <start_function_call> ({' | '.join(calls)}) <end_function_call>\n"
    start = "calls" if mode == "required" else "TEXT | calls"
    many = "call+" if parallel else "call"
    return (f"start: {start}\ncalls: {many} <start_function_response>?\nTEXT: /(?s:.)+/\n"
            + head + "\n".join(rules.rules) + _LARK_HEAD)
