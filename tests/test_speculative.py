"""Speculative decoding: greedy output equals plain decoding past many window wraps (draft
model and prompt lookup, quantized KV, grammars, images, the real 270M); sampling keeps the
target's distribution (chi-square tests)."""

from __future__ import annotations

import math
import subprocess
import sys

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_map

from gemma_mlx.attention import image_blocks
from gemma_mlx.errors import GemmaError
from gemma_mlx.formats.loading import load
from gemma_mlx.generation.generate import generate_step, stream_generate
from gemma_mlx.generation.sampling import make_sampler
from gemma_mlx.generation.speculative import (
    _accept_sampled,
    check_draft_model,
    lookup_draft,
    speculative_generate_step,
)

from .conftest import FIXTURES, random_vocab_model

# two layers, sliding (window 8) then global: a 60-token prompt plus 80 tokens wraps 17 times
CONFIG = dict(_sliding_window_pattern=2, max_position_embeddings=4096)
PROMPT = list(range(1000, 1030)) * 2
VARIED = dict(repetition_penalty=1.5)  # random weights otherwise repeat one token


@pytest.fixture(scope="module")
def target():
    return random_vocab_model(0, **CONFIG)


def perturbed(seed: int, noise: float):
    """The target's weights plus noise: a draft that agrees with it part of the time."""
    model = random_vocab_model(0, **CONFIG)
    mx.random.seed(seed)
    model.update(tree_map(lambda w: w + noise * w.std() * mx.random.normal(w.shape),
                          model.parameters()))
    mx.eval(model.parameters())
    return model


@pytest.fixture(scope="module")
def draft():
    return perturbed(3, 0.1)  # accepts about 45% of its tokens (measured)


def _tokens(model, prompt, tokenizer=None, **kw) -> tuple[list[int], int]:
    rs = list(stream_generate(model, tokenizer, prompt, **kw))
    return [r.token for r in rs], sum(r.from_draft for r in rs)


def test_lookup_draft_takes_the_latest_longest_match():
    assert lookup_draft([1, 2, 3, 9, 1, 2, 3, 7, 5, 2, 3], 3) == [7, 5, 2]  # the 2-gram [2, 3]
    assert lookup_draft([5, 6, 7, 8, 6, 7], 2) == [8, 6]
    assert lookup_draft([4, 1, 9, 1], 5) == [9, 1, 9, 1, 9]  # 1-gram, then its own copy
    assert lookup_draft([1, 2, 3], 4) == []


@pytest.mark.parametrize("k", [1, 3, 8])
@pytest.mark.parametrize("kv_bits", [None, 8, 4])
def test_greedy_draft_model_equals_plain_decoding(target, draft, k, kv_bits):
    kw = dict(max_tokens=80, kv_bits=kv_bits, **VARIED)
    plain, _ = _tokens(target, PROMPT, **kw)
    got, drafted = _tokens(target, PROMPT, draft_model=draft, num_draft_tokens=k, **kw)
    assert got == plain
    assert 10 < drafted < 80  # both accepts and rejects happened
    if kv_bits is None and k == 3:  # and against a cache-free full forward (no rings at all)
        assert got == _full_forward_greedy(target, PROMPT, 80, penalty=1.5)


def _full_forward_greedy(model, prompt, n, penalty):
    """Greedy decoding by recomputing the whole sequence each step, with the repetition
    penalty written out (divide positive logits, multiply negative, last 20 tokens)."""
    ids = list(prompt)
    for _ in range(n):
        logits = np.array(model(mx.array([ids]))[0, -1].astype(mx.float32))
        recent = sorted(set(ids[-20:]))
        logits[recent] = np.where(logits[recent] < 0, logits[recent] * penalty,
                                  logits[recent] / penalty)
        ids.append(int(logits.argmax()))
    return ids[len(prompt):]


@pytest.mark.parametrize("kv_bits", [None, 4])
def test_greedy_prompt_lookup_equals_plain_decoding(target, kv_bits):
    for kw in (dict(max_tokens=80), dict(max_tokens=80, **VARIED)):
        plain, _ = _tokens(target, PROMPT, kv_bits=kv_bits, **kw)
        got, drafted = _tokens(target, PROMPT, kv_bits=kv_bits, prompt_lookup=True,
                               num_draft_tokens=5, **kw)
        assert got == plain
    assert drafted >= 0


def test_lookup_accepts_what_the_model_copies(target):
    """A model that repeats itself: nearly every token comes from the lookup."""
    got, drafted = _tokens(target, PROMPT, max_tokens=80, prompt_lookup=True)
    assert len(set(got[10:])) == 1 and drafted > 60


def test_grammar_rolls_back_with_the_caches(target, draft, model_270m):
    tokenizer = model_270m[1]
    schema = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 12},
                                                "tags": {"type": "array", "maxItems": 4,
                                                         "items": {"type": "string",
                                                                   "maxLength": 6}}},
              "required": ["name", "tags"], "additionalProperties": False}
    kw = dict(max_tokens=120, json_schema=schema, **VARIED)
    plain = _tokens(target, PROMPT, tokenizer, **kw)
    assert plain[0][-1:] != [] and len(plain[0]) < 120
    for spec in (dict(draft_model=draft, num_draft_tokens=4), dict(prompt_lookup=True)):
        assert _tokens(target, PROMPT, tokenizer, **kw, **spec)[0] == plain[0]


def test_images_with_draft_and_lookup():
    """The target sees the image rows; the draft sees placeholders and is often wrong."""
    from .test_vision import VISION, _ref

    tiny = load(VISION / "tiny")[0]
    r = _ref("tiny")
    ids = r["pas.input_ids"]
    emb = tiny.embed(mx.array(ids), mx.array(r["pas.pixel_values"]))[0]
    blocks = image_blocks(ids, tiny.image_token_index)
    prompt = mx.array(ids[0])
    kw = dict(max_tokens=40, prefill_step_size=64, input_embeddings=emb, image_blocks=blocks)
    plain = list(generate_step(prompt, tiny, cache=tiny.make_cache(), **kw))
    draft = perturbed_copy(tiny)
    for spec in (dict(draft_model=draft, draft_cache=draft.make_cache(slack=4)),
                 dict(prompt_lookup=True)):
        got = [t for t, _ in speculative_generate_step(
            prompt, tiny, num_draft_tokens=4, sampler=make_sampler(),
            cache=tiny.make_cache(slack=4), **kw, **spec)]
        assert got == plain


def perturbed_copy(model):
    out = load(FIXTURES / "vision" / "tiny")[0]
    mx.random.seed(5)
    out.update(tree_map(lambda w: w + 0.05 * w.std() * mx.random.normal(w.shape),
                        out.parameters()))
    return out


def test_a_draft_with_another_vocabulary_is_refused(model_270m):
    model, tok = model_270m
    tiny, _ = load(FIXTURES / "text" / "gqa")
    with pytest.raises(GemmaError, match="vocabulary"):
        check_draft_model(model, None, tiny, None)
    check_draft_model(model, tok, model, tok)

    class Other:
        pieces = [*tok.pieces[:100], "<x>", *tok.pieces[101:]]

    with pytest.raises(GemmaError, match="token 100 is '<x>'"):
        check_draft_model(model, tok, model, Other())
    with pytest.raises(GemmaError, match="num_draft_tokens"):
        next(stream_generate(model, tok, "Hi", prompt_lookup=True, num_draft_tokens=0))


def _chi2_critical(df: int, z: float = 3.09) -> float:
    """The chi-square value exceeded with probability ~0.001 (Wilson-Hilferty)."""
    c = 2 / (9 * df)
    return df * (1 - c + z * math.sqrt(c)) ** 3


def _chi2(counts: np.ndarray, probs: np.ndarray) -> tuple[float, int]:
    expected = probs * counts.sum()
    keep = expected > 0
    assert counts[~keep].sum() == 0  # nothing outside the support
    return float(((counts[keep] - expected[keep]) ** 2 / expected[keep]).sum()), keep.sum() - 1


@pytest.mark.parametrize("with_q", [False, True])
def test_acceptance_rule_keeps_the_target_distribution(with_q):
    """Drafts drawn from q (or fixed, for lookup), then accept/reject: the output is p."""
    mx.random.seed(0)
    p = mx.array([[0.4, 0.3, 0.2, 0.1, 0.0]])
    q = mx.array([0.1, 0.1, 0.2, 0.3, 0.3])
    counts = np.zeros(5)
    for _ in range(3000):
        d = mx.random.categorical(mx.log(q)).item() if with_q else 1
        a, bonus = _accept_sampled(mx.concatenate([p, p]), [d], [q] if with_q else None)
        counts[d if a == 1 else bonus] += 1
    stat, df = _chi2(counts, np.array(p[0]))
    assert stat < _chi2_critical(df)


def test_speculative_sampling_matches_the_models_distribution():
    """The joint law of the first two tokens (top-k 4) with a draft model equals the target's
    own, computed exactly from its logits (a 512-token vocabulary keeps 600 runs fast)."""
    small = dict(CONFIG, vocab_size=512)
    target = random_vocab_model(0, **small)
    draft = random_vocab_model(0, **small)
    mx.random.seed(3)
    draft.update(tree_map(lambda w: w + 0.3 * w.std() * mx.random.normal(w.shape),
                          draft.parameters()))
    prompt = [t % 512 for t in PROMPT]
    sampler = make_sampler(1.0, top_k=4)

    def dist(ids):
        logits = target(mx.array([ids]))[0, -1].astype(mx.float32)
        return np.array(mx.softmax(sampler.transform(logits - mx.logsumexp(logits))))

    p1 = dist(prompt)
    first = np.flatnonzero(p1).tolist()
    joint = {(a, b): p1[a] * pb for a in first for b, pb in enumerate(dist(prompt + [a]))
             if pb > 0}
    keys = list(joint)
    counts = np.zeros(len(keys))
    mx.random.seed(1)
    drafted = 0
    for _ in range(600):
        steps = speculative_generate_step(
            mx.array(prompt), target, draft_model=draft, num_draft_tokens=2, max_tokens=3,
            sampler=sampler, cache=target.make_cache(slack=2),
            draft_cache=draft.make_cache(slack=2))
        (a, _), (b, from_draft) = next(steps), next(steps)
        counts[keys.index((a, b))] += 1
        drafted += from_draft
    assert 100 < drafted < 500  # the rule both accepted and rejected
    stat, df = _chi2(counts, np.array([joint[k] for k in keys]))
    assert stat < _chi2_critical(df)


@pytest.mark.slow
def test_real_270m_greedy_is_unchanged_past_the_window(model_270m, model_270m_f32):
    """A 400-token prompt and 200 tokens: past the 512-token window, for prompt lookup on
    the 4-bit model and the 4-bit model drafting the float32 one."""
    model, tok = model_270m
    text = ("Report: the pump station at the north gate was inspected on Monday. The inlet "
            "valve leaks at 2 litres per hour; the outlet valve is fine. ") * 12
    prompt = text + "\nSummary of the report, repeated word for word:\n"
    assert 380 < len(tok.encode(prompt)) < 500
    kw = dict(max_tokens=200)
    plain = _tokens(model, prompt, tok, **kw)[0]
    got, drafted = _tokens(model, prompt, tok, prompt_lookup=True, **kw)
    assert got == plain and drafted > 100
    f32 = model_270m_f32
    plain = _tokens(f32, prompt, tok, max_tokens=120)[0]
    got, drafted = _tokens(f32, prompt, tok, max_tokens=120, draft_model=model)
    assert got == plain and drafted > 60


def test_cli_prompt_lookup_and_draft_model(tmp_path):
    r = subprocess.run([sys.executable, "-m", "gemma_mlx", "generate", "--prompt",
                        "One two three. One two three. One two", "--max-tokens", "12",
                        "--prompt-lookup"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "Drafts accepted:" in r.stdout
    r = subprocess.run([sys.executable, "-m", "gemma_mlx", "generate", "--prompt", "Hi",
                        "--draft-model", str(FIXTURES / "text" / "gqa")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode != 0 and "vocabulary" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "gemma_mlx", "generate", "--prompt", "Hi",
                        "--num-draft-tokens", "3"], capture_output=True, text=True, timeout=600)
    assert r.returncode != 0 and "needs --draft-model or --prompt-lookup" in r.stderr


def test_cli_chat_with_prompt_lookup_equals_plain_chat():
    """Three turns through the prompt cache: the cached prefix and the drafts together."""
    turns = "Repeat: the red fox jumps over the lazy dog.\nAgain, please.\nOnce more.\n"
    out = [subprocess.run([sys.executable, "-m", "gemma_mlx", "chat", "--max-tokens", "30",
                           "--temp", "0", *extra], input=turns, capture_output=True, text=True,
                          timeout=600)
           for extra in ([], ["--prompt-lookup"])]
    assert out[0].returncode == 0 and out[1].returncode == 0, out[1].stderr
    assert out[0].stdout == out[1].stdout and out[0].stdout.count(">> ") == 4
