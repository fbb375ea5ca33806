"""JSON-schema constrained decoding: overhead vs the same decode unconstrained, mask and compile
costs, and the 31-schema suite on the embedded 270M, in one run.

    .venv/bin/python benchmarks/structured_output.py [--tokens 48] [--runs 3] [--suite]

The overhead runs decode exactly --tokens tokens both ways (greedy, same prompt): the schema
asks for a long array of strings, so neither side stops early. mlx-lm has no constraint to
compare with (it ignores response_format), so the peer is our own unconstrained loop.
"""

from __future__ import annotations

import gemma_mlx  # noqa: F401  (first: OpenBLAS for MLX on Linux)

# isort: split

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import mlx.core as mx
import numpy as np

from gemma_mlx.formats.default_model import ensure_default_model
from gemma_mlx.formats.loading import load
from gemma_mlx.generation import constraints
from gemma_mlx.generation.constraints import make_constraint
from gemma_mlx.generation.generate import generate_step, stream_generate

SCHEMA = {"type": "object", "properties": {"cities": {
    "type": "array", "items": {"type": "string"}, "minItems": 400}}, "required": ["cities"]}
PROMPT = "A JSON object listing the largest cities of Europe:\n"


def decode_tps(model, tokenizer, n: int, schema: dict | None) -> tuple[float, list[int]]:
    ids = mx.array(tokenizer.encode(PROMPT))
    c = make_constraint(tokenizer, model.config.vocab_size, json_schema=schema) if schema \
        else None
    steps = generate_step(ids, model, max_tokens=n, constraint=c)
    out = [next(steps)]  # the prefill is not part of decode
    start = time.perf_counter()
    out += list(steps)
    return (len(out) - 1) / (time.perf_counter() - start), out


def mask_times(model, tokenizer, tokens: list[int]) -> list[float]:
    """Seconds per mask (computed and applied to a [1, V] logits row), replaying `tokens`."""
    c = make_constraint(tokenizer, model.config.vocab_size, json_schema=SCHEMA)
    logits = mx.zeros((1, model.config.vocab_size))
    times = []
    for t in tokens:
        start = time.perf_counter()
        mx.eval(c.apply(logits))
        times.append(time.perf_counter() - start)
        c.consume(t)
    return times


def suite(model, tokenizer) -> None:
    import jsonschema

    sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
    from schema_suite import SCHEMAS

    formats = jsonschema.Draft202012Validator.FORMAT_CHECKER
    counts = {"valid": 0, "invalid": 0, "length": 0}
    for name, schema in SCHEMAS.items():
        prompt = f"Example of a JSON value for the schema {json.dumps(schema)}:\n"
        rs = list(stream_generate(model, tokenizer, prompt, json_schema=schema, max_tokens=64))
        text, verdict = "".join(r.text for r in rs), rs[-1].finish_reason
        if verdict == "stop":
            try:
                jsonschema.validate(json.loads(text), schema, format_checker=formats)
                verdict = "valid"
            except (jsonschema.ValidationError, json.JSONDecodeError) as e:
                verdict = f"invalid: {str(e).splitlines()[0]}"
        counts[verdict.split(":")[0]] += 1
        print(f"  {name:26s} {len(rs):3d} tokens  {verdict:8s} {text[:60]!r}")
    print(f"suite: {counts['valid']} valid, {counts['invalid']} invalid, {counts['length']} "
          f"unfinished at 64 tokens (finish_reason 'length'), of {len(SCHEMAS)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tokens", type=int, default=48)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--suite", action="store_true", help="also run the 31-schema suite")
    args = ap.parse_args()
    model, tokenizer = load(ensure_default_model())

    start = time.perf_counter()
    constraints.grammar_tokenizer(tokenizer, model.config.vocab_size)
    print(f"grammar tokenizer (once per model): {time.perf_counter() - start:.2f} s")
    start = time.perf_counter()
    make_constraint(tokenizer, model.config.vocab_size, json_schema=SCHEMA)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    make_constraint(tokenizer, model.config.vocab_size, json_schema=SCHEMA)
    print(f"schema compile: {cold * 1e3:.2f} ms, cached: {(time.perf_counter() - start) * 1e3:.3f}"
          " ms")

    decode_tps(model, tokenizer, 4, SCHEMA)  # warm-up: compiled mask op, caches
    plain, constrained, tokens = [], [], []
    for _ in range(args.runs):  # alternate, so drift hits both sides alike
        plain.append(decode_tps(model, tokenizer, args.tokens, None)[0])
        tps, tokens = decode_tps(model, tokenizer, args.tokens, SCHEMA)
        constrained.append(tps)
    p, c = statistics.median(plain), statistics.median(constrained)
    print(f"decode, {args.tokens} tokens, median of {args.runs}: unconstrained {p:.2f} tok/s, "
          f"JSON schema {c:.2f} tok/s, ratio {c / p:.3f} (overhead {(1 - c / p) * 100:.1f}%)")
    print(f"constrained output: {tokenizer.decode(tokens)[:80]!r}")
    t = np.array(mask_times(model, tokenizer, tokens)) * 1e3
    print(f"mask + apply per token: median {np.median(t):.3f} ms, mean {t.mean():.3f} ms, "
          f"max {t.max():.3f} ms; peak memory {mx.get_peak_memory() / 1e9:.3f} GB")
    if args.suite:
        suite(model, tokenizer)


if __name__ == "__main__":
    main()
