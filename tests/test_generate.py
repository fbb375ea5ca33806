"""Sampling, the generation loop against a cache-free reference, streaming, and the CLI."""

from __future__ import annotations

import subprocess
import sys

import mlx.core as mx
import numpy as np
import pytest

from gemma_mlx.errors import GemmaError
from gemma_mlx.formats.loading import load
from gemma_mlx.generation.generate import StreamingDetokenizer, generate_step, stream_generate
from gemma_mlx.generation.sampling import make_repetition_penalty, make_sampler

from .conftest import FIXTURES


def test_samplers_reduce_to_argmax_at_their_limits():
    mx.random.seed(0)
    logprobs = mx.log(mx.softmax(mx.random.normal((4, 100)) * 3, axis=-1))
    best = np.array(logprobs.argmax(-1))
    for sampler in (make_sampler(0.0), make_sampler(1.0, top_k=1),
                    make_sampler(1.0, top_p=1e-6), make_sampler(1.0, min_p=0.999)):
        assert np.array_equal(np.array(sampler(logprobs)), best)


def test_top_k_and_top_p_only_draw_from_the_kept_set():
    mx.random.seed(1)
    probs = mx.array([[0.5, 0.3, 0.15, 0.05]])
    lp = mx.log(probs)
    draws_k = {int(make_sampler(1.0, top_k=2)(lp)[0]) for _ in range(200)}
    draws_p = {int(make_sampler(1.0, top_p=0.7)(lp)[0]) for _ in range(200)}
    assert draws_k == {0, 1} and draws_p == {0, 1}


def test_repetition_penalty_formula():
    logits = mx.array([[2.0, -2.0, 1.0]])
    out = np.array(make_repetition_penalty(2.0)([0, 1], logits))
    assert np.allclose(out, [[1.0, -4.0, 1.0]])


def test_greedy_generation_equals_argmax_of_full_forward():
    """Cached prefill (chunked across the window) + decode == recomputing everything."""
    model, _ = load(FIXTURES / "text" / "gqa")
    prompt = np.load(FIXTURES / "text" / "gqa" / "reference.npz")["input_ids"][0, :19].tolist()
    got = list(generate_step(mx.array(prompt), model, max_tokens=12, prefill_step_size=5))
    ids = list(prompt)
    for _ in range(12):
        ids.append(int(model(mx.array([ids]))[0, -1].argmax()))
    assert got == ids[len(prompt):]


def test_stream_generate_reports_statistics():
    model, _ = load(FIXTURES / "text" / "mqa")
    responses = list(stream_generate(model, None, [2, 5, 9, 11], max_tokens=6))
    last = responses[-1]
    assert len(responses) == 6 and last.finish_reason == "length"
    assert last.prompt_tokens == 4 and last.generation_tokens == 6
    assert last.prompt_tps > 0 and last.generation_tps > 0 and last.peak_memory > 0


def test_prompt_longer_than_context_is_refused():
    model, _ = load(FIXTURES / "text" / "mqa")
    with pytest.raises(GemmaError, match="context is 512"):
        next(stream_generate(model, None, [2] * 600, max_tokens=1))


@pytest.mark.slow
def test_real_270m_generation_and_streaming(model_270m):
    model, tokenizer = model_270m
    pieces, tokens = [], []
    for r in stream_generate(model, tokenizer, "The capital of France is", max_tokens=10):
        pieces.append(r.text)
        tokens.append(r.token)
    assert "".join(pieces) == tokenizer.decode(tokens)
    # transformers' GGUF loader, float32, greedy (the base 270M does not say "Paris")
    ref = np.load(FIXTURES / "gguf" / "hf_gguf_reference.npz")["prompt_greedy"]
    # (token 12 differs: the requantized Q6_K tensors tip a near tie)
    assert tokens == ref[:10].tolist()


def test_streaming_detokenizer_holds_back_partial_utf8(model_270m):
    _, tokenizer = model_270m
    text = "naïve café 日本語 🙂 done\nnext line"
    ids = tokenizer.encode(text, add_special_tokens=False)
    detok = StreamingDetokenizer(tokenizer)
    pieces = [detok.add(i) for i in ids]
    assert "".join(pieces) == text and all("\ufffd" not in p for p in pieces)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gemma_mlx.cli", *args],
                          capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("args, message", [
    (["generate", "--model", "/no/such/dir"], "no such file or directory"),
    (["generate", "--model", str(FIXTURES / "text" / "gqa")], "has no tokenizer"),
])
def test_cli_errors_are_one_message_without_traceback(args, message):
    r = _cli(*args)
    assert r.returncode == 1
    assert message in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_cli_generate_on_the_default_model():
    r = _cli("generate", "--prompt", "The capital of France is", "--max-tokens", "8", "--temp",
             "0")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(" the capital of the country of France.")  # as transformers
    for field in ("Prompt:", "Generation:", "tokens-per-sec", "Peak memory:"):
        assert field in r.stdout


@pytest.mark.slow
def test_cli_chat_keeps_history_and_quits_on_eof():
    r = subprocess.run([sys.executable, "-m", "gemma_mlx.cli", "chat", "--max-tokens", "4"],
                       input="Hello\nAnd again\n", capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count(">> ") == 3 and "Traceback" not in r.stderr
