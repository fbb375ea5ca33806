"""Constrained decoding: 31 schemas on a tiny model and the real 270M, masks vs llguidance."""

from __future__ import annotations

import json
import subprocess
import sys

import jsonschema
import llguidance
import llguidance.numpy as llg_np
import mlx.core as mx
import numpy as np
import pytest

from gemma_mlx.errors import GemmaError
from gemma_mlx.generation.constraints import Constraint, lark_grammar, make_constraint
from gemma_mlx.generation.generate import generate_step, stream_generate

from .conftest import random_vocab_model
from .schema_suite import SCHEMAS

VOCAB = 262144
FORMATS = jsonschema.Draft202012Validator.FORMAT_CHECKER


def _valid(text: str, schema: dict) -> None:
    jsonschema.validate(json.loads(text), schema, format_checker=FORMATS)


@pytest.fixture(scope="module")
def tokenizer(model_270m):
    return model_270m[1]


@pytest.fixture(scope="module")
def tiny_model():
    """A random 2-layer Gemma 3 with the real 262,144-token vocabulary."""
    return random_vocab_model(0, max_position_embeddings=4096)


@pytest.fixture(scope="module")
def short_token_bias(tokenizer):
    """Favours short tokens and closing punctuation, so a random model finishes strings and
    values within a few dozen tokens; the grammar alone decides what is allowed."""
    lengths = np.array([len(p.encode()) for p in tokenizer.pieces], dtype=np.float32)
    bias = -3.0 * lengths
    for piece in ('"', "}", "]", ","):
        bias[tokenizer.convert_tokens_to_ids(piece)] += 6.0
    return mx.array(bias)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_tiny_model_outputs_validate(name, tiny_model, tokenizer, short_token_bias):
    schema = SCHEMAS[name]
    prompt = mx.array(tokenizer.encode("JSON:"))
    for seed in range(2):
        mx.random.seed(seed)
        c = make_constraint(tokenizer, VOCAB, json_schema=schema)
        steps = generate_step(
            prompt, tiny_model, max_tokens=160, constraint=c,
            sampler=lambda lp: mx.random.categorical(lp, axis=-1),
            logits_processors=[lambda _, x: 0.2 * x + short_token_bias],
        )
        ids = [t for t in steps if t not in tokenizer.eos_token_ids]
        assert c.is_accepting, f"{name}: unfinished after 160 tokens"
        _valid(tokenizer.decode(ids), schema)


@pytest.mark.slow
def test_real_270m_outputs_validate(model_270m):
    """Greedy, through stream_generate: every finished output validates. A third of the suite
    keeps CI short; benchmarks/structured_output.py runs all of it."""
    model, tokenizer = model_270m
    finished, names = 0, sorted(SCHEMAS)[::3]
    for name in names:
        schema = SCHEMAS[name]
        prompt = f"Example of a JSON value for the schema {json.dumps(schema)}:\n"
        rs = list(stream_generate(model, tokenizer, prompt, json_schema=schema, max_tokens=32))
        if rs[-1].finish_reason == "stop":
            finished += 1
            _valid("".join(r.text for r in rs), schema)
        else:
            assert rs[-1].finish_reason == "length"
    assert finished >= len(names) // 2


def _walk_and_compare(tokenizer, grammar: str, steps: int, rng: np.random.Generator) -> int:
    """Random walk through allowed tokens; at each state our MLX mask == llguidance's own."""
    ours = Constraint(tokenizer, grammar, VOCAB)
    ref = llguidance.LLMatcher(ours._llg, grammar, log_level=0)
    bits = llg_np.allocate_token_bitmask(1, VOCAB)
    checked = 0
    for _ in range(steps):
        logits = mx.zeros((1, VOCAB))
        allowed = np.flatnonzero(np.isfinite(np.array(ours.apply(logits))[0]))
        llg_np.fill_next_token_bitmask(ref, bits)
        ref_logits = np.zeros((1, VOCAB), dtype=np.float32)
        llg_np.apply_token_bitmask_inplace(ref_logits, bits)
        assert np.array_equal(allowed, np.flatnonzero(np.isfinite(ref_logits[0])))
        checked += 1
        text_ids = [t for t in allowed if t not in tokenizer.eos_token_ids]
        if not text_ids:
            break
        token = int(rng.choice(text_ids))
        ours.consume(token)
        assert ref.consume_token(token)
    return checked


@pytest.mark.parametrize("kind,source", [
    ("regex", r"(yes|no|maybe) [0-9]{1,3}(\.[0-9]+)? ?[a-z]{0,6}"),
    ("regex", r"[A-Z][a-z]+, [A-Z]{2} [0-9]{5}"),
    ("lark", 'start: greeting " " name "!"\ngreeting: "hello" | "hi"\nname: /[A-Z][a-z]{1,8}/'),
    ("lark", 'start: expr\nexpr: term (("+"|"-") term)*\nterm: NUM | "(" expr ")"\n'
             'NUM: /[0-9]{1,4}/'),
])
def test_masks_equal_llguidance_on_random_states(tokenizer, kind, source):
    import llguidance as llg

    grammar = (llg.LLMatcher.grammar_from_regex(source) if kind == "regex"
               else lark_grammar(source))
    assert _walk_and_compare(tokenizer, grammar, 12, np.random.default_rng(0)) >= 3


def test_regex_and_lark_outputs_match(tiny_model, tokenizer, short_token_bias):
    import re

    prompt = mx.array(tokenizer.encode("Code:"))
    for kind, source, check in [
        ("regex", r"[A-Z]{3}-[0-9]{2,4}", re.compile(r"[A-Z]{3}-[0-9]{2,4}").fullmatch),
        ("grammar", 'start: "(" NUM ("," NUM)? ("," NUM)? ")"\nNUM: /[0-9]{1,3}/',
         re.compile(r"\([0-9]{1,3}(,[0-9]{1,3}){0,2}\)").fullmatch),
    ]:
        c = make_constraint(tokenizer, VOCAB, **{kind: source})
        ids = list(generate_step(prompt, tiny_model, max_tokens=60, constraint=c,
                                 logits_processors=[lambda _, x: 0.2 * x + short_token_bias]))
        text = tokenizer.decode([t for t in ids if t not in tokenizer.eos_token_ids])
        assert check(text), (kind, text)


def test_rollback_matches_a_fresh_constraint(tokenizer):
    schema = SCHEMAS["order_extraction"]
    ids = tokenizer.encode('{"customer": "Ana", "items": [{"product": "tea", "quantity": 2}]',
                           add_special_tokens=False)
    c = make_constraint(tokenizer, VOCAB, json_schema=schema)
    for t in ids:
        c.consume(t)
    c.rollback(4)
    fresh = make_constraint(tokenizer, VOCAB, json_schema=schema)
    for t in ids[:-4]:
        fresh.consume(t)
    assert np.array_equal(c.allowed(), fresh.allowed()) and c.consumed == len(ids) - 4
    with pytest.raises(GemmaError, match="cannot roll back"):
        c.rollback(len(ids))


def test_json_whitespace_is_bounded(tokenizer):
    c = make_constraint(tokenizer, VOCAB, json_schema={"type": "object"})
    newline = tokenizer.convert_tokens_to_ids("\n")
    c.consume(tokenizer.encode("{", add_special_tokens=False)[0])
    runs = 0
    while newline in c.allowed() and runs < 100:
        c.consume(newline)
        runs += 1
    assert runs == 1  # one newline, then only indentation or content


@pytest.mark.parametrize("kwargs,message", [
    ({"json_schema": {"type": "array", "uniqueItems": True}}, "Unimplemented keys.*uniqueItems"),
    ({"json_schema": {"type": "string", "pattern": "(?<=a)b"}}, "look-around"),
    ({"json_schema": {"$ref": "#/$defs/missing"}}, "does not exist"),
    ({"json_schema": {"type": "string", "format": "weird"}}, "Unknown format"),
    ({"json_schema": "{not json"}, "not valid JSON"),
    ({"regex": "a{3"}, "regex:.*unclosed counted repetition"),
    ({"grammar": "start: foo\nfoo: bar"}, 'grammar:.*unknown name: "bar"'),
    ({"regex": "a", "grammar": "start: a"}, "give one constraint"),
])
def test_bad_constraints_fail_before_generation(tokenizer, kwargs, message):
    with pytest.raises(GemmaError, match=message):
        make_constraint(tokenizer, VOCAB, **kwargs)


@pytest.mark.slow
def test_unfinished_output_reports_length(model_270m):
    model, tokenizer = model_270m
    schema = {"type": "array", "items": {"type": "string"}, "minItems": 50}
    rs = list(stream_generate(model, tokenizer, "List:", json_schema=schema, max_tokens=5))
    assert rs[-1].finish_reason == "length" and rs[-1].tool_calls is None


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gemma_mlx.cli", *args], capture_output=True,
                          text=True, timeout=600)


@pytest.mark.slow
def test_cli_json_schema_regex_and_errors(tmp_path):
    person = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 12},
                                               "age": {"type": "integer", "maximum": 120}},
              "required": ["name", "age"], "additionalProperties": False}
    schema = tmp_path / "s.json"
    schema.write_text(json.dumps(person))
    r = _cli("generate", "--prompt", "A person as JSON:", "--json-schema", str(schema),
             "--max-tokens", "40")
    assert r.returncode == 0, r.stderr
    text, stats = r.stdout.split("\n==========\n")
    _valid(text.strip(), person)
    assert "Generation:" in stats
    r = _cli("generate", "--prompt", "Year:", "--regex", "(19|20)[0-9]{2}", "--max-tokens", "8")
    assert r.returncode == 0 and r.stdout.split("\n")[0].strip().isdigit(), r.stdout
    r = _cli("generate", "--json-schema", '{"type": "strin"}')
    assert r.returncode == 1 and "Invalid type: strin" in r.stderr and "Traceback" not in r.stderr
