"""Grammar constraints on llguidance: JSON schema, regex and Lark, one Constraint per sequence."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any

import mlx.core as mx
import numpy as np

from ..errors import GemmaError

# Between JSON tokens: a few spaces, or one newline and indentation. Bounded, so a model cannot
# loop on whitespace, yet pretty-printed JSON (nesting up to 16 levels of 2) stays possible.
JSON_WHITESPACE = r"(?:[ \t]{0,4}|\r?\n[ \t]{0,32})"
_MAX_SCHEMA_BYTES = 1 << 20
_GRAMMAR_CACHE_SIZE = 64
_lock = threading.Lock()


def _piece_bytes(piece: str, special: bool, byte_piece: bool) -> bytes:
    if special:  # llguidance's convention: special tokens are b"\xff" + their name
        return b"\xff" + piece.encode("utf-8")
    if byte_piece:  # SentencePiece byte fallback "<0xAB>"
        return bytes([int(piece[3:5], 16)])
    return piece.replace("\u2581", " ").encode("utf-8")


class _Vocabulary:
    """What llguidance's TokenizerWrapper reads: token bytes, eos/bos ids, an encoder."""

    def __init__(self, tokenizer: Any, n_vocab: int, eos_ids: list[int]):
        pieces = tokenizer.pieces
        special = set(tokenizer.special_ids) | tokenizer.marker_ids
        tokens = []
        for i in range(n_vocab):
            if i >= len(pieces) or not pieces[i]:  # rows the vocabulary does not name
                tokens.append(b"\xff<[" + str(i).encode() + b"]>")
            else:
                tokens.append(_piece_bytes(pieces[i], i in special, tokenizer.is_byte(i)))
        self.tokens = tokens
        self.special_token_ids = sorted(i for i in special if i < n_vocab)
        self.eos_token_id = eos_ids[0]
        self.bos_token_id = tokenizer.bos_token_id
        self._tokenizer = tokenizer

    def __call__(self, text: str) -> list[int]:
        return self._tokenizer.encode(text, add_special_tokens=False)


def grammar_tokenizer(tokenizer: Any, n_vocab: int | None = None) -> Any:
    """llguidance's tokenizer for ours, built once per tokenizer and vocabulary size (1-3 s)."""
    import llguidance

    n_vocab = n_vocab or tokenizer.vocab_size
    with _lock:
        built = tokenizer.__dict__.setdefault("_grammar_tokenizers", {})
        if n_vocab not in built:
            eos = sorted(tokenizer.eos_token_ids) or [1]
            wrapper = llguidance.TokenizerWrapper(_Vocabulary(tokenizer, n_vocab, eos))
            built[n_vocab] = llguidance.LLTokenizer(wrapper, n_vocab=n_vocab, eos_token=eos)
        return built[n_vocab]


def json_schema_grammar(schema: dict | str | bool) -> str:
    """The llguidance grammar for a JSON schema (a dict, JSON text, or True for any JSON)."""
    import llguidance

    if isinstance(schema, str):
        if len(schema) > _MAX_SCHEMA_BYTES:
            raise GemmaError(f"JSON schema: {len(schema)} bytes is over the 1 MiB limit")
        try:
            schema = json.loads(schema)
        except json.JSONDecodeError as e:
            raise GemmaError(f"JSON schema: not valid JSON ({e})") from None
    if schema is True or schema == {}:
        schema = {"type": ["object", "array", "string", "number", "boolean", "null"]}
    if not isinstance(schema, dict):
        raise GemmaError(f"JSON schema: must be an object, not {type(schema).__name__}")
    options = {"whitespace_flexible": True, "whitespace_pattern": JSON_WHITESPACE}
    try:
        return llguidance.LLMatcher.grammar_from_json_schema(schema, defaults=options)
    except ValueError as e:
        raise GemmaError(f"JSON schema: {e}") from None


def regex_grammar(pattern: str) -> str:
    import llguidance

    return llguidance.LLMatcher.grammar_from_regex(pattern)


def lark_grammar(text: str) -> str:
    import llguidance

    return llguidance.LLMatcher.grammar_from_lark(text)


def _readable(error: str) -> str:
    """llguidance's error on one line, without its caret and grammar-echo lines."""
    lines = [ln.strip() for ln in error.splitlines()]
    keep = [ln for ln in lines if ln and set(ln) - set("^ ") and not ln[:1].isdigit()]
    return " ".join(keep) or "invalid grammar"


class _MatcherCache:
    """Pristine matchers by (tokenizer, grammar); each sequence gets a deep copy."""

    def __init__(self, size: int):
        self.size, self.items = size, OrderedDict()

    def get(self, llg_tokenizer: Any, grammar: str, what: str) -> Any:
        import llguidance

        key = (id(llg_tokenizer), grammar)
        with _lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key].deep_copy()
        limits = llguidance.LLParserLimits(verbose_errors=False)
        matcher = llguidance.LLMatcher(llg_tokenizer, grammar, log_level=0, limits=limits)
        if matcher.is_error():
            raise GemmaError(f"{what}: {_readable(matcher.get_error())}")
        with _lock:
            self.items[key] = matcher
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return matcher.deep_copy()


_matchers = _MatcherCache(_GRAMMAR_CACHE_SIZE)


@mx.compile
def apply_bitmask(logits: mx.array, words: mx.array) -> mx.array:
    """logits [..., V] with the tokens whose bit is 0 in `words` [ceil(V/32)] set to -inf."""
    bits = (words[:, None] >> mx.arange(32, dtype=mx.int32)) & 1  # [W, 32], bit j of word i
    allowed = bits.reshape(-1)[: logits.shape[-1]].astype(mx.bool_)
    return mx.where(allowed, logits, -mx.inf)


class Constraint:
    """The grammar state of one sequence: the mask of allowed next tokens, consume, rollback.

    `grammar` is an llguidance grammar (json_schema_grammar, regex_grammar, lark_grammar);
    `what` names it in errors. The batch engine and the server hold one per sequence.
    """

    def __init__(self, tokenizer: Any, grammar: str, n_vocab: int, what: str = "grammar"):
        self.n_vocab, self.what = n_vocab, what
        self._llg = grammar_tokenizer(tokenizer, n_vocab)
        self._matcher = _matchers.get(self._llg, grammar, what)
        self._words = np.full((n_vocab + 31) // 32, -1, dtype=np.int32)
        self.consumed = 0

    def mask_words(self) -> np.ndarray:
        """The allowed next tokens as int32 words, bit j of word i for token 32 i + j."""
        self._matcher.unsafe_compute_mask_ptr(self._words.ctypes.data, self._words.nbytes)
        self._check()
        return self._words

    def allowed(self) -> np.ndarray:
        """The allowed next token ids (for tests and tools)."""
        bits = np.unpackbits(self.mask_words().view(np.uint8), bitorder="little")
        return np.flatnonzero(bits[: self.n_vocab])

    def apply(self, logits: mx.array) -> mx.array:
        """`logits` [..., V] with the disallowed next tokens at -inf."""
        return apply_bitmask(logits, mx.array(self.mask_words()))

    def consume(self, token: int) -> None:
        if not self._matcher.consume_token(int(token)):
            self._check()
            raise GemmaError(f"{self.what}: token {token} is not allowed here")
        self.consumed += 1

    def rollback(self, n: int) -> None:
        """Forget the last `n` consumed tokens (as a cache's trim(n))."""
        if n > self.consumed or not self._matcher.rollback(n):
            raise GemmaError(f"{self.what}: cannot roll back {n} tokens")
        self.consumed -= n

    @property
    def is_accepting(self) -> bool:
        """The text so far is a complete match (an end of sequence may follow)."""
        return self._matcher.is_accepting()

    @property
    def is_finished(self) -> bool:
        """Nothing but an end of sequence can follow: generation should stop."""
        return self._matcher.is_stopped()

    def _check(self) -> None:
        if self._matcher.is_error():
            raise GemmaError(f"{self.what}: {_readable(self._matcher.get_error())}")


def make_constraint(
    tokenizer: Any,
    n_vocab: int,
    json_schema: dict | str | bool | None = None,
    regex: str | None = None,
    grammar: str | None = None,
) -> Constraint | None:
    """The constraint for at most one of a JSON schema, a regex or a Lark grammar (or None).

    Raises GemmaError naming the problem (an unsupported keyword, a bad regex) before any
    generation starts.
    """
    given = [k for k, v in [("json_schema", json_schema), ("regex", regex),
                            ("grammar", grammar)] if v is not None]
    if len(given) > 1:
        raise GemmaError(f"give one constraint, not {' and '.join(given)}")
    if not given:
        return None
    if tokenizer is None:
        raise GemmaError("a constraint needs the model's tokenizer")
    if json_schema is not None:
        return Constraint(tokenizer, json_schema_grammar(json_schema), n_vocab, "JSON schema")
    if regex is not None:
        return Constraint(tokenizer, regex_grammar(regex), n_vocab, "regex")
    return Constraint(tokenizer, lark_grammar(grammar), n_vocab, "grammar")
