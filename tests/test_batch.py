"""Continuous batching: batched greedy == each prompt alone, joins, leaves, wraps, constraints."""

from __future__ import annotations

import json

import mlx.core as mx
import numpy as np
import pytest

from gemma_mlx.errors import GemmaError
from gemma_mlx.formats.loading import load
from gemma_mlx.generation.batch import BatchEngine, Request, batch_generate, kv_bytes
from gemma_mlx.generation.constraints import make_constraint
from gemma_mlx.generation.generate import generate_step

from .conftest import FIXTURES, random_vocab_model


def _alone(model, prompt: list[int], n: int) -> list[int]:
    return list(generate_step(mx.array(prompt), model, max_tokens=n))


@pytest.mark.parametrize("case, slack", [("gqa", 0), ("mqa", 0), ("layer_types", 0),
                                         ("layer_types", 5)])
def test_batched_greedy_equals_each_prompt_alone(case, slack):
    """Different lengths, generations that wrap the sliding window (8) several times, small
    prefill chunks, and a batch narrower than the job: sequences join and leave mid-batch.
    With ring slack (the server's, for rollback) the rings are window + slack slots."""
    model, _ = load(FIXTURES / "text" / case)
    rng = np.random.default_rng(0)
    vocab = model.config.vocab_size
    prompts = [rng.integers(3, vocab, size=n).tolist() for n in (3, 17, 9, 30, 1, 12)]
    lengths = [20, 5, 33, 11, 26, 2]
    engine = BatchEngine(model, None, max_batch=3, prefill_step_size=7, slack=slack)
    for i, (p, n) in enumerate(zip(prompts, lengths, strict=True)):
        engine.submit(Request(p, n, stops=set(), id=i))
    got: dict[int, list[int]] = {i: [] for i in range(len(prompts))}
    widths = []
    while engine.has_work:
        for e in engine.step():
            got[e.id].append(e.token)
        widths.append(len(engine.running))
    assert max(widths) == 3 and engine.stats["prompt_tokens"] == sum(map(len, prompts))
    for i, (p, n) in enumerate(zip(prompts, lengths, strict=True)):
        assert got[i] == _alone(model, p, n), f"sequence {i}"


def test_per_sequence_settings_stops_and_max_tokens():
    model, _ = load(FIXTURES / "text" / "gqa")
    p = [5, 9, 40, 2]
    ref = _alone(model, p, 12)
    engine = BatchEngine(model, None, max_batch=4)
    engine.submit(Request(p, 12, stops=set(), id="full"))
    engine.submit(Request(p, 4, stops=set(), id="short"))
    engine.submit(Request(p, 12, stops={ref[6]}, id="stop"))
    mx.random.seed(0)
    engine.submit(Request(p, 12, sampler=lambda lp: mx.random.categorical(lp * 0.0),
                          stops=set(), id="uniform"))
    out: dict = {}
    reasons: dict = {}
    for e in engine.run():
        out.setdefault(e.id, []).append(e.token)
        if e.finish_reason:
            reasons[e.id] = e.finish_reason
    assert out["full"] == ref and out["short"] == ref[:4]
    assert out["stop"] == ref[: ref.index(ref[6]) + 1] and reasons["stop"] == "stop"
    assert reasons["full"] == reasons["short"] == "length"
    assert len(out["uniform"]) == 12 and out["uniform"] != ref


def test_kv_budget_bounds_the_running_sequences():
    model, _ = load(FIXTURES / "text" / "gqa")
    one = kv_bytes(model, 4 + 10)
    engine = BatchEngine(model, None, max_batch=8, kv_budget=int(2.5 * one))
    for i in range(5):
        engine.submit(Request([3, 4, 5, 6], 10, stops=set(), id=i))
    most = 0
    while engine.has_work:
        engine.step()
        most = max(most, len(engine.running))
    assert most == 2
    with pytest.raises(GemmaError, match="needs .* GB of KV cache"):
        engine.submit(Request(list(range(3, 300)), 200))


@pytest.fixture(scope="module")
def tiny_vocab_model():
    """A random 2-layer Gemma 3 with the real 262,144-token vocabulary."""
    return random_vocab_model(0)


def test_per_sequence_constraints_in_one_batch(tiny_vocab_model, model_270m):
    """Each row keeps its own grammar state; the result equals the same constraint alone."""
    tok = model_270m[1]
    schemas = [{"type": "string", "enum": ["alpha", "beta", "gamma"]},
               {"type": "integer", "minimum": 0, "maximum": 999},
               None]
    prompts = [tok.encode(t) for t in ("Pick:", "Number:", "Free:")]
    engine = BatchEngine(tiny_vocab_model, tok, max_batch=3)
    for i, (p, sch) in enumerate(zip(prompts, schemas, strict=True)):
        c = make_constraint(tok, 262144, json_schema=sch) if sch else None
        engine.submit(Request(p, 8, constraint=c, id=i))
    out: dict = {}
    for e in engine.run():
        out.setdefault(e.id, []).append(e.token)
    for i, (p, sch) in enumerate(zip(prompts, schemas, strict=True)):
        c = make_constraint(tok, 262144, json_schema=sch) if sch else None
        alone = list(generate_step(mx.array(p), tiny_vocab_model, max_tokens=8, constraint=c))
        n = next((k + 1 for k, t in enumerate(alone) if t in tok.eos_token_ids), len(alone))
        assert out[i] == alone[:n], i
    assert json.loads(tok.decode(out[0])) in ("alpha", "beta", "gamma")
    assert 0 <= json.loads(tok.decode(out[1])) <= 999


@pytest.mark.slow
def test_batch_generate_on_the_real_270m(model_270m):
    model, tok = model_270m
    prompts = ["The capital of France is", "1, 2, 3, 4,", "def fibonacci(n):",
               "Water boils at", "The opposite of hot is"]
    res = batch_generate(model, tok, prompts, max_tokens=12, batch_size=3)
    assert len(res.texts) == 5 and all(res.finish_reasons)
    assert res.stats["generation_tokens"] == sum(map(len, res.tokens))
    assert res.stats["peak_memory"] > 0 and res.stats["generation_tps"] > 0
    # agreement with each prompt alone (4-bit weights: the batched head takes the dense path)
    same = 0
    for p, toks in zip(prompts, res.tokens, strict=True):
        alone = list(generate_step(mx.array(tok.encode(p)), model, max_tokens=len(toks)))
        same += sum(a == b for a, b in zip(alone, toks, strict=False))
    assert same >= 0.8 * sum(map(len, res.tokens))


def test_logprobs_are_the_log_softmax_of_each_step():
    model, _ = load(FIXTURES / "text" / "gqa")
    p = [5, 9, 40, 2, 17]
    engine = BatchEngine(model, None, max_batch=2)
    engine.submit(Request(p, 4, stops=set(), logprobs=3, id="lp"))
    engine.submit(Request(p[:3], 6, stops=set(), id="other"))
    events = [e for e in engine.run() if e.id == "lp"]
    tokens = p + [e.token for e in events]
    logits = model(mx.array(tokens)[None])[0].astype(mx.float32)
    for i, e in enumerate(events):
        ref = np.array(logits[len(p) - 1 + i] - mx.logsumexp(logits[len(p) - 1 + i]))
        assert e.logprob == pytest.approx(float(ref[e.token]), abs=1e-4)
        top = [t for t, _ in e.top_logprobs]
        assert top == np.argsort(-ref)[:3].tolist() and top[0] == e.token  # greedy
        assert [v for _, v in e.top_logprobs] == pytest.approx(np.sort(ref)[::-1][:3],
                                                               abs=1e-4)


def test_seeded_samplers_repeat_whatever_runs_beside_them():
    from gemma_mlx.generation.sampling import make_sampler

    model, _ = load(FIXTURES / "text" / "gqa")
    runs = []
    for company in (0, 2):
        engine = BatchEngine(model, None, max_batch=4)
        engine.submit(Request([5, 9, 40], 8, make_sampler(1.0, seed=3), stops=set(), id="s"))
        for k in range(company):
            engine.submit(Request([7, k + 3], 8, make_sampler(1.0), stops=set(), id=k))
        runs.append([e.token for e in engine.run() if e.id == "s"])
    assert runs[0] == runs[1]
