"""Tokenizer: the real 270M GGUF vocabulary against llama.cpp's ids; a tokenizer.json checkpoint."""

from __future__ import annotations

import json

import pytest

from gemma_mlx.text.tokenizer import Tokenizer

from .conftest import FIXTURES

# Made by tests/fixtures/gguf/make_tokenizer_reference.py (see tests/fixtures/README.md).
REFERENCE = json.loads((FIXTURES / "gguf" / "tokenizer_reference.json").read_text("utf-8"))
CASES = REFERENCE["cases"]


@pytest.fixture(scope="module")
def tokenizer(model_270m) -> Tokenizer:
    # The session's 270M import, shared with the other slow tests.
    return model_270m[1]


def _mismatches(tok: Tokenizer, key: str, add_special_tokens: bool = True) -> list[str]:
    out = []
    for case in CASES:
        want = case[key] if add_special_tokens else case[key][1:]
        got = tok.encode(case["text"], add_special_tokens=add_special_tokens)
        if got != want:
            out.append(f"{case['text']!r}: {got} != {want}")
    return out


def test_reference_covers_the_corpus():
    texts = [c["text"] for c in CASES]
    assert len(texts) >= 50 and len(set(texts)) == len(texts)
    assert REFERENCE["gguf"] == "gemma-3-270m-q4_k_m.gguf"
    assert all(c["llama_cpp"][0] == 2 for c in CASES)  # <bos>, also for ""
    # The two references agree except on a run of more than 31 spaces (see below).
    differ = [c["text"] for c in CASES if c["llama_cpp"] != c["transformers"]]
    assert differ == ["forty" + " " * 40 + "spaces"]


@pytest.mark.slow
def test_encode_matches_llama_cpp(tokenizer):
    # llama.cpp, not transformers, is the reference where they differ. The vocabulary holds
    # space runs of 2..31 as USER_DEFINED pieces; SentencePiece (and llama.cpp, which splits
    # them out before its BPE) matches such a piece whole, longest first: 40 spaces -> 31 + 9.
    # transformers' GGUF conversion makes them ordinary BPE pieces instead, merged pairwise by
    # rank, which gives 16 + 24 -- ids the model never saw for that text.
    assert _mismatches(tokenizer, "llama_cpp") == []


@pytest.mark.slow
def test_encode_without_special_tokens_omits_only_the_bos(tokenizer):
    assert _mismatches(tokenizer, "llama_cpp", add_special_tokens=False) == []
    assert tokenizer.encode("", add_special_tokens=False) == []
    # a <bos> written in the text is still a control token
    assert tokenizer.encode("<bos>hi", add_special_tokens=False)[0] == 2


@pytest.mark.slow
def test_decode_round_trips_the_corpus(tokenizer):
    for case in CASES:
        text = case["text"]
        assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)) == text
    # <bos> and the other control tokens come back as written, unless skipped
    ids = tokenizer.encode("<start_of_turn>user\nHi<end_of_turn>\n")
    assert tokenizer.decode(ids) == "<bos><start_of_turn>user\nHi<end_of_turn>\n"
    assert tokenizer.decode(ids, skip_special_tokens=True) == "user\nHi\n"


def _tiny_tokenizer_json(path) -> None:
    """A Gemma-shaped tokenizer.json: chars and bytes only, control tokens, <bos> template."""
    from tokenizers import AddedToken, decoders, models, normalizers, processors
    from tokenizers import Tokenizer as HFTokenizer

    special = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]
    pieces = special + [f"<0x{b:02X}>" for b in range(256)] + list("\u2581abcdehilnorsuw")
    hf = HFTokenizer(models.BPE({p: i for i, p in enumerate(pieces)}, [], unk_token="<unk>",
                                byte_fallback=True))
    hf.normalizer = normalizers.Replace(" ", "\u2581")
    hf.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(),
                                    decoders.Fuse()])
    hf.post_processor = processors.TemplateProcessing(single="<bos> $A",
                                                      special_tokens=[("<bos>", 2)])
    hf.add_special_tokens([AddedToken(s, normalized=False) for s in special])
    hf.save(str(path / "tokenizer.json"))


def test_tokenizer_json_checkpoint(tmp_path):
    _tiny_tokenizer_json(tmp_path)
    tok = Tokenizer.from_dir(tmp_path)
    text = "<start_of_turn>user\nhello wörld 🙂<end_of_turn>\n"
    ids = tok.encode(text)
    assert ids[:2] == [2, 4] and 5 in ids
    assert tok.encode(text, add_special_tokens=False) == ids[1:]
    assert tok.decode(ids[1:]) == text
    assert tok.decode(ids, skip_special_tokens=True) == "user\nhello wörld 🙂\n"
    assert tok.bos_token_id == 2 and tok.eos_token_ids == {1, 5}
    assert tok.convert_tokens_to_ids("<end_of_turn>") == 5
