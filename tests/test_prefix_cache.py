"""Prefix cache on the batch engine: reused prefixes give the tokens of a fresh prefill,
across ring wraps, rollbacks within the slack, turn-boundary checkpoints and the budget."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from gemma_mlx.formats.loading import load
from gemma_mlx.generation.batch import BatchEngine, Request
from gemma_mlx.generation.generate import generate_step
from gemma_mlx.serve.prefix_cache import MIN_SHARED, PrefixCache
from gemma_mlx.serve.stops import StopMatcher

from .conftest import FIXTURES

SLACK = 6


@pytest.fixture(scope="module")
def model():
    return load(FIXTURES / "text" / "layer_types")[0]  # sliding window 8, global layers


def _alone(model, prompt: list[int], n: int) -> list[int]:
    return list(generate_step(mx.array(prompt), model, max_tokens=n))


def _turn(engine: BatchEngine, cache: PrefixCache, prompt: list[int], n: int
          ) -> tuple[list[int], int]:
    """Generate n tokens with the cache as the server does; (tokens, cached prompt tokens)."""
    caches, cached = cache.take(prompt)
    engine.submit(Request(prompt, n, stops=set(), keep_cache=True, cache=caches, cached=cached,
                          id="r"))
    out, last = [], None
    for e in engine.run():
        out.append(e.token)
        last = e
    cache.put((prompt + out)[: last.caches[0].offset], last.caches, last.checkpoint,
              len(prompt))
    return out, cached


def _rng_ids(rng, n: int, vocab: int) -> list[int]:
    return rng.integers(3, vocab, size=n).tolist()


def test_new_turns_reuse_the_conversation(model):
    """Each turn's prompt is the history + new tokens; the rings wrap (window 8) every turn."""
    rng = np.random.default_rng(1)
    engine, cache = BatchEngine(model, None, max_batch=2, prefill_step_size=5,
                                slack=SLACK), PrefixCache(1 << 30)
    history: list[int] = []
    for turn in range(4):
        history += _rng_ids(rng, 7 + turn, model.config.vocab_size)
        out, cached = _turn(engine, cache, history, 9)
        assert out == _alone(model, history, 9), f"turn {turn}"
        assert cached == (0 if turn == 0 else len(history) - 8 - turn)  # all but the last
        history += out
    assert cache.hits == 3 and len(cache.entries) == 1


def test_rollback_within_slack_and_from_the_checkpoint(model):
    rng = np.random.default_rng(2)
    vocab = model.config.vocab_size
    engine, cache = BatchEngine(model, None, slack=SLACK), PrefixCache(1 << 30)
    prompt = _rng_ids(rng, 20, vocab)
    out, _ = _turn(engine, cache, prompt, 20)
    # the client edits the end of the reply: diverges 4 tokens before the end (in the slack)
    edited = prompt + out[:15] + _rng_ids(rng, 5, vocab)
    got, cached = _turn(engine, cache, edited, 12)
    assert cached == len(prompt) + 15 and got == _alone(model, edited, 12)
    # the client sends another reply back: it diverges 11 tokens before the end, beyond the
    # slack: the rings come from the checkpoint at the end of the last prompt
    again = edited + _rng_ids(rng, 7, vocab)
    got, cached = _turn(engine, cache, again, 12)
    assert cached == len(edited) and got == _alone(model, again, 12)
    # regenerate: the same prompt again; the checkpoint rolls back its last token
    got, cached = _turn(engine, cache, again, 4)
    assert cached == len(again) - 1 and got == _alone(model, again, 4)


def test_shared_prefix_is_copied_and_the_entry_stays(model):
    rng = np.random.default_rng(3)
    vocab = model.config.vocab_size
    engine, cache = BatchEngine(model, None, slack=SLACK), PrefixCache(1 << 30)
    system = _rng_ids(rng, MIN_SHARED + 6, vocab)
    a = system + _rng_ids(rng, 5, vocab)
    _turn(engine, cache, a, 4)
    b = system + _rng_ids(rng, 6, vocab)
    got, cached = _turn(engine, cache, b, 5)
    # a's checkpoint (at the end of a's prompt) rolls back its 5 tokens: a copy of the
    # shared prefix; a's entry stays for a's conversation
    assert (cached, len(cache.entries)) == (len(system), 2) and got == _alone(model, b, 5)
    c = system[:-10] + _rng_ids(rng, 4, vocab)  # 15 back from a's checkpoint: beyond slack
    got, cached = _turn(engine, cache, c, 3)
    assert cached == 0 and got == _alone(model, c, 3)


def test_budget_evicts_the_least_recently_used(model):
    rng = np.random.default_rng(4)
    engine = BatchEngine(model, None, slack=SLACK)
    probe = PrefixCache(1 << 30)
    _turn(engine, probe, _rng_ids(rng, 30, model.config.vocab_size), 3)
    one = probe.nbytes
    cache = PrefixCache(int(2.5 * one))
    prompts = [_rng_ids(rng, 30, model.config.vocab_size) for _ in range(4)]
    for p in prompts:
        _turn(engine, cache, p, 3)
    assert len(cache.entries) == 2 and cache.nbytes <= cache.max_bytes
    assert [e.tokens[:30] for e in cache.entries.values()] == prompts[2:]


def test_stop_matcher_holds_back_a_possible_stop():
    m = StopMatcher(["END", "##"])
    assert m.add("hello E") == ("hello ", False)
    assert m.add("N") == ("", False)
    assert m.add("x #") == ("ENx ", False)
    assert m.add("# more") == ("", True)
    m = StopMatcher([])
    assert m.add("a") == ("a", False) and m.flush() == ""
    m = StopMatcher(["zz"])
    assert m.add("abz") == ("ab", False) and m.flush() == "z"


def test_stream_generate_with_a_prompt_cache(model):
    """gemma-mlx chat's path: each turn reuses the last one's caches, same tokens."""
    from gemma_mlx.generation.generate import stream_generate

    rng = np.random.default_rng(5)
    cache, history = PrefixCache(1 << 30, slack=SLACK), []
    for turn in range(3):
        history += _rng_ids(rng, 6, model.config.vocab_size)
        out = [r.token for r in stream_generate(model, None, list(history), max_tokens=7,
                                                prompt_cache=cache)]
        assert out == _alone(model, history, 7), f"turn {turn}"
        history += out
    assert cache.hits == 2 and cache.misses == 1
